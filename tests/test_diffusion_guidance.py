"""Classifier-free guidance: the guided noise ε̃ = ε_uncond + s (ε_cond − ε_uncond), the class-
conditional U-Net and the guided eps_model the samplers call.

References: the limits s = 0 and s = 1, NumPy by hand, and — for what guidance does — Gaussian
class-conditional data, where ε_cond and ε_uncond are known in closed form and the guided noise
at scale s is the noise of the tilted density p(x) p(y|x)^s, whose score is the mix of the two.
"""

import numpy as np
import pytest
import torch

from genmodels.diffusion import (NoiseSchedule, UNet, classifier_free_guidance, ddim_sample,
                                 guided_eps_model, linear_beta_schedule)
from conftest import t64

pytestmark = [pytest.mark.diffusion, pytest.mark.ddpm]


@pytest.mark.exercise("ddpm.cfg")
def test_guidance_limits_are_the_two_models(f64, gen):
    eps_c, eps_u = torch.randn(4, 1, 3, 3, generator=gen), torch.randn(4, 1, 3, 3, generator=gen)
    torch.testing.assert_close(classifier_free_guidance(eps_c, eps_u, 0.0), eps_u, rtol=0, atol=0)
    torch.testing.assert_close(classifier_free_guidance(eps_c, eps_u, 1.0), eps_c, rtol=0, atol=1e-15)
    # equal predictions: no guidance direction, any scale gives them back
    torch.testing.assert_close(classifier_free_guidance(eps_c, eps_c, 7.5), eps_c, rtol=0, atol=0)


@pytest.mark.exercise("ddpm.cfg")
def test_guidance_by_hand_and_linear_in_the_scale(f64, gen):
    eps_c, eps_u = torch.randn(3, 5, generator=gen), torch.randn(3, 5, generator=gen)
    c, u = eps_c.numpy(), eps_u.numpy()
    for s in (0.5, 2.0, 3.0, 5):
        np.testing.assert_allclose(classifier_free_guidance(eps_c, eps_u, s).numpy(),
                                   (1 - s) * u + s * c, rtol=1e-12, atol=1e-12)
    # the guided point moves along the line through ε_uncond and ε_cond at constant speed
    d = classifier_free_guidance(eps_c, eps_u, 3.0) - classifier_free_guidance(eps_c, eps_u, 2.0)
    torch.testing.assert_close(d, eps_c - eps_u, rtol=1e-12, atol=1e-12)


@pytest.mark.exercise("ddpm.cfg")
def test_guidance_is_the_score_of_the_tilted_gaussian(f64):
    """Two classes of 1-D Gaussian data, x_0 | y ~ N(μ_y, s²), p(y) = ½. At one noise level with
    x_t = a x_0 + σ ε: ε* = −σ ∇ log p_t. The guided ε̃ at scale w equals −σ ∇ log(p_t(x) p_t(y|x)^w),
    computed here by finite differences of the log densities."""
    mus, s, a, sig = (-1.0, 2.0), 0.5, 0.8, 0.6
    var = a ** 2 * s ** 2 + sig ** 2
    x = torch.linspace(-3, 4, 15)

    def log_cond(x, y):                 # log p_t(x | y) up to a constant
        return -(x - a * mus[y]) ** 2 / (2 * var)

    def log_marg(x):
        return torch.logaddexp(log_cond(x, 0), log_cond(x, 1))

    def eps_of(logp, h=1e-5):           # ε = −σ ∂/∂x log p, central differences
        return -sig * (logp(x + h) - logp(x - h)) / (2 * h)

    eps_c, eps_u = eps_of(lambda z: log_cond(z, 1)), eps_of(log_marg)
    for w in (0.0, 1.0, 3.0):
        tilted = lambda z: log_marg(z) + w * (log_cond(z, 1) - log_marg(z))   # log p + w log p(y|x)
        torch.testing.assert_close(classifier_free_guidance(eps_c, eps_u, w), eps_of(tilted),
                                   rtol=1e-7, atol=1e-7)


@pytest.mark.exercise("ddpm.cfg")
def test_guidance_small_case(small_case):
    c, u = [[1.0, -2.0], [0.5, 3.0]], [[0.0, 1.0], [0.5, -1.0]]
    want = [[0.0 + 2.5 * 1.0, 1.0 + 2.5 * -3.0], [0.5 + 2.5 * 0.0, -1.0 + 2.5 * 4.0]]
    small_case((f"eps_cond={c}, eps_uncond={u}, s=2.5", want,
                lambda: classifier_free_guidance(t64(c), t64(u), 2.5)))


def test_guidance_keeps_dtype_and_gradient(gen):
    for dtype in (torch.float32, torch.float64):
        a = torch.randn(2, 3, generator=gen).to(dtype).requires_grad_()
        b = torch.randn(2, 3, generator=gen).to(dtype)
        out = classifier_free_guidance(a, b, 2.0)
        assert out.dtype == dtype
        out.sum().backward()
        torch.testing.assert_close(a.grad, torch.full_like(a, 2.0))


@pytest.mark.parametrize("call,arg", [
    (lambda: classifier_free_guidance(torch.zeros(2, 3), torch.zeros(2, 4), 1.0), "eps_uncond"),
    (lambda: classifier_free_guidance(torch.zeros(2, 3), torch.zeros(2, 3).double(), 1.0), "eps_uncond"),
    (lambda: classifier_free_guidance(torch.full((2, 3), float("nan")), torch.zeros(2, 3), 1.0), "eps_cond"),
    (lambda: classifier_free_guidance(torch.zeros(2, 3), torch.full((2, 3), float("inf")), 1.0), "eps_uncond"),
    (lambda: classifier_free_guidance([0.0], torch.zeros(1), 1.0), "eps_cond"),
    (lambda: classifier_free_guidance(torch.zeros(2, 3), torch.zeros(2, 3), -1.0), "guidance_scale"),
    (lambda: classifier_free_guidance(torch.zeros(2, 3), torch.zeros(2, 3), float("nan")), "guidance_scale"),
    (lambda: classifier_free_guidance(torch.zeros(2, 3), torch.zeros(2, 3), "2"), "guidance_scale"),
    (lambda: guided_eps_model(lambda x, t, y: x, torch.tensor([0.5]), 2.0, 10), "y"),
    (lambda: guided_eps_model(lambda x, t, y: x, torch.tensor([1]), 2.0, -1), "null_label"),
    (lambda: guided_eps_model("net", torch.tensor([1]), 2.0, 10), "net"),
    (lambda: UNet(1, 8, (1,), num_classes=-1), "num_classes"),
    (lambda: UNet(1, 8, (1,), num_classes=3)(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]), torch.tensor([0, 4])), "y"),
    (lambda: UNet(1, 8, (1,), num_classes=3)(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]), torch.tensor([0.0, 1.0])), "y"),
    (lambda: UNet(1, 8, (1,), num_classes=3)(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]), torch.tensor([0])), "y"),
    (lambda: UNet(1, 8, (1,))(torch.zeros(2, 1, 4, 4), torch.tensor([0, 1]), torch.tensor([0, 1])), "y"),
])
def test_bad_inputs_raise_value_error_naming_the_argument(call, arg):
    with pytest.raises(ValueError, match=rf"^{arg}:"):
        call()


# ------------------------------------------------------------------------------------------------
# the class-conditional U-Net and the guided eps_model
# ------------------------------------------------------------------------------------------------
def _cond_unet():
    torch.manual_seed(0)
    net = UNet(1, 8, (1, 2), num_groups=4, num_classes=3)
    with torch.no_grad():                       # a visible class signal (the embedding starts random)
        net.class_embed.weight.mul_(5)
    return net.eval()


def test_conditional_unet_depends_on_the_label_and_none_is_the_null_label():
    net = _cond_unet()
    x, t = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(1)), torch.tensor([3, 3, 3, 3])
    outs = [net(x, t, torch.full((4,), k)) for k in range(4)]
    for i in range(4):
        for j in range(i):
            assert (outs[i] - outs[j]).abs().max() > 1e-3
    assert torch.equal(net(x, t), outs[3])                   # y=None is ∅ = label num_classes
    assert net.null_label == 3
    # every sample sees its own label only: a batch of mixed labels = the rows of single-label batches
    mixed = net(x, t, torch.tensor([0, 1, 2, 3]))
    torch.testing.assert_close(mixed, torch.stack([outs[k][k] for k in range(4)]), rtol=1e-5, atol=1e-6)


def test_unconditional_unet_has_no_class_parameters():
    a, b = UNet(1, 8, (1, 2), num_groups=4), UNet(1, 8, (1, 2), num_groups=4, num_classes=10)
    extra = sum(p.numel() for p in b.parameters()) - sum(p.numel() for p in a.parameters())
    assert a.class_embed is None and extra == 11 * 32            # (K + 1) × 4·base_channels


def test_guided_eps_model_is_guidance_of_the_two_calls():
    net = _cond_unet()
    x, t = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(2)), torch.tensor([5, 5, 5])
    y = torch.tensor([2, 0, 1])
    with torch.no_grad():
        cond, uncond = net(x, t, y), net(x, t)
        for s in (0.0, 1.0, 3.0):
            want = uncond + s * (cond - uncond)                     # written out, not the function
            torch.testing.assert_close(guided_eps_model(net, y, s, net.null_label)(x, t), want,
                                       rtol=1e-5, atol=1e-5)


def test_guided_ddim_on_gaussian_classes_moves_samples_towards_the_class(f64):
    """Oracle conditional and unconditional ε for two-class Gaussian data under the DDPM schedule:
    DDIM with s = 1 draws the class's N(μ_y, s²), s = 0 the mixture; s = 3 pulls the samples away
    from the other class (the mean moves past μ_y, the spread shrinks)."""
    sched = NoiseSchedule(linear_beta_schedule(1000))
    mus, sd = torch.tensor([-1.0, 2.0]), 0.5

    def net(x, t, y):
        ab = sched.alpha_bars[t].view(-1, 1)
        a, var = ab.sqrt(), ab * sd ** 2 + 1 - ab
        logp = -(x[:, None, :] - a[:, :, None] * mus[None, :, None]) ** 2 / (2 * var[:, :, None])  # (B, 2, 1)
        post = torch.softmax(logp, dim=1)                                   # p(y | x_t)
        cond_mean = a * mus[y.clamp(max=1)].view(-1, 1)
        eps_cond = (1 - ab).sqrt() * (x - cond_mean) / var
        eps_marg = ((1 - ab).sqrt()[:, :, None] * (x[:, None, :] - a[:, :, None] * mus[None, :, None])
                    / var[:, :, None] * post).sum(dim=1)
        return torch.where((y == 2).view(-1, 1), eps_marg, eps_cond)

    n = 20_000
    y = torch.ones(n, dtype=torch.long)                                     # ask for class 1 (μ = 2)
    x_T = torch.randn(n, 1, generator=torch.Generator().manual_seed(0))
    one = ddim_sample(guided_eps_model(net, y, 1.0, 2), (n, 1), sched, 100, x_T=x_T)
    assert abs(one.mean().item() - 2.0) < 0.02 and abs(one.std().item() - sd) < 0.02
    three = ddim_sample(guided_eps_model(net, y, 3.0, 2), (n, 1), sched, 100, x_T=x_T)
    assert three.mean().item() > 2.2 and three.std().item() < 0.4          # measured: 2.51, 0.30
    zero = ddim_sample(guided_eps_model(net, y, 0.0, 2), (n, 1), sched, 100, x_T=x_T)
    assert abs(zero.mean().item() - 0.5) < 0.05                            # the mixture's mean, ½(−1 + 2)
