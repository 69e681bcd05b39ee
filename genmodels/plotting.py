"""Figures shared by the families: loss curves from metrics.jsonl and image grids."""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # no display needed; set before pyplot is imported
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

__all__ = ["plot_metrics", "image_grid", "save_image_grid"]


def save_figure(fig, path: str | Path, dpi: int = 110, tight: bool = True) -> Path:
    """Write ``fig`` to ``path`` (its folder made if missing), after ``tight_layout`` unless
    ``tight`` is false, and close it; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if tight:
        fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return path


def plot_metrics(records: list[dict], path: str | Path) -> Path:
    """One panel per metric: training values (thin) and validation values (dots) against step."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    series: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    skip = {"step", "split", "lr", "train_time_s"}
    for r in records:
        if r.get("split") not in ("train", "val"):
            continue
        for k, v in r.items():
            if k not in skip and isinstance(v, (int, float)) and math.isfinite(v):
                series[k][r["split"]].append((r["step"], v))
    names = sorted(series) or ["(no metrics)"]
    cols = min(3, len(names))
    rows = math.ceil(len(names) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.0 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        for split, style in (("train", "-"), ("val", "o-")):
            pts = series.get(name, {}).get(split)
            if pts:
                xs, ys = zip(*pts)
                ax.plot(xs, ys, style, label=split, lw=1, ms=3)
        ax.set_title(name)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    save_figure(fig, path, dpi=110)
    return path


def image_grid(images: torch.Tensor, nrow: int | None = None, pad: int = 1) -> torch.Tensor:
    """Tile ``images [N, C, H, W]`` (values in [0, 1]) into one ``[C, rows·(H+pad), cols·(W+pad)]``."""
    n, c, h, w = images.shape
    cols = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    grid = torch.ones(c, rows * (h + pad) + pad, cols * (w + pad) + pad)
    for i, img in enumerate(images.detach().float().cpu().clamp(0, 1)):
        r, col = divmod(i, cols)
        grid[:, pad + r * (h + pad):pad + r * (h + pad) + h,
             pad + col * (w + pad):pad + col * (w + pad) + w] = img
    return grid


def save_image_grid(images: torch.Tensor, path: str | Path, nrow: int | None = None,
                    title: str | None = None, row_labels: list[str] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    grid = image_grid(images, nrow)
    fig, ax = plt.subplots(figsize=(6, 6 * grid.shape[1] / grid.shape[2] + (0.4 if title else 0)))
    ax.imshow(grid.permute(1, 2, 0).squeeze(-1), cmap="gray", vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_xticks([])
    if row_labels:
        h = grid.shape[1] / len(row_labels)
        ax.set_yticks([h * (i + 0.5) for i in range(len(row_labels))], row_labels, fontsize=7)
    else:
        ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    save_figure(fig, path, dpi=120)
    return path
