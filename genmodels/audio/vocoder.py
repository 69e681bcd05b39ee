r"""A WaveNet vocoder (eq. 2.34): audio from MFCC frames.

    p(x | F) = Π_t p(x_{t+1} | x_0 … x_t, h_t),   h = CondNet(F) repeated hop_length times per frame

``CondNet`` — two 3-wide convolutions over the standardised MFCC frames — gives each frame a
little context before the per-sample repetition inside :class:`~genmodels.audio.wavenet.WaveNet`.
Training is teacher-forced cross-entropy over the 256 μ-law levels; synthesis samples one level
at a time with the Fast-WaveNet queues and decodes μ-law back to audio.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genmodels._checks import check_int, check_tensor
from genmodels.audio.measures import mu_law_decode
from genmodels.audio.wavenet import WaveNet

__all__ = ["WaveNetVocoder"]


class WaveNetVocoder(nn.Module):
    """``loss(levels [B, N], features [B, D, frames])``; ``synthesize(features, n_samples)``."""

    def __init__(self, n_features: int, hop_length: int, cond_hidden: int = 64, **wavenet_kwargs):
        super().__init__()
        check_int("n_features", n_features, minimum=1)
        check_int("cond_hidden", cond_hidden, minimum=1)
        self.n_features = n_features
        self.cond_net = nn.Sequential(
            nn.Conv1d(n_features, cond_hidden, 3, padding=1), nn.GELU(),
            nn.Conv1d(cond_hidden, cond_hidden, 3, padding=1))
        self.wavenet = WaveNet(cond_channels=cond_hidden, hop_length=hop_length, **wavenet_kwargs)
        self.register_buffer("feat_mean", torch.zeros(1, n_features, 1))
        self.register_buffer("feat_std", torch.ones(1, n_features, 1))

    @property
    def receptive_field(self) -> int:
        return self.wavenet.receptive_field

    @torch.no_grad()
    def set_statistics(self, features: torch.Tensor) -> None:
        self.feat_mean.copy_(features.mean(dim=(0, 2), keepdim=True))
        self.feat_std.copy_(features.std(dim=(0, 2), keepdim=True).clamp(min=1e-3))

    def condition(self, features: torch.Tensor) -> torch.Tensor:
        """``[B, D, frames]`` (raw MFCC) → ``[B, cond_hidden, frames]``."""
        check_tensor("features", features, ndim=3)
        if features.shape[1] != self.n_features:
            raise ValueError(f"features: expected [B, {self.n_features}, frames], got {list(features.shape)}")
        return self.cond_net((features - self.feat_mean) / self.feat_std)

    def loss(self, levels: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Mean NLL (nats per sample) of ``levels [B, N]`` given ``cond`` from :meth:`condition`."""
        logits = self.wavenet(levels, cond)                         # [B, Q, N]
        return F.cross_entropy(logits[:, :, :-1], levels[:, 1:])

    @torch.no_grad()
    def synthesize(self, features: torch.Tensor, n_samples: int,
                   generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """Audio ``[B, n_samples]`` in [−1, 1] sampled from p(x | features)."""
        cond = self.condition(features)
        levels = self.wavenet.generate(cond, n_samples, generator=generator, temperature=temperature)
        return mu_law_decode(levels, self.wavenet.quantization_channels, dtype=features.dtype)
