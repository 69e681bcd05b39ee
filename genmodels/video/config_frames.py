"""Schemas of frame interpolation (configs/model/interp_unet.yaml) and super-resolution
(configs/model/sr_unet.yaml), tasks in genmodels/video/task_frames.py."""

from __future__ import annotations

from dataclasses import dataclass

from genmodels.schema import ModelConfig, choice, positive, register_model

#: image side of the image data sets super-resolution trains on
_IMAGE_SIZE = {"digits": 8, "fashion_mnist": 28}


@dataclass
class FrameInterpConfig(ModelConfig):
    """The middle frame from its two neighbours: a U-Net's residual on their cross-fade."""
    family: str = "video_interp"
    arch: str = "residual_unet"
    width: int = 16               # U-Net channels at full resolution (doubled per level)
    levels: int = 1               # halvings of the resolution (2**levels must divide data.canvas)
    loss: str = "l1"              # l1 | mse
    eval_clips: int | None = None  # clips scored per evaluation, all their triplets (null: all)
    n_figure_items: int = 6       # triplets in the figure
    gif_fps: float = 6.0          # frames per second of the doubled-rate GIF

    def problems(self):
        yield from choice(self, "arch", ("residual_unet",))
        yield from choice(self, "loss", ("l1", "mse"))
        for name in ("width", "eval_clips", "n_figure_items", "gif_fps"):
            yield from positive(self, name)
        yield from positive(self, "levels", allow_zero=True)

    def run_problems(self, cfg):
        if cfg.data.name != "moving_digits":
            yield "data", f"frame interpolation trains on clips (data=moving_digits), got data={cfg.data.name}"
            return
        if cfg.data.frames < 3:
            yield "data.frames", f"a triplet needs clips of >= 3 frames, got {cfg.data.frames}"
        if cfg.data.canvas % 2 ** self.levels:
            yield "model.levels", f"2**{self.levels} must divide data.canvas ({cfg.data.canvas})"


@dataclass
class SuperResConfig(ModelConfig):
    """Upscaling by ``factor``: a U-Net's residual on the bicubic upsampling of the average-pooled image."""
    family: str = "video_superres"
    arch: str = "residual_unet"
    factor: int = 2               # the low-res image is the mean of factor x factor blocks
    width: int = 32               # U-Net channels at full resolution (doubled per level)
    levels: int = 2               # halvings of the resolution (2**levels must divide the image size)
    loss: str = "l1"              # l1 | mse
    eval_images: int = 2000       # held-out images scored per evaluation
    fd_images: int = 1000         # images in the yardstick FD at the test (0: no FD)
    val_fd: bool = False          # also compute the FD at every validation
    n_figure_items: int = 6       # images in the figure

    def problems(self):
        yield from choice(self, "arch", ("residual_unet",))
        yield from choice(self, "loss", ("l1", "mse"))
        for name in ("width", "eval_images", "n_figure_items"):
            yield from positive(self, name)
        yield from positive(self, "levels", allow_zero=True)
        yield from positive(self, "fd_images", allow_zero=True)
        if self.factor < 2:
            yield "factor", f"must be an integer >= 2, got {self.factor}"
        if 0 < self.fd_images < 2:
            yield "fd_images", f"must be 0 (no FD) or >= 2, got {self.fd_images}"

    def run_problems(self, cfg):
        if cfg.data.name not in _IMAGE_SIZE:
            yield "data", (f"super-resolution trains on images (data=fashion_mnist or data=digits), "
                           f"got data={cfg.data.name}")
            return
        size = _IMAGE_SIZE[cfg.data.name]
        if size % self.factor:
            yield "model.factor", f"{self.factor} must divide the {cfg.data.name} image size {size}"
        if size % 2 ** self.levels:
            yield "model.levels", f"2**{self.levels} must divide the {cfg.data.name} image size {size}"


register_model("interp_unet_schema", FrameInterpConfig, family="video_interp",
               task="genmodels.video.task_frames:FrameInterpTask")
register_model("sr_unet_schema", SuperResConfig, family="video_superres",
               task="genmodels.video.task_frames:SuperResTask")
