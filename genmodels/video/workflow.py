r"""The chapter's video project in miniature: a still from a text prompt, animated from that key
frame with a motion brush, then raised to twice the frame rate — three trained runs in a row.

1. **Text → still**: the prompt names a digit ("a seven", "7") and, optionally, a direction ("moving
   up and to the right"). A class-conditional diffusion model (``experiment=cfg_digits``, the
   classifier-free-guided DDPM) draws that digit: 8 × 8, guidance scale ``guidance``.
2. **Still → video** (the motion brush): the still is pasted in the middle of the video canvas as
   the key frame and the image-to-video model (``experiment=i2v_digits``) generates the next F
   frames moving towards the requested direction (guidance scale ``brush_scale``).
3. **60 → 120 fps**: the frame-interpolation model (``experiment=interp_digits``) draws a middle
   frame between every two neighbours: 2F + 1 frames from F + 1.

:func:`parse_prompt` reads the prompt (a rule-based parser: number words and numerals, the words
up / down / left / right), :func:`animate` runs the chain, :func:`save_workflow` writes the stages
as a figure and the clip as a GIF (and an MP4 where an ffmpeg is found). ``genmodels-animate`` is
the command (:func:`main`).
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from pathlib import Path

import torch

__all__ = ["DIGIT_WORDS", "parse_prompt", "animate", "save_workflow", "main"]

DIGIT_WORDS = {w: i for i, w in enumerate(
    ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"))}
_DIRS = {"right": (0, 1), "left": (0, -1), "up": (1, 0), "down": (-1, 0)}   # (up, right) components


def parse_prompt(prompt: str) -> tuple[int, float | None]:
    """The digit (0–9) a prompt asks for and the direction of motion in degrees counter-clockwise
    from "right" (None if it names none): "a seven moving up and to the right" → (7, 45.0).
    Opposite words cancel ("up … down" names no vertical motion)."""
    if not isinstance(prompt, str):
        raise ValueError(f"prompt: expected a string, got {type(prompt).__name__}")
    words = re.findall(r"[a-z]+|\d+", prompt.lower())
    digits = [DIGIT_WORDS[w] if w in DIGIT_WORDS else int(w) for w in words
              if w in DIGIT_WORDS or (w.isdigit() and len(w) == 1)]
    if len(set(digits)) != 1:
        raise ValueError(f"prompt: name exactly one digit (0-9 or zero … nine), got {prompt!r}")
    up = sum(_DIRS[w][0] for w in set(words) if w in _DIRS)
    right = sum(_DIRS[w][1] for w in set(words) if w in _DIRS)
    angle = None if up == right == 0 else math.degrees(math.atan2(up, right)) % 360.0
    return digits[0], angle


def _check_runs(still_task, video_task, interp_task) -> None:
    from genmodels.diffusion.task_guided import GuidedDiffusionTask
    from genmodels.video.task_frames import FrameInterpTask
    from genmodels.video.task_i2v import I2VTask

    if not isinstance(still_task, GuidedDiffusionTask):
        raise ValueError(f"--still-run: expected a class-conditional diffusion run "
                         f"(experiment=cfg_digits), got {type(still_task).__name__}")
    if not isinstance(video_task, I2VTask):
        raise ValueError(f"--video-run: expected an image-to-video run (experiment=i2v_digits), "
                         f"got {type(video_task).__name__}")
    if tuple(still_task.shape[-2:]) != (video_task.size, video_task.size):
        raise ValueError(f"--still-run: its images are {tuple(still_task.shape[-2:])}, the video "
                         f"model moves {video_task.size} x {video_task.size} images")
    if interp_task is not None:
        if not isinstance(interp_task, FrameInterpTask):
            raise ValueError(f"--interp-run: expected a frame-interpolation run "
                             f"(experiment=interp_digits), got {type(interp_task).__name__}")
        if interp_task.data.canvas != video_task.data.canvas:
            raise ValueError(f"--interp-run: its frames are {interp_task.data.canvas} px, the "
                             f"video's {video_task.data.canvas} px")


@torch.no_grad()
def animate(prompt: str, still_task, video_task, interp_task=None, direction: float | None = None,
            guidance: float = 3.0, brush_scale: float = 3.0, seed: int = 0) -> dict:
    """Run the chain (module docstring) for ``prompt``: ``direction`` (degrees) overrides the
    prompt's, and one of them must give one. Returns ``{"digit", "angle", "still" [S, S],
    "frames" [F + 1, H, W]`` (the key frame, then the generated ones) ``, "doubled" [2F + 1, H,
    W]`` (None without ``interp_task``), all in [0, 1]."""
    _check_runs(still_task, video_task, interp_task)
    digit, angle = parse_prompt(prompt)
    if direction is not None:
        if not isinstance(direction, (int, float)) or not math.isfinite(direction):
            raise ValueError(f"direction: expected a finite number of degrees, got {direction!r}")
        angle = float(direction) % 360.0
    if angle is None:
        raise ValueError(f"prompt: {prompt!r} names no direction (up, down, left, right); "
                         f"give one there or with --direction DEGREES")
    for name, v in (("guidance", guidance), ("brush_scale", brush_scale)):
        if not isinstance(v, (int, float)) or not 0 <= v <= 20:
            raise ValueError(f"{name}: expected a number in [0, 20], got {v!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed: expected an integer >= 0, got {seed!r}")
    g = torch.Generator(device=still_task.device).manual_seed(seed)
    label = torch.tensor([digit], device=still_task.device)
    x = still_task.sample_raw(1, labels=label, guidance_scale=float(guidance), generator=g)
    still = ((x.clamp(-1, 1) + 1) / 2)[0, 0].cpu()                              # (S, S)
    canvas, S = video_task.data.canvas, still.shape[-1]
    key = torch.zeros(1, canvas, canvas)
    c = (canvas - S) // 2                                                       # the middle, where i2v starts
    key[0, c:c + S, c:c + S] = still
    gen = video_task.generate(key, torch.tensor([angle], dtype=torch.float64), float(brush_scale),
                              seed=seed + 1)                                    # (1, F, H, W)
    frames = torch.cat([key, gen[0]])                                           # (F + 1, H, W)
    doubled = None
    if interp_task is not None:
        mids = interp_task.predictions(frames[:-1, None], frames[1:, None])["model"][:, 0]
        doubled = torch.stack([f for pair in zip(frames[:-1], mids) for f in pair] + [frames[-1]])
    return {"digit": digit, "angle": angle, "still": still, "frames": frames, "doubled": doubled}


def save_workflow(result: dict, out: str | Path, fps: float = 4.0) -> list[Path]:
    """The stages side by side (``<out stem>_stages.png``: the still, the key frame, the
    generated frames, the doubled clip) and the clip as an animated GIF at ``out`` (the brush's
    frames, each shown twice, beside the doubled clip at twice the rate; an MP4 beside it where an
    ffmpeg is found). Returns the files written."""
    from genmodels.plotting import plt, save_figure
    from genmodels.video.plots_frames import save_doubled_gif

    out = Path(out)
    if out.suffix.lower() != ".gif":
        raise ValueError(f"--out: expected a .gif file name, got {out.name!r}")
    frames, doubled = result["frames"], result["doubled"]
    rows = [("text → still", [result["still"]]), ("motion brush", list(frames))]
    if doubled is not None:
        rows.append(("× 2 frame rate", list(doubled)))
    cols = max(len(r[1]) for r in rows)
    fig, axes = plt.subplots(len(rows), cols, figsize=(1.0 * cols + 1.2, 1.15 * len(rows) + 0.5),
                             squeeze=False)
    for i, (name, imgs) in enumerate(rows):
        for j in range(cols):
            ax = axes[i, j]
            ax.set_xticks([])
            ax.set_yticks([])
            if j < len(imgs):
                ax.imshow(imgs[j].numpy(), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
            else:
                ax.axis("off")
        axes[i, 0].set_ylabel(name, fontsize=8)
    fig.suptitle(f"digit {result['digit']}, moving towards {result['angle']:.0f}°", fontsize=9)
    written = [save_figure(fig, out.with_name(out.stem + "_stages.png"))]
    if doubled is None:
        clips = {"motion brush": frames[:, None]}
    else:
        held = torch.stack([f for f in frames for _ in (0, 1)][:len(doubled)])  # each frame twice
        clips = {"brush frames": held[:, None], "× 2 by interpolation": doubled[:, None]}
    written += save_doubled_gif(clips, out, fps=2 * fps)
    return written


def main(argv: list[str] | None = None) -> int:
    """``genmodels-animate PROMPT --still-run DIR --video-run DIR [--interp-run DIR] --out x.gif``."""
    from genmodels.train.runs import load_run

    ap = argparse.ArgumentParser(
        prog="genmodels-animate",
        description="Text → still → video → twice the frame rate, from three trained runs "
                    "(cfg_digits, i2v_digits, interp_digits).")
    ap.add_argument("prompt", help='e.g. "a seven moving up and to the right"')
    ap.add_argument("--still-run", required=True, help="a cfg_digits run folder")
    ap.add_argument("--video-run", required=True, help="an i2v_digits run folder")
    ap.add_argument("--interp-run", help="an interp_digits run folder (optional: 60 → 120 fps)")
    ap.add_argument("--out", default="clip.gif", help="the GIF to write (default clip.gif)")
    ap.add_argument("--direction", type=float, help="degrees counter-clockwise from right "
                                                    "(overrides the prompt's)")
    ap.add_argument("--guidance", type=float, default=3.0, help="the still's guidance scale")
    ap.add_argument("--brush-scale", type=float, default=3.0, help="the motion brush's guidance scale")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    try:
        still = load_run(args.still_run, "guided_diffusion", option="--still-run")
        video = load_run(args.video_run, "video_i2v", option="--video-run")
        interp = None if args.interp_run is None else load_run(args.interp_run, "video_interp",
                                                               option="--interp-run")
        result = animate(args.prompt, still, video, interp, args.direction, args.guidance,
                         args.brush_scale, args.seed)
        paths = save_workflow(result, args.out)
    except ValueError as e:
        print(f"genmodels-animate: {e}", file=sys.stderr)
        return 2
    print(f"digit {result['digit']}, towards {result['angle']:.0f}°: " + ", ".join(str(p) for p in paths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
