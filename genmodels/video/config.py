"""Video schemas for the Hydra ``data`` and ``model`` groups: ``moving_digits``
(configs/data/moving_digits.yaml, genmodels/video/data.py) and the ConvLSTM predictor
(configs/model/convlstm.yaml, genmodels/video/task.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from genmodels.schema import DataConfig, ModelConfig, choice, positive, register_data, register_model


# ------------------------------------------------------------------------------ data
@dataclass
class MovingDigitsConfig(DataConfig):
    """Clips of images bouncing on a canvas (genmodels/video/data.py), a pure function of ``seed``."""
    name: str = "moving_digits"
    source: str = "digits"        # digits (embedded 8x8) | fashion_mnist (IDX files, see path)
    path: Optional[str] = None    # Fashion-MNIST folder; null: $GENMODELS_FASHION_MNIST or the Debian package's
    image_size: Optional[int] = None  # resize the source images to this (null: native, 8 for digits)
    canvas: int = 24              # the frame is canvas x canvas pixels
    frames: int = 20              # frames per clip (context + predicted)
    num_digits: int = 1           # images per clip (overlaps take the pixel-wise maximum)
    speed: List[float] = field(default_factory=lambda: [1.0, 2.0])  # pixels per frame, uniform in [low, high]
    val_clips: int = 256          # fixed validation clips
    test_clips: int = 256         # fixed test clips
    seed: int = 0                 # clips are a pure function of it
    split_seed: int = 0           # fixes which source images are train / val / test

    def problems(self):
        yield from choice(self, "source", ("digits", "fashion_mnist"))
        for name in ("canvas", "frames", "num_digits", "val_clips", "test_clips", "image_size"):
            yield from positive(self, name)
        for name in ("seed", "split_seed"):
            yield from positive(self, name, allow_zero=True)
        if len(self.speed) != 2 or not 0 < self.speed[0] <= self.speed[1]:
            yield "speed", f"must be [low, high] with 0 < low <= high, got {list(self.speed)}"
        size = self.image_size or (8 if self.source == "digits" else 28)
        if self.canvas <= size:
            yield "canvas", f"must exceed the image size {size} (room to move), got {self.canvas}"


def _moving_digits(cfg: MovingDigitsConfig):
    from genmodels.video.data import load_moving_digits
    return load_moving_digits(cfg.source, cfg.frames, cfg.canvas, cfg.num_digits, tuple(cfg.speed),
                              cfg.image_size, cfg.val_clips, cfg.test_clips, cfg.seed,
                              cfg.split_seed, cfg.path)


register_data("moving_digits_schema", MovingDigitsConfig, "moving_digits", _moving_digits)
