r"""Griffin-Lim: a waveform whose STFT magnitude is close to a given one (phase retrieval).

Griffin & Lim (1984) alternate two projections: give the spectrogram the wanted magnitude
``S`` (keep the current phase), then make it consistent (the STFT of its inverse STFT):

.. math::
    X^{(0)} = S \cdot e^{i\phi_0}, \qquad
    \hat X^{(n)} = \mathrm{STFT}(\mathrm{ISTFT}(X^{(n-1)})), \qquad
    X^{(n)} = S \cdot \frac{\hat X^{(n)}}{|\hat X^{(n)}|}.

The "fast" variant (Perraudin, Balazs & Søndergaard 2013) extrapolates before the magnitude
step: ``A = X̂⁽ⁿ⁾ − (α / (1 + α)) · X̂⁽ⁿ⁻¹⁾`` and ``X⁽ⁿ⁾ = S · A / |A|``; ``momentum`` α = 0 is
the original. After ``n_iter`` rounds the waveform is ``ISTFT(X⁽ⁿ_iter⁾)``. The STFT and its
inverse are :func:`~genmodels.audio.stft.stft` / :func:`~genmodels.audio.stft.istft` (periodic
Hann window, centred frames), so the result equals ``librosa.griffinlim`` with the same
``n_iter``, ``momentum`` and initial phase (``init=None`` there is the zero phase here).
"""

from __future__ import annotations

import math

import torch

from genmodels._checks import check_int, check_range, check_tensor
from genmodels.audio.stft import check_stft_args, istft, num_frames, stft

__all__ = ["griffin_lim"]


def griffin_lim(magnitude: torch.Tensor, n_fft: int, hop_length: int, n_iter: int = 32, *,
                momentum: float = 0.99, length: int | None = None, init: str = "zeros",
                generator: torch.Generator | None = None) -> torch.Tensor:
    """A waveform ``[..., length]`` whose STFT magnitude approximates ``magnitude``.

    Args:
        magnitude: ``[..., 1 + n_fft//2, frames]``, non-negative, float32/float64.
        n_fft, hop_length: the STFT's frame and hop (as the magnitude was computed with).
        n_iter: rounds of the two projections (≥ 1). momentum: α ≥ 0 of the fast variant
            (0: the original algorithm; librosa's default 0.99).
        length: samples of the output (default ``hop_length · (frames − 1)``, librosa's).
        init: the initial phase φ₀: ``"zeros"`` (all 0) or ``"random"`` (uniform on [0, 2π),
            drawn from ``generator``).
    """
    check_tensor("magnitude", magnitude, min_ndim=2)
    check_stft_args(n_fft, hop_length)
    if magnitude.shape[-2] != 1 + n_fft // 2 or magnitude.shape[-1] < 1:
        raise ValueError(f"magnitude: expected [..., {1 + n_fft // 2}, frames >= 1] for "
                         f"n_fft={n_fft}, got {list(magnitude.shape)}")
    if bool((magnitude < 0).any()):
        raise ValueError("magnitude: must be non-negative (an STFT magnitude)")
    check_int("n_iter", n_iter, minimum=1)
    check_range("momentum", momentum, 0.0, 10.0)
    if init not in ("zeros", "random"):
        raise ValueError(f"init: must be 'zeros' or 'random', got {init!r}")
    frames = magnitude.shape[-1]
    if length is None:
        length = hop_length * (frames - 1)
    check_int("length", length, minimum=1)
    if magnitude.numel() == 0:                   # an empty batch: nothing to invert (the FFT refuses it)
        if num_frames(length, n_fft, hop_length) != frames:
            raise ValueError(f"length: {length} samples give {num_frames(length, n_fft, hop_length)} "
                             f"STFT frames, the magnitude has {frames}")
        return magnitude.new_zeros(*magnitude.shape[:-2], length)
    if init == "random":
        phase = 2.0 * math.pi * torch.rand(magnitude.shape, generator=generator,
                                           dtype=magnitude.dtype).to(magnitude.device)
        spec = magnitude * torch.polar(torch.ones_like(phase), phase)
    else:
        spec = magnitude.to(torch.complex128 if magnitude.dtype == torch.float64
                            else torch.complex64)
    tiny = torch.finfo(magnitude.dtype).tiny
    previous = None
    for _ in range(n_iter):
        rebuilt = stft(istft(spec, n_fft, hop_length, length), n_fft, hop_length)  # X̂⁽ⁿ⁾
        if rebuilt.shape[-1] != frames:
            raise ValueError(f"length: {length} samples give {rebuilt.shape[-1]} STFT frames, "
                             f"the magnitude has {frames}")
        angles = rebuilt if previous is None else rebuilt - (momentum / (1.0 + momentum)) * previous
        spec = magnitude * (angles / (angles.abs() + tiny))                        # S · A / |A|
        previous = rebuilt
    return istft(spec, n_fft, hop_length, length)
