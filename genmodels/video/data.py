r"""Moving digits: clips of small images that move at constant velocity on a larger canvas and
bounce off its walls (the Moving MNIST of Srivastava et al., 2015, made from embedded data).

Each digit has a continuous position p_t (the top-left corner of its box, in pixels) and velocity
v; every frame it moves p_{t+1} = p_t + v, and a coordinate that leaves [0, L] (L = canvas − image
size) is reflected back, its velocity component negated. The digit is drawn at round(p_t), so it
is always wholly inside the canvas and its pixels are those of the source image, unblurred; two
digits overlap by the pixel-wise maximum. A clip is a pure function of its seed.

Ground truth kept per frame: ``positions [N, T, D, 2]`` (the drawn top-left corner, row and
column, integers) and ``centres [N, T, D, 2]`` (the digit's intensity centre of mass on the
canvas), for D digits per clip.

Sources: scikit-learn's 8×8 digits (embedded, always offline), kept at 8×8 on a 24×24 canvas by
default — a digit covers a third of the width, as MNIST's 28 pixels do of Moving MNIST's 64, and
upsampling would only blur it and multiply the compute; or Fashion-MNIST from its IDX files,
resized to ``image_size``. Train/val/test clips draw their images from the train/val/test
images of the source data set: an image of a test clip never appears in a training clip.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from genmodels.data.images import ImageSplits, load_digits, load_fashion_mnist

__all__ = ["Clips", "MovingDigits", "render_clips", "load_moving_digits", "SOURCES"]

SOURCES = ("digits", "fashion_mnist")
SPLITS = ("train", "val", "test")


@dataclass
class Clips:
    """A batch of clips and their ground truth.

    ``frames [N, T, 1, H, W]`` in [0, 1]; ``positions [N, T, D, 2]`` drawn top-left corners (row,
    column); ``centres [N, T, D, 2]`` intensity centres of mass on the canvas; ``sources [N, D]``
    indices of the images in their split; ``labels [N, D]`` their classes.
    """
    frames: torch.Tensor
    positions: torch.Tensor
    centres: torch.Tensor
    sources: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return len(self.frames)


def _check_int(name, v, low):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < low:
        raise ValueError(f"{name}: expected an integer >= {low}, got {v!r}")


def _trajectories(rng, n, frames, num_digits, span, speed):
    """Continuous top-left corners ``[n, frames, D, 2]`` bouncing inside [0, span]."""
    pos = rng.uniform(0, span, size=(n, num_digits, 2))
    angle = rng.uniform(0, 2 * np.pi, size=(n, num_digits))
    s = rng.uniform(speed[0], speed[1], size=(n, num_digits))
    vel = np.stack([s * np.sin(angle), s * np.cos(angle)], axis=-1)        # (row, col) per frame
    out = np.empty((n, frames, num_digits, 2))
    for t in range(frames):
        out[:, t] = pos
        pos = pos + vel
        for _ in range(2):                       # a reflection may overshoot the far wall (v > span)
            low, high = pos < 0, pos > span
            pos = np.where(low, -pos, np.where(high, 2 * span - pos, pos))
            vel = np.where(low | high, -vel, vel)
        pos = np.clip(pos, 0, span)
    return out


def render_clips(images: torch.Tensor, labels: torch.Tensor, n: int, frames: int, canvas: int,
                 num_digits: int = 1, speed: tuple[float, float] = (1.0, 2.0), seed: int = 0
                 ) -> Clips:
    """``n`` clips of ``frames`` frames on a ``canvas``×``canvas`` canvas, each with
    ``num_digits`` images drawn from ``images [M, 1, h, w]`` (values in [0, 1]) with their
    ``labels [M]``; speeds uniform in ``speed`` pixels per frame, directions uniform. A pure
    function of its arguments (``seed`` fixes images, starts and velocities)."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"images: expected a tensor [M, 1, h, w], got "
                         f"{list(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
    if len(images) == 0:
        raise ValueError("images: expected at least one source image, got none")
    if not isinstance(labels, torch.Tensor) or labels.shape != (len(images),):
        raise ValueError(f"labels: expected a tensor [{len(images)}], got "
                         f"{list(labels.shape) if isinstance(labels, torch.Tensor) else type(labels).__name__}")
    _check_int("n", n, 0)
    _check_int("frames", frames, 1)
    _check_int("num_digits", num_digits, 1)
    _check_int("seed", seed, 0)
    h, w = images.shape[-2:]
    _check_int("canvas", canvas, 1)
    if canvas <= max(h, w):
        raise ValueError(f"canvas: must exceed the image size {h}×{w} (room to move), got {canvas}")
    if len(speed) != 2 or not (0 < speed[0] <= speed[1]) or not np.isfinite(speed[1]):
        raise ValueError(f"speed: expected (low, high) with 0 < low <= high, finite, got {tuple(speed)}")
    rng = np.random.default_rng(seed)
    src = rng.integers(0, len(images), size=(n, num_digits))
    span = np.array([canvas - h, canvas - w], dtype=np.float64)
    traj = _trajectories(rng, n, frames, num_digits, span, speed)
    positions = np.rint(traj).astype(np.int64)                               # drawn corners
    imgs = images.float().numpy()[:, 0]                                       # (M, h, w)
    out = np.zeros((n, frames, canvas, canvas), dtype=np.float32)
    for i in range(n):
        for d in range(num_digits):
            img = imgs[src[i, d]]
            for t in range(frames):
                r, c = positions[i, t, d]
                np.maximum(out[i, t, r:r + h, c:c + w], img, out=out[i, t, r:r + h, c:c + w])
    mass = imgs.sum(axis=(1, 2))                                              # (M,)
    rows, cols = np.arange(h), np.arange(w)
    com = np.stack([(imgs.sum(2) * rows).sum(1), (imgs.sum(1) * cols).sum(1)], -1) \
        / np.maximum(mass, 1e-12)[:, None]                                    # (M, 2) in the box
    centres = positions + com[src][:, None]                                   # (n, T, D, 2)
    return Clips(frames=torch.from_numpy(out)[:, :, None],
                 positions=torch.from_numpy(positions.astype(np.float32)),
                 centres=torch.from_numpy(centres.astype(np.float32)),
                 sources=torch.from_numpy(src), labels=labels[torch.from_numpy(src)].long())


class MovingDigits:
    """Moving-image clips whose splits use disjoint source images (``source_images.<split>``).

    ``val`` and ``test`` are fixed sets of clips; training clips are drawn fresh with
    :meth:`sample`, a pure function of its seed, so training never runs out of clips.
    """

    def __init__(self, source_images: ImageSplits, frames: int = 20, canvas: int = 24,
                 num_digits: int = 1, speed: tuple[float, float] = (1.0, 2.0),
                 val_clips: int = 256, test_clips: int = 256, seed: int = 0):
        if not isinstance(source_images, ImageSplits):
            raise ValueError(f"source_images: expected ImageSplits, got {type(source_images).__name__}")
        _check_int("val_clips", val_clips, 1)
        _check_int("test_clips", test_clips, 1)
        self.source_images, self.name = source_images, f"moving_{source_images.name}"
        self.frames, self.canvas, self.num_digits = frames, canvas, num_digits
        _check_int("seed", seed, 0)
        self.speed, self.seed = tuple(speed), seed
        self.val = self.sample("val", val_clips, seed=0)
        self.test = self.sample("test", test_clips, seed=0)

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        return (1, self.canvas, self.canvas)

    def sample(self, split: str, n: int, seed: int | tuple[int, ...]) -> Clips:
        """``n`` clips whose images come from ``split``'s source images only; a pure function of
        (the data set's seed, ``split``, ``seed``), which may be an int or a tuple of ints
        (a training step uses ``(run seed, step)``)."""
        if split not in SPLITS:
            raise ValueError(f"split: must be one of {list(SPLITS)}, got {split!r}")
        parts = seed if isinstance(seed, tuple) else (seed,)
        for s in parts:
            _check_int("seed", s, 0)
        x, y = self.source_images.split(split)
        mixed = int(np.random.SeedSequence([self.seed, SPLITS.index(split), *parts]).generate_state(1)[0])
        return render_clips(x, y, n, self.frames, self.canvas, self.num_digits, self.speed, mixed)

    def split(self, name: str) -> Clips:
        """The fixed ``val`` or ``test`` clips."""
        if name not in ("val", "test"):
            raise ValueError(f"name: fixed clips exist for 'val' and 'test', got {name!r}")
        return getattr(self, name)


def _resize(splits: ImageSplits, size: int) -> ImageSplits:
    def r(x):                                    # area averaging: no aliasing when shrinking
        return F.interpolate(x, size=(size, size), mode="area" if size < x.shape[-1] else "bilinear",
                             **({} if size < x.shape[-1] else {"align_corners": False})).clamp(0, 1)
    return ImageSplits(r(splits.train), splits.train_labels, r(splits.val), splits.val_labels,
                       r(splits.test), splits.test_labels, num_classes=splits.num_classes,
                       name=splits.name)


def load_moving_digits(source: str = "digits", frames: int = 20, canvas: int = 24,
                       num_digits: int = 1, speed: tuple[float, float] = (1.0, 2.0),
                       image_size: int | None = None, val_clips: int = 256, test_clips: int = 256,
                       seed: int = 0, split_seed: int = 0, path: str | None = None) -> MovingDigits:
    """Moving clips of ``source`` ("digits": embedded 8×8; "fashion_mnist": the IDX files in
    ``path``, default as :func:`~genmodels.data.load_fashion_mnist`, which says how to install
    them when missing). ``image_size`` resizes the source images (None: native size)."""
    if source not in SOURCES:
        raise ValueError(f"source: must be one of {list(SOURCES)}, got {source!r}")
    if image_size is not None:
        _check_int("image_size", image_size, 1)
    _check_int("frames", frames, 1)
    _check_int("canvas", canvas, 1)
    _check_int("num_digits", num_digits, 1)
    images = (load_digits(split_seed=split_seed) if source == "digits"
              else load_fashion_mnist(path, split_seed=split_seed))
    if image_size is not None and image_size != images.image_shape[-1]:
        images = _resize(images, image_size)
    if canvas <= images.image_shape[-1]:
        raise ValueError(f"canvas: must exceed the image size {images.image_shape[-1]} "
                         f"(room to move), got {canvas}")
    return MovingDigits(images, frames, canvas, num_digits, speed, val_clips, test_clips, seed)
