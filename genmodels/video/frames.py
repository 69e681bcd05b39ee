r"""Frame interpolation and super-resolution: the baselines, the low-resolution operator, and a
small U-Net that predicts a residual on its baseline.

* **Frame interpolation** (60 → 120 fps): the middle frame f_t of a triplet (f_{t−1}, f_t,
  f_{t+1}) from its two neighbours. Baseline: the cross-fade ½(f_{t−1} + f_{t+1}), which is
  right where nothing moves and shows two half-bright ghosts where something does.
* **Super-resolution** (the upscaler) by a factor s: the low-resolution image is the mean of
  each s × s block of the high-resolution one (:func:`downsample`, average pooling: what a
  sensor with s times larger pixels would record); the baseline is its bicubic upsampling
  (:func:`bicubic_upsample`, ``F.interpolate(mode="bicubic", align_corners=False)``).

:class:`ResidualUNet` outputs ``baseline + residual(input)``, its last convolution set to zero:
at initialisation the model *is* its baseline, and training only has to learn the correction.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genmodels._checks import check_int, check_tensor

__all__ = ["ResidualUNet", "bicubic_upsample", "crossfade", "downsample", "middle_triplets"]


def _check_frames(name: str, x) -> None:
    check_tensor(name, x, ndim=4)
    if x.shape[0] == 0:
        raise ValueError(f"{name}: expected at least one image, got shape {list(x.shape)}")


def crossfade(prev: torch.Tensor, next: torch.Tensor) -> torch.Tensor:
    """The cross-fade baseline of frame interpolation: ``(prev + next) / 2``, both ``[B, C, H, W]``."""
    _check_frames("prev", prev)
    _check_frames("next", next)
    if prev.shape != next.shape:
        raise ValueError(f"next: expected the shape of prev {list(prev.shape)}, got {list(next.shape)}")
    return 0.5 * (prev + next)


def middle_triplets(frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Every triplet of consecutive frames of ``frames [N, T, C, H, W]`` (T >= 3), as
    ``(prev, middle, next)``, each ``[N·(T−2), C, H, W]``, clip-major (clip 0's triplets first)."""
    check_tensor("frames", frames, ndim=5)
    if frames.shape[1] < 3:
        raise ValueError(f"frames: need T >= 3 frames per clip for a triplet, got T={frames.shape[1]}")
    return (frames[:, :-2].flatten(0, 1), frames[:, 1:-1].flatten(0, 1), frames[:, 2:].flatten(0, 1))


def downsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """The low-resolution image of ``x [B, C, H, W]``: the mean of every ``factor × factor``
    block (average pooling); H and W must be multiples of ``factor``."""
    _check_frames("x", x)
    check_int("factor", factor, minimum=1)
    if x.shape[-1] % factor or x.shape[-2] % factor:
        raise ValueError(f"factor: {factor} must divide the image size {x.shape[-2]}×{x.shape[-1]}")
    return F.avg_pool2d(x, factor)


def bicubic_upsample(x: torch.Tensor, factor: int) -> torch.Tensor:
    """The bicubic baseline: ``x [B, C, h, w]`` upsampled to ``[B, C, factor·h, factor·w]``
    (``F.interpolate(mode="bicubic", align_corners=False)``; values may overshoot [0, 1])."""
    _check_frames("x", x)
    check_int("factor", factor, minimum=1)
    return F.interpolate(x, scale_factor=factor, mode="bicubic", align_corners=False)


class _Block(nn.Sequential):
    def __init__(self, c_in: int, c_out: int):
        super().__init__(nn.Conv2d(c_in, c_out, 3, padding=1), nn.GroupNorm(min(4, c_out), c_out), nn.SiLU(),
                         nn.Conv2d(c_out, c_out, 3, padding=1), nn.GroupNorm(min(4, c_out), c_out), nn.SiLU())


class ResidualUNet(nn.Module):
    """A small U-Net whose output is ``base + residual(x)``.

    ``x [B, in_channels, H, W]`` is what the net reads (the two neighbour frames stacked, or the
    bicubic upsampling); ``base [B, out_channels, H, W]`` the baseline it corrects. ``levels``
    halvings of the resolution (H and W must be multiples of 2**levels), ``width`` channels at
    full resolution, doubled at each level, skip connections by concatenation. The last
    convolution starts at zero, so an untrained net returns ``base`` exactly.
    """

    def __init__(self, in_channels: int, out_channels: int = 1, width: int = 16, levels: int = 1):
        super().__init__()
        check_int("in_channels", in_channels, minimum=1)
        check_int("out_channels", out_channels, minimum=1)
        check_int("width", width, minimum=1)
        check_int("levels", levels, minimum=0)
        self.in_channels, self.out_channels, self.levels = in_channels, out_channels, levels
        widths = [width * 2 ** i for i in range(levels + 1)]
        self.inp = _Block(in_channels, widths[0])
        self.down = nn.ModuleList(nn.Sequential(nn.Conv2d(widths[i], widths[i + 1], 3, stride=2, padding=1),
                                                _Block(widths[i + 1], widths[i + 1]))
                                  for i in range(levels))
        self.up = nn.ModuleList(nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2) for i in range(levels))
        self.merge = nn.ModuleList(_Block(2 * widths[i], widths[i]) for i in range(levels))
        self.out = nn.Conv2d(widths[0], out_channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        """The correction ``[B, out_channels, H, W]`` the net adds to its baseline."""
        check_tensor("x", x, ndim=4)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x: expected {self.in_channels} channels, got {x.shape[1]}")
        m = 2 ** self.levels
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(f"x: H and W must be multiples of 2**levels = {m}, got {x.shape[-2]}×{x.shape[-1]}")
        h = self.inp(x)
        skips = []
        for down in self.down:
            skips.append(h)
            h = down(h)
        for i in reversed(range(self.levels)):
            h = self.merge[i](torch.cat([self.up[i](h), skips[i]], 1))
        return self.out(h)

    def forward(self, x: torch.Tensor, base: torch.Tensor) -> torch.Tensor:
        """``base + residual(x)``."""
        check_tensor("base", base, ndim=4)
        if base.shape[0] != x.shape[0] or base.shape[1] != self.out_channels or base.shape[-2:] != x.shape[-2:]:
            raise ValueError(f"base: expected [{x.shape[0]}, {self.out_channels}, {x.shape[-2]}, "
                             f"{x.shape[-1]}], got {list(base.shape)}")
        return base + self.residual(x)
