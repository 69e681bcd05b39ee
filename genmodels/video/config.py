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


# ------------------------------------------------------------------------------ models
@dataclass
class ConvLSTMConfig(ModelConfig):
    """Video prediction with a ConvLSTM (genmodels/video/task.py): k frames in, the next ones out."""
    family: str = "video_predict"
    arch: str = "convlstm"
    context_frames: int = 10      # k frames observed
    future_frames: int = 10       # frames predicted after them (context + future <= data.frames)
    enc_channels: int = 16        # encoder / decoder conv channels
    hidden_channels: List[int] = field(default_factory=lambda: [32])  # one ConvLSTM layer per entry
    kernel_size: int = 5          # ConvLSTM kernel (odd)
    downsample: int = 2           # the ConvLSTM runs at 1/downsample resolution (1 or 2)
    output: str = "pixels"        # pixels: the decoder draws the frame | transform: the last frame moved by a predicted kernel, blended by a mask (CDNA)
    motion_kernel: int = 7        # transform: the k × k kernel (odd; moves of up to ±k//2 pixels a frame)
    loss: str = "bce"             # bce (pixels as Bernoulli means) | mse
    feedback: str = "prediction"  # training input after the context: prediction (as at test) | truth (teacher forcing)
    context_loss: bool = True     # also train the one-step predictions made inside the context
    max_shift: int = 4            # the shift baseline searches |Δrow|, |Δcol| <= this
    eval_clips: Optional[int] = None  # clips scored per evaluation (null: all of the split)
    n_figure_clips: int = 4       # clips in the figures and the GIF
    gif_fps: float = 4.0          # frames per second of the GIF

    def problems(self):
        yield from choice(self, "arch", ("convlstm",))
        yield from choice(self, "loss", ("bce", "mse"))
        yield from choice(self, "feedback", ("prediction", "truth"))
        yield from choice(self, "output", ("pixels", "transform"))
        if self.motion_kernel < 1 or self.motion_kernel % 2 == 0:
            yield "motion_kernel", f"must be an odd integer >= 1, got {self.motion_kernel}"
        for name in ("context_frames", "future_frames", "enc_channels", "kernel_size", "max_shift",
                     "eval_clips", "n_figure_clips", "gif_fps"):
            yield from positive(self, name)
        if self.context_frames < 2:
            yield "context_frames", f"must be >= 2 (the shift baseline needs a motion), got {self.context_frames}"
        if self.kernel_size % 2 == 0:
            yield "kernel_size", f"must be odd ('same' padding), got {self.kernel_size}"
        if self.downsample not in (1, 2):
            yield "downsample", f"must be 1 or 2, got {self.downsample}"
        if not self.hidden_channels or any(k < 1 for k in self.hidden_channels):
            yield "hidden_channels", f"must be a non-empty list of ints >= 1, got {list(self.hidden_channels)}"

    def run_problems(self, cfg):
        if cfg.data.name != "moving_digits":
            yield "data", f"video prediction trains on clips (data=moving_digits), got data={cfg.data.name}"
            return
        if self.context_frames + self.future_frames > cfg.data.frames:
            yield "model.future_frames", (f"context_frames + future_frames = "
                                          f"{self.context_frames + self.future_frames} exceeds the "
                                          f"{cfg.data.frames} frames of a clip (data.frames)")
        if cfg.data.canvas % self.downsample:
            yield "model.downsample", f"{self.downsample} must divide data.canvas ({cfg.data.canvas})"


register_model("convlstm_schema", ConvLSTMConfig, family="video_predict",
               task="genmodels.video.task:VideoPredictTask")

import genmodels.video.config_frames  # noqa: E402,F401  (interpolation and super-resolution schemas)
import genmodels.video.config_i2v  # noqa: E402,F401  (image-to-video with a motion brush)
