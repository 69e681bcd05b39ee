r"""The short-time Fourier transform and its inverse, written out step by step.

Shared by the MFCC (2.30), spectral subtraction (2.35) and the speech models. Conventions follow
``librosa.stft`` / ``librosa.istft`` defaults so results can be compared with librosa:

- frame t covers samples ``[t·hop − n_fft//2, t·hop + n_fft//2)`` (``center=True``), the signal
  being padded with ``n_fft//2`` zeros on each side, so there are ``1 + N // hop`` frames for
  even ``n_fft``;
- the analysis window is the periodic Hann window of length ``n_fft``;
- X[k, t] = Σ_n w[n] x[t·hop + n] e^{−2πi kn / n_fft} for k = 0 … n_fft//2 (the one-sided rfft).

Shapes: a signal is ``[..., N]`` (leading dimensions are batch / channels); a spectrogram is
``[..., 1 + n_fft//2, frames]`` (frequency before time, as in librosa).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from genmodels._checks import check_finite, check_int, check_tensor

__all__ = ["hann_window", "frame_signal", "stft", "istft", "stft_power", "num_frames",
           "power_frames_first"]


def check_audio(name: str, x) -> torch.Tensor:
    """A finite float32/float64 signal ``[..., N]`` with N ≥ 1 (empty audio is an error).

    Finiteness is checked through the sum first (a NaN or ±inf anywhere makes it non-finite),
    which reads the signal once without the temporaries of ``isfinite``; only a non-finite sum
    runs the element-wise check, so a huge but finite signal still passes.
    """
    check_tensor(name, x, min_ndim=1, finite=False)
    if x.is_floating_point() and x.numel() and not bool(torch.isfinite(x.detach().sum())):
        check_finite(name, x)
    if x.numel() == 0:
        raise ValueError(f"{name}: empty audio (a dimension of size 0), shape {tuple(x.shape)}")
    return x


def check_stft_args(n_fft, hop_length) -> None:
    check_int("n_fft", n_fft, minimum=2)
    check_int("hop_length", hop_length, minimum=1)
    if hop_length > n_fft:
        raise ValueError(f"hop_length: must be <= n_fft={n_fft} (frames would leave gaps), "
                         f"got {hop_length}")


def num_frames(n_samples: int, n_fft: int, hop_length: int, center: bool = True) -> int:
    """Number of STFT frames of an ``n_samples`` signal (0 if it is shorter than one frame)."""
    padded = n_samples + 2 * (n_fft // 2) if center else n_samples
    return 0 if padded < n_fft else 1 + (padded - n_fft) // hop_length


def hann_window(n_fft: int, dtype: torch.dtype = torch.float32, device=None) -> torch.Tensor:
    r"""Periodic Hann window w[n] = ½ − ½ cos(2πn / n_fft), n = 0 … n_fft−1.

    "Periodic" (the DFT-even form, ``scipy.signal.get_window('hann', n_fft)``) drops the last
    sample of the symmetric window of length n_fft+1: shifted copies at hop n_fft/4 then sum to
    a constant. Computed in float64 and cast once.
    """
    n = torch.arange(n_fft, dtype=torch.float64, device=device)
    w = 0.5 - 0.5 * torch.cos(2.0 * math.pi * n / n_fft)
    return w.to(dtype)


def frame_signal(signal: torch.Tensor, n_fft: int, hop_length: int,
                 center: bool = True) -> torch.Tensor:
    """Cut ``[..., N]`` into overlapping frames ``[..., frames, n_fft]`` (zero-padded if centred)."""
    if center:
        pad = n_fft // 2
        signal = F.pad(signal, (pad, pad))                    # [..., N + 2·pad], zeros both ends
    if signal.shape[-1] < n_fft:
        raise ValueError(f"signal: {signal.shape[-1]} samples are fewer than n_fft={n_fft} "
                         "(use center=True or a shorter n_fft)")
    return signal.unfold(-1, n_fft, hop_length)               # [..., frames, n_fft] (a view)


def stft(signal: torch.Tensor, n_fft: int = 2048, hop_length: int = 512, *,
         center: bool = True, window: torch.Tensor | None = None) -> torch.Tensor:
    r"""One-sided STFT X[..., k, t] = Σ_n w[n] x[t·hop + n] e^{−2πi kn/n_fft} (librosa layout).

    Args: ``signal [..., N]`` float32/float64; ``window [n_fft]`` (periodic Hann if None).
    Returns a complex tensor ``[..., 1 + n_fft//2, frames]``.
    """
    check_audio("signal", signal)
    check_stft_args(n_fft, hop_length)
    if window is None:
        window = hann_window(n_fft, signal.dtype, signal.device)
    check_tensor("window", window, ndim=1)
    if window.shape[0] != n_fft:
        raise ValueError(f"window: expected length n_fft={n_fft}, got {window.shape[0]}")
    return _stft_frames_first(signal, n_fft, hop_length, center, window).transpose(-1, -2)


def _stft_frames_first(signal: torch.Tensor, n_fft: int, hop_length: int, center: bool,
                       window: torch.Tensor) -> torch.Tensor:
    """The STFT in the layout the FFT produces, ``[..., frames, 1 + n_fft//2]`` (contiguous)."""
    frames = frame_signal(signal, n_fft, hop_length, center)  # [..., T, n_fft]
    return torch.fft.rfft(frames * window, n=n_fft, dim=-1)   # [..., T, F]


def power_frames_first(signal: torch.Tensor, n_fft: int, hop_length: int, *,
                       center: bool = True) -> torch.Tensor:
    """|X|² as ``[..., frames, 1 + n_fft//2]``: the power spectrogram before the transpose.

    Squaring the real and imaginary parts while they are contiguous (frames first, as the FFT
    writes them) is several times faster than on the transposed view; :func:`mfcc` uses this.
    """
    check_audio("signal", signal)
    check_stft_args(n_fft, hop_length)
    window = hann_window(n_fft, signal.dtype, signal.device)
    spec = _stft_frames_first(signal, n_fft, hop_length, center, window)   # [..., T, F]
    return torch.addcmul(spec.real * spec.real, spec.imag, spec.imag)       # Re² + Im²


def stft_power(signal: torch.Tensor, n_fft: int = 2048, hop_length: int = 512, *,
               power: float = 2.0, center: bool = True) -> torch.Tensor:
    r"""|X[k, t]|^power: the power (power=2) or magnitude (power=1) spectrogram.

    Returns a real ``[..., 1 + n_fft//2, frames]`` tensor of the signal's dtype. For power=2 the
    squared modulus is Re² + Im², which stays differentiable where X = 0.
    """
    if not isinstance(power, (int, float)) or isinstance(power, bool) or power <= 0:
        raise ValueError(f"power: must be a number > 0, got {power!r}")
    power_spec = power_frames_first(signal, n_fft, hop_length,
                                    center=center).transpose(-1, -2)  # |X|², [..., F, T]
    if power == 2.0:
        return power_spec
    # |X|^p = (|X|²)^{p/2}; the where() keeps the gradient finite at |X| = 0.
    positive = power_spec > 0
    safe = torch.where(positive, power_spec, torch.ones_like(power_spec))
    return torch.where(positive, safe ** (power / 2.0), torch.zeros_like(power_spec))


def istft(spec: torch.Tensor, n_fft: int, hop_length: int, length: int, *,
          center: bool = True, window: torch.Tensor | None = None) -> torch.Tensor:
    r"""Inverse STFT by weighted overlap-add (as ``librosa.istft``), returning exactly ``length``.

    y[n] = Σ_t w[n − t·hop] · irfft(X[:, t])[n − t·hop] / Σ_t w²[n − t·hop]

    The division by the summed squared window undoes analysis and synthesis windowing, so
    ``istft(stft(x)) == x`` wherever the window sum is non-zero (everywhere for hop ≤ n_fft/2).
    Args: complex ``spec [..., 1 + n_fft//2, frames]``. Returns a real ``[..., length]``.
    """
    if not isinstance(spec, torch.Tensor) or not spec.is_complex():
        raise ValueError("spec: expected a complex tensor [..., 1 + n_fft//2, frames]")
    check_stft_args(n_fft, hop_length)
    check_int("length", length, minimum=1)
    if spec.dim() < 2 or spec.shape[-2] != 1 + n_fft // 2:
        raise ValueError(f"spec: expected shape [..., {1 + n_fft // 2}, frames], got {list(spec.shape)}")
    real_dtype = spec.real.dtype
    if window is None:
        window = hann_window(n_fft, real_dtype, spec.device)
    lead, n_frames = spec.shape[:-2], spec.shape[-1]
    frames = torch.fft.irfft(spec.transpose(-1, -2), n=n_fft, dim=-1) * window  # [..., T, n_fft]
    total = n_fft + hop_length * (n_frames - 1)
    # Overlap-add with fold: each frame is a "patch" of width n_fft placed at t·hop.
    frames = frames.reshape(-1, n_frames, n_fft).transpose(1, 2)          # [B*, n_fft, T]
    y = F.fold(frames, output_size=(1, total), kernel_size=(1, n_fft),
               stride=(1, hop_length))                                    # [B*, 1, 1, total]
    win_sq = (window ** 2).reshape(1, n_fft, 1).expand(1, n_fft, n_frames)
    win_sum = F.fold(win_sq, output_size=(1, total), kernel_size=(1, n_fft),
                     stride=(1, hop_length))                              # [1, 1, 1, total]
    y, win_sum = y.reshape(-1, total), win_sum.reshape(total)
    start = n_fft // 2 if center else 0
    y, win_sum = y[:, start:start + length], win_sum[start:start + length]
    if y.shape[-1] < length:                                              # pad short output
        y = F.pad(y, (0, length - y.shape[-1]))
        win_sum = F.pad(win_sum, (0, length - win_sum.shape[-1]))
    tiny = torch.finfo(real_dtype).tiny
    nonzero = win_sum > tiny
    y = y / torch.where(nonzero, win_sum, torch.ones_like(win_sum))
    return y.reshape(*lead, length)
