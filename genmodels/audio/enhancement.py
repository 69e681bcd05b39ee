r"""Spectral subtraction (eq. 2.35): S_clean = S_noisy − N in the magnitude-spectrum domain.

Boll's (1979) method, for additive noise that is stationary enough to be estimated from a
noise-only clip:

    N̂[k]        = mean_t |STFT(noise)[k, t]|                     (average noise magnitude)
    |Ŝ[k, t]|   = max(|Y[k, t]| − α·N̂[k], β·|Y[k, t]|)            (subtract, floor)
    Ŝ[k, t]     = |Ŝ[k, t]| · Y[k, t] / |Y[k, t]|                 (keep the noisy phase)
    ŝ           = ISTFT(Ŝ)                                         (overlap-add, N samples)

with Y = STFT(noisy), over-subtraction α (``alpha``, 1 as printed) and spectral floor β
(``floor``, 0 as printed: negative magnitudes are set to zero). A small β > 0 trades residual
noise for less "musical noise".
"""

from __future__ import annotations

import torch

from genmodels._checks import check_positive, check_range, check_same_dtype
from genmodels.audio.stft import check_audio, check_stft_args, istft, stft

__all__ = ["noise_magnitude", "spectral_subtraction"]


def noise_magnitude(noise: torch.Tensor, n_fft: int = 512, hop_length: int = 128) -> torch.Tensor:
    r"""N̂[k] = mean over frames of |STFT(noise)[k, t]|, from uncentred frames (no zero padding,
    which would bias the estimate low). ``noise [..., M]`` with M ≥ n_fft → ``[..., 1 + n_fft//2, 1]``.
    """
    check_audio("noise", noise)
    check_stft_args(n_fft, hop_length)
    if noise.shape[-1] < n_fft:
        raise ValueError(f"noise: needs at least n_fft={n_fft} samples to estimate the noise "
                         f"spectrum, got {noise.shape[-1]}")
    spec = stft(noise, n_fft, hop_length, center=False)              # [..., F, T]
    return spec.abs().mean(dim=-1, keepdim=True)                     # [..., F, 1]


def spectral_subtraction(noisy: torch.Tensor, noise: torch.Tensor, n_fft: int = 512,
                         hop_length: int = 128, *, alpha: float = 1.0,
                         floor: float = 0.0) -> torch.Tensor:
    r"""Eq. 2.35: S_clean = S_noisy − N, magnitude subtraction with the noisy phase.

        |Ŝ| = max(|Y| − α·N̂, β·|Y|),   Ŝ = |Ŝ|·Y/|Y|,   ŝ = ISTFT(Ŝ)

    Args:
        noisy: ``[..., N]`` float32/float64, the noisy recording.
        noise: ``[..., M]`` a noise-only clip (M ≥ n_fft); its leading dimensions must broadcast
            against ``noisy``'s (e.g. ``[M]`` to share one estimate across a batch).
        n_fft, hop_length: STFT frame and hop (hop_length ≤ n_fft // 2).
        alpha: over-subtraction factor α ≥ 0. ``floor``: spectral floor β in [0, 1].
    Returns the enhanced signal ``[..., N]`` (exactly N samples), differentiable in both inputs.
    With a silent ``noise`` clip it returns ``noisy`` (perfect STFT reconstruction).
    """
    check_audio("noisy", noisy)
    check_audio("noise", noise)
    check_same_dtype(("noisy", "noise"), noisy, noise)
    check_positive("alpha", alpha, allow_zero=True)
    check_stft_args(n_fft, hop_length)
    if hop_length > n_fft // 2:
        raise ValueError(f"hop_length: must be <= n_fft // 2 = {n_fft // 2} so that the Hann "
                         f"windows overlap enough for perfect reconstruction, got {hop_length}")
    check_range("floor", floor, 0.0, 1.0)
    lead_noisy, lead_noise = noisy.shape[:-1], noise.shape[:-1]
    try:
        torch.broadcast_shapes(lead_noisy, lead_noise)
    except RuntimeError:
        raise ValueError(f"noise: leading dimensions {list(lead_noise)} do not broadcast against "
                         f"noisy's {list(lead_noisy)}") from None
    if len(lead_noise) > len(lead_noisy) or torch.broadcast_shapes(lead_noisy, lead_noise) != lead_noisy:
        raise ValueError(f"noise: leading dimensions {list(lead_noise)} must broadcast to noisy's "
                         f"{list(lead_noisy)} (one noise clip per signal, or one shared)")
    n_samples = noisy.shape[-1]
    # >>> exercise audio.spectral_subtraction: eq. 2.35
    # what: spectral subtraction |Ŝ| = max(|Y| − αN̂, β|Y|) with the noisy phase
    # hint: subtract the noise MAGNITUDE from |Y|, floor it, keep Y's phase (scale Y by |Ŝ|/|Y|),
    #   then ISTFT.
    # mistake: `mag - alpha * noise_mag` -> `mag - alpha * noise_mag ** 2`
    # uses: audio.si_sdr
    noise_mag = noise_magnitude(noise, n_fft, hop_length)            # [..., F, 1]  N̂
    spec = stft(noisy, n_fft, hop_length)                             # [..., F, T]  Y
    mag = spec.abs()                                                  # |Y|
    clean_mag = torch.maximum(mag - alpha * noise_mag, floor * mag)   # |Ŝ|
    # Ŝ = |Ŝ|·Y/|Y|: a real gain on Y keeps the phase; where |Y| = 0, |Ŝ| = 0 too.
    safe_mag = torch.clamp(mag, min=torch.finfo(mag.dtype).tiny)
    clean_spec = spec * (clean_mag / safe_mag)
    return istft(clean_spec, n_fft, hop_length, n_samples)
    # <<< exercise audio.spectral_subtraction
