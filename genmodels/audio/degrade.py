r"""Degradations that make the inputs of the audio modification tasks (2.35–2.38).

- :func:`colored_noise` — stationary noise with a power spectrum ∝ f^(−β) (β = 0 white,
  1 pink, 2 brown), made by shaping white noise in the frequency domain;
- :func:`mix_at_snr` — s + g·n with g chosen so that 10·log10(‖s‖² / ‖g n‖²) = SNR;
- :func:`hard_clip` — min(max(x, −c), c) with c a fraction of each signal's peak;
- :func:`drop_gaps` — zeroed segments ("packet loss"), with the mask of what was dropped.

Every random function takes a ``torch.Generator`` so a task can make the same degradation from
(seed, step) again, which keeps training resumable and test sets fixed.
"""

from __future__ import annotations

import torch

from genmodels._checks import (check_finite, check_int, check_range, check_same_dtype,
                               check_same_shape, check_tensor, checks_enabled)
from genmodels.audio.stft import check_audio

__all__ = ["colored_noise", "mix_at_snr", "hard_clip", "drop_gaps"]


def colored_noise(shape, exponent: torch.Tensor | float, generator: torch.Generator | None = None,
                  dtype: torch.dtype = torch.float32) -> torch.Tensor:
    r"""Noise ``[B, N]`` whose power spectrum falls as f^(−β), unit RMS per row.

    ``exponent`` β is a float or a ``[B]`` tensor (one colour per row). White noise is shaped by
    the amplitude gain f^(−β/2) on its rfft (the DC bin takes the gain of the first bin).
    """
    if not isinstance(shape, (tuple, list, torch.Size)) or len(shape) != 2:
        raise ValueError(f"shape: expected (B, N), got {shape!r}")
    B, N = shape
    check_int("shape[0] (B)", B, minimum=1)
    check_int("shape[1] (N)", N, minimum=2)
    beta = _as_tensor("exponent", exponent, torch.float64)
    if beta.numel() not in (1, B):
        raise ValueError(f"exponent: expected a float or a [B] = [{B}] tensor, got shape "
                         f"{list(beta.shape)}")
    beta = beta.reshape(-1, 1).expand(B, 1)
    white = torch.randn(B, N, generator=generator, dtype=torch.float64)
    spec = torch.fft.rfft(white, dim=-1)                                  # [B, N//2+1]
    f = torch.arange(spec.shape[-1], dtype=torch.float64).clamp(min=1.0)
    spec = spec * f.pow(-beta / 2.0)
    x = torch.fft.irfft(spec, n=N, dim=-1)
    x = x / x.pow(2).mean(-1, keepdim=True).sqrt().clamp(min=1e-12)
    return x.to(dtype)


def mix_at_snr(signal: torch.Tensor, noise: torch.Tensor, snr_db: torch.Tensor | float) -> torch.Tensor:
    r"""s + g·n with g = √(‖s‖² / (‖n‖² · 10^{SNR/10})), so the mixture has the requested SNR.

    ``signal, noise [..., N]`` of one shape; ``snr_db`` a float or a tensor broadcasting to
    ``[...]``. Returns ``[..., N]``.
    """
    check_audio("signal", signal)
    check_audio("noise", noise)
    check_same_shape(("signal", "noise"), signal, noise)
    check_same_dtype(("signal", "noise"), signal, noise)
    snr = _as_tensor("snr_db", snr_db, signal.dtype).to(signal.device)
    p_s = signal.pow(2).sum(-1)
    p_n = noise.pow(2).sum(-1).clamp(min=torch.finfo(signal.dtype).tiny)
    gain = torch.sqrt(p_s / (p_n * 10.0 ** (snr / 10.0)))
    return signal + gain.unsqueeze(-1) * noise


def _as_tensor(name: str, value, dtype: torch.dtype) -> torch.Tensor:
    """A float or a tensor as a finite tensor of ``dtype``; anything else raises naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, torch.Tensor)):
        raise ValueError(f"{name}: expected a float or a tensor, got {type(value).__name__}")
    return check_finite(name, torch.as_tensor(value, dtype=dtype))


def hard_clip(x: torch.Tensor, level: torch.Tensor | float) -> torch.Tensor:
    r"""Clipping at ``level`` × each signal's peak: y = min(max(x, −c), c), c = level·max|x|.

    ``level`` in (0, 1] (a float, or a tensor broadcasting to ``x``'s leading dims).
    """
    check_audio("x", x)
    lv = torch.as_tensor(level, dtype=x.dtype, device=x.device)
    if lv.numel() == 1:
        check_range("level", float(lv), 0.0, 1.0, low_open=True)
    elif checks_enabled() and bool(((lv <= 0) | (lv > 1)).any()):
        raise ValueError("level: every clipping level must lie in (0, 1]")
    c = lv.unsqueeze(-1) * x.abs().amax(-1, keepdim=True)
    return torch.maximum(torch.minimum(x, c), -c)


def drop_gaps(x: torch.Tensor, n_gaps: int, gap_length: int,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Zero ``n_gaps`` segments of ``gap_length`` samples at random places of each row.

    ``x [B, N]`` → (degraded ``[B, N]``, kept ``[B, N]`` bool: False where a gap was cut).
    Gaps may overlap. Start positions are uniform in [0, N − gap_length].
    """
    check_audio("x", x)
    check_tensor("x", x, ndim=2)
    check_int("n_gaps", n_gaps, minimum=0)
    check_int("gap_length", gap_length, minimum=1)
    B, N = x.shape
    if gap_length > N:
        raise ValueError(f"gap_length: {gap_length} exceeds the signal length {N}")
    starts = torch.randint(0, N - gap_length + 1, (B, n_gaps), generator=generator)
    pos = torch.arange(N)
    kept = torch.ones(B, N, dtype=torch.bool)
    for g in range(n_gaps):
        s = starts[:, g:g + 1]
        kept &= ~((pos >= s) & (pos < s + gap_length))
    kept = kept.to(x.device)
    return x * kept, kept
