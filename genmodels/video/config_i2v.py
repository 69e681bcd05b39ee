"""Schema of image-to-video with a motion brush (configs/model/i2v_unet.yaml), task in
genmodels/video/task_i2v.py: a flow-matching model (or a DDPM) over the F = data.frames − 1 frames
after a key frame, conditioned on the key frame and a direction, with classifier-free guidance on
the direction."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List

from genmodels.schema import ModelConfig, choice, positive, register_model, unit

#: native image side of the moving-clip sources (the yardstick classifies images of this size)
_NATIVE = {"digits": 8, "fashion_mnist": 28}


@dataclass
class I2VConfig(ModelConfig):
    """The next frames from one key frame and a requested direction (the "motion brush")."""
    family: str = "video_i2v"
    arch: str = "direction_unet"
    # --- network (genmodels/video/i2v.py: DirectionUNet)
    base_channels: int = 32       # U-Net channels at full resolution
    channel_mults: List[int] = field(default_factory=lambda: [1, 2, 2])  # one per resolution
    num_groups: int = 8           # GroupNorm groups
    process: str = "flow"         # flow: flow matching, Euler sampling (genmodels/flow) | ddpm: Algorithm 1, DDIM sampling
    time_scale: float = 1000.0    # flow only: t ∈ [0, 1] is multiplied by this before the sinusoidal embedding
    output: str = "direct"        # direct: the network writes v (or ε) per pixel | transform (flow only): x̂_1 = the key frame moved by a predicted kernel per frame, v = (x̂_1 − x_t) / (1 − t) | transform_blend: also drawn pixels, blended by a mask
    motion_kernel: int = 13       # transform: odd side k of the motion kernels (shifts up to ±k//2 px from the key frame)
    min_gap: float = 0.02         # transform: 1 − t is clamped below at this in v = (x̂_1 − x_t) / (1 − t); sample_steps <= 1 / min_gap
    # --- DDPM (process=ddpm; genmodels/diffusion/ddpm.py)
    timesteps: int = 1000         # T
    schedule: str = "linear"      # linear (Ho et al.) | cosine (Nichol & Dhariwal)
    beta_start: float = 1e-4      # linear schedule's β_1
    beta_end: float = 0.02        # linear schedule's β_T
    # --- training
    ema_decay: float = 0.999      # EMA of the weights used to sample; 0: off
    direction_dropout: float = 0.15   # p in (0, 1): probability that a training direction is replaced by ∅
    # --- sampling (flow: Euler steps of the ODE; ddpm: deterministic DDIM) and scoring
    sample_steps: int = 25        # Euler (flow) or DDIM (ddpm) steps
    clip_x0: bool = True          # ddpm only: clamp DDIM's predicted x̂_0 to [−1, 1] at every step
    guidance_scales: List[float] = field(default_factory=lambda: [0.0, 1.0, 3.0])  # s scored at the test
    figure_scale: float = 3.0     # s of the frame strips and the GIF
    val_sample_clips: int = 64    # validation clips sampled (s = 1) for the angle error; 0: loss only
    eval_clips: int | None = None  # test clips scored (null: all of data.test_clips)
    n_figure_clips: int = 3       # key frames in the frame strips and the GIF
    gif_fps: float = 3.0          # frames per second of the GIF

    def problems(self):
        yield from choice(self, "arch", ("direction_unet",))
        yield from choice(self, "schedule", ("linear", "cosine"))
        yield from choice(self, "process", ("flow", "ddpm"))
        yield from choice(self, "output", ("direct", "transform", "transform_blend"))
        if self.output != "direct" and self.process != "flow":
            yield "output", f"'transform' predicts x̂_1 for a flow-matching velocity: needs process=flow, got {self.process}"
        if self.motion_kernel < 1 or self.motion_kernel % 2 == 0:
            yield "motion_kernel", f"must be an odd integer >= 1, got {self.motion_kernel}"
        yield from unit(self, "min_gap", low_open=True, high_open=True)
        if self.output != "direct" and 0 < self.min_gap < 1 and self.sample_steps * self.min_gap > 1 + 1e-9:
            yield "sample_steps", (f"({self.sample_steps}) Euler steps shorter than min_gap ({self.min_gap}) "
                                   f"stop short of the predicted frames: at most {int(1 / self.min_gap + 1e-9)}")
        yield from positive(self, "time_scale")
        for name in ("base_channels", "num_groups", "timesteps", "sample_steps", "eval_clips",
                     "n_figure_clips", "gif_fps"):
            yield from positive(self, name)
        yield from positive(self, "val_sample_clips", allow_zero=True)
        yield from positive(self, "figure_scale", allow_zero=True)
        if not self.channel_mults or any(m < 1 for m in self.channel_mults):
            yield "channel_mults", f"must be a non-empty list of ints >= 1, got {list(self.channel_mults)}"
        for name in ("beta_start", "beta_end"):
            yield from unit(self, name, low_open=True, high_open=True)
        yield from unit(self, "ema_decay", high_open=True)
        yield from unit(self, "direction_dropout", low_open=True, high_open=True)   # s ≠ 1 needs ∅
        if self.process == "ddpm" and self.sample_steps > self.timesteps:
            yield "sample_steps", f"({self.sample_steps}) must not exceed timesteps ({self.timesteps})"
        if not self.guidance_scales or any(s < 0 for s in self.guidance_scales):
            yield "guidance_scales", f"must be a non-empty list of numbers >= 0, got {list(self.guidance_scales)}"

    def run_problems(self, cfg):
        d = cfg.data
        if d.name != "moving_digits":
            yield "data", f"image-to-video trains on moving clips (data=moving_digits), got data={d.name}"
            return
        if d.num_digits != 1:
            yield "data.num_digits", f"the motion brush moves one digit per clip, got {d.num_digits}"
        if d.frames < 2:
            yield "data.frames", f"a key frame and at least one frame after it: >= 2, got {d.frames}"
        native = _NATIVE.get(d.source)
        if d.image_size is not None and d.image_size != native:
            yield "data.image_size", (f"the yardstick classifies {d.source} at its native size "
                                      f"{native}; leave it null, got {d.image_size}")
        size = d.image_size or native
        need = None if size is None else size + 2 * (d.frames - 1) * d.speed[1]
        if need is not None and d.canvas < need:
            yield "data.canvas", (f"{d.canvas} leaves no room for {d.frames - 1} frames at "
                                  f"{d.speed[1]} px/frame in every direction from the centre: "
                                  f"needs >= {need:g} (or fewer data.frames, a lower data.speed)")


register_model("i2v_unet_schema", I2VConfig, family="video_i2v",
               task="genmodels.video.task_i2v:I2VTask")
