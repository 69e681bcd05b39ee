"""Flow matching / rectified flow (Lipman et al., 2023; Liu et al., 2023): the straight path from
noise (t = 0) to data (t = 1), the conditional flow-matching loss, an Euler sampler, and the
training task that fits the diffusion family's U-Net as the velocity network."""

from genmodels.flow.matching import (euler_flow_sample, flow_interpolant, flow_matching_draw,
                                     flow_matching_loss)

__all__ = ["flow_interpolant", "flow_matching_draw", "flow_matching_loss", "euler_flow_sample"]
