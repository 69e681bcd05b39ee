"""Figures of video prediction: frames side by side, scores per horizon, and an animated GIF
(and an MP4 beside it where an ffmpeg is installed: :func:`find_ffmpeg`, :func:`save_animation`)."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from genmodels.plotting import plt, save_figure

__all__ = ["save_prediction_frames", "save_horizon_plot", "save_prediction_gif", "save_track_plot",
           "find_ffmpeg", "save_animation"]


def find_ffmpeg() -> str | None:
    """The ffmpeg executable the MP4s are written with: ``ffmpeg`` on the PATH (e.g. ``apt-get
    install ffmpeg``), else the binary bundled by ``pip install imageio-ffmpeg``, else None (then
    only GIFs are written)."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:                                    # the package without its binary
        return None


def save_animation(anim, path: str | Path, fps: float) -> list[Path]:
    """Write a matplotlib animation as an animated GIF at ``path`` (PillowWriter) and, where
    :func:`find_ffmpeg` finds an ffmpeg, as an H.264 MP4 beside it (same name, ``.mp4``; the
    frame padded to even sides, as yuv420p needs). Returns the files written."""
    from matplotlib import rcParams
    from matplotlib.animation import FFMpegWriter, PillowWriter

    if not fps > 0:
        raise ValueError(f"fps: must be > 0, got {fps}")
    path = Path(path)
    if path.suffix.lower() != ".gif":
        raise ValueError(f"path: expected a .gif file name, got {path.name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    anim.save(path, writer=PillowWriter(fps=fps))
    out = [path]
    ffmpeg = find_ffmpeg()
    if ffmpeg is not None:
        mp4 = path.with_suffix(".mp4")
        old = rcParams["animation.ffmpeg_path"]
        rcParams["animation.ffmpeg_path"] = ffmpeg
        try:
            anim.save(mp4, writer=FFMpegWriter(fps=fps, codec="libx264", extra_args=[
                "-pix_fmt", "yuv420p", "-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"]))
        finally:
            rcParams["animation.ffmpeg_path"] = old
        out.append(mp4)
    return out

_STYLE = {"model": ("ConvLSTM", "C0", "o-"), "copy": ("copy last frame", "C1", "s--"),
          "shift": ("shift by last motion", "C2", "^--"), "blank": ("blank frame", "0.6", ":")}


def _check(context, rows):
    if not isinstance(context, torch.Tensor) or context.ndim != 5:
        raise ValueError(f"context: expected [N, k, C, H, W], got "
                         f"{list(context.shape) if isinstance(context, torch.Tensor) else type(context).__name__}")
    if not rows:
        raise ValueError("rows: expected at least one row of frames, got none")
    shape = next(iter(rows.values())).shape
    for name, r in rows.items():
        if r.shape != shape or r.shape[0] != context.shape[0] or r.shape[2:] != context.shape[2:]:
            raise ValueError(f"rows: {name!r} has shape {list(r.shape)}, expected {list(shape)} "
                             f"matching context {list(context.shape)}")


def save_prediction_frames(context: torch.Tensor, rows: dict[str, torch.Tensor], path: str | Path,
                           show_context: int = 3) -> Path:
    """Per clip: the last ``show_context`` frames of ``context [N, k, C, H, W]``, then each of
    ``rows`` (name → ``[N, F, C, H, W]``: truth, the model, the baselines) as one row of the F
    future frames; one picture, frames separated by white lines."""
    _check(context, rows)
    N, k, _, H, W = context.shape
    Fh = next(iter(rows.values())).shape[1]
    c = min(show_context, k)
    R, Cn, gap = N * len(rows), c + Fh, 2
    sheet = torch.full((R * (H + gap) + gap, Cn * (W + gap) + gap + gap), 1.0)   # white background
    for i in range(N):
        for j, frames in enumerate(rows.values()):
            r = i * len(rows) + j
            cells = ([context[i, k - c + t] for t in range(c)] if j == 0 else [None] * c) \
                + [frames[i, h] for h in range(Fh)]
            for col, img in enumerate(cells):
                if img is None:
                    continue
                y = gap + r * (H + gap)
                x = gap + col * (W + gap) + (gap if col >= c else 0)           # a wider gap at "now"
                sheet[y:y + H, x:x + W] = img.mean(0)
    fig, ax = plt.subplots(figsize=(max(0.55 * Cn + 1.4, 5.0), 0.55 * R + 0.9))   # room for labels and title
    ax.imshow(sheet.numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([gap + col * (W + gap) + (gap if col >= c else 0) + W / 2 for col in range(Cn)],
                  [f"t={k - c + t + 1}" for t in range(c)] + [f"+{h + 1}" for h in range(Fh)], fontsize=7)
    names = list(rows)
    ax.set_yticks([gap + r * (H + gap) + H / 2 for r in range(R)],
                  [names[r % len(names)] for r in range(R)], fontsize=7)
    ax.tick_params(length=0)
    ax.set_title(f"last {c} observed frame{'s' if c > 1 else ''}, then {Fh} predicted\n"
                 f"(+h: h frames after the last observed)", fontsize=8)
    return save_figure(fig, path, dpi=120)


def save_horizon_plot(scores: dict[str, dict[str, torch.Tensor]], path: str | Path) -> Path:
    """One panel per metric (PSNR, SSIM, tracked position error) against the horizon, for each
    method of ``scores`` (method → metric → ``[F]``)."""
    if not scores:
        raise ValueError("scores: expected at least one method, got none")
    metrics = list(next(iter(scores.values())))
    titles = {"psnr": "PSNR (dB), higher is better", "ssim": "SSIM, higher is better",
              "track_err": "tracked position error (px), lower is better"}
    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.2), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for method, s in scores.items():
            label, color, style = _STYLE.get(method, (method, None, "o-"))
            v = s[metric]
            ax.plot(range(1, len(v) + 1), v.numpy(), style, color=color, label=label, ms=4)
        ax.set_title(titles.get(metric, metric), fontsize=9)
        ax.set_xlabel("horizon (frames after the last observed)")
        ax.set_xticks(range(1, len(next(iter(scores.values()))[metric]) + 1))
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return save_figure(fig, path, dpi=110)


def save_prediction_gif(context: torch.Tensor, rows: dict[str, torch.Tensor], path: str | Path,
                        fps: float = 4.0) -> list[Path]:
    """An animated GIF (matplotlib's PillowWriter; an MP4 beside it where an ffmpeg is found,
    :func:`save_animation`): one column per entry of ``rows`` (the first is the truth), one row
    per clip; the observed frames play in every column, then each column its own future frames
    (title "observed" / "predicted +h"). Returns the files written."""
    from matplotlib.animation import FuncAnimation

    _check(context, rows)
    if not fps > 0:
        raise ValueError(f"fps: must be > 0, got {fps}")
    N, k = context.shape[:2]
    Fh = next(iter(rows.values())).shape[1]
    names = list(rows)
    fig, axes = plt.subplots(N, len(names), figsize=(1.4 * len(names), 1.4 * N + 0.5), squeeze=False)
    ims = []
    for i in range(N):
        for j, name in enumerate(names):
            ax = axes[i, j]
            ims.append(ax.imshow(context[i, 0].squeeze(0).numpy(), cmap="gray", vmin=0, vmax=1,
                                 interpolation="nearest"))
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=8)
    title = fig.suptitle("", fontsize=9)

    def frame(t):
        for i in range(N):
            for j, name in enumerate(names):
                img = context[i, t] if t < k else rows[name][i, t - k]
                ims[i * len(names) + j].set_data(img.squeeze(0).numpy())
        title.set_text(f"observed frame {t + 1}/{k}" if t < k else f"predicted +{t - k + 1}")
        return ims

    anim = FuncAnimation(fig, frame, frames=k + Fh, blit=False)
    try:
        return save_animation(anim, path, fps)
    finally:
        plt.close(fig)


def save_track_plot(centres: torch.Tensor, context: int, tracked: dict[str, torch.Tensor],
                    canvas: int, path: str | Path) -> Path:
    """Per clip, on the canvas: the digit's true path (``centres [N, T, 2]``, row and column;
    the first ``context`` frames observed) and each method's tracked path over the future
    (``tracked``: method → ``[N, T − context, 2]``, centres of mass of its predicted frames)."""
    if not isinstance(centres, torch.Tensor) or centres.ndim != 3 or centres.shape[-1] != 2:
        raise ValueError(f"centres: expected [N, T, 2], got "
                         f"{list(centres.shape) if isinstance(centres, torch.Tensor) else type(centres).__name__}")
    N, T = centres.shape[:2]
    if not 1 <= context < T:
        raise ValueError(f"context: expected an integer in [1, {T - 1}], got {context!r}")
    for name, v in tracked.items():
        if v.shape != (N, T - context, 2):
            raise ValueError(f"tracked: {name!r} has shape {list(v.shape)}, expected {[N, T - context, 2]}")
    fig, axes = plt.subplots(1, N, figsize=(2.6 * N, 2.9), squeeze=False)
    for i, ax in enumerate(axes[0]):
        c = centres[i].numpy()
        ax.plot(c[:context, 1], c[:context, 0], "k.-", lw=1, ms=3, label="observed")
        ax.plot(c[context - 1:, 1], c[context - 1:, 0], "k.--", lw=1, ms=3, label="true future")
        for name, v in tracked.items():
            label, color, style = _STYLE.get(name, (name, None, "o-"))
            p = torch.cat([centres[i, context - 1:context], v[i]]).numpy()
            ax.plot(p[:, 1], p[:, 0], style, color=color, lw=1, ms=3, label=label)
        ax.set_xlim(-0.5, canvas - 0.5)
        ax.set_ylim(canvas - 0.5, -0.5)                                 # rows grow downwards
        ax.set_aspect("equal")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"clip {i + 1}", fontsize=8)
    axes[0, 0].legend(fontsize=6, loc="best")
    fig.suptitle("digit centre: true path vs the tracker on each prediction", fontsize=9)
    return save_figure(fig, path, dpi=110)
