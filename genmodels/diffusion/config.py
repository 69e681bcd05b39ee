"""Diffusion model schemas for the Hydra ``model`` group (configs/model/ddpm_*.yaml, sde_*.yaml)
and the 2-D toy dataset of the ``data`` group (configs/data/toy2d.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from genmodels.train.config import (DataConfig, ModelConfig, choice, positive, register_data,
                                    register_model, unit)


@dataclass
class DiffusionConfig(ModelConfig):
    family: str = "diffusion"
    arch: str = "unet"            # unet (images) | mlp (2-D toy data)
    process: str = "ddpm"         # ddpm: Algorithms 1-2 on T discrete steps | sde: VP-SDE score matching
    # --- network
    base_channels: int = 32       # U-Net channels at full resolution
    channel_mults: List[int] = field(default_factory=lambda: [1, 2, 2])  # one per resolution
    num_groups: int = 8           # GroupNorm groups
    hidden: int = 128             # MLP width (mlp only)
    time_dim: int = 32            # MLP time-embedding size (mlp only)
    n_layers: int = 3             # MLP hidden layers (mlp only)
    # --- discrete DDPM (process=ddpm)
    timesteps: int = 1000         # T
    schedule: str = "linear"      # linear (Ho et al.) | cosine (Nichol & Dhariwal)
    beta_start: float = 1e-4      # linear schedule's β_1
    beta_end: float = 0.02        # linear schedule's β_T
    # --- VP-SDE (process=sde): β(t) = β_min + t (β_max − β_min), t ∈ [0, 1]
    beta_min: float = 0.1
    beta_max: float = 20.0
    # --- sampling at evaluation and in figures
    sampler: str = "ddim"         # ddpm: Algorithm 2 (T steps) | ddim: deterministic, sample_steps steps
    sample_steps: int = 100       # DDIM steps (ddpm) or Euler–Maruyama steps (sde)
    clip_x0: bool = False         # DDIM only: clamp the predicted x̂_0 to [−1, 1] at every step
    ema_decay: float = 0.999      # exponential moving average of the weights used to sample; 0: off
    fd_samples: Optional[int] = None  # images generated for the yardstick (null: 1000), scored against the held-out split (≤ 2000 images)
    val_fd: bool = False          # also score samples at every validation (slow: sampling)
    n_figure_samples: int = 64    # images in the sample grid

    def problems(self):
        yield from choice(self, "arch", ("unet", "mlp"))
        yield from choice(self, "process", ("ddpm", "sde"))
        yield from choice(self, "schedule", ("linear", "cosine"))
        yield from choice(self, "sampler", ("ddpm", "ddim"))
        for name in ("base_channels", "num_groups", "hidden", "n_layers", "timesteps",
                     "sample_steps", "n_figure_samples", "beta_min", "beta_max"):
            yield from positive(self, name)
        if self.time_dim < 2 or self.time_dim % 2:
            yield "time_dim", f"must be an even number >= 2, got {self.time_dim}"
        if not self.channel_mults or any(m < 1 for m in self.channel_mults):
            yield "channel_mults", f"must be a non-empty list of ints >= 1, got {list(self.channel_mults)}"
        for name in ("beta_start", "beta_end"):
            yield from unit(self, name, low_open=True, high_open=True)
        if self.beta_max < self.beta_min:
            yield "beta_max", f"must be >= beta_min ({self.beta_min}), got {self.beta_max}"
        yield from unit(self, "ema_decay", high_open=True)
        if self.process == "ddpm" and self.sampler == "ddim" and self.sample_steps > self.timesteps:
            yield "sample_steps", f"({self.sample_steps}) must not exceed timesteps ({self.timesteps})"
        if self.fd_samples is not None and self.fd_samples < 2:
            yield "fd_samples", f"must be >= 2 (a covariance needs two samples), got {self.fd_samples}"


@dataclass
class GuidedDiffusionConfig(DiffusionConfig):
    """A class-conditional DDPM trained for classifier-free guidance (Ho & Salimans, 2022): the
    U-Net gets a label embedding (the data's classes plus a null label), the label is replaced by
    the null label with probability ``label_dropout`` in training, and samples mix the two
    predictions with ``guidance_scale`` (genmodels/diffusion/task_guided.py)."""
    family: str = "guided_diffusion"
    label_dropout: float = 0.1    # p_uncond: probability that a training label is replaced by ∅
    guidance_scale: float = 3.0   # s of ε̃ = ε_∅ + s (ε_y − ε_∅) at evaluation and in figures

    def problems(self):
        yield from super().problems()
        yield from choice(self, "arch", ("unet",))
        yield from choice(self, "process", ("ddpm",))
        yield from unit(self, "label_dropout", high_open=True)
        yield from positive(self, "guidance_scale", allow_zero=True)


@dataclass
class Toy2DConfig(DataConfig):
    """A 2-D mixture of Gaussians on a circle (genmodels/data/toy2d.py)."""
    name: str = "toy2d"
    n_train: int = 20000
    n_val: int = 2000
    n_test: int = 2000
    modes: int = 8                # number of Gaussians, evenly spaced on the circle
    radius: float = 2.0           # radius of the circle of means
    std: float = 0.15             # standard deviation of each Gaussian
    seed: int = 0                 # fixes the points of every split

    def problems(self):
        for name in ("n_train", "n_val", "n_test", "modes", "radius", "std"):
            yield from positive(self, name)
        yield from positive(self, "seed", allow_zero=True)


def _toy2d(cfg: Toy2DConfig):
    from genmodels.data.toy2d import gaussian_mixture_2d
    return gaussian_mixture_2d(cfg.n_train, cfg.n_val, cfg.n_test, cfg.modes, cfg.radius, cfg.std,
                               cfg.seed)


register_model("diffusion_schema", DiffusionConfig, family="diffusion",
               task="genmodels.diffusion.task:DiffusionTask")
register_model("guided_diffusion_schema", GuidedDiffusionConfig, family="guided_diffusion",
               task="genmodels.diffusion.task_guided:GuidedDiffusionTask")
register_data("toy2d_schema", Toy2DConfig, "toy2d", _toy2d)
