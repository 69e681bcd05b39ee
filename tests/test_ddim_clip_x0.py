"""``ddim_sample(..., clip_x0=True)`` (issue 18: the Fashion-MNIST DDPM's DDIM samples): x̂_0 is
clamped to [−1, 1] at every step; off by default, so the formula as written is unchanged."""

import torch

from genmodels.diffusion.ddpm import ddim_sample
from genmodels.diffusion.schedules import NoiseSchedule, linear_beta_schedule


def _schedule():
    return NoiseSchedule(linear_beta_schedule(100, 1e-4, 0.02))


def test_clip_x0_keeps_samples_in_the_data_range():
    wild = lambda x, t: -5 * torch.ones_like(x)          # x̂_0 far outside [−1, 1]
    torch.manual_seed(0)
    out = ddim_sample(wild, (4, 1, 3, 3), _schedule(), 10, clip_x0=True)
    assert out.abs().max() <= 1.0
    torch.manual_seed(0)
    assert ddim_sample(wild, (4, 1, 3, 3), _schedule(), 10).abs().max() > 1.0


def test_clip_x0_is_a_no_op_when_the_prediction_stays_in_range():
    zero = lambda x, t: torch.zeros_like(x)               # x̂_0 = x_t/√ᾱ_t; x_T small enough
    x_T = torch.full((2, 1, 2, 2), 0.05)
    a = ddim_sample(zero, x_T.shape, _schedule(), 5, x_T=x_T)
    b = ddim_sample(zero, x_T.shape, _schedule(), 5, x_T=x_T, clip_x0=True)
    assert torch.equal(a, b)


def test_default_is_off():
    import inspect
    assert inspect.signature(ddim_sample).parameters["clip_x0"].default is False
