"""Diffusion, eqs. 2.12–2.13 and Algorithms 1–2: variance schedules, the DDPM forward and reverse
processes (plus DDIM), the VP score-SDE path, and the U-Net / MLP noise networks.

Discrete timesteps are integer tensors ``t`` in {0, …, T−1}; index t is the paper's step t+1.
"""

from genmodels.diffusion.ddpm import (ddim_sample, ddpm_draw, ddpm_loss, ddpm_sample,
                                      p_mean_variance, q_posterior, q_sample, q_step)
from genmodels.diffusion.guidance import classifier_free_guidance, guided_eps_model
from genmodels.diffusion.models import MLPDenoiser, SinusoidalTimeEmbedding, UNet
from genmodels.diffusion.schedules import NoiseSchedule, cosine_beta_schedule, linear_beta_schedule
from genmodels.diffusion.sde import (euler_maruyama_sample, score_matching_draw,
                                     score_matching_loss, vp_sde_beta, vp_sde_marginal)

__all__ = [
    "linear_beta_schedule", "cosine_beta_schedule", "NoiseSchedule",
    "q_step", "q_sample", "q_posterior", "p_mean_variance", "ddpm_draw", "ddpm_loss", "ddpm_sample",
    "ddim_sample", "vp_sde_beta", "vp_sde_marginal", "score_matching_draw", "score_matching_loss",
    "euler_maruyama_sample", "classifier_free_guidance", "guided_eps_model",
    "SinusoidalTimeEmbedding", "UNet", "MLPDenoiser",
]
