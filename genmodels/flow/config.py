"""Flow-matching model schema for the Hydra ``model`` group (configs/model/flow_unet.yaml)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from genmodels.train.config import ModelConfig, choice, positive, register_model, unit


@dataclass
class FlowConfig(ModelConfig):
    family: str = "flow"
    arch: str = "unet"            # the diffusion family's U-Net as the velocity network v_θ(x, t)
    # --- network (as model=ddpm_unet)
    base_channels: int = 32       # U-Net channels at full resolution
    channel_mults: List[int] = field(default_factory=lambda: [1, 2, 2])  # one per resolution
    num_groups: int = 8           # GroupNorm groups
    time_scale: float = 1000.0    # t ∈ [0, 1] is multiplied by this before the sinusoidal embedding
    # --- sampling at evaluation and in figures
    sample_steps: int = 50        # Euler steps from t = 0 to 1 (= network evaluations per image)
    ema_decay: float = 0.999      # exponential moving average of the weights used to sample; 0: off
    fd_samples: Optional[int] = None  # images generated for the yardstick (null: 1000)
    val_fd: bool = False          # also score samples at every validation (slow: sampling)
    n_figure_samples: int = 64    # images in the sample grid

    def problems(self):
        yield from choice(self, "arch", ("unet",))
        for name in ("base_channels", "num_groups", "sample_steps", "n_figure_samples", "time_scale"):
            yield from positive(self, name)
        if not self.channel_mults or any(m < 1 for m in self.channel_mults):
            yield "channel_mults", f"must be a non-empty list of ints >= 1, got {list(self.channel_mults)}"
        yield from unit(self, "ema_decay", high_open=True)
        if self.fd_samples is not None and self.fd_samples < 2:
            yield "fd_samples", f"must be >= 2 (a covariance needs two samples), got {self.fd_samples}"


register_model("flow_schema", FlowConfig, family="flow", task="genmodels.flow.task:FlowTask")
