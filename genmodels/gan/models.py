"""GAN networks: an MLP pair for flat images and a small DCGAN pair for 1×28×28 / 1×8×8.

Generators map ``z [B, z_dim]`` to images in [−1, 1] (``tanh`` output), so data should be
scaled to [−1, 1]. Discriminators return one *logit* per sample, shape ``[B]``; D = σ(logit) and
the losses in :mod:`genmodels.gan.losses` take the logits directly.
"""

from __future__ import annotations

import torch
from torch import nn

from genmodels._checks import check_int, check_tensor

__all__ = ["MLPGenerator", "MLPDiscriminator", "DCGANGenerator", "DCGANDiscriminator"]


class MLPGenerator(nn.Module):
    """G(z): ``[B, z_dim] -> [B, data_dim]`` (flat images), two hidden LeakyReLU layers."""

    def __init__(self, z_dim: int = 64, data_dim: int = 784, hidden: int = 256):
        super().__init__()
        for name, v in (("z_dim", z_dim), ("data_dim", data_dim), ("hidden", hidden)):
            check_int(name, v, minimum=1)
        self.z_dim = z_dim
        self.net = nn.Sequential(
            nn.Linear(z_dim, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, data_dim), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        check_tensor("z", z, ndim=2, finite=False)
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """D(x) as a logit: ``[B, ...] -> [B]``; the input is flattened after the batch dimension."""

    def __init__(self, data_dim: int = 784, hidden: int = 256):
        super().__init__()
        check_int("data_dim", data_dim, minimum=1)
        check_int("hidden", hidden, minimum=1)
        self.net = nn.Sequential(
            nn.Linear(data_dim, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, min_ndim=2, finite=False)
        return self.net(x.flatten(1)).squeeze(-1)      # (B, 1) -> (B,)


def _check_image_size(image_size: int) -> None:
    check_int("image_size", image_size, minimum=4)
    if image_size % 4:
        raise ValueError(f"image_size: must be divisible by 4 (two stride-2 stages), got {image_size}")


class DCGANGenerator(nn.Module):
    """DCGAN generator (Radford et al., 2016) for ``channels × S × S`` images, S divisible by 4.

    z → linear → (2w, S/4, S/4) → ×2 transposed conv → (w, S/2, S/2) → ×2 → (C, S, S) → tanh,
    with BatchNorm + ReLU between stages. S = 28 gives 7 → 14 → 28, S = 8 gives 2 → 4 → 8.
    """

    def __init__(self, z_dim: int = 64, image_size: int = 28, channels: int = 1, width: int = 64):
        super().__init__()
        check_int("z_dim", z_dim, minimum=1)
        _check_image_size(image_size)
        check_int("channels", channels, minimum=1)
        check_int("width", width, minimum=1)
        self.z_dim, self.s0, self.width = z_dim, image_size // 4, width
        self.project = nn.Sequential(
            nn.Linear(z_dim, 2 * width * self.s0 * self.s0, bias=False),
            nn.BatchNorm1d(2 * width * self.s0 * self.s0), nn.ReLU(),
        )
        self.net = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(width), nn.ReLU(),
            nn.ConvTranspose2d(width, channels, 4, stride=2, padding=1),
            nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        check_tensor("z", z, ndim=2, finite=False)
        h = self.project(z).view(z.shape[0], 2 * self.width, self.s0, self.s0)  # (B, 2w, S/4, S/4)
        return self.net(h)                                                      # (B, C, S, S)


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator: two stride-2 convs with LeakyReLU (BatchNorm after the second, none
    on the input layer, as in the paper), then a linear layer to one logit. ``[B, C, S, S] -> [B]``.
    """

    def __init__(self, image_size: int = 28, channels: int = 1, width: int = 64):
        super().__init__()
        _check_image_size(image_size)
        check_int("channels", channels, minimum=1)
        check_int("width", width, minimum=1)
        self.image_size, self.channels = image_size, channels
        s_out = image_size // 4
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=False),
            nn.BatchNorm2d(2 * width), nn.LeakyReLU(0.2),
        )
        self.head = nn.Linear(2 * width * s_out * s_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, ndim=4, finite=False)
        want = (self.channels, self.image_size, self.image_size)
        if tuple(x.shape[1:]) != want:
            raise ValueError(f"x: expected shape [B, {', '.join(map(str, want))}], got {list(x.shape)}")
        h = self.net(x)                                  # (B, 2w, S/4, S/4)
        return self.head(h.flatten(1)).squeeze(-1)       # (B,)
