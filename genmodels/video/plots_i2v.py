"""Figures of image-to-video with a motion brush: the angle errors as histograms, and the class
agreement and FD per generated frame. (Frame strips and the GIF: genmodels/video/plots.py.)"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from genmodels.plotting import plt, save_figure

__all__ = ["save_angle_histogram", "save_per_frame", "save_brush_tracks"]


def save_angle_histogram(panels: dict[str, dict[str, torch.Tensor]], path: str | Path,
                         bins: int = 18) -> Path:
    """One panel per entry of ``panels`` (title → name → absolute angle errors ``[N]`` in
    degrees, 0…180), one histogram (step line) per name with its mean in the legend; the dotted
    line is the density of a direction drawn at random (uniform on 0…180°, mean 90°)."""
    if not isinstance(panels, dict) or not panels or not all(isinstance(v, dict) and v for v in panels.values()):
        raise ValueError("panels: expected a non-empty dict title -> {name -> [N] angle errors (degrees)}")
    edges = np.linspace(0, 180, bins + 1)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 3.6), squeeze=False, sharey=True)
    for ax, (title, errors) in zip(axes[0], panels.items()):
        for i, (name, e) in enumerate(errors.items()):
            if not isinstance(e, torch.Tensor) or e.ndim != 1 or len(e) == 0:
                raise ValueError(f"panels: {title!r} / {name!r} must be a non-empty [N] tensor, "
                                 f"got {getattr(e, 'shape', e)}")
            v = e.double().numpy()
            color = "0.3" if name.startswith("real") else f"C{i}"
            ax.hist(v, bins=edges, density=True, histtype="step", lw=1.5, color=color,
                    label=f"{name}: mean {v.mean():.1f}°")
        ax.axhline(1 / 180, color="0.5", ls=":", lw=1, label="a random direction (mean 90°)")
        ax.set_xlim(0, 180)
        ax.set_xticks(range(0, 181, 30))
        ax.set_xlabel("|tracked − requested direction| (degrees)")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7, loc="upper right")
    axes[0, 0].set_ylabel("density")
    fig.suptitle("motion brush on held-out clips: direction of the tracked digit vs the request", fontsize=9)
    return save_figure(fig, path, dpi=110)


def save_per_frame(curves: dict[str, dict[str, torch.Tensor]], path: str | Path) -> Path:
    """One panel per metric of ``curves`` (``agree``: the fraction of frames classified as the
    key frame; ``fd``: yardstick FD to the true frames), one line per entry (name → ``[F]``)
    against the frame index h = 1…F."""
    if not isinstance(curves, dict) or not curves:
        raise ValueError("curves: expected a non-empty dict metric -> name -> [F]")
    titles = {"agree": "class of the key frame kept (yardstick), higher is better",
              "fd": "yardstick FD to the true frame h, lower is better"}
    panels = [(k, v) for k, v in curves.items() if v]
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 3.4), squeeze=False)
    for ax, (metric, lines) in zip(axes[0], panels):
        for i, (name, v) in enumerate(lines.items()):
            style = ":" if name.startswith("real") else "o-"
            color = "0.3" if name.startswith("real") else f"C{i}"
            ax.plot(range(1, len(v) + 1), v.double().numpy(), style, color=color, ms=4, label=name)
        ax.set_title(titles.get(metric, metric), fontsize=8)
        ax.set_xlabel("frame h after the key frame")
        ax.set_xticks(range(1, len(next(iter(lines.values()))) + 1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, path, dpi=110)


def save_brush_tracks(keys: torch.Tensor, requested: torch.Tensor, tracks: torch.Tensor, speed: float,
                      path: str | Path, title: str = "") -> Path:
    """Per key frame (``keys [N, H, W]``), drawn faintly: the tracked path of the digit's centre
    (``tracks [N, D, F + 1, 2]``, rows and columns, the key frame first) for each of the D
    requested directions (``requested [D]``, degrees), with the request as a grey arrow of
    ``speed`` × F pixels from the key frame's centre."""
    if not isinstance(keys, torch.Tensor) or keys.ndim != 3:
        raise ValueError(f"keys: expected [N, H, W], got {getattr(keys, 'shape', type(keys).__name__)}")
    N, H, W = keys.shape
    if not isinstance(requested, torch.Tensor) or requested.ndim != 1:
        raise ValueError("requested: expected [D] angles in degrees")
    D = len(requested)
    if not isinstance(tracks, torch.Tensor) or tracks.ndim != 4 or tracks.shape[:2] != (N, D) \
            or tracks.shape[-1] != 2 or tracks.shape[2] < 2:
        raise ValueError(f"tracks: expected [{N}, {D}, F + 1, 2], got {getattr(tracks, 'shape', None)}")
    Fh = tracks.shape[2] - 1
    fig, axes = plt.subplots(1, N, figsize=(3.2 * N, 3.4), squeeze=False)
    rad = torch.deg2rad(requested.double())
    for i, ax in enumerate(axes[0]):
        ax.imshow(keys[i].numpy(), cmap="gray", vmin=0, vmax=2.5, interpolation="nearest")
        c0 = tracks[i, 0, 0].double()
        for j in range(D):
            dr, dc = -math.sin(rad[j]) * speed * Fh, math.cos(rad[j]) * speed * Fh
            ax.annotate("", xy=(c0[1] + dc, c0[0] + dr), xytext=(c0[1], c0[0]),
                        arrowprops=dict(arrowstyle="->", color="0.6", lw=1))
            p = tracks[i, j].double().numpy()
            ax.plot(p[:, 1], p[:, 0], ".-", color=f"C{j % 10}", lw=1.3, ms=3)
        ax.set_xlim(-0.5, W - 0.5)
        ax.set_ylim(H - 0.5, -0.5)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle(title or "grey: requested directions; colour: the tracked digit in the generated frames",
                 fontsize=8)
    return save_figure(fig, path, dpi=110)
