r"""What a video predictor must beat, and the tracker that reads positions off frames.

* **copy last**: every future frame is the last observed one, x̂_{k+h} = x_k;
* **shift last**: the last observed motion continues: the integer shift s = (Δrow, Δcol) that
  best maps x_{k−1} onto x_k (brute-force search over |Δ| ≤ ``max_shift``, least mean squared
  error) is applied h times, x̂_{k+h} = shift(x_k, h·s), with zeros shifted in (no bounce);
* **tracker**: the intensity centre of mass of a frame, (Σ r·x / Σ x, Σ c·x / Σ x), the
  position of a single digit (exact on the clips of :mod:`genmodels.video.data`).
"""

from __future__ import annotations

import torch

from genmodels._checks import check_tensor

__all__ = ["shift_frames", "estimate_shift", "copy_last", "shift_last", "centre_of_mass"]


def _check_int(name, v, low):
    if isinstance(v, bool) or not isinstance(v, int) or v < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {v!r}")


def shift_frames(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """``x [B, C, H, W]`` moved by ``shifts [B, 2]`` integer (rows, columns) each, content
    leaving the frame dropped and zeros shifted in."""
    check_tensor("x", x, ndim=4)
    check_tensor("shifts", shifts, ndim=2, floating=False)
    if shifts.shape != (x.shape[0], 2) or shifts.is_floating_point() and not torch.equal(shifts, shifts.round()):
        raise ValueError(f"shifts: expected integers [{x.shape[0]}, 2], got {list(shifts.shape)} "
                         f"{shifts.dtype}")
    B, C, H, W = x.shape
    rows = torch.arange(H, device=x.device)[None, :] - shifts[:, :1].long()   # source row (B, H)
    cols = torch.arange(W, device=x.device)[None, :] - shifts[:, 1:].long()   # source col (B, W)
    ok = ((rows >= 0) & (rows < H))[:, :, None] & ((cols >= 0) & (cols < W))[:, None, :]  # (B, H, W)
    r = rows.clamp(0, H - 1)[:, None, :, None].expand(B, C, H, W)
    c = cols.clamp(0, W - 1)[:, None, None, :].expand(B, C, H, W)
    out = x.gather(2, r).gather(3, c)
    return out * ok[:, None].to(x.dtype)


def estimate_shift(prev: torch.Tensor, last: torch.Tensor, max_shift: int = 4) -> torch.Tensor:
    """The integer shift ``[B, 2]`` (rows, columns), |each| ≤ ``max_shift``, that minimises the
    mean squared error between ``shift(prev)`` and ``last`` (both ``[B, C, H, W]``); ties go to
    the smaller shift (|Δr| + |Δc|, then the scan order)."""
    check_tensor("prev", prev, ndim=4)
    check_tensor("last", last, ndim=4)
    if prev.shape != last.shape:
        raise ValueError(f"last: expected the shape of prev {list(prev.shape)}, got {list(last.shape)}")
    _check_int("max_shift", max_shift, 0)
    r = range(-max_shift, max_shift + 1)
    cands = sorted(((dr, dc) for dr in r for dc in r), key=lambda s: abs(s[0]) + abs(s[1]))
    B = prev.shape[0]
    errs = torch.stack([(shift_frames(prev, torch.tensor([s] * B, device=prev.device)) - last)
                        .pow(2).flatten(1).mean(1) for s in cands], 1)      # (B, candidates)
    best = errs.argmin(1)                                                # first minimum: smallest
    return torch.tensor(cands, device=prev.device)[best]


def _check_context(context, horizon):
    check_tensor("context", context, ndim=5)
    if context.shape[1] < 1:
        raise ValueError(f"context: expected at least one frame, got {list(context.shape)}")
    _check_int("horizon", horizon, 1)


def copy_last(context: torch.Tensor, horizon: int) -> torch.Tensor:
    """``[B, horizon, C, H, W]``: the last of the ``context [B, k, C, H, W]`` frames, repeated."""
    _check_context(context, horizon)
    return context[:, -1:].expand(-1, horizon, -1, -1, -1).clone()


def shift_last(context: torch.Tensor, horizon: int, max_shift: int = 4) -> torch.Tensor:
    """``[B, horizon, C, H, W]``: the last frame of ``context [B, k ≥ 2, C, H, W]`` shifted by h
    times the motion between its last two frames (:func:`estimate_shift`), h = 1…horizon."""
    _check_context(context, horizon)
    if context.shape[1] < 2:
        raise ValueError(f"context: the motion needs two frames, got {context.shape[1]}")
    last = context[:, -1]
    s = estimate_shift(context[:, -2], last, max_shift)
    return torch.stack([shift_frames(last, h * s) for h in range(1, horizon + 1)], 1)


def centre_of_mass(frames: torch.Tensor) -> torch.Tensor:
    """Intensity centre of mass ``[..., 2]`` (row, column) of ``frames [..., H, W]`` (values
    >= 0); a frame with no intensity gets the centre of the canvas, ((H − 1)/2, (W − 1)/2)."""
    check_tensor("frames", frames, min_ndim=2)
    if (frames < 0).any():
        raise ValueError("frames: expected intensities >= 0")
    H, W = frames.shape[-2:]
    mass = frames.sum((-2, -1))
    rows = torch.arange(H, dtype=frames.dtype, device=frames.device)
    cols = torch.arange(W, dtype=frames.dtype, device=frames.device)
    r = (frames.sum(-1) * rows).sum(-1)
    c = (frames.sum(-2) * cols).sum(-1)
    empty = mass <= 0
    safe = torch.where(empty, torch.ones_like(mass), mass)
    com = torch.stack([r / safe, c / safe], -1)
    centre = torch.tensor([(H - 1) / 2, (W - 1) / 2], dtype=frames.dtype, device=frames.device)
    return torch.where(empty[..., None], centre, com)
