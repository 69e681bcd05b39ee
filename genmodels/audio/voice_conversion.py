r"""Voice conversion as encoder → conversion → decoder on feature frames (eqs. 2.31–2.33).

    H   = Encoder(F)          (2.31)   F [B, D, T] speaker A's MFCC frames → H [B, C, T]
    V_t = Conversion(H_t)     (2.33)   frame by frame (a 1×1-convolution MLP on each H_t)
    F̃   = Decoder(V)          (2.32)   → speaker B's MFCC frames [B, D, T]

The encoder and decoder are stacks of residual 1-D convolutions over frames (each frame sees
its neighbours); the conversion acts on one frame at a time, as 2.33 is written. Features are
standardised per coefficient with each speaker's training statistics, stored as buffers so a
checkpoint carries them: the model takes and returns features in their own units.

MCD is reported on the MFCC scaled from dB of power to natural-log amplitude (×ln10/20), the
units of the mel-cepstra for which MCD's 10/ln10·√2 factor was defined.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genmodels._checks import check_int, check_tensor
from genmodels.audio.measures import mel_cepstral_distortion

__all__ = ["SpeechEncoder", "SpeechDecoder", "VoiceConverter", "DB_TO_NEPER", "mcd_db"]

#: dB of power → natural log of amplitude: 10·log10(P) = (20/ln 10)·ln|X|
DB_TO_NEPER = math.log(10.0) / 20.0


def mcd_db(c1: torch.Tensor, c2: torch.Tensor) -> torch.Tensor:
    """MCD (dB) between two MFCC tensors ``[..., D, T]`` of :func:`~genmodels.audio.mfcc`."""
    return mel_cepstral_distortion(c1 * DB_TO_NEPER, c2 * DB_TO_NEPER)


class _ConvBlock(nn.Module):
    """x + Conv1x1(GELU(Conv_k(GELU(x)))), 'same' padding over frames."""

    def __init__(self, channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv1d(channels, channels, kernel_size, padding=kernel_size // 2)
        self.mix = nn.Conv1d(channels, channels, 1)

    def forward(self, x):
        return x + self.mix(F.gelu(self.conv(F.gelu(x))))


def _check_args(n_features, hidden, layers, kernel_size):
    check_int("n_features", n_features, minimum=1)
    check_int("hidden", hidden, minimum=1)
    check_int("layers", layers, minimum=0)
    check_int("kernel_size", kernel_size, minimum=1)
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size: must be odd (centred context), got {kernel_size}")


def _check_frames(name: str, x, channels: int) -> None:
    check_tensor(name, x, ndim=3)
    if x.shape[1] != channels:
        raise ValueError(f"{name}: expected [B, {channels}, frames], got {list(x.shape)}")
    if x.shape[-1] == 0:
        raise ValueError(f"{name}: has 0 frames")


class SpeechEncoder(nn.Module):
    """Eq. 2.31: H = Encoder(F), ``F [B, n_features, T] → H [B, hidden, T]``."""

    def __init__(self, n_features: int, hidden: int = 128, layers: int = 3, kernel_size: int = 5):
        super().__init__()
        _check_args(n_features, hidden, layers, kernel_size)
        self.n_features, self.hidden = n_features, hidden
        self.inp = nn.Conv1d(n_features, hidden, kernel_size, padding=kernel_size // 2)
        self.blocks = nn.Sequential(*[_ConvBlock(hidden, kernel_size) for _ in range(layers)])

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        _check_frames("features", features, self.n_features)
        return self.blocks(self.inp(features))


class SpeechDecoder(nn.Module):
    """Eq. 2.32: F̃ = Decoder(H), ``H [B, hidden, T] → F̃ [B, n_features, T]``."""

    def __init__(self, n_features: int, hidden: int = 128, layers: int = 3, kernel_size: int = 5):
        super().__init__()
        _check_args(n_features, hidden, layers, kernel_size)
        self.n_features, self.hidden = n_features, hidden
        self.blocks = nn.Sequential(*[_ConvBlock(hidden, kernel_size) for _ in range(layers)])
        self.out = nn.Conv1d(hidden, n_features, kernel_size, padding=kernel_size // 2)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        _check_frames("hidden", hidden, self.hidden)
        return self.out(F.gelu(self.blocks(hidden)))


class VoiceConverter(nn.Module):
    r"""Eqs. 2.31–2.33: F̂_B = Decoder(Conversion(Encoder(F_A))), V_t = Conversion(H_t).

    ``forward(source [B, D, T]) → [B, D, T]`` in the features' own units (standardised inside
    with the buffers set by :meth:`set_statistics`). ``reconstruct`` is Decoder(Encoder(F)) of
    the target speaker, an auto-encoding path that helps the decoder learn B's feature space.
    """

    def __init__(self, n_features: int, hidden: int = 128, layers: int = 3, kernel_size: int = 5,
                 conversion_layers: int = 2):
        super().__init__()
        check_int("conversion_layers", conversion_layers, minimum=1)
        self.encoder = SpeechEncoder(n_features, hidden, layers, kernel_size)
        self.decoder = SpeechDecoder(n_features, hidden, layers, kernel_size)
        conv = []
        for _ in range(conversion_layers):
            conv += [nn.Conv1d(hidden, hidden, 1), nn.GELU()]             # per frame: V_t = f(H_t)
        self.conversion = nn.Sequential(*conv, nn.Conv1d(hidden, hidden, 1))
        for name in ("source_mean", "target_mean"):
            self.register_buffer(name, torch.zeros(1, n_features, 1))
        for name in ("source_std", "target_std"):
            self.register_buffer(name, torch.ones(1, n_features, 1))
        self.n_features = n_features

    @torch.no_grad()
    def set_statistics(self, source: torch.Tensor, target: torch.Tensor) -> None:
        """Per-coefficient mean and std of ``source, target [B, D, T]`` (training features)."""
        for name, x in (("source", source), ("target", target)):
            _check_frames(name, x, self.n_features)
            getattr(self, f"{name}_mean").copy_(x.mean(dim=(0, 2), keepdim=True))
            getattr(self, f"{name}_std").copy_(x.std(dim=(0, 2), keepdim=True).clamp(min=1e-3))

    def normalize_target(self, target: torch.Tensor) -> torch.Tensor:
        return (target - self.target_mean) / self.target_std

    def convert_normalized(self, source: torch.Tensor) -> torch.Tensor:
        """Standardised output: (F̂_B − μ_B)/σ_B, the quantity the loss compares."""
        _check_frames("source", source, self.n_features)
        # >>> exercise audio.voice_conversion: eqs. 2.31–2.33
        # what: voice conversion H = Encoder(F), V_t = Conversion(H_t), F̃ = Decoder(V)
        # hint: standardise with the SOURCE statistics, encode, convert each frame (residually), decode.
        # mistake: `(source - self.source_mean) / self.source_std` -> `(source - self.source_mean) * self.source_std`
        h = self.encoder((source - self.source_mean) / self.source_std)  # H   (2.31)
        v = h + self.conversion(h)                                       # V_t (2.33), residual
        return self.decoder(v)                                           # F̃   (2.32)
        # <<< exercise audio.voice_conversion

    def forward(self, source: torch.Tensor) -> torch.Tensor:
        return self.convert_normalized(source) * self.target_std + self.target_mean

    def reconstruct_normalized(self, target: torch.Tensor) -> torch.Tensor:
        """Decoder(Encoder(F_B)) standardised, through the target statistics."""
        _check_frames("target", target, self.n_features)
        return self.decoder(self.encoder(self.normalize_target(target)))
