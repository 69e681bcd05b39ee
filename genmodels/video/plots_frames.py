"""Figures of frame interpolation and super-resolution: image columns side by side, and a clip
played at its original and at its doubled frame rate."""

from __future__ import annotations

from pathlib import Path

import torch

from genmodels.plotting import plt, save_figure

__all__ = ["save_columns", "save_doubled_gif"]


def _check_columns(columns):
    if not isinstance(columns, dict) or not columns:
        raise ValueError("columns: expected a non-empty dict name -> [N, C, H, W]")
    first = next(iter(columns.values()))
    for name, x in columns.items():
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or len(x) != len(first) or len(x) == 0:
            raise ValueError(f"columns: {name!r} must be a non-empty [N, C, H, W] tensor with the "
                             f"N of the first column, got {getattr(x, 'shape', type(x).__name__)}")


def save_columns(columns: dict[str, torch.Tensor], path: str | Path, title: str = "") -> Path:
    """One column per entry of ``columns`` (name → ``[N, C, H, W]`` in [0, 1]; the sizes may
    differ: a low-resolution image is drawn as its big pixels), one row per item."""
    _check_columns(columns)
    names = list(columns)
    N = len(columns[names[0]])
    fig, axes = plt.subplots(N, len(names), figsize=(1.3 * len(names), 1.3 * N + 0.4), squeeze=False)
    for j, name in enumerate(names):
        for i in range(N):
            ax = axes[i, j]
            ax.imshow(columns[name][i].float().clamp(0, 1).mean(0).numpy(), cmap="gray", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=7)
    if title:
        fig.suptitle(title, fontsize=8)
    return save_figure(fig, path, dpi=120)


def save_doubled_gif(rows: dict[str, torch.Tensor], path: str | Path, fps: float = 8.0) -> list[Path]:
    """An animated GIF (and an MP4 beside it where an ffmpeg is found,
    :func:`~genmodels.video.plots.save_animation`), one panel per entry of ``rows`` (name → one
    clip ``[T, C, H, W]``, all of the same T), played side by side at ``fps`` — a clip at half its
    frame rate (each frame shown twice) next to the same clip doubled by interpolation shows what
    60 → 120 fps adds. Returns the files written."""
    from matplotlib.animation import FuncAnimation

    from genmodels.video.plots import save_animation

    if not isinstance(rows, dict) or not rows:
        raise ValueError("rows: expected a non-empty dict name -> [T, C, H, W]")
    T = next(iter(rows.values())).shape[0]
    for name, x in rows.items():
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[0] != T:
            raise ValueError(f"rows: {name!r} must be a [T, C, H, W] tensor with T={T}, "
                             f"got {getattr(x, 'shape', type(x).__name__)}")
    if not fps > 0:
        raise ValueError(f"fps: must be > 0, got {fps}")
    names = list(rows)
    fig, axes = plt.subplots(1, len(names), figsize=(1.6 * len(names), 2.0), squeeze=False)
    ims = []
    for j, name in enumerate(names):
        ax = axes[0, j]
        ims.append(ax.imshow(rows[name][0].float().clamp(0, 1).mean(0).numpy(), cmap="gray",
                             vmin=0, vmax=1, interpolation="nearest"))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(name, fontsize=7)
    title = fig.suptitle("", fontsize=8)

    def frame(t):
        for j, name in enumerate(names):
            ims[j].set_data(rows[name][t].float().clamp(0, 1).mean(0).numpy())
        title.set_text(f"frame {t + 1}/{T}")
        return ims

    anim = FuncAnimation(fig, frame, frames=T, blit=False)
    try:
        return save_animation(anim, path, fps)
    finally:
        plt.close(fig)
