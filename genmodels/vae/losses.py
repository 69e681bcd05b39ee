r"""The variational autoencoder's equations (2.5–2.8).

An encoder maps x to q(z|x) = N(μ, diag σ²) given as ``mu`` and ``logvar = log σ²``; a decoder
maps z to the logits of a Bernoulli distribution over the pixels x ∈ [0, 1]. Training maximises
the evidence lower bound (ELBO, 2.7), which the reparameterisation trick (2.6) makes
differentiable in the encoder's outputs, and whose KL term has the closed form 2.8.

Shapes: ``z, mu, logvar`` are ``[B, d]``; ``x`` is ``[B, ...]`` (any image shape); decoder
``logits`` are ``[B, ...]`` for one sample of z or ``[L, B, ...]`` for L samples.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from genmodels._checks import check_same_dtype, check_same_shape, check_tensor, checks_enabled

__all__ = ["gaussian_log_density", "reparameterize", "kl_to_standard_normal", "elbo",
           "bernoulli_log_likelihood", "iwae_bound"]

_LOG_2PI = math.log(2.0 * math.pi)


def _check_gaussian(mu, logvar, extra=()):
    check_tensor("mu", mu, ndim=2)
    check_tensor("logvar", logvar, ndim=2)
    names, tensors = ("mu", "logvar", *[n for n, _ in extra]), (mu, logvar, *[t for _, t in extra])
    check_same_shape(names, *tensors)
    check_same_dtype(names, *tensors)


def gaussian_log_density(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""Eq. 2.5: the log density of a diagonal Gaussian, summed over the latent dimensions.

    log N(z; μ, σ²I) = −½ Σ_j [ log 2π + log σ_j² + (z_j − μ_j)² / σ_j² ]

    Args: ``z, mu, logvar`` of shape ``[B, d]``. Returns ``[B]``.
    """
    check_tensor("z", z, ndim=2)
    _check_gaussian(mu, logvar)
    check_same_shape(("z", "mu"), z, mu)
    check_same_dtype(("z", "mu"), z, mu)
    # >>> exercise vae.log_density: eq. 2.5
    # what: log N(z; μ, σ²I) of a diagonal Gaussian, summed over d
    # hint: −½ Σ_j [log 2π + log σ_j² + (z_j − μ_j)²/σ_j²]; logvar is log σ², not log σ.
    # mistake: `(z - mu) ** 2 / sigma_sq` -> `(z - mu) ** 2 / torch.exp(0.5 * logvar)`
    sigma_sq = torch.exp(logvar)
    return -0.5 * (_LOG_2PI + logvar + (z - mu) ** 2 / sigma_sq).sum(dim=-1)
    # <<< exercise vae.log_density


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                   eps: torch.Tensor | None = None, *,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Eq. 2.6: the reparameterisation trick, z = μ + ε ⊙ σ with σ = exp(½ log σ²), ε ~ N(0, I).

    The randomness lives in ε, so z is a differentiable function of (μ, log σ²).

    Args: ``mu, logvar`` of shape ``[B, d]``; ``eps`` of shape ``[B, d]`` or ``[L, B, d]``
    (L samples per input) or None to draw ``[B, d]`` from ``generator``.
    Returns z shaped like ``eps``.
    """
    _check_gaussian(mu, logvar)
    if eps is None:
        eps = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
    else:
        check_tensor("eps", eps, ndim=(2, 3))
        if tuple(eps.shape[-2:]) != tuple(mu.shape):
            raise ValueError(f"eps: expected shape [B, d] or [L, B, d] with [B, d] = {list(mu.shape)}, "
                             f"got {list(eps.shape)}")
        check_same_dtype(("eps", "mu"), eps, mu)
    # >>> exercise vae.reparameterize: eq. 2.6
    # what: the reparameterisation z = μ + ε ⊙ σ, σ = exp(½ log σ²)
    # hint: σ = exp(½·logvar): the ½ turns a log-variance into a standard deviation.
    # mistake: `torch.exp(0.5 * logvar)` -> `torch.exp(logvar)`
    sigma = torch.exp(0.5 * logvar)
    return mu + eps * sigma
    # <<< exercise vae.reparameterize


def kl_to_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""Eq. 2.8: D_KL( N(μ, σ²I) ‖ N(0, I) ) = ½ Σ_j ( μ_j² + σ_j² − log σ_j² − 1 ) ≥ 0.

    Args: ``mu, logvar`` of shape ``[B, d]``. Returns ``[B]``.
    """
    _check_gaussian(mu, logvar)
    # >>> exercise vae.kl: eq. 2.8
    # what: the closed-form KL(N(μ, σ²I) ‖ N(0, I)) = ½ Σ (μ² + σ² − log σ² − 1)
    # hint: ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1), summed over the latent axis; it is 0 at μ = 0, σ = 1.
    # mistake: `0.5 * (mu ** 2` -> `(mu ** 2`
    # expm1(logvar) - logvar = σ² − 1 − log σ² without cancellation near σ² = 1.
    return 0.5 * (mu ** 2 + torch.expm1(logvar) - logvar).sum(dim=-1)
    # <<< exercise vae.kl


def bernoulli_log_likelihood(x: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    r"""log p(x|z) = Σ_pixels [ x log σ(ℓ) + (1 − x) log(1 − σ(ℓ)) ], for x ∈ [0, 1].

    ``logits`` is ``x.shape`` or ``[L, *x.shape]``; returns ``[B]`` or ``[L, B]`` (summed over
    every non-batch dimension). Written with log-sigmoids, so finite for any logit.
    """
    check_tensor("x", x, min_ndim=1)
    check_tensor("logits", logits, min_ndim=1)
    if tuple(logits.shape) != tuple(x.shape) and tuple(logits.shape[1:]) != tuple(x.shape):
        raise ValueError(f"logits: expected shape {list(x.shape)} or [L, {', '.join(map(str, x.shape))}]"
                         f" to match x, got {list(logits.shape)}")
    check_same_dtype(("logits", "x"), logits, x)
    if checks_enabled() and bool(((x < 0) | (x > 1)).any()):
        raise ValueError("x: Bernoulli targets must lie in [0, 1]")
    # log σ(ℓ) = −softplus(−ℓ) and log(1 − σ(ℓ)) = −softplus(ℓ)
    log_p = x * F.logsigmoid(logits) + (1 - x) * F.logsigmoid(-logits)
    batch_dims = logits.dim() - x.dim() + 1                          # 1 ([B]) or 2 ([L, B])
    lead = log_p.shape[:batch_dims]                                 # an empty batch gives [0]
    return log_p.reshape(*lead, math.prod(log_p.shape[batch_dims:])).sum(dim=-1)  # x [B] works too


def elbo(x: torch.Tensor, logits: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    r"""Eq. 2.7: the evidence lower bound with a Bernoulli decoder,

    ELBO(x) = −D_KL(q(z|x) ‖ p(z)) + (1/L) Σ_{l=1}^{L} log p(x | z_l),   z_l = μ + ε_l ⊙ σ.

    Args:
        x: ``[B, ...]`` data in [0, 1].
        logits: decoder logits for one sample ``[B, ...]`` or L samples ``[L, B, ...]``.
        mu, logvar: ``[B, d]`` encoder outputs.
    Returns ``[B]`` (nats); maximise it (the training loss is ``-elbo(...).mean()``).
    """
    check_tensor("x", x, min_ndim=1)
    _check_gaussian(mu, logvar)
    if mu.shape[0] != x.shape[0]:
        raise ValueError(f"mu: batch size {mu.shape[0]} does not match x's {x.shape[0]}")
    check_same_dtype(("mu", "x"), mu, x)
    # >>> exercise vae.elbo: eq. 2.7
    # what: the ELBO −KL + (1/L) Σ_l log p(x|z_l) with a Bernoulli decoder
    # hint: average log p(x|z_l) over the L samples (dim 0 when logits are [L, B, ...]) and SUBTRACT the KL.
    # mistake: `log_px - kl_to_standard_normal(mu, logvar)` -> `log_px + kl_to_standard_normal(mu, logvar)`
    # uses: vae.kl
    log_px = bernoulli_log_likelihood(x, logits)  # [B], or [L, B] for L samples of z
    if log_px.dim() == 2:  # [L, B] → average over the L samples
        log_px = log_px.mean(dim=0)
    return log_px - kl_to_standard_normal(mu, logvar)
    # <<< exercise vae.elbo


def iwae_bound(x: torch.Tensor, logits: torch.Tensor, z: torch.Tensor, mu: torch.Tensor,
               logvar: torch.Tensor) -> torch.Tensor:
    r"""The importance-weighted bound (Burda et al., 2016) used to estimate −log p(x):

    log p(x) ≥ log (1/K) Σ_k p(x|z_k) p(z_k) / q(z_k|x),   z_k ~ q(z|x),

    tighter than the ELBO and equal to log p(x) as K → ∞.

    Args: ``x [B, ...]``, ``logits [K, B, ...]``, ``z [K, B, d]``, ``mu, logvar [B, d]``.
    Returns ``[B]`` (nats).
    """
    check_tensor("z", z, ndim=3)
    check_tensor("x", x, min_ndim=1)
    check_tensor("logits", logits, min_ndim=2)
    K, B, d = z.shape
    if K == 0 or tuple(logits.shape) != (K, *x.shape):
        raise ValueError(f"logits: expected [K={K}, B={B}, ...], got {list(logits.shape)}")
    log_px_z = bernoulli_log_likelihood(x, logits)                  # [K, B]
    _check_gaussian(mu, logvar)
    if tuple(mu.shape) != (B, d):
        raise ValueError(f"mu: expected shape [B={B}, d={d}] to match z {list(z.shape)}, "
                         f"got {list(mu.shape)}")
    check_same_dtype(("mu", "z", "x"), mu, z, x)
    zero = torch.zeros_like(mu)
    z_flat = z.reshape(K * B, d)                                     # (K·B, d)
    log_pz = gaussian_log_density(z_flat, zero.repeat(K, 1), zero.repeat(K, 1)).view(K, B)
    log_qz = gaussian_log_density(z_flat, mu.repeat(K, 1), logvar.repeat(K, 1)).view(K, B)
    log_w = log_px_z + log_pz - log_qz                               # [K, B]
    return torch.logsumexp(log_w, dim=0) - math.log(K)
