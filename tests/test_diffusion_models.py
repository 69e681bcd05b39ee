"""Diffusion networks: the sinusoidal time embedding, the U-Net and the MLP denoiser."""

import math

import pytest
import torch

from genmodels.diffusion import (MLPDenoiser, NoiseSchedule, SinusoidalTimeEmbedding, UNet,
                                 ddpm_loss, ddpm_sample, linear_beta_schedule)

pytestmark = [pytest.mark.diffusion, pytest.mark.ddpm]




def test_sinusoidal_time_embedding_matches_formula():
    emb = SinusoidalTimeEmbedding(8)
    t = torch.tensor([0, 3, 999])
    out = emb(t)
    assert out.shape == (3, 8)
    for i, ti in enumerate(t.tolist()):
        expected = [math.sin(ti * 10000 ** (-k / 4)) for k in range(4)] + \
                   [math.cos(ti * 10000 ** (-k / 4)) for k in range(4)]
        torch.testing.assert_close(out[i], torch.tensor(expected), rtol=1e-4, atol=1e-4)
    # float SDE times: time_scale = 1000 puts t = 0.003 where the integer step 3 is
    torch.testing.assert_close(SinusoidalTimeEmbedding(8, time_scale=1000.0)(torch.tensor([0.003])),
                               out[1:2], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("size", [8, 28])
def test_unet_output_shape_equals_input_shape(size):
    torch.manual_seed(0)
    net = UNet()
    x = torch.randn(2, 1, size, size)
    assert net(x, torch.tensor([0, 999])).shape == x.shape


def test_unet_odd_sizes_and_channels():
    torch.manual_seed(0)
    net = UNet(in_channels=3, base_channels=8, channel_mults=(1, 2), num_groups=4)
    x = torch.randn(2, 3, 13, 10)
    assert net(x, torch.tensor([1, 2])).shape == x.shape


def test_unet_time_conditioning_changes_the_output():
    torch.manual_seed(0)
    net = UNet()
    x = torch.randn(1, 1, 8, 8).expand(2, 1, 8, 8)
    out = net(x, torch.tensor([0, 500]))
    assert not torch.allclose(out[0], out[1], atol=1e-4)
    # and the same t gives the same output for the same x (no hidden batch coupling)
    same = net(x, torch.tensor([7, 7]))
    torch.testing.assert_close(same[0], same[1])


def test_unet_gradients_reach_every_parameter():
    torch.manual_seed(0)
    net = UNet()
    sched = NoiseSchedule(linear_beta_schedule(100))
    loss = ddpm_loss(net, torch.randn(4, 1, 8, 8), sched, generator=torch.Generator().manual_seed(0))
    loss.backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_unet_runs_in_float64_and_samples(f64):
    torch.manual_seed(0)
    net = UNet(base_channels=8, channel_mults=(1, 2))
    sched = NoiseSchedule(linear_beta_schedule(5, 0.05, 0.3))
    x = ddpm_sample(net, (2, 1, 8, 8), sched, torch.Generator().manual_seed(0))
    assert x.shape == (2, 1, 8, 8) and x.dtype == torch.float64 and torch.isfinite(x).all()


def test_unet_rejects_bad_inputs():
    net = UNet()
    with pytest.raises(ValueError, match="^x:"):
        net(torch.randn(2, 3, 8, 8), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="^t:"):
        net(torch.randn(2, 1, 8, 8), torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="^channel_mults:"):
        UNet(channel_mults=())


def test_mlp_denoiser_shapes_and_time_conditioning():
    torch.manual_seed(0)
    net = MLPDenoiser(data_dim=2)
    x = torch.randn(1, 2).expand(2, 2)
    out = net(x, torch.tensor([0, 50]))
    assert out.shape == (2, 2)
    assert not torch.allclose(out[0], out[1])
    with pytest.raises(ValueError, match="^x:"):
        net(torch.randn(2, 3), torch.tensor([0, 1]))


def test_mlp_denoiser_learns_the_optimal_gaussian_denoiser():
    # For x_0 ~ N(m, diag s²) the best ε-predictor is ε* = √(1−ᾱ)(x_t − √ᾱ m)/(ᾱ s² + 1 − ᾱ);
    # 200 Adam steps of Algorithm 1 should bring the held-out loss within 15 % of ε*'s loss.
    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    sched = NoiseSchedule(linear_beta_schedule(100, 1e-3, 0.2))
    m, s = torch.tensor([1.0, -2.0]), torch.tensor([0.5, 1.5])
    net = MLPDenoiser(2, hidden=64, n_layers=2)
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    for _ in range(200):
        loss = ddpm_loss(net, m + s * torch.randn(256, 2, generator=gen), sched, generator=gen)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def eps_star(x_t, t):
        ab = sched.alpha_bars[t].view(-1, 1)
        return (1 - ab).sqrt() * (x_t - ab.sqrt() * m) / (ab * s ** 2 + 1 - ab)

    x0 = m + s * torch.randn(4096, 2, generator=gen)
    fixed = dict(t=torch.randint(0, 100, (4096,), generator=gen), noise=torch.randn(4096, 2, generator=gen))
    with torch.no_grad():
        learned = ddpm_loss(net, x0, sched, **fixed).item()
        optimal = ddpm_loss(eps_star, x0, sched, **fixed).item()
    assert optimal <= learned < 1.15 * optimal
