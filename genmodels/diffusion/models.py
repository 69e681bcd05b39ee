"""Noise / score networks for diffusion: a small time-conditioned U-Net for ``C×H×W`` images and
an MLP for 2-D toy data. Both are called as ``model(x_t, t)`` and return a tensor shaped like
``x_t``, so they serve as ``eps_model`` (DDPM) or ``score_model`` (score SDE).

``t`` is ``[B]``: integer DDPM timesteps (``time_scale=1``), or float SDE times in [0, 1], for
which ``time_scale=1000`` spreads them over the same range of embedding frequencies.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from genmodels._checks import check_int, check_positive, check_tensor

__all__ = ["SinusoidalTimeEmbedding", "ResBlock", "UNet", "MLPDenoiser"]


class SinusoidalTimeEmbedding(nn.Module):
    """emb(t) = [sin(s·t·ω_0), …, sin(s·t·ω_{h−1}), cos(s·t·ω_0), …], ω_i = 10000^(−i/h), h = dim/2.

    The transformer's positional encoding (eq. 2.22) applied to the timestep; ``[B] -> [B, dim]``.
    """

    def __init__(self, dim: int, time_scale: float = 1.0):
        super().__init__()
        check_int("dim", dim, minimum=2)
        if dim % 2:
            raise ValueError(f"dim: must be even, got {dim}")
        check_positive("time_scale", time_scale)
        half = dim // 2
        freqs = torch.exp(-math.log(10000.0) * torch.arange(half, dtype=torch.float64) / half)
        self.register_buffer("freqs", freqs.to(torch.get_default_dtype()), persistent=False)
        self.time_scale = time_scale

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        check_tensor("t", t, ndim=1, floating=False, finite=False)
        dtype = self.freqs.dtype
        args = (t.to(dtype) * self.time_scale)[:, None] * self.freqs[None, :]   # (B, half)
        return torch.cat([args.sin(), args.cos()], dim=-1)                      # (B, dim)


def _groups(num_groups: int, channels: int) -> int:
    return math.gcd(num_groups, channels)


class ResBlock(nn.Module):
    """GroupNorm → SiLU → conv, add the projected time embedding, GroupNorm → SiLU → conv, plus
    a (1×1-projected) skip connection. ``(x [B, C_in, H, W], temb [B, E]) -> [B, C_out, H, W]``."""

    def __init__(self, in_ch: int, out_ch: int, temb_dim: int, num_groups: int = 8):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(num_groups, in_ch), in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.temb_proj = nn.Linear(temb_dim, out_ch)
        self.norm2 = nn.GroupNorm(_groups(num_groups, out_ch), out_ch)
        self.conv2 = nn.Conv2d(out_ch, out_ch, 3, padding=1)
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb_proj(F.silu(temb))[:, :, None, None]        # (B, C_out) -> (B, C_out, 1, 1)
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


def check_unet_args(base_channels: int, channel_mults: Sequence[int], num_groups: int) -> None:
    """The U-Net layout arguments every U-Net here takes (``UNet``, the video family's
    ``DirectionUNet``): positive ints, at least one resolution."""
    check_int("base_channels", base_channels, minimum=1)
    check_int("num_groups", num_groups, minimum=1)
    if len(channel_mults) < 1:
        raise ValueError("channel_mults: expected at least one resolution, got an empty sequence")
    for m in channel_mults:
        check_int("channel_mults", m, minimum=1)


class UNet(nn.Module):
    """A small U-Net (Ronneberger et al., 2015, as used by Ho et al., 2020) without attention.

    One ResBlock per resolution on the way down and up, two in the middle; stride-2 convs halve
    the resolution, nearest-neighbour upsampling restores the skip's exact size, so odd sizes
    work (28 → 14 → 7 → 14 → 28; 8 → 4 → 2 → 4 → 8). ``(x [B, C, H, W], t [B]) -> [B, C, H, W]``.

    Args:
        in_channels: image channels C.
        base_channels: channels at full resolution (a multiple of ``num_groups`` is tidiest).
        channel_mults: one multiplier per resolution; ``len`` resolutions in all.
        num_groups: GroupNorm groups (reduced to a divisor of each channel count).
        time_scale: multiplies t before the sinusoidal embedding (1000 for SDE times in [0, 1]).
        num_classes: K > 0 makes the network class-conditional, ``model(x, t, y)`` with labels
            ``y [B]`` in {0, …, K}: a learned embedding of y is added to the time embedding, and
            the extra label K (:attr:`null_label`) is the "no label" ∅ of classifier-free guidance
            (``y=None`` means ∅ for every sample). 0 (default): unconditional.
    """

    def __init__(self, in_channels: int = 1, base_channels: int = 16,
                 channel_mults: Sequence[int] = (1, 2, 4), num_groups: int = 8,
                 time_scale: float = 1.0, num_classes: int = 0):
        super().__init__()
        check_int("in_channels", in_channels, minimum=1)
        check_int("num_classes", num_classes, minimum=0)
        check_unet_args(base_channels, channel_mults, num_groups)
        self.in_channels = in_channels
        temb_dim = 4 * base_channels
        self.time_embed = nn.Sequential(
            SinusoidalTimeEmbedding(base_channels, time_scale),
            nn.Linear(base_channels, temb_dim), nn.SiLU(), nn.Linear(temb_dim, temb_dim),
        )
        self.num_classes = num_classes
        # labels 0 … K−1 and the null label K; nothing at all for an unconditional network
        self.class_embed = nn.Embedding(num_classes + 1, temb_dim) if num_classes else None
        chs = [base_channels * m for m in channel_mults]
        n = len(chs)
        self.conv_in = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        self.down_blocks = nn.ModuleList()
        self.downsample = nn.ModuleList()
        prev = base_channels
        for i, ch in enumerate(chs):
            self.down_blocks.append(ResBlock(prev, ch, temb_dim, num_groups))
            if i < n - 1:
                self.downsample.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
            prev = ch
        self.mid1 = ResBlock(prev, prev, temb_dim, num_groups)
        self.mid2 = ResBlock(prev, prev, temb_dim, num_groups)
        self.upsample = nn.ModuleList()              # upsample[i]: level i+1 -> level i
        self.up_blocks = nn.ModuleList([nn.Identity()] * n)
        for i in reversed(range(n)):
            if i < n - 1:
                self.upsample.insert(0, nn.Conv2d(prev, prev, 3, padding=1))
            self.up_blocks[i] = ResBlock(prev + chs[i], chs[i], temb_dim, num_groups)
            prev = chs[i]
        self.norm_out = nn.GroupNorm(_groups(num_groups, prev), prev)
        self.conv_out = nn.Conv2d(prev, in_channels, 3, padding=1)

    @property
    def null_label(self) -> int:
        """The label that means "no label" (∅) in a class-conditional network: ``num_classes``."""
        return self.num_classes

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        check_tensor("x", x, ndim=4, finite=False)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x: expected {self.in_channels} channels, got shape {list(x.shape)}")
        if not isinstance(t, torch.Tensor) or t.shape != (x.shape[0],):
            raise ValueError(f"t: expected shape [{x.shape[0]}], got "
                             f"{list(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}")
        temb = self.time_embed(t).to(x.dtype)                           # (B, 4·base)
        if self.class_embed is not None:
            if y is None:
                y = torch.full((x.shape[0],), self.null_label, dtype=torch.long, device=x.device)
            check_tensor("y", y, ndim=1, floating=False)
            if y.shape[0] != x.shape[0] or y.is_floating_point() or y.dtype == torch.bool \
                    or int(y.min()) < 0 or int(y.max()) > self.null_label:
                raise ValueError(f"y: expected [{x.shape[0]}] integer labels in 0…{self.null_label} "
                                 f"({self.null_label} = no label), got {y.dtype} {list(y.shape)}")
            temb = temb + self.class_embed(y).to(x.dtype)              # (B, 4·base)
        elif y is not None:
            raise ValueError("y: this U-Net is unconditional (num_classes=0), got labels")
        h = self.conv_in(x)                                             # (B, base, H, W)
        skips = []
        for i, block in enumerate(self.down_blocks):
            h = block(h, temb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)                               # (B, C_i, ⌈H/2⌉, ⌈W/2⌉)
        h = self.mid2(self.mid1(h, temb), temb)
        for i in reversed(range(len(self.up_blocks))):
            skip = skips[i]
            if i < len(self.upsample):
                h = F.interpolate(h, size=skip.shape[-2:], mode="nearest")  # back to level i's size
                h = self.upsample[i](h)
            h = self.up_blocks[i](torch.cat([h, skip], dim=1), temb)    # (B, C_i, H_i, W_i)
        return self.conv_out(F.silu(self.norm_out(h)))


class MLPDenoiser(nn.Module):
    """ε_θ or s_θ for toy data: ``(x [B, D], t [B]) -> [B, D]``.

    The sinusoidal embedding of t is concatenated to x and passed through ``n_layers`` SiLU layers.
    """

    def __init__(self, data_dim: int = 2, hidden: int = 128, time_dim: int = 32, n_layers: int = 3,
                 time_scale: float = 1.0):
        super().__init__()
        for name, v in (("data_dim", data_dim), ("hidden", hidden), ("n_layers", n_layers)):
            check_int(name, v, minimum=1)
        self.data_dim = data_dim
        self.time_embed = SinusoidalTimeEmbedding(time_dim, time_scale)
        layers: list[nn.Module] = []
        width = data_dim + time_dim
        for _ in range(n_layers):
            layers += [nn.Linear(width, hidden), nn.SiLU()]
            width = hidden
        layers.append(nn.Linear(width, data_dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        check_tensor("x", x, ndim=2, finite=False)
        if x.shape[1] != self.data_dim:
            raise ValueError(f"x: expected shape [B, {self.data_dim}], got {list(x.shape)}")
        if not isinstance(t, torch.Tensor) or t.shape != (x.shape[0],):
            raise ValueError(f"t: expected shape [{x.shape[0]}], got "
                             f"{list(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__}")
        temb = self.time_embed(t).to(x.dtype)                           # (B, time_dim)
        return self.net(torch.cat([x, temb], dim=-1))                   # (B, D + time_dim) -> (B, D)
