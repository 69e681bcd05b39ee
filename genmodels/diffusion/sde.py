r"""The score-SDE path of Algorithms 1–2: the variance-preserving SDE (Song et al., 2021).

Forward SDE on continuous time t ∈ [0, 1] (the T → ∞ limit of DDPM):

    dx = −½ β(t) x dt + √β(t) dw,      β(t) = β_min + t (β_max − β_min).

Its marginal is Gaussian, q(x_t | x_0) = N(a(t) x_0, σ(t)² I), with

    ∫_0^t β(s) ds = β_min t + ½ (β_max − β_min) t²,
    a(t) = exp(−½ ∫_0^t β),   σ(t)² = 1 − exp(−∫_0^t β).

Training (Alg. 1 analogue) is denoising score matching; sampling (Alg. 2 analogue) integrates the
reverse SDE  dx = [−½β x − β ∇_x log p_t(x)] dt + √β dw̄  from t = 1 down to t = eps.

``score_model(x_t, t)`` is any callable with ``x_t [B, ...]`` and float ``t [B]`` in [0, 1],
returning s_θ ≈ ∇_x log p_t(x_t) shaped like ``x_t``. Per-sample factors are shaped
``[B, 1, …, 1]`` to broadcast against x; results keep the dtype of x.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from genmodels._checks import (check_callable, check_choice, check_int, check_positive,
                               check_range, check_same_dtype, check_same_shape, check_shape_arg,
                               check_tensor)

__all__ = ["vp_sde_beta", "vp_sde_marginal", "score_matching_draw", "score_matching_loss",
           "euler_maruyama_sample"]

ScoreModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_betas(beta_min, beta_max) -> None:
    check_positive("beta_min", beta_min)
    check_positive("beta_max", beta_max)
    if beta_max < beta_min:
        raise ValueError(f"beta_max: must be >= beta_min = {beta_min}, got {beta_max}")


def _check_time(name: str, t, x: torch.Tensor) -> torch.Tensor:
    """Float ``t`` of shape ``[B]`` in [0, 1]; returned in x's dtype and device."""
    check_tensor(name, t, ndim=1)
    if t.shape[0] != x.shape[0]:
        raise ValueError(f"{name}: expected shape [{x.shape[0]}] (one time per sample), got {list(t.shape)}")
    t_min, t_max = (float(t.detach().min()), float(t.detach().max())) if t.numel() else (0.0, 0.0)
    if t_min < 0 or t_max > 1:
        raise ValueError(f"{name}: times must lie in [0, 1], got min {t_min}, max {t_max}")
    return t.to(dtype=x.dtype, device=x.device)


def _bcast(v: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return v.view(x.shape[0], *([1] * (x.dim() - 1)))                  # (B,) -> (B, 1, ..., 1)


def vp_sde_beta(t: torch.Tensor, beta_min: float = 0.1, beta_max: float = 20.0) -> torch.Tensor:
    """β(t) = β_min + t (β_max − β_min), elementwise."""
    return beta_min + t * (beta_max - beta_min)


def _log_mean_coeff(t: torch.Tensor, beta_min: float, beta_max: float) -> torch.Tensor:
    """log a(t) = −½ ∫_0^t β(s) ds = −¼ t² (β_max − β_min) − ½ t β_min."""
    # >>> exercise ddpm.sde_marginal: Algorithm 1, continuous
    return -0.25 * t ** 2 * (beta_max - beta_min) - 0.5 * t * beta_min
    # <<< exercise ddpm.sde_marginal


def vp_sde_marginal(x0: torch.Tensor, t: torch.Tensor, beta_min: float = 0.1, beta_max: float = 20.0,
                    noise: torch.Tensor | None = None, *,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Sample the VP-SDE marginal (continuous Alg. 1, line 4):

        x_t = a(t) x_0 + σ(t) ε,   a(t) = exp(−½ ∫_0^t β),  σ(t) = √(1 − exp(−∫_0^t β)).

    Args:
        x0: ``[B, ...]`` data.
        t: ``[B]`` float times in [0, 1].
        beta_min, beta_max: 0 < β_min ≤ β_max.
        noise: optional ε shaped like ``x0``; drawn with ``generator`` if None.

    Returns:
        ``(x_t [B, ...], std [B, 1, …, 1])`` with std = σ(t).
    """
    check_tensor("x0", x0, min_ndim=1)
    _check_betas(beta_min, beta_max)
    t = _check_time("t", t, x0)
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    else:
        check_tensor("noise", noise)
        check_same_shape(("noise", "x0"), noise, x0)
        check_same_dtype(("noise", "x0"), noise, x0)
    # >>> exercise ddpm.sde_marginal: Algorithm 1, continuous
    # what: the VP-SDE marginal x_t = a(t) x_0 + σ(t) ε with a(t) = exp(−½∫β)
    # hint: ∫_0^t β(s) ds = β_min t + ½ t² (β_max − β_min); a(t) = exp(−½ ∫β), σ(t) = √(1 − a(t)²).
    # mistake: `-0.25 * t ** 2 * (beta_max - beta_min)` -> `-0.5 * t ** 2 * (beta_max - beta_min)`
    log_mean_coeff = _bcast(_log_mean_coeff(t, beta_min, beta_max), x0)
    mean_coeff = log_mean_coeff.exp()                                   # a(t)
    std = (-torch.expm1(2 * log_mean_coeff)).sqrt()                     # σ(t) = √(1 − a(t)²)
    return mean_coeff * x0 + std * noise, std
    # <<< exercise ddpm.sde_marginal


def score_matching_draw(x0: torch.Tensor, *, eps: float = 1e-5, t: torch.Tensor | None = None,
                        noise: torch.Tensor | None = None,
                        generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The random draws of :func:`score_matching_loss` for a batch ``x0 [B, ...]``: t ~ U[eps, 1]
    ``[B]``, then ε ~ N(0, I) shaped like ``x0``, each only when not given. The loss draws
    through it, so drawing first and passing ``t=`` and ``noise=`` gives the same numbers."""
    check_tensor("x0", x0, min_ndim=1)
    check_range("eps", eps, 0.0, 1.0, low_open=True, high_open=True)
    if t is None:
        t = eps + (1 - eps) * torch.rand(x0.shape[0], generator=generator, dtype=x0.dtype,
                                         device=x0.device)
    if noise is None:
        noise = torch.randn(x0.shape, generator=generator, dtype=x0.dtype, device=x0.device)
    return t, noise


def score_matching_loss(score_model: ScoreModel, x0: torch.Tensor, beta_min: float = 0.1,
                        beta_max: float = 20.0, *, eps: float = 1e-5, t: torch.Tensor | None = None,
                        noise: torch.Tensor | None = None, generator: torch.Generator | None = None,
                        reduction: str = "mean") -> torch.Tensor:
    r"""Denoising score matching with weight λ(t) = σ(t)² (continuous Alg. 1):

        L = E_{t, x_0, ε} ‖σ(t) s_θ(x_t, t) + ε‖²,   x_t = a(t) x_0 + σ(t) ε,  t ~ U[eps, 1].

    Since ∇ log q(x_t | x_0) = −ε/σ(t), this is σ² ‖s_θ − ∇ log q(x_t|x_0)‖²; its minimiser over
    s_θ is the true score ∇ log p_t, where ε_θ = −σ s_θ is DDPM's noise predictor (up to the time
    parametrisation, this is :func:`~genmodels.diffusion.ddpm.ddpm_loss`).

    Args:
        score_model: callable ``(x_t [B, ...], t [B] float) -> s_θ``.
        x0: ``[B, ...]`` data.
        eps: smallest time drawn, in (0, 1) (σ(0) = 0 would make the target singular).
        t: optional ``[B]`` float times (fixes the draw).  noise: optional ε (fixes the draw).
        generator: draws t and ε when they are not given (:func:`score_matching_draw`).
        reduction: ``"mean"`` over every element (default), ``"sum"`` over non-batch dims then
            mean over the batch, or ``"none"`` for the per-sample mean ``[B]``.

    Returns:
        0-dim loss (``[B]`` for ``reduction="none"``).
    """
    check_callable("score_model", score_model)
    check_tensor("x0", x0, min_ndim=1)
    if x0.numel() == 0:  # as ddpm_loss: an empty batch has no mean
        raise ValueError(f"x0: expected a non-empty tensor, got shape {list(x0.shape)}")
    check_range("eps", eps, 0.0, 1.0, low_open=True, high_open=True)
    check_choice("reduction", reduction, ("mean", "sum", "none"))
    t, noise = score_matching_draw(x0, eps=eps, t=t, noise=noise, generator=generator)
    # >>> exercise ddpm.score_matching: Algorithm 1, continuous
    # what: denoising score matching ‖σ(t) s_θ(x_t, t) + ε‖²
    # hint: the score of q(x_t|x_0) is −ε/σ(t), so the weighted error is σ s_θ + ε (a PLUS).
    # mistake: `(std * score + z)` -> `(std * score - z)`
    # uses: ddpm.sde_marginal
    x_t, std = vp_sde_marginal(x0, t, beta_min, beta_max, noise=noise)
    z = noise                                                           # ε, so −ε/σ = ∇ log q(x_t|x_0)
    score = score_model(x_t, t)
    check_tensor("score_model output", score)
    check_same_shape(("score_model output", "x_t"), score, x_t)
    sq_err = (std * score + z).pow(2).reshape(x0.shape[0], -1)          # (B, D); D = 1 for x0 [B]
    if reduction == "sum":
        return sq_err.sum(dim=1).mean()
    per_sample = sq_err.mean(dim=1)                                     # (B,)
    return per_sample if reduction == "none" else per_sample.mean()
    # <<< exercise ddpm.score_matching


def euler_maruyama_sample(score_model: ScoreModel, shape: Sequence[int], steps: int,
                          beta_min: float = 0.1, beta_max: float = 20.0, eps: float = 1e-3,
                          generator: torch.Generator | None = None, *, x_T: torch.Tensor | None = None,
                          dtype: torch.dtype | None = None, device=None,
                          enable_grad: bool = False) -> torch.Tensor:
    r"""Sample by integrating the reverse VP-SDE with Euler–Maruyama (continuous Alg. 2).

    Start from x ~ N(0, I) at t = 1 (≈ the marginal there), take ``steps`` steps of size
    Δ = (1 − eps)/steps backwards in time, at t_i = 1 − iΔ:

        x ← x + [½ β(t_i) x + β(t_i) s_θ(x, t_i)] Δ + √(β(t_i) Δ) z,   z ~ N(0, I),

    and return the noise-free mean of the last step (the state at t = eps).

    Args:
        score_model: callable ``(x [B, ...], t [B] float) -> s_θ``.
        shape: ``(B, ...)``.  steps: ≥ 1.  eps: final time, in (0, 1).
        generator: draws x_T and every z.  x_T: optional start of ``shape``.
        dtype, device: of x_T when it is drawn (default dtype: ``torch.get_default_dtype()``).
        enable_grad: runs under ``torch.no_grad()`` unless True.

    Returns:
        samples of ``shape``.
    """
    check_callable("score_model", score_model)
    check_int("steps", steps, minimum=1)
    _check_betas(beta_min, beta_max)
    check_range("eps", eps, 0.0, 1.0, low_open=True, high_open=True)
    shape = check_shape_arg("shape", shape)
    if x_T is None:
        x = torch.randn(tuple(shape), generator=generator, dtype=dtype or torch.get_default_dtype(),
                        device=device)
    else:
        check_tensor("x_T", x_T)
        if tuple(x_T.shape) != tuple(shape):
            raise ValueError(f"x_T: expected shape {list(shape)}, got {list(x_T.shape)}")
        x = x_T
    # >>> exercise ddpm.euler_maruyama: Algorithm 2, continuous
    # what: reverse-SDE sampling with Euler–Maruyama steps
    # hint: x ← x + [½β x + β s_θ]Δ + √(βΔ) z, t from 1 down to eps; no noise on the last step.
    # mistake: `(0.5 * beta * x + beta * score) * dt` -> `(0.5 * beta * x - beta * score) * dt`
    dt = (1 - eps) / steps                                              # Δ > 0, time runs backwards
    with torch.set_grad_enabled(enable_grad and torch.is_grad_enabled()):
        for i in range(steps):
            t = torch.full((x.shape[0],), 1 - i * dt, dtype=x.dtype, device=x.device)
            beta = _bcast(vp_sde_beta(t, beta_min, beta_max), x)        # β(t_i) = g(t_i)²
            score = score_model(x, t)
            check_tensor("score_model output", score)
            check_same_shape(("score_model output", "x"), score, x)
            x_mean = x + (0.5 * beta * x + beta * score) * dt           # x − [f − g² s] dt, dt < 0
            if i < steps - 1:
                z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
                x = x_mean + (beta * dt).sqrt() * z
            else:
                x = x_mean
    return x
    # <<< exercise ddpm.euler_maruyama
