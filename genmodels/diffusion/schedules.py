r"""Variance schedules and the quantities precomputed from them (DDPM, Ho et al., 2020).

Index convention, used by every module of :mod:`genmodels.diffusion`: a discrete timestep is an
integer ``t`` in {0, …, T−1}, and index ``t`` is the paper's step ``t+1``. So ``betas[0]`` is the
paper's β_1, ``alpha_bars[t] = Π_{s≤t} (1 − β_s)``, and the "previous" ᾱ of index 0 is ᾱ_0 = 1
(x_0 is the data). Timestep tensors are integer tensors of shape ``[B]``.

Every coefficient is computed in float64 from the betas and cast once to the betas' dtype; it is
named after the expression it holds (``sqrt_one_minus_alpha_bars`` = √(1 − ᾱ_t), …).
"""

from __future__ import annotations

import math

import torch

from genmodels._checks import check_int, check_range, check_tensor, checks_enabled

__all__ = ["linear_beta_schedule", "cosine_beta_schedule", "NoiseSchedule"]


def linear_beta_schedule(T: int, beta_start: float = 1e-4, beta_end: float = 0.02, *,
                         dtype: torch.dtype | None = None) -> torch.Tensor:
    r"""Linear schedule of Ho et al. (2020): β_t = β_start + (β_end − β_start)·t/(T−1).

    Args:
        T: number of diffusion steps, ≥ 1 (T = 1 gives ``[beta_start]``).
        beta_start, beta_end: first and last β, each in (0, 1).
        dtype: result dtype (default: ``torch.get_default_dtype()``); computed in float64.

    Returns:
        ``[T]`` tensor of betas.
    """
    check_int("T", T, minimum=1)
    check_range("beta_start", beta_start, 0.0, 1.0, low_open=True, high_open=True)
    check_range("beta_end", beta_end, 0.0, 1.0, low_open=True, high_open=True)
    betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64)
    return betas.to(dtype or torch.get_default_dtype())


def cosine_beta_schedule(T: int, s: float = 0.008, *, max_beta: float = 0.999,
                         dtype: torch.dtype | None = None) -> torch.Tensor:
    r"""Cosine schedule of Nichol & Dhariwal (2021), eq. 17.

        f(u) = cos²( (u/T + s)/(1 + s) · π/2 ),   ᾱ(u) = f(u)/f(0),
        β_u = min(1 − ᾱ(u)/ᾱ(u−1), max_beta)   for u = 1, …, T (paper's steps; index u−1 here).

    Args:
        T: number of steps, ≥ 1.
        s: small offset, ≥ 0, that keeps β_1 from being vanishingly small.
        max_beta: clipping value in (0, 1) that prevents the singularity at u = T.
        dtype: result dtype (default: ``torch.get_default_dtype()``); computed in float64.

    Returns:
        ``[T]`` tensor of betas.
    """
    check_int("T", T, minimum=1)
    check_range("s", s, 0.0, math.inf, high_open=True)
    check_range("max_beta", max_beta, 0.0, 1.0, low_open=True, high_open=True)
    u = torch.arange(T + 1, dtype=torch.float64)                      # paper's steps 0..T
    f = torch.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    betas = (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=max_beta)
    return betas.to(dtype or torch.get_default_dtype())


class NoiseSchedule:
    r"""Quantities derived from a ``[T]`` tensor of betas, each ``[T]`` in the betas' dtype.

    ========================================  ==========================================
    attribute                                 expression (index t = paper's step t+1)
    ========================================  ==========================================
    ``betas``                                 β_t
    ``alphas``                                α_t = 1 − β_t
    ``alpha_bars``                            ᾱ_t = Π_{s≤t} α_s
    ``alpha_bars_prev``                       ᾱ_{t−1}, with ᾱ_{−1} = 1
    ``sqrt_alpha_bars``                       √ᾱ_t
    ``sqrt_one_minus_alpha_bars``             √(1 − ᾱ_t)
    ``sqrt_recip_alphas``                     1/√α_t
    ``sqrt_recip_alpha_bars``                 1/√ᾱ_t
    ``sqrt_recip_alpha_bars_minus_one``       √(1/ᾱ_t − 1)
    ``betas_over_sqrt_one_minus_alpha_bars``  β_t/√(1 − ᾱ_t)      (noise coefficient of 2.13)
    ``posterior_variance``                    β̃_t = β_t (1 − ᾱ_{t−1})/(1 − ᾱ_t)   (0 at t = 0)
    ``posterior_mean_coef1``                  β_t √ᾱ_{t−1}/(1 − ᾱ_t)        (multiplies x_0)
    ``posterior_mean_coef2``                  √α_t (1 − ᾱ_{t−1})/(1 − ᾱ_t)  (multiplies x_t)
    ========================================  ==========================================
    """

    def __init__(self, betas: torch.Tensor):
        check_tensor("betas", betas, ndim=1)
        if betas.numel() < 1:
            raise ValueError("betas: expected at least one step (T >= 1), got an empty tensor")
        if checks_enabled() and not bool(((betas > 0) & (betas < 1)).all()):
            raise ValueError(f"betas: every beta must lie in (0, 1), got min {float(betas.min())}, "
                             f"max {float(betas.max())}")
        dtype, device = betas.dtype, betas.device
        b = betas.detach().to(torch.float64)
        alphas = 1 - b
        alpha_bars = torch.cumprod(alphas, dim=0)
        alpha_bars_prev = torch.cat([alpha_bars.new_ones(1), alpha_bars[:-1]])

        def cast(v: torch.Tensor) -> torch.Tensor:
            return v.to(device=device, dtype=dtype)

        self.T = betas.numel()
        self.betas = cast(b)
        self.alphas = cast(alphas)
        self.alpha_bars = cast(alpha_bars)
        self.alpha_bars_prev = cast(alpha_bars_prev)
        self.sqrt_alpha_bars = cast(alpha_bars.sqrt())
        self.sqrt_one_minus_alpha_bars = cast((1 - alpha_bars).sqrt())
        self.sqrt_recip_alphas = cast(alphas.rsqrt())
        self.sqrt_recip_alpha_bars = cast(alpha_bars.rsqrt())
        self.sqrt_recip_alpha_bars_minus_one = cast((1 / alpha_bars - 1).sqrt())
        self.betas_over_sqrt_one_minus_alpha_bars = cast(b / (1 - alpha_bars).sqrt())
        self.posterior_variance = cast(b * (1 - alpha_bars_prev) / (1 - alpha_bars))
        self.posterior_mean_coef1 = cast(b * alpha_bars_prev.sqrt() / (1 - alpha_bars))
        self.posterior_mean_coef2 = cast(alphas.sqrt() * (1 - alpha_bars_prev) / (1 - alpha_bars))

    def __len__(self) -> int:
        return self.T

    def __repr__(self) -> str:
        return f"NoiseSchedule(T={self.T}, dtype={self.betas.dtype})"

    def to(self, dtype: torch.dtype | None = None, device=None) -> "NoiseSchedule":
        """A new schedule with every quantity in ``dtype`` / on ``device`` (betas recast once)."""
        return NoiseSchedule(self.betas.to(dtype=dtype or self.betas.dtype, device=device))


def check_timesteps(name: str, t, batch: int, T: int) -> torch.Tensor:
    """``t`` must be an integer tensor of shape ``[batch]`` with values in {0, …, T−1}."""
    if not isinstance(t, torch.Tensor):
        raise ValueError(f"{name}: expected an integer torch.Tensor, got {type(t).__name__}")
    if t.dtype == torch.bool or t.is_floating_point() or t.is_complex():
        raise ValueError(f"{name}: expected an integer dtype (e.g. torch.long), got {t.dtype}")
    if t.shape != (batch,):
        raise ValueError(f"{name}: expected shape [{batch}] (one timestep per sample), got {list(t.shape)}")
    if t.numel() and (int(t.min()) < 0 or int(t.max()) > T - 1):
        raise ValueError(f"{name}: timesteps must lie in {{0, ..., {T - 1}}} (index t is the paper's "
                         f"step t+1), got min {int(t.min())}, max {int(t.max())}")
    return t


def extract(coef: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Gather ``coef[t]`` for a batch and shape it ``[B, 1, …, 1]`` to broadcast against ``x``."""
    out = coef.to(device=x.device, dtype=x.dtype)[t.to(x.device)]        # (B,)
    return out.view(x.shape[0], *([1] * (x.dim() - 1)))                  # (B, 1, ..., 1)
