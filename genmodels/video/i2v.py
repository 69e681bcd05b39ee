r"""Image-to-video with a "motion brush": from one key frame and a requested direction, a
flow-matching (or diffusion) model generates the next F frames; a tracker reads off where the
digit went.

**Clips** (:func:`straight_clips`): one digit moving in a straight line at constant velocity,
never touching a wall — the start is drawn in the central square from which every direction
fits, so the key frame's position says nothing about the direction. The direction θ is the
condition.

**Angles** are in degrees, counter-clockwise from "right" as the frame is shown (rows grow
downwards): a motion of (Δrow, Δcol) has θ = atan2(−Δrow, Δcol), and the unit vector given to the
network is u = (cos θ, sin θ). A requested direction θ moves the digit by s·(−sin θ, cos θ)
(rows, columns) per frame.

**Tracked direction** (:func:`fitted_velocity`, :func:`motion_angle`): with c_0 the tracked
centre (:func:`~genmodels.video.baselines.centre_of_mass`) of the key frame and c_h that of
frame h = 1…F, the velocity through the key frame's position that fits best in least squares,

    v̂ = Σ_h h (c_h − c_0) / Σ_h h²,

and its angle; the error against a requested θ is the absolute wrapped difference in [0°, 180°]
(:func:`angle_error`) — 90° on average for a direction drawn at random.

**Crops for the image yardstick** (:func:`digit_crops`): the yardstick classifies 8×8 digits,
so each frame is cut to the size×size window that holds the most intensity (ties: the window
whose centre is nearest the frame's centre of mass) — on a real frame, the digit's own box.

**Network** (:class:`DirectionUNet`): a U-Net on the F future frames stacked as channels with the
key frame as one more input channel; the direction is embedded by a small MLP and added to the
time embedding; a learned null embedding ∅ replaces it when the direction is dropped, so
classifier-free guidance works (:func:`direction_eps_model`, through
:func:`~genmodels.diffusion.guidance.guided_eps_model`).

**Outputs** (``output``): ``"direct"`` — the network writes ε (DDPM) or the velocity v (flow
matching) for every pixel, so every generated frame is drawn anew; ``"transform"`` (flow matching
only) — the network predicts the clean frames x̂_1 as the key frame *moved*: per frame h a softmax
kernel K_h (k × k, a weighted average of shifts by up to ±k//2 pixels) is convolved with the key
frame, x̂_1^h = K_h ⋆ key; ``"transform_blend"`` — as ``"transform"``, with a per-pixel mask m_h
that blends the moved key frame with drawn pixels p_h,

    x̂_1^h = m_h ⊙ (K_h ⋆ key) + (1 − m_h) ⊙ p_h

(the CDNA output of the frame predictor, :class:`~genmodels.video.models.ConvLSTMPredictor`). Both
hand the sampler the velocity that points from x_t to that prediction along the straight path
x_t = (1 − t) x_0 + t x_1 of flow matching,

    v = (x̂_1 − x_t) / (1 − t)     (1 − t clamped below at ``min_gap``),

so :func:`~genmodels.flow.flow_matching_loss` and the Euler sampler are the ones every flow model
uses. The digit's pixels are carried along instead of redrawn: a confident kernel keeps its shape.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from genmodels._checks import check_int, check_positive, check_tensor
from genmodels.diffusion.guidance import guided_eps_model
from genmodels.diffusion.models import ResBlock, SinusoidalTimeEmbedding, _groups, check_unet_args
from genmodels.video.baselines import centre_of_mass
from genmodels.video.data import Clips

__all__ = ["straight_clips", "direction_vector", "motion_angle", "fitted_velocity", "angle_error",
           "tracked_angles", "digit_crops", "DirectionUNet", "direction_eps_model"]


# ============================================================================ clips
def straight_clips(images: torch.Tensor, labels: torch.Tensor, n: int, frames: int, canvas: int,
                   speed: tuple[float, float] = (1.0, 1.33), seed: int = 0
                   ) -> tuple[Clips, torch.Tensor]:
    """``n`` clips of ``frames`` frames (the key frame, then F = frames − 1 more) of one image of
    ``images [M, 1, h, w]`` (labels ``[M]``) moving in a straight line on a ``canvas``² canvas:
    direction θ uniform in [0°, 360°), speed uniform in ``speed`` pixels per frame, the start
    (top-left corner) uniform in the square [m, L − m]² with m = F·speed_high and L = canvas − h,
    so no direction reaches a wall. The digit is drawn at the rounded position (its own pixels,
    unblurred). Returns ``(clips, angles [n])``, θ in degrees (module docstring), float64; a pure
    function of its arguments."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 1 or len(images) == 0:
        raise ValueError(f"images: expected a non-empty tensor [M, 1, h, w], got "
                         f"{list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
    if not isinstance(labels, torch.Tensor) or labels.shape != (len(images),):
        raise ValueError(f"labels: expected a tensor [{len(images)}], got "
                         f"{list(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__}")
    check_int("n", n, minimum=0)
    check_int("frames", frames, minimum=2)
    check_int("canvas", canvas, minimum=1)
    check_int("seed", seed, minimum=0)
    if len(speed) != 2 or not (0 < speed[0] <= speed[1]) or not math.isfinite(speed[1]):
        raise ValueError(f"speed: expected (low, high) with 0 < low <= high, finite, got {tuple(speed)}")
    h, w = images.shape[-2:]
    if h != w:
        raise ValueError(f"images: expected square images, got {h}×{w}")
    span, margin = canvas - h, (frames - 1) * speed[1]
    if span < 2 * margin:
        raise ValueError(f"canvas: {canvas} leaves no room for {frames - 1} frames at "
                         f"{speed[1]} px/frame in every direction (needs canvas >= "
                         f"{h} + 2·{frames - 1}·{speed[1]} = {h + 2 * margin:g})")
    rng = np.random.default_rng(seed)
    src = rng.integers(0, len(images), size=n)
    theta = rng.uniform(0.0, 360.0, size=n)
    s = rng.uniform(speed[0], speed[1], size=n)
    start = rng.uniform(margin, span - margin, size=(n, 2))
    rad = np.deg2rad(theta)
    vel = s[:, None] * np.stack([-np.sin(rad), np.cos(rad)], -1)             # (n, 2) rows, cols
    steps = np.arange(frames, dtype=np.float64)
    positions = np.rint(start[:, None] + steps[None, :, None] * vel[:, None]).astype(np.int64)  # (n, T, 2)
    imgs = images.float().numpy()[:, 0]                                        # (M, h, w)
    out = np.zeros((n, frames, canvas, canvas), dtype=np.float32)
    for i in range(n):
        for t in range(frames):
            r, c = positions[i, t]
            out[i, t, r:r + h, c:c + w] = imgs[src[i]]
    com = centre_of_mass(torch.from_numpy(imgs).double()).numpy()             # (M, 2) in the box
    centres = positions + com[src][:, None]                                    # (n, T, 2)
    clips = Clips(frames=torch.from_numpy(out)[:, :, None],
                  positions=torch.from_numpy(positions[:, :, None].astype(np.float32)),
                  centres=torch.from_numpy(centres[:, :, None].astype(np.float32)),
                  sources=torch.from_numpy(src[:, None]), labels=labels[torch.from_numpy(src)][:, None].long())
    return clips, torch.from_numpy(theta)


# ============================================================================ angles
def direction_vector(angles: torch.Tensor) -> torch.Tensor:
    """u = (cos θ, sin θ) ``[..., 2]`` of ``angles [...]`` in degrees: the network's condition."""
    check_tensor("angles", angles)
    rad = torch.deg2rad(angles)
    return torch.stack([torch.cos(rad), torch.sin(rad)], -1)


def motion_angle(displacement: torch.Tensor) -> torch.Tensor:
    """θ = atan2(−Δrow, Δcol) in degrees, in (−180°, 180°], of ``displacement [..., 2]`` (rows,
    columns; rows grow downwards, so θ = 90° is up on the screen)."""
    check_tensor("displacement", displacement, min_ndim=1)
    if displacement.shape[-1] != 2:
        raise ValueError(f"displacement: expected [..., 2] (rows, columns), got {list(displacement.shape)}")
    up = 0.0 - displacement[..., 0]                  # not −Δrow: −(+0.0) = −0.0 would give −180°
    return torch.rad2deg(torch.atan2(up, displacement[..., 1]))


def fitted_velocity(centres: torch.Tensor) -> torch.Tensor:
    """v̂ = Σ_h h (c_h − c_0) / Σ_h h² ``[..., 2]``: the constant velocity from the key frame's
    position c_0 that best fits (least squares) the positions ``centres [..., F + 1, 2]``."""
    check_tensor("centres", centres, min_ndim=2)
    if centres.shape[-1] != 2 or centres.shape[-2] < 2:
        raise ValueError(f"centres: expected [..., F + 1 >= 2, 2] (key frame first), got {list(centres.shape)}")
    Fh = centres.shape[-2] - 1
    h = torch.arange(1, Fh + 1, dtype=centres.dtype, device=centres.device)    # (F,)
    d = centres[..., 1:, :] - centres[..., :1, :]                              # (..., F, 2)
    return (h[:, None] * d).sum(-2) / h.pow(2).sum()


def angle_error(angles: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """|θ − θ*| wrapped to [0°, 180°], elementwise (broadcast), both in degrees."""
    check_tensor("angles", angles)
    check_tensor("target", target)
    d = torch.remainder(angles - target, 360.0)                                # [0, 360)
    return torch.minimum(d, 360.0 - d)


def tracked_angles(key: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    """The tracked direction ``[N]`` (degrees) of the motion from ``key [N, H, W]`` through
    ``frames [N, F, H, W]``: :func:`motion_angle` of :func:`fitted_velocity` of their centres of
    mass (values below 0 are clamped to 0 first)."""
    check_tensor("key", key, ndim=3)
    check_tensor("frames", frames, ndim=4)
    if frames.shape[0] != key.shape[0] or frames.shape[2:] != key.shape[1:]:
        raise ValueError(f"frames: expected [{key.shape[0]}, F, {key.shape[1]}, {key.shape[2]}], "
                         f"got {list(frames.shape)}")
    both = torch.cat([key[:, None], frames], 1).clamp(min=0).double()          # (N, F+1, H, W)
    return motion_angle(fitted_velocity(centre_of_mass(both)))


# ============================================================================ crops
def digit_crops(frames: torch.Tensor, size: int) -> torch.Tensor:
    """``frames [N, H, W]`` cut to ``[N, size, size]``: per frame the window holding the most
    intensity (values clamped to >= 0), ties (within 1e-6 of the best) broken by the distance of
    the window's centre to the frame's centre of mass, then by scan order."""
    check_tensor("frames", frames, ndim=3)
    check_int("size", size, minimum=1)
    N, H, W = frames.shape
    if size > min(H, W):
        raise ValueError(f"size: {size} exceeds the frame {H}×{W}")
    x = frames.clamp(min=0).double()
    mass = F.avg_pool2d(x[:, None], size, stride=1)[:, 0] * size * size        # (N, H−s+1, W−s+1)
    com = centre_of_mass(x)                                                    # (N, 2)
    rows = torch.arange(H - size + 1, dtype=x.dtype) + (size - 1) / 2          # window centres
    cols = torch.arange(W - size + 1, dtype=x.dtype) + (size - 1) / 2
    dist2 = (rows[None, :, None] - com[:, 0, None, None]).pow(2) \
        + (cols[None, None, :] - com[:, 1, None, None]).pow(2)                 # (N, H−s+1, W−s+1)
    best = mass.flatten(1).max(1).values[:, None, None]
    score = torch.where(mass >= best - 1e-6, -dist2, torch.full_like(dist2, -math.inf))
    idx = score.flatten(1).argmax(1)                                           # (N,)
    r0, c0 = idx // (W - size + 1), idx % (W - size + 1)
    r = r0[:, None] + torch.arange(size)                                       # (N, size)
    c = c0[:, None] + torch.arange(size)
    n = torch.arange(N)[:, None, None]
    return frames[n, r[:, :, None], c[:, None, :]]                             # (N, size, size)


# ============================================================================ network
class DirectionUNet(nn.Module):
    """ε_θ(x_t, t, key, u) (or a velocity v_θ): a U-Net over the F future frames ``x_t [B, F, H, W]`` with the key
    frame ``key [B, 1, H, W]`` as an extra input channel; the direction u = (cos θ, sin θ)
    ``[B, 2]`` goes through an MLP (2 → E → E) and is added to the time embedding (E = 4·base),
    or, where ``keep [B]`` is False (or ``direction`` is None), the learned null embedding ∅.

    One ResBlock (:class:`~genmodels.diffusion.models.ResBlock`) per resolution down and up, two
    in the middle, stride-2 convolutions down, nearest-neighbour upsampling back to the skip's
    size. Returns ε (or v) ``[B, F, H, W]``. ``t``: integer DDPM steps (``time_scale=1``) or
    flow times in [0, 1] (``time_scale=1000``).

    ``output="transform"`` (flow times only): the velocity toward the key frame moved by one
    softmax kernel per frame (k = ``motion_kernel``), v = (x̂_1 − x_t) / max(1 − t, ``min_gap``)
    (module docstring); the kernels come from the bottleneck's features and the time + direction
    embedding, and the up path is not run. ``"transform_blend"`` also runs the up path and blends
    the moved key frame with drawn pixels through a per-pixel mask.
    """

    def __init__(self, frames: int, base_channels: int = 32, channel_mults: Sequence[int] = (1, 2, 2),
                 num_groups: int = 8, time_scale: float = 1.0, output: str = "direct",
                 motion_kernel: int = 13, min_gap: float = 0.02):
        super().__init__()
        check_int("frames", frames, minimum=1)
        check_unet_args(base_channels, channel_mults, num_groups)
        if output not in ("direct", "transform", "transform_blend"):
            raise ValueError(f"output: must be 'direct', 'transform' or 'transform_blend', got {output!r}")
        if output != "direct":
            check_int("motion_kernel", motion_kernel, minimum=1)
            if motion_kernel % 2 == 0:
                raise ValueError(f"motion_kernel: must be odd (a centred kernel), got {motion_kernel}")
            if not (isinstance(min_gap, (int, float)) and 0 < min_gap < 1):
                raise ValueError(f"min_gap: expected a number in (0, 1), got {min_gap!r}")
        self.frames, self.output, self.motion_kernel, self.min_gap = frames, output, motion_kernel, min_gap
        E = 4 * base_channels
        self.time_embed = nn.Sequential(SinusoidalTimeEmbedding(base_channels, time_scale), nn.Linear(base_channels, E),
                                        nn.SiLU(), nn.Linear(E, E))
        self.direction_embed = nn.Sequential(nn.Linear(2, E), nn.SiLU(), nn.Linear(E, E))
        self.null_direction = nn.Parameter(torch.zeros(E))                     # ∅, learned
        chs = [base_channels * m for m in channel_mults]
        self.conv_in = nn.Conv2d(frames + 1, base_channels, 3, padding=1)
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        prev = base_channels
        for i, ch in enumerate(chs):
            self.down.append(ResBlock(prev, ch, E, num_groups))
            if i < len(chs) - 1:
                self.downsample.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
            prev = ch
        self.mid1, self.mid2 = ResBlock(prev, prev, E, num_groups), ResBlock(prev, prev, E, num_groups)
        if output != "transform":            # the up path draws pixels ("transform" only moves the key frame)
            self.upsample = nn.ModuleList([nn.Conv2d(prev, prev, 3, padding=1) for _ in chs[:-1]])
            self.up = nn.ModuleList()
            for i in reversed(range(len(chs))):
                self.up.insert(0, ResBlock(prev + chs[i], chs[i], E, num_groups))
                prev = chs[i]
            self.norm_out = nn.GroupNorm(_groups(num_groups, prev), prev)
            self.conv_out = nn.Conv2d(prev, 2 * frames if output == "transform_blend" else frames, 3,
                                      padding=1)                # (+ the mask's logits)
        if output != "direct":               # the bottleneck and the embedding → one k × k kernel per frame
            self.kernel_features = nn.Sequential(nn.Conv2d(chs[-1], 8, 1), nn.SiLU(), nn.AdaptiveAvgPool2d(6),
                                                 nn.Flatten())
            self.kernel_head = nn.Sequential(nn.Linear(8 * 36 + E, E), nn.SiLU(),
                                             nn.Linear(E, frames * motion_kernel ** 2))
            # the match term's gain per frame, from the time + direction embedding (softplus ≥ 0)
            self.match_gain = nn.Linear(E, frames)
            nn.init.zeros_(self.match_gain.weight)
            nn.init.constant_(self.match_gain.bias, -2.0)

    def condition(self, direction: torch.Tensor | None, keep: torch.Tensor | None, batch: int,
                  dtype: torch.dtype) -> torch.Tensor:
        """The direction embedding ``[batch, E]``: MLP(u) where ``keep``, ∅ elsewhere."""
        null = self.null_direction.to(dtype).expand(batch, -1)
        if direction is None:
            return null
        check_tensor("direction", direction, ndim=2)
        if direction.shape != (batch, 2):
            raise ValueError(f"direction: expected [{batch}, 2] unit vectors, got {list(direction.shape)}")
        emb = self.direction_embed(direction.to(dtype))
        if keep is None:
            return emb
        if not isinstance(keep, torch.Tensor) or keep.dtype != torch.bool or keep.shape != (batch,):
            raise ValueError(f"keep: expected a bool tensor [{batch}], got "
                             f"{getattr(keep, 'dtype', type(keep).__name__)} {list(getattr(keep, 'shape', []))}")
        return torch.where(keep[:, None], emb, null)

    def forward(self, x: torch.Tensor, t: torch.Tensor, key: torch.Tensor,
                direction: torch.Tensor | None = None, keep: torch.Tensor | None = None) -> torch.Tensor:
        check_tensor("x", x, ndim=4, finite=False)
        B, Fh, H, W = x.shape
        if Fh != self.frames:
            raise ValueError(f"x: expected {self.frames} frames as channels, got shape {list(x.shape)}")
        check_tensor("key", key, ndim=4)
        if key.shape != (B, 1, H, W):
            raise ValueError(f"key: expected [{B}, 1, {H}, {W}], got {list(key.shape)}")
        if not isinstance(t, torch.Tensor) or t.shape != (B,):
            raise ValueError(f"t: expected shape [{B}], got {list(getattr(t, 'shape', []))}")
        emb = self.time_embed(t).to(x.dtype) + self.condition(direction, keep, B, x.dtype)  # (B, E)
        h = self.conv_in(torch.cat([x, key.to(x.dtype)], 1))                   # (B, base, H, W)
        skips = []
        for i, block in enumerate(self.down):
            h = block(h, emb)
            skips.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)                                       # (B, C_i, ⌈H/2⌉, ⌈W/2⌉)
        h = self.mid2(self.mid1(h, emb), emb)
        bottom = h
        if self.output != "direct":
            kernel_logits = self.kernel_head(torch.cat([self.kernel_features(bottom), emb], 1))
            gain = F.softplus(self.match_gain(emb))                              # (B, F)
            kernel_logits = kernel_logits + (gain[:, :, None] * self.match_scores(x, key.to(x.dtype))).flatten(1)
        if self.output == "transform":                                          # the key frame moved, only
            return self.velocity_to(self.moved_frames(key.to(x.dtype), None, None, kernel_logits), x, t)
        for i in reversed(range(len(self.up))):
            if i < len(self.upsample):
                h = self.upsample[i](F.interpolate(h, size=skips[i].shape[-2:], mode="nearest"))
            h = self.up[i](torch.cat([h, skips[i]], 1), emb)                    # (B, C_i, H_i, W_i)
        out = self.conv_out(F.silu(self.norm_out(h)))                           # (B, F or 2F, H, W)
        if self.output == "direct":
            return out
        return self.velocity_to(self.moved_frames(key.to(x.dtype), out[:, :Fh], out[:, Fh:], kernel_logits),
                                x, t)

    def velocity_to(self, x1: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The flow-matching velocity that carries ``x`` (= x_t) to the predicted clean frames
        ``x1`` by t = 1 on the straight path: v = (x̂_1 − x_t) / max(1 − t, ``min_gap``)."""
        return (x1 - x) / (1 - t.to(x.dtype)).clamp(min=self.min_gap)[:, None, None, None]

    def match_scores(self, x: torch.Tensor, key: torch.Tensor) -> torch.Tensor:
        """How well each shift of the key frame matches each noisy frame (a cost volume, as in
        optical flow): ``[B, F, k²]``, entry j = Σ_p (K_j ⋆ key)(p) · x_t(p) / Σ_p key(p)² in [0, 1]
        units (``x [B, F, H, W]``, ``key [B, 1, H, W]`` in [−1, 1]), with K_j the one-hot kernel at
        j — the same indexing as :meth:`moved_frames`' kernels, so a frame that *is* the key frame
        moved by K_j scores 1 at j. Added to the kernel logits with a learned gain ≥ 0 per frame
        (from the time and direction embedding): near t = 1 the noisy frames say where the digit
        is to the pixel, which the bottleneck's 4× coarser features cannot."""
        B, Fh, H, W = x.shape
        k, c = self.motion_kernel, self.motion_kernel // 2
        key01 = (key + 1) / 2                                                   # (B, 1, H, W)
        x01 = F.pad((x + 1) / 2, (c, c, c, c)).reshape(1, B * Fh, H + 2 * c, W + 2 * c)
        weight = key01.expand(B, Fh, H, W).reshape(B * Fh, 1, H, W)
        corr = F.conv2d(x01, weight, groups=B * Fh).view(B, Fh, k, k)          # Σ_p x(p + d − c) key(p)
        corr = corr.flip(-1, -2)                                                # d → kernel index j = 2c − d
        norm = key01.square().sum((-1, -2)).clamp(min=1e-6)                     # (B, 1)
        return corr.reshape(B, Fh, k * k) / norm[:, :, None]

    def moved_frames(self, key: torch.Tensor, pixels: torch.Tensor | None, mask_logits: torch.Tensor | None,
                     kernel_logits: torch.Tensor) -> torch.Tensor:
        """x̂_1 ``[B, F, H, W]`` of the ``"transform"`` output, in [−1, 1] like ``key [B, 1, H, W]``:
        per frame h the key frame convolved with the softmax kernel of ``kernel_logits[:, h]``
        (``[B, F·k²]``), in [0, 1] with zero padding (the background, −1, enters from outside),
        blended by σ(``mask_logits``) with ``pixels`` (both ``[B, F, H, W]``; None: no blend)."""
        B, k = key.shape[0], self.motion_kernel
        Fh, H, W = kernel_logits.shape[1] // (k * k), *key.shape[-2:]
        kernel = torch.softmax(kernel_logits.view(B * Fh, k * k), dim=1).view(B * Fh, 1, k, k)
        key01 = ((key + 1) / 2).expand(B, Fh, H, W).reshape(1, B * Fh, H, W)
        moved = F.conv2d(key01, kernel, padding=k // 2, groups=B * Fh).view(B, Fh, H, W) * 2 - 1
        if pixels is None:
            return moved
        mask = torch.sigmoid(mask_logits)
        return mask * moved + (1 - mask) * pixels


def direction_eps_model(net: Callable[..., torch.Tensor], key: torch.Tensor, direction: torch.Tensor,
                        guidance_scale: float) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """An ``eps_model(x_t, t)`` (or ``velocity_model``) for the samplers: the classifier-free-guided
    ε̃ = ε(·, ∅) + s (ε(·, u) − ε(·, ∅)) of ``net(x_t, t, key, direction, keep)`` for the key
    frames ``key [B, 1, H, W]`` and directions ``direction [B, 2]``, at s = ``guidance_scale``
    (for a flow-matching network the same mixing of its two velocities, ṽ = v_∅ + s (v_u − v_∅)).

    The mixing is :func:`~genmodels.diffusion.guidance.guided_eps_model`'s (one call on the batch
    doubled, s = 0 and s = 1 with one call): its "labels" here are the row indices 0…B−1, and
    the null label B means ∅; the doubled batch [x; x] gets the key frames [key; key].
    """
    check_tensor("key", key, ndim=4)
    check_tensor("direction", direction, ndim=2)
    B = key.shape[0]
    if direction.shape != (B, 2):
        raise ValueError(f"direction: expected [{B}, 2], got {list(direction.shape)}")
    check_positive("guidance_scale", guidance_scale, allow_zero=True)

    def indexed(x_t: torch.Tensor, t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        reps = x_t.shape[0] // B                                                # 1, or 2 for [x; x]
        keep = idx < B
        return net(x_t, t, key.repeat(reps, 1, 1, 1), direction[idx.clamp(max=B - 1)], keep)

    rows = torch.arange(B, device=key.device)
    return guided_eps_model(indexed, rows, guidance_scale, null_label=B)
