"""A 2-D toy dataset for diffusion: a mixture of K Gaussians on a circle.

Mode k sits at ``radius·(cos 2πk/K, sin 2πk/K)`` with isotropic standard deviation ``std``.
Points come as float tensors ``[N, 2]`` with the index of their mode as the label ``[N]``; the
three splits are drawn from one seeded generator, so every run sees the same points.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from genmodels._checks import check_int, check_positive
from genmodels.data.splits import Splits

__all__ = ["PointSplits", "gaussian_mixture_2d", "mixture_centers"]


@dataclass
class PointSplits(Splits):
    centers: torch.Tensor         # [K, 2] the mode means
    std: float                    # each mode's standard deviation
    name: str = "toy2d"

    @property
    def num_classes(self) -> int:
        return self.centers.shape[0]

    @property
    def point_shape(self) -> tuple[int]:
        return (self.train.shape[1],)

    def nearest_mode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(index of the nearest mode ``[N]``, distance to it ``[N]``) for points ``x [N, 2]``."""
        d = torch.cdist(x.to(self.centers.dtype), self.centers)      # (N, K)
        dist, idx = d.min(dim=1)
        return idx, dist


def mixture_centers(modes: int, radius: float) -> torch.Tensor:
    angles = 2 * math.pi * torch.arange(modes, dtype=torch.float64) / modes
    return (radius * torch.stack([angles.cos(), angles.sin()], dim=1)).float()    # (K, 2)


def gaussian_mixture_2d(n_train: int = 20000, n_val: int = 2000, n_test: int = 2000, modes: int = 8,
                        radius: float = 2.0, std: float = 0.15, seed: int = 0) -> PointSplits:
    """Draw the three splits of an equal-weight mixture of ``modes`` Gaussians on a circle."""
    for name, v in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test), ("modes", modes)):
        check_int(name, v, minimum=1)
    check_positive("radius", radius)
    check_positive("std", std)
    g = torch.Generator().manual_seed(seed)
    centers = mixture_centers(modes, radius)
    parts = []
    for n in (n_train, n_val, n_test):
        labels = torch.randint(0, modes, (n,), generator=g)
        x = centers[labels] + std * torch.randn(n, 2, generator=g)
        parts += [x, labels]
    return PointSplits(*parts, centers=centers, std=std)
