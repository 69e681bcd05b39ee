r"""Linear prediction from MFCC frames: the noise shaping of LPCNet (Valin & Skoglund, 2019).

A WaveNet vocoder's errors — quantisation, sampling noise, a slightly wrong prediction — are
roughly white in the signal it models. Speech is not: here the loud low harmonics stand 60–80 dB
above the quiet high bands, so white errors at −40 dB fill those bands and dominate the mel
cepstrum. LPCNet lets the network model the *prediction residual* of an all-pole filter whose
coefficients come from the conditioning features,

    e[n] = x[n] + Σ_{k=1}^{p} a_k x[n−k]          (analysis, A(z) = 1 + Σ a_k z^{−k})
    x[n] = e[n] − Σ_{k=1}^{p} a_k x[n−k]          (synthesis, 1/A(z))

so whatever error the network makes in e comes out filtered by 1/A(z), i.e. shaped like the
spectral envelope of the speech itself and hidden under it.

The coefficients need no extra information: they are a fixed function of the MFCC frames the
vocoder is given (as for Griffin-Lim):

1. inverse orthonormal DCT of the (zero-padded) coefficients → log-mel spectrum in dB;
2. each mel band's power per FFT bin (band power ÷ the filter's bin sum), interpolated linearly in
   dB from the band centres onto the FFT bins → a smooth power spectrum P[k];
3. optionally × |1 − α e^{−iω}|², the spectrum of the pre-emphasised signal;
4. autocorrelation r = IFFT(P), a Gaussian lag window (bandwidth expansion) and a white-noise
   correction r_0·(1 + λ);
5. Levinson–Durbin: the Toeplitz normal equations Σ_j a_j r_{|i−j|} = −r_i, i = 1 … p.

Each MFCC frame t is centred on sample t·hop; sample n uses the frame whose centre is nearest.
"""

from __future__ import annotations

import math

import torch

from genmodels._checks import check_int, check_positive, check_range, check_tensor
from genmodels.audio.features import dct_matrix, fft_frequencies, mel_filterbank, mel_frequencies

__all__ = ["levinson_durbin", "lpc_from_power_spectrum", "mel_to_linear_power", "lpc_from_mfcc",
           "lpc_analysis", "lpc_synthesis", "frame_of_sample"]


def levinson_durbin(r: torch.Tensor, order: int) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Solve the autocorrelation normal equations for the predictor A(z) = 1 + Σ a_k z^{−k}.

    Args: ``r [..., L]`` autocorrelation lags r_0 … r_{L−1} (L > order, r_0 > 0), ``order`` p.
    Returns ``a [..., p]`` and the prediction-error power ``err [...]`` (r_0 · Π (1 − k_i²)).
    The recursion is the textbook one: k_i = −(r_i + Σ_{j<i} a_j r_{i−j}) / err, a ← a + k_i·flip(a).
    """
    check_tensor("r", r, min_ndim=1)
    check_int("order", order, minimum=1)
    if r.shape[-1] <= order:
        raise ValueError(f"r: needs more than order={order} lags, got {r.shape[-1]}")
    if bool((r[..., 0] <= 0).any()):
        raise ValueError("r: the zero-lag autocorrelation r[..., 0] must be positive")
    a = r.new_zeros(*r.shape[:-1], order)
    err = r[..., 0].clone()
    for i in range(order):
        acc = r[..., i + 1] + (a[..., :i] * r[..., 1:i + 1].flip(-1)).sum(-1)
        k = -acc / err
        prev = a[..., :i].clone()
        a[..., :i] = prev + k[..., None] * prev.flip(-1)
        a[..., i] = k
        err = err * (1.0 - k * k)
    return a, err


def lpc_from_power_spectrum(power: torch.Tensor, order: int, *, lag_window: float = 0.0,
                            noise_floor: float = 1e-4) -> torch.Tensor:
    r"""LPC coefficients ``[..., p]`` of a one-sided power spectrum ``power [..., n_fft//2 + 1]``.

    ``lag_window`` is the Gaussian lag window's width as a fraction of the sample rate
    (w_k = exp(−½ (2π·lag_window·k)²); 0 = none); ``noise_floor`` λ adds λ·r_0 to r_0.
    """
    check_tensor("power", power, min_ndim=1)
    check_int("order", order, minimum=1)
    check_positive("lag_window", lag_window, allow_zero=True)
    check_positive("noise_floor", noise_floor, allow_zero=True)
    n_fft = 2 * (power.shape[-1] - 1)
    if n_fft <= order:
        raise ValueError(f"power: {power.shape[-1]} bins are too few for order {order}")
    if bool((power < 0).any()) or not bool(torch.isfinite(power).all()):
        raise ValueError("power: must be finite and non-negative")
    r = torch.fft.irfft(power, n=n_fft, dim=-1)[..., :order + 1]
    if lag_window:
        k = torch.arange(order + 1, dtype=r.dtype, device=r.device)
        r = r * torch.exp(-0.5 * (2.0 * math.pi * lag_window * k) ** 2)
    r0 = (r[..., :1] * (1.0 + noise_floor)).clamp(min=torch.finfo(r.dtype).tiny)
    r = torch.cat([r0, r[..., 1:]], dim=-1)
    return levinson_durbin(r, order)[0]


def mel_to_linear_power(mel_db: torch.Tensor, sample_rate: float, n_fft: int, fmin: float = 0.0,
                        fmax: float | None = None) -> torch.Tensor:
    r"""A smooth power spectrum ``[..., n_fft//2 + 1]`` from a log-mel spectrum ``mel_db [..., M]``
    (dB of the Slaney mel band powers): each band's power per bin, 10^(dB/10) / Σ_k M[m, k],
    interpolated linearly in dB between the band centres (held constant beyond the first and
    last centre)."""
    check_tensor("mel_db", mel_db, min_ndim=1)
    n_mels = mel_db.shape[-1]
    fb = mel_filterbank(sample_rate, n_fft, n_mels, fmin, fmax, dtype=torch.float64)
    density_db = mel_db.double() - 10.0 * torch.log10(fb.sum(-1))                # [..., M]
    centres = mel_frequencies(n_mels + 2, fmin, sample_rate / 2 if fmax is None else fmax)[1:-1]
    bins = fft_frequencies(sample_rate, n_fft)
    hi = torch.searchsorted(centres, bins).clamp(1, n_mels - 1)                    # [F]
    lo = hi - 1
    w = ((bins - centres[lo]) / (centres[hi] - centres[lo])).clamp(0.0, 1.0)
    dens = density_db[..., lo] * (1.0 - w) + density_db[..., hi] * w
    return (10.0 ** (dens / 10.0)).to(mel_db.dtype)


def lpc_from_mfcc(coeffs: torch.Tensor, sample_rate: float, n_fft: int, n_mels: int, order: int = 16,
                  *, preemphasis: float = 0.0, lag_window: float = 0.004,
                  noise_floor: float = 1e-4) -> torch.Tensor:
    r"""Per-frame LPC coefficients ``[..., T, order]`` from MFCC frames ``coeffs [..., D, T]``
    (orthonormal DCT-II of the dB mel spectrum, as :func:`~genmodels.audio.features.mfcc` gives).

    With ``preemphasis`` α > 0 the coefficients are those of the pre-emphasised signal
    x[n] − α·x[n−1] (the power spectrum is multiplied by 1 + α² − 2α·cos ω).
    """
    check_tensor("coeffs", coeffs, min_ndim=2)
    check_int("n_mels", n_mels, minimum=1)
    check_range("preemphasis", preemphasis, 0.0, 1.0, high_open=True)
    D = coeffs.shape[-2]
    if D > n_mels:
        raise ValueError(f"coeffs: {D} coefficients exceed n_mels={n_mels}")
    idct = dct_matrix(D, n_mels, torch.float64).to(coeffs.device)                # [D, M]
    mel_db = torch.matmul(coeffs.double().transpose(-1, -2), idct)               # [..., T, M]
    power = mel_to_linear_power(mel_db, sample_rate, n_fft)                       # [..., T, F]
    if preemphasis:
        omega = math.pi * torch.arange(power.shape[-1], dtype=torch.float64) / (power.shape[-1] - 1)
        power = power * (1.0 + preemphasis ** 2 - 2.0 * preemphasis * torch.cos(omega))
    return lpc_from_power_spectrum(power, order, lag_window=lag_window,
                                   noise_floor=noise_floor).to(coeffs.dtype)


def frame_of_sample(n_samples: int, hop_length: int, n_frames: int) -> torch.Tensor:
    """``[n_samples]`` long: the frame whose centre t·hop is nearest to sample n (ties go up),
    capped at the last frame."""
    check_int("n_samples", n_samples, minimum=0)
    check_int("hop_length", hop_length, minimum=1)
    check_int("n_frames", n_frames, minimum=1)
    n = torch.arange(n_samples)
    return torch.div(n + hop_length // 2, hop_length, rounding_mode="floor").clamp(max=n_frames - 1)


def lpc_analysis(x: torch.Tensor, a: torch.Tensor, hop_length: int) -> torch.Tensor:
    r"""Residual e[n] = x[n] + Σ_k a_k(t(n)) x[n−k] (x[n<0] = 0) of ``x [..., N]`` under the
    frame-wise predictors ``a [..., T, p]``; returns ``[..., N]`` (one pass per lag k, memory of
    the order of x)."""
    check_tensor("x", x, min_ndim=1)
    check_tensor("a", a, min_ndim=2)
    N, p = x.shape[-1], a.shape[-1]
    frames = frame_of_sample(N, hop_length, a.shape[-2]).to(a.device)
    out = x.clone()
    for k in range(1, min(p, N - 1) + 1):
        out[..., k:] += a[..., frames[k:], k - 1].to(x.dtype) * x[..., :-k]
    return out


def lpc_synthesis(e: torch.Tensor, a: torch.Tensor, hop_length: int) -> torch.Tensor:
    r"""The inverse of :func:`lpc_analysis`: x[n] = e[n] − Σ_k a_k(t(n)) x[n−k], one sample at a
    time (float64 inside); ``e [..., N]`` → ``[..., N]`` in e's dtype."""
    check_tensor("e", e, min_ndim=1)
    check_tensor("a", a, min_ndim=2)
    N = e.shape[-1]
    an = a[..., frame_of_sample(N, hop_length, a.shape[-2]).to(a.device), :].double()  # [..., N, p]
    p = an.shape[-1]
    e64 = e.double()
    hist = e64.new_zeros(*e.shape[:-1], p)               # x[n−1], x[n−2], …, x[n−p]
    out = torch.empty_like(e64)
    for n in range(N):
        xn = e64[..., n] - (an[..., n, :] * hist).sum(-1)
        out[..., n] = xn
        hist = torch.cat([xn[..., None], hist[..., :-1]], dim=-1)
    return out.to(e.dtype)
