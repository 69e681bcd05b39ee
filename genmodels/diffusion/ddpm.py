r"""DDPM: forward process (eq. 2.12), reverse step (eq. 2.13), Algorithms 1–2, and DDIM.

Index convention (see :mod:`genmodels.diffusion.schedules`): an integer timestep ``t`` in
{0, …, T−1} is the paper's step t+1; ``t[B]`` holds one timestep per sample, ᾱ_{−1} = 1.

Shapes: ``x`` is ``[B, ...]`` (any trailing shape: ``[B, D]`` toy data, ``[B, C, H, W]`` images).
Per-timestep coefficients are gathered and shaped ``[B, 1, …, 1]`` so they broadcast against x;
variances are returned in that broadcastable shape. Results keep the dtype of x.

``eps_model(x_t, t)`` is any callable returning the predicted noise ε_θ, shaped like ``x_t``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from genmodels._checks import (check_callable, check_choice, check_int, check_range,
                               check_same_dtype, check_same_shape, check_shape_arg, check_tensor)
from genmodels.diffusion.schedules import NoiseSchedule, check_timesteps, extract

__all__ = ["q_step", "q_sample", "q_posterior", "p_mean_variance", "ddpm_draw", "ddpm_loss",
           "ddpm_sample", "ddim_sample"]

EpsModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _check_schedule(schedule) -> NoiseSchedule:
    if not isinstance(schedule, NoiseSchedule):
        raise ValueError(f"schedule: expected a NoiseSchedule, got {type(schedule).__name__}")
    return schedule


def _check_x(name: str, x) -> torch.Tensor:
    check_tensor(name, x, min_ndim=1)
    if x.numel() == 0:
        raise ValueError(f"{name}: expected a non-empty tensor, got shape {list(x.shape)}")
    return x


def _check_noise(x_name: str, x: torch.Tensor, noise) -> None:
    """The caller's ``noise`` is a finite tensor of the shape and dtype of ``x`` (named ``x_name``)."""
    check_tensor("noise", noise)
    check_same_shape(("noise", x_name), noise, x)
    check_same_dtype(("noise", x_name), noise, x)


def _noise_like(x: torch.Tensor, noise, generator, x_name: str = "x") -> torch.Tensor:
    """ε ~ N(0, I) shaped like x, or the caller's ``noise`` after checking it."""
    if noise is None:
        return torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    _check_noise(x_name, x, noise)
    return noise


def _call_eps_model(eps_model: EpsModel, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    check_callable("eps_model", eps_model)
    eps_theta = eps_model(x_t, t)
    check_tensor("eps_model output", eps_theta)
    check_same_shape(("eps_model output", "x_t"), eps_theta, x_t)
    return eps_theta


def _x_T(shape, schedule: NoiseSchedule, generator, x_T, dtype, device) -> torch.Tensor:
    """x_T ~ N(0, I), or the caller's ``x_T`` after checking it."""
    shape = check_shape_arg("shape", shape)
    if x_T is not None:
        check_tensor("x_T", x_T)
        if tuple(x_T.shape) != shape:
            raise ValueError(f"x_T: expected shape {list(shape)}, got {list(x_T.shape)}")
        return x_T
    dtype = dtype or schedule.betas.dtype
    device = device or schedule.betas.device
    return torch.randn(shape, generator=generator, dtype=dtype, device=device)


# ---------------------------------------------------------------------------------------------
# forward process
# ---------------------------------------------------------------------------------------------
def q_step(x_prev: torch.Tensor, t: torch.Tensor, schedule: NoiseSchedule,
           noise: torch.Tensor | None = None, *, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Eq. 2.12, one forward step  q(x_t | x_{t−1}) = N(√(1−β_t) x_{t−1}, β_t I):

        x_t = √(1 − β_t) · x_{t−1} + √β_t · ε,   ε ~ N(0, I).

    Args:
        x_prev: ``[B, ...]`` the previous state x_{t−1} (x_0 when t = 0).
        t: ``[B]`` integer timesteps in {0, …, T−1}.
        schedule: the :class:`NoiseSchedule`.
        noise: optional ε shaped like ``x_prev``; drawn with ``generator`` if None.

    Returns:
        x_t, shaped like ``x_prev``.
    """
    _check_schedule(schedule)
    _check_x("x_prev", x_prev)
    check_timesteps("t", t, x_prev.shape[0], schedule.T)
    eps = _noise_like(x_prev, noise, generator, "x_prev")
    # >>> exercise ddpm.q_step: eq. 2.12
    # what: one forward step x_t = √(1−β_t) x_{t−1} + √β_t ε
    # hint: β_t comes from schedule.betas at index t (use extract to broadcast it over x).
    # mistake: `(1 - beta).sqrt() * x_prev` -> `(1 - beta) * x_prev`
    beta = extract(schedule.betas, t, x_prev)                      # β_t, (B, 1, ..., 1)
    return (1 - beta).sqrt() * x_prev + beta.sqrt() * eps
    # <<< exercise ddpm.q_step


def q_sample(x0: torch.Tensor, t: torch.Tensor, schedule: NoiseSchedule,
             noise: torch.Tensor | None = None, *, generator: torch.Generator | None = None) -> torch.Tensor:
    r"""Algorithm 1, line 4: the closed-form marginal q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I):

        x_t = √ᾱ_t · x_0 + √(1 − ᾱ_t) · ε,   ε ~ N(0, I).

    Args:
        x0: ``[B, ...]`` data.
        t: ``[B]`` integer timesteps in {0, …, T−1}.
        schedule: the :class:`NoiseSchedule`.
        noise: optional ε shaped like ``x0``; drawn with ``generator`` if None.

    Returns:
        x_t, shaped like ``x0``.
    """
    _check_schedule(schedule)
    _check_x("x0", x0)
    check_timesteps("t", t, x0.shape[0], schedule.T)
    eps = _noise_like(x0, noise, generator, "x0")
    # >>> exercise ddpm.q_sample: Algorithm 1, line 4
    # what: the closed form x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε
    # hint: use the cumulative product ᾱ_t (schedule.sqrt_alpha_bars,
    #   schedule.sqrt_one_minus_alpha_bars), not β_t.
    # mistake: `sqrt_one_minus_alpha_bar * eps` -> `(1 - sqrt_alpha_bar) * eps`
    sqrt_alpha_bar = extract(schedule.sqrt_alpha_bars, t, x0)
    sqrt_one_minus_alpha_bar = extract(schedule.sqrt_one_minus_alpha_bars, t, x0)
    return sqrt_alpha_bar * x0 + sqrt_one_minus_alpha_bar * eps
    # <<< exercise ddpm.q_sample


def q_posterior(x0: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor,
                schedule: NoiseSchedule) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The forward-process posterior q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I):

        μ̃_t = β_t √ᾱ_{t−1}/(1 − ᾱ_t) · x_0 + √α_t (1 − ᾱ_{t−1})/(1 − ᾱ_t) · x_t,
        β̃_t = β_t (1 − ᾱ_{t−1})/(1 − ᾱ_t)        (exactly 0 at t = 0, where x_{t−1} = x_0).

    Args:
        x0, x_t: ``[B, ...]`` of one shape and dtype.
        t: ``[B]`` integer timesteps.

    Returns:
        ``(mean [B, ...], variance [B, 1, …, 1])``.
    """
    _check_schedule(schedule)
    _check_x("x0", x0)
    _check_x("x_t", x_t)
    check_same_shape(("x0", "x_t"), x0, x_t)
    check_same_dtype(("x0", "x_t"), x0, x_t)
    check_timesteps("t", t, x0.shape[0], schedule.T)
    # >>> exercise ddpm.q_posterior: q(x_{t-1} | x_t, x_0)
    # what: the forward-process posterior mean μ̃_t and variance β̃_t
    # hint: μ̃_t = β_t√ᾱ_{t−1}/(1−ᾱ_t)·x_0 + √α_t(1−ᾱ_{t−1})/(1−ᾱ_t)·x_t (schedule.posterior_mean_coef1/2).
    # mistake: `posterior_mean_coef1 * x0 + posterior_mean_coef2 * x_t` -> `posterior_mean_coef2 * x0 + posterior_mean_coef1 * x_t`
    posterior_mean_coef1 = extract(schedule.posterior_mean_coef1, t, x0)
    posterior_mean_coef2 = extract(schedule.posterior_mean_coef2, t, x0)
    posterior_mean = posterior_mean_coef1 * x0 + posterior_mean_coef2 * x_t
    posterior_variance = extract(schedule.posterior_variance, t, x0)
    return posterior_mean, posterior_variance
    # <<< exercise ddpm.q_posterior


# ---------------------------------------------------------------------------------------------
# reverse process
# ---------------------------------------------------------------------------------------------
def p_mean_variance(eps_model: EpsModel, x_t: torch.Tensor, t: torch.Tensor, schedule: NoiseSchedule,
                    *, variance: str = "posterior") -> tuple[torch.Tensor, torch.Tensor]:
    r"""Eq. 2.13, the reverse step p_θ(x_{t−1} | x_t) = N(μ_θ(x_t, t), Σ_θ):

        μ_θ(x_t, t) = 1/√α_t · ( x_t − β_t/√(1 − ᾱ_t) · ε_θ(x_t, t) ),
        Σ_θ = σ_t² I with σ_t² = β̃_t (``variance="posterior"``, default) or β_t (``"beta"``).

    With the true noise ε in place of ε_θ, μ_θ equals the posterior mean μ̃_t of
    :func:`q_posterior`.

    Args:
        eps_model: callable ``(x_t [B, ...], t [B]) -> ε_θ [B, ...]``.
        x_t: ``[B, ...]``.  t: ``[B]`` integer timesteps.

    Returns:
        ``(mean [B, ...], variance [B, 1, …, 1])``.
    """
    _check_schedule(schedule)
    check_choice("variance", variance, ("posterior", "beta"))
    _check_x("x_t", x_t)
    check_timesteps("t", t, x_t.shape[0], schedule.T)
    # >>> exercise ddpm.p_mean_variance: eq. 2.13
    # what: the reverse-step mean μ_θ = (x_t − β_t/√(1−ᾱ_t) ε_θ)/√α_t and variance
    # hint: 1/√α_t uses the single-step α_t; the noise coefficient is β_t/√(1 − ᾱ_t) (cumulative ᾱ).
    # mistake: `x_t - eps_coef * eps_theta` -> `x_t + eps_coef * eps_theta`
    # uses: ddpm.q_sample, ddpm.q_posterior
    eps_theta = _call_eps_model(eps_model, x_t, t)
    sqrt_recip_alpha = extract(schedule.sqrt_recip_alphas, t, x_t)
    eps_coef = extract(schedule.betas_over_sqrt_one_minus_alpha_bars, t, x_t)
    mu_theta = sqrt_recip_alpha * (x_t - eps_coef * eps_theta)
    table = schedule.posterior_variance if variance == "posterior" else schedule.betas
    sigma2 = extract(table, t, x_t)
    return mu_theta, sigma2
    # <<< exercise ddpm.p_mean_variance


def ddpm_draw(x0: torch.Tensor, schedule: NoiseSchedule, generator: torch.Generator | None = None,
              *, t: torch.Tensor | None = None,
              noise: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The random draws of Algorithm 1 for a batch ``x0 [B, ...]``: t ~ Uniform{0, …, T−1}
    ``[B]``, then ε ~ N(0, I) shaped like ``x0``, each only when not given (``t``, ``noise``).

    :func:`ddpm_loss` draws through it, so a caller that draws first and passes ``t=`` and
    ``noise=`` (a data-parallel trainer draws the global batch's, then splits them) gets the
    numbers of ``ddpm_loss`` drawing them itself.
    """
    _check_schedule(schedule)
    _check_x("x0", x0)
    if t is None:
        t = torch.randint(0, schedule.T, (x0.shape[0],), generator=generator, device=x0.device)
    return t, _noise_like(x0, noise, generator, "x0")


def ddpm_loss(eps_model: EpsModel, x0: torch.Tensor, schedule: NoiseSchedule,
              generator: torch.Generator | None = None, *, t: torch.Tensor | None = None,
              noise: torch.Tensor | None = None, reduction: str = "mean") -> torch.Tensor:
    r"""Algorithm 1 (training), the simplified objective

        L_simple = E_{t, x_0, ε} ‖ε − ε_θ(√ᾱ_t x_0 + √(1 − ᾱ_t) ε, t)‖²,
        t ~ Uniform{0, …, T−1},  ε ~ N(0, I).

    Args:
        eps_model: callable ``(x_t, t) -> ε_θ`` shaped like ``x_t``.
        x0: ``[B, ...]`` a data batch.
        generator: draws t and ε when they are not given (:func:`ddpm_draw`).
        t: optional ``[B]`` integer timesteps (fixes the draw).
        noise: optional ε shaped like ``x0`` (fixes the draw).
        reduction: ``"mean"`` (default) averages the squared error over every element, i.e.
            ‖·‖²/D per sample averaged over the batch, as Ho et al.'s code does; ``"sum"`` sums
            over the non-batch dimensions, ‖·‖² as printed, then averages over the batch;
            ``"none"`` returns the per-sample mean squared error ``[B]``.

    Returns:
        0-dim loss (``[B]`` for ``reduction="none"``).
    """
    _check_schedule(schedule)
    check_choice("reduction", reduction, ("mean", "sum", "none"))
    _check_x("x0", x0)
    check_callable("eps_model", eps_model)
    if noise is not None:
        _check_noise("x0", x0, noise)
    # >>> exercise ddpm.loss: Algorithm 1
    # what: the training loss ‖ε − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t)‖², t uniform
    # hint: draw t uniformly in {0, …, T−1} and ε ~ N(0, I), noise x_0 with q_sample, regress ε_θ onto ε.
    # mistake: `(eps - eps_theta).pow(2)` -> `(x0 - eps_theta).pow(2)`
    # uses: ddpm.q_sample
    t, eps = ddpm_draw(x0, schedule, generator, t=t, noise=noise)     # t ~ U{0..T−1}, ε ~ N(0, I)
    x_t = q_sample(x0, t, schedule, noise=eps)
    eps_theta = _call_eps_model(eps_model, x_t, t)
    sq_err = (eps - eps_theta).pow(2).reshape(x0.shape[0], -1)          # (B, D); D = 1 for x0 [B]
    if reduction == "sum":
        return sq_err.sum(dim=1).mean()
    per_sample = sq_err.mean(dim=1)                                     # (B,)
    return per_sample if reduction == "none" else per_sample.mean()
    # <<< exercise ddpm.loss


def ddpm_sample(eps_model: EpsModel, shape: Sequence[int], schedule: NoiseSchedule,
                generator: torch.Generator | None = None, *, x_T: torch.Tensor | None = None,
                variance: str = "posterior", dtype: torch.dtype | None = None, device=None,
                enable_grad: bool = False) -> torch.Tensor:
    r"""Algorithm 2 (sampling): ancestral sampling from x_T ~ N(0, I),

        for t = T−1, …, 0:   x_{t−1} = μ_θ(x_t, t) + σ_t z,   z ~ N(0, I) if t > 0 else z = 0,

    with μ_θ, σ_t² from :func:`p_mean_variance` (eq. 2.13).

    Args:
        eps_model: callable ``(x_t [B, ...], t [B] long) -> ε_θ``.
        shape: ``(B, ...)`` of the samples.
        generator: draws x_T and every z.
        x_T: optional starting noise of ``shape`` (then ``dtype``/``device`` follow it).
        variance: σ_t² = β̃_t (``"posterior"``) or β_t (``"beta"``).
        dtype, device: of x_T when it is drawn (default: the schedule's).
        enable_grad: sampling runs under ``torch.no_grad()`` unless True (T network calls).

    Returns:
        x_0 samples of ``shape``.
    """
    _check_schedule(schedule)
    check_choice("variance", variance, ("posterior", "beta"))
    x = _x_T(shape, schedule, generator, x_T, dtype, device)
    # >>> exercise ddpm.sample: Algorithm 2
    # what: ancestral sampling x_{t−1} = μ_θ(x_t, t) + σ_t z from x_T ~ N(0, I)
    # hint: loop t = T−1 … 0; add σ_t z only for t > 0 (the last step returns the mean).
    # mistake: `x = mean + sigma2.sqrt() * z` -> `x = mean + sigma2 * z`
    # uses: ddpm.p_mean_variance
    with torch.set_grad_enabled(enable_grad and torch.is_grad_enabled()):
        for step in reversed(range(schedule.T)):
            t = torch.full((x.shape[0],), step, dtype=torch.long, device=x.device)
            mean, sigma2 = p_mean_variance(eps_model, x, t, schedule, variance=variance)
            if step > 0:
                z = torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
                x = mean + sigma2.sqrt() * z
            else:
                x = mean
    return x
    # <<< exercise ddpm.sample


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """``steps`` increasing timesteps from {0, …, T−1}, evenly spread, always holding 0 and T−1."""
    check_int("steps", steps, minimum=1)
    if steps > T:
        raise ValueError(f"steps: must be <= T = {T}, got {steps}")
    if steps == 1:
        return [T - 1]
    return [(i * (T - 1)) // (steps - 1) for i in range(steps)]


def ddim_sample(eps_model: EpsModel, shape: Sequence[int], schedule: NoiseSchedule, steps: int,
                eta: float = 0.0, generator: torch.Generator | None = None, *,
                x_T: torch.Tensor | None = None, dtype: torch.dtype | None = None, device=None,
                enable_grad: bool = False, clip_x0: bool = False) -> torch.Tensor:
    r"""DDIM sampling (Song, Meng & Ermon, 2021, eq. 12) on a sub-sequence τ of ``steps`` timesteps.

    For consecutive τ_i > τ_{i−1} (ᾱ_prev = 1 after the last one):

        x̂_0 = (x_t − √(1 − ᾱ_t) ε_θ)/√ᾱ_t,
        σ   = η √((1 − ᾱ_prev)/(1 − ᾱ_t)) √(1 − ᾱ_t/ᾱ_prev),
        x_prev = √ᾱ_prev x̂_0 + √(1 − ᾱ_prev − σ²) ε_θ + σ z.

    ``eta=0`` (default) is deterministic given x_T; ``eta=1`` matches DDPM's β̃ variance.

    Args:
        eps_model: callable ``(x_t [B, ...], t [B] long) -> ε_θ``.
        shape: ``(B, ...)``.  steps: 1 ≤ steps ≤ T.  eta: in [0, 1].
        generator, x_T, dtype, device, enable_grad: as :func:`ddpm_sample`.
        clip_x0: clamp x̂_0 to the data range [−1, 1] before it is used (as the reference
            implementations' ``clip_denoised``/``clip_sample`` do; ε_θ is kept as predicted). Off by
            default: the formula as written. An under-trained network's x̂_0 at large t can leave
            the data range by far, and the deterministic chain then ends in saturated speckle.

    Returns:
        x_0 samples of ``shape``.
    """
    _check_schedule(schedule)
    taus = ddim_timesteps(schedule.T, steps)
    check_range("eta", eta, 0.0, 1.0)
    x = _x_T(shape, schedule, generator, x_T, dtype, device)
    with torch.set_grad_enabled(enable_grad and torch.is_grad_enabled()):
        for i in reversed(range(len(taus))):
            t = torch.full((x.shape[0],), taus[i], dtype=torch.long, device=x.device)
            alpha_bar = extract(schedule.alpha_bars, t, x)
            eps_theta = _call_eps_model(eps_model, x, t)
            x0_hat = (x - (1 - alpha_bar).sqrt() * eps_theta) / alpha_bar.sqrt()
            if clip_x0:
                x0_hat = x0_hat.clamp(-1.0, 1.0)
            if i == 0:                                  # ᾱ_prev = 1, σ = 0: x_prev = x̂_0
                x = x0_hat
                break
            t_prev = torch.full_like(t, taus[i - 1])
            alpha_bar_prev = extract(schedule.alpha_bars, t_prev, x)
            sigma = eta * ((1 - alpha_bar_prev) / (1 - alpha_bar) * (1 - alpha_bar / alpha_bar_prev)).sqrt()
            dir_coef = (1 - alpha_bar_prev - sigma ** 2).sqrt()          # √(1 − ᾱ_prev − σ²)
            x = alpha_bar_prev.sqrt() * x0_hat + dir_coef * eps_theta
            if eta > 0:
                x = x + sigma * torch.randn(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return x
