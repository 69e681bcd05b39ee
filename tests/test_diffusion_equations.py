"""Diffusion equations 2.12–2.13, Algorithms 1–2, DDIM and the VP score-SDE.

Every check uses a reference computed another way: Python loops and ``math`` for the schedules,
Bayes' rule (in closed form and by numerical integration on a grid) for the posterior, Monte-Carlo
moments for the forward process, and the analytic optimal denoiser / score of Gaussian data
x_0 ~ N(m, s²) for the samplers. Index convention: t in {0, …, T−1} is the paper's step t+1.

Gaussian data, derivation used below. With x_t = √ᾱ x_0 + √(1−ᾱ) ε and x_0 ~ N(m, s²):
    x_t ~ N(√ᾱ m, v),  v = ᾱ s² + 1 − ᾱ,   Cov(ε, x_t) = √(1−ᾱ), so
    ε*(x_t, t) = E[ε | x_t] = √(1−ᾱ) (x_t − √ᾱ m)/v,    ∇ log p_t(x_t) = −(x_t − √ᾱ m)/v.
For the VP-SDE replace √ᾱ by a(t) and 1 − ᾱ by σ(t)².
"""

import math

import numpy as np
import pytest
import torch

from genmodels.diffusion import (NoiseSchedule, cosine_beta_schedule, ddim_sample, ddpm_loss,
                                 ddpm_sample, euler_maruyama_sample, linear_beta_schedule,
                                 p_mean_variance, q_posterior, q_sample, q_step, score_matching_loss,
                                 vp_sde_marginal)
from conftest import t64

pytestmark = [pytest.mark.diffusion, pytest.mark.ddpm]

# Gaussian data N(M, S²) for the analytic optimal denoiser / score.
M, S = 1.5, 0.5
N_MC = 20_000                       # Monte-Carlo sample size: SE(mean) = S/√N ≈ 0.0035
TOL_MEAN = 0.02                     # ≈ 5.7 standard errors of the sample mean
TOL_VAR = 0.015                     # SE(var) = S²√(2/N) ≈ 0.0025, plus the samplers' O(1/T) bias




def alpha_bar_loop(betas):
    """ᾱ_t = Π_{s≤t} (1 − β_s), written as a Python loop over floats."""
    out, prod = [], 1.0
    for b in betas.tolist():
        prod *= 1.0 - b
        out.append(prod)
    return out


def gaussian_eps_star(schedule, m=M, s=S):
    def eps_star(x_t, t):
        ab = schedule.alpha_bars[t].view(-1, *([1] * (x_t.dim() - 1)))
        return (1 - ab).sqrt() * (x_t - ab.sqrt() * m) / (ab * s ** 2 + 1 - ab)
    return eps_star


def vp_terms(t, beta_min=0.1, beta_max=20.0):
    """a(t) and σ(t)² from ∫β computed with math (one float t)."""
    integral = beta_min * t + 0.5 * (beta_max - beta_min) * t ** 2
    return math.exp(-0.5 * integral), 1 - math.exp(-integral)


# ------------------------------------------------------------------------------------------------
# schedules
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("T", [1, 2, 10, 1000])
def test_linear_beta_schedule_matches_formula(f64, T):
    betas = linear_beta_schedule(T, 1e-4, 0.02)
    expected = [1e-4 + (0.02 - 1e-4) * i / (T - 1) if T > 1 else 1e-4 for i in range(T)]
    assert betas.shape == (T,) and betas.dtype == torch.float64
    torch.testing.assert_close(betas, torch.tensor(expected), rtol=0, atol=1e-15)


@pytest.mark.parametrize("T,s", [(1, 0.008), (10, 0.008), (1000, 0.008), (50, 0.0)])
def test_cosine_beta_schedule_matches_nichol_dhariwal(f64, T, s):
    def f(u):
        return math.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2
    expected = [min(1 - (f(u) / f(0)) / (f(u - 1) / f(0)), 0.999) for u in range(1, T + 1)]
    betas = cosine_beta_schedule(T, s)
    torch.testing.assert_close(betas, torch.tensor(expected), rtol=1e-12, atol=1e-15)
    assert betas.max() <= 0.999 and betas[-1] == 0.999      # f(T) ≈ 0: the last step is clipped
    assert (betas > 0).all()


def test_schedules_dtype():
    assert linear_beta_schedule(10).dtype == torch.get_default_dtype()
    assert cosine_beta_schedule(10, dtype=torch.float64).dtype == torch.float64
    sched = NoiseSchedule(linear_beta_schedule(10, dtype=torch.float32))
    assert sched.alpha_bars.dtype == torch.float32 and sched.to(torch.float64).betas.dtype == torch.float64


@pytest.mark.parametrize("make", [lambda: linear_beta_schedule(1000), lambda: cosine_beta_schedule(200)])
def test_noise_schedule_alpha_bar_is_product_loop(f64, make):
    betas = make()
    sched = NoiseSchedule(betas)
    alpha_bar = torch.tensor(alpha_bar_loop(betas))
    torch.testing.assert_close(sched.alphas, 1 - betas, rtol=0, atol=0)
    torch.testing.assert_close(sched.alpha_bars, alpha_bar, rtol=1e-12, atol=0)
    assert sched.alpha_bars_prev[0] == 1.0                  # ᾱ before the paper's step 1
    torch.testing.assert_close(sched.alpha_bars_prev[1:], alpha_bar[:-1], rtol=1e-12, atol=0)


def test_float32_schedule_is_computed_in_float64():
    # ᾱ after 1000 steps accumulates rounding: a float32 cumprod drifts, the float64 one cast once does not
    betas32 = linear_beta_schedule(1000, dtype=torch.float32)
    sched = NoiseSchedule(betas32)
    expected = torch.tensor(alpha_bar_loop(betas32.double()), dtype=torch.float64).float()
    assert torch.equal(sched.alpha_bars, expected)


def test_posterior_variance_limits(f64):
    sched = NoiseSchedule(linear_beta_schedule(1000))
    assert sched.posterior_variance[0] == 0.0               # x_{t−1} = x_0 is known exactly
    torch.testing.assert_close(sched.posterior_variance[-1], sched.betas[-1], rtol=1e-4, atol=0)
    assert (sched.posterior_variance <= sched.betas).all()


# ------------------------------------------------------------------------------------------------
# forward process (eq. 2.12, Alg. 1 line 4)
# ------------------------------------------------------------------------------------------------
@pytest.mark.exercise("ddpm.q_step")
def test_q_step_formula(f64, gen):
    sched = NoiseSchedule(linear_beta_schedule(50, 1e-3, 0.2))
    x_prev, noise = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)
    t = torch.tensor([0, 7, 25, 49])
    x_t = q_step(x_prev, t, sched, noise=noise)
    for i, ti in enumerate(t.tolist()):
        beta = 1e-3 + (0.2 - 1e-3) * ti / 49
        expected = math.sqrt(1 - beta) * x_prev[i] + math.sqrt(beta) * noise[i]
        torch.testing.assert_close(x_t[i], expected, rtol=1e-12, atol=1e-12)


@pytest.mark.exercise("ddpm.q_sample")
def test_q_sample_formula(f64, gen):
    sched = NoiseSchedule(linear_beta_schedule(1000))
    alpha_bar = alpha_bar_loop(sched.betas)
    x0, noise = torch.randn(5, 1, 4, 4, generator=gen), torch.randn(5, 1, 4, 4, generator=gen)
    t = torch.tensor([0, 1, 500, 998, 999])
    x_t = q_sample(x0, t, sched, noise=noise)
    assert x_t.shape == x0.shape and x_t.dtype == torch.float64
    for i, ti in enumerate(t.tolist()):
        expected = math.sqrt(alpha_bar[ti]) * x0[i] + math.sqrt(1 - alpha_bar[ti]) * noise[i]
        torch.testing.assert_close(x_t[i], expected, rtol=1e-12, atol=1e-12)


def test_q_sample_matches_iterated_q_step_in_distribution(f64):
    # Iterating 2.12 from a fixed x_0 gives N(√ᾱ_t x_0, 1 − ᾱ_t); q_sample must have the same law.
    gen = torch.Generator().manual_seed(0)
    sched = NoiseSchedule(linear_beta_schedule(30, 0.01, 0.1))
    x0 = torch.tensor([2.0, -1.0]).expand(N_MC, 2)
    for t_last in (0, 9, 29):
        x = x0
        for step in range(t_last + 1):
            x = q_step(x, torch.full((N_MC,), step), sched, generator=gen)
        direct = q_sample(x0, torch.full((N_MC,), t_last), sched, generator=gen)
        ab = alpha_bar_loop(sched.betas)[t_last]
        for samples in (x, direct):
            # SE(mean) ≤ 1/√N ≈ 0.007, SE(var) ≤ √(2/N) ≈ 0.01: tolerances are ≈ 4 SE
            torch.testing.assert_close(samples.mean(0), math.sqrt(ab) * x0[0], rtol=0, atol=0.03)
            torch.testing.assert_close(samples.var(0), torch.full((2,), 1 - ab), rtol=0, atol=0.04)


@pytest.mark.exercise("ddpm.q_sample")
def test_q_sample_is_differentiable(f64, gen):
    sched = NoiseSchedule(linear_beta_schedule(10, 0.01, 0.2))
    x0 = torch.randn(3, 2, generator=gen, requires_grad=True)
    noise = torch.randn(3, 2, generator=gen, requires_grad=True)
    t = torch.tensor([0, 4, 9])
    assert torch.autograd.gradcheck(lambda a, b: q_sample(a, t, sched, noise=b), (x0, noise))
    assert torch.autograd.gradcheck(lambda a, b: q_step(a, t, sched, noise=b), (x0, noise))


# ------------------------------------------------------------------------------------------------
# posterior and reverse step (eq. 2.13)
# ------------------------------------------------------------------------------------------------
@pytest.mark.exercise("ddpm.q_posterior")
def test_q_posterior_matches_bayes_rule_closed_form(f64, gen):
    # q(x_{t−1}|x_t, x_0) ∝ N(x_t; √α_t x_{t−1}, β_t) · N(x_{t−1}; √ᾱ_{t−1} x_0, 1 − ᾱ_{t−1}):
    # a product of Gaussians in x_{t−1}; precisions add, precision-weighted means add.
    sched = NoiseSchedule(linear_beta_schedule(1000))
    betas, alpha_bar = sched.betas.tolist(), alpha_bar_loop(sched.betas)
    t = torch.tensor([1, 2, 100, 500, 998, 999])
    x0, x_t = torch.randn(6, 3, generator=gen), torch.randn(6, 3, generator=gen)
    mean, var = q_posterior(x0, x_t, t, sched)
    assert mean.shape == x0.shape and var.shape == (6, 1)
    for i, ti in enumerate(t.tolist()):
        beta, ab_prev = betas[ti], alpha_bar[ti - 1]
        precision = (1 - beta) / beta + 1 / (1 - ab_prev)
        expected_mean = (math.sqrt(1 - beta) / beta * x_t[i] + math.sqrt(ab_prev) / (1 - ab_prev) * x0[i]) / precision
        torch.testing.assert_close(mean[i], expected_mean, rtol=1e-10, atol=1e-10)
        assert var[i, 0].item() == pytest.approx(1 / precision, rel=1e-10)


def test_q_posterior_matches_bayes_rule_numerical_integration(f64):
    # Normalise the product of the two Gaussian densities on a grid; integrate for mean and variance.
    sched = NoiseSchedule(linear_beta_schedule(10, 0.05, 0.3))
    betas, alpha_bar = sched.betas.tolist(), alpha_bar_loop(sched.betas)
    grid = torch.linspace(-8, 8, 160_001)
    x0_val, x_t_val = 0.7, -0.3
    for ti in (1, 5, 9):
        beta, ab_prev = betas[ti], alpha_bar[ti - 1]
        log_p = (-(x_t_val - math.sqrt(1 - beta) * grid) ** 2 / (2 * beta)
                 - (grid - math.sqrt(ab_prev) * x0_val) ** 2 / (2 * (1 - ab_prev)))
        density = (log_p - log_p.max()).exp()
        density = density / torch.trapezoid(density, grid)
        mean_ref = torch.trapezoid(grid * density, grid)
        var_ref = torch.trapezoid((grid - mean_ref) ** 2 * density, grid)
        mean, var = q_posterior(torch.tensor([x0_val]), torch.tensor([x_t_val]), torch.tensor([ti]), sched)
        assert mean.item() == pytest.approx(mean_ref.item(), abs=1e-8)
        assert var.item() == pytest.approx(var_ref.item(), rel=1e-7)


@pytest.mark.exercise("ddpm.q_posterior")
def test_q_posterior_at_first_step_is_point_mass_at_x0(f64, gen):
    sched = NoiseSchedule(linear_beta_schedule(100))
    x0, x_t = torch.randn(4, 2, generator=gen), torch.randn(4, 2, generator=gen)
    mean, var = q_posterior(x0, x_t, torch.zeros(4, dtype=torch.long), sched)
    torch.testing.assert_close(mean, x0, rtol=0, atol=1e-12)
    assert (var == 0).all()


@pytest.mark.exercise("ddpm.p_mean_variance")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_p_mean_variance_with_oracle_noise_equals_posterior_mean(dtype, gen):
    sched = NoiseSchedule(linear_beta_schedule(1000, dtype=torch.float64))
    x0 = torch.randn(6, 1, 4, 4, generator=gen, dtype=dtype)
    noise = torch.randn(6, 1, 4, 4, generator=gen, dtype=dtype)
    t = torch.tensor([0, 1, 10, 500, 998, 999])
    x_t = q_sample(x0, t, sched, noise=noise)
    oracle = lambda x, tt: noise                              # ε_θ = the ε that made x_t
    mean, var = p_mean_variance(oracle, x_t, t, sched)
    post_mean, post_var = q_posterior(x0, x_t, t, sched)
    tol = 1e-10 if dtype == torch.float64 else 2e-3
    assert mean.dtype == dtype and var.dtype == dtype
    torch.testing.assert_close(mean, post_mean, rtol=tol, atol=tol)
    torch.testing.assert_close(var, post_var, rtol=0, atol=0)
    _, var_beta = p_mean_variance(oracle, x_t, t, sched, variance="beta")
    torch.testing.assert_close(var_beta.flatten(), sched.betas[t].to(dtype), rtol=0, atol=0)


@pytest.mark.exercise("ddpm.p_mean_variance")
def test_p_mean_variance_is_differentiable(f64, gen):
    sched = NoiseSchedule(linear_beta_schedule(20, 0.01, 0.2))
    w = torch.randn(2, 2, generator=gen, requires_grad=True)
    x_t = torch.randn(3, 2, generator=gen, requires_grad=True)
    t = torch.tensor([0, 5, 19])
    fn = lambda x, w_: p_mean_variance(lambda xx, tt: torch.tanh(xx @ w_), x, t, sched)[0]
    assert torch.autograd.gradcheck(fn, (x_t, w))


# ------------------------------------------------------------------------------------------------
# Algorithm 1: the training loss
# ------------------------------------------------------------------------------------------------
@pytest.mark.exercise("ddpm.loss")
def test_ddpm_loss_is_zero_for_the_oracle(f64, gen):
    sched = NoiseSchedule(linear_beta_schedule(100))
    x0, noise = torch.randn(8, 1, 8, 8, generator=gen), torch.randn(8, 1, 8, 8, generator=gen)
    loss = ddpm_loss(lambda x, t: noise, x0, sched, noise=noise, generator=gen)
    assert loss.shape == () and loss.item() == 0.0


@pytest.mark.exercise("ddpm.loss")
def test_ddpm_loss_matches_formula(f64, gen):
    sched = NoiseSchedule(linear_beta_schedule(100))
    alpha_bar = alpha_bar_loop(sched.betas)
    x0, noise = torch.randn(4, 6, generator=gen), torch.randn(4, 6, generator=gen)
    t = torch.tensor([0, 3, 50, 99])
    model = lambda x, tt: 0.5 * x + 0.01 * tt[:, None]
    per_sample = []
    for i, ti in enumerate(t.tolist()):
        x_t = math.sqrt(alpha_bar[ti]) * x0[i] + math.sqrt(1 - alpha_bar[ti]) * noise[i]
        per_sample.append(((noise[i] - (0.5 * x_t + 0.01 * ti)) ** 2).sum())
    per_sample = torch.stack(per_sample)                       # ‖ε − ε_θ‖² per sample
    kw = dict(t=t, noise=noise)
    torch.testing.assert_close(ddpm_loss(model, x0, sched, **kw, reduction="sum"), per_sample.mean())
    torch.testing.assert_close(ddpm_loss(model, x0, sched, **kw), per_sample.mean() / 6)
    torch.testing.assert_close(ddpm_loss(model, x0, sched, **kw, reduction="none"), per_sample / 6)


@pytest.mark.exercise("ddpm.loss")
def test_ddpm_loss_draws_t_uniformly_and_reproducibly():
    sched = NoiseSchedule(linear_beta_schedule(5, 0.01, 0.2))
    seen = []
    model = lambda x, t: (seen.append(t), torch.zeros_like(x))[1]
    x0 = torch.zeros(5000, 1)
    a = ddpm_loss(model, x0, sched, generator=torch.Generator().manual_seed(3))
    b = ddpm_loss(model, x0, sched, generator=torch.Generator().manual_seed(3))
    assert a == b
    counts = torch.bincount(seen[0], minlength=5)
    assert seen[0].dtype == torch.long and counts.numel() == 5
    assert ((counts - 1000).abs() < 150).all()                 # SE of a count ≈ 28


@pytest.mark.exercise("ddpm.loss")
def test_ddpm_loss_gradient_reaches_the_model(gen):
    sched = NoiseSchedule(linear_beta_schedule(10, 0.01, 0.2))
    net = torch.nn.Linear(3, 3)
    loss = ddpm_loss(lambda x, t: net(x), torch.randn(4, 3, generator=gen), sched, generator=gen)
    loss.backward()
    assert net.weight.grad is not None and net.weight.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------------
# Algorithm 2 and DDIM with the analytic optimal denoiser of Gaussian data
# ------------------------------------------------------------------------------------------------
@pytest.mark.exercise("ddpm.sample")
def test_ddpm_sample_recovers_gaussian_data(f64):
    sched = NoiseSchedule(linear_beta_schedule(1000))
    x = ddpm_sample(gaussian_eps_star(sched), (N_MC, 1), sched, torch.Generator().manual_seed(0))
    assert x.shape == (N_MC, 1) and x.dtype == torch.float64
    # Σ_θ = β̃_t ignores Var(x_0 | x_t): the sample variance is ≈ 1% low at T = 1000 (inside TOL_VAR)
    assert abs(x.mean().item() - M) < TOL_MEAN
    assert abs(x.var().item() - S ** 2) < TOL_VAR


@pytest.mark.exercise("ddpm.sample")
def test_ddpm_sample_last_step_adds_no_noise(f64, gen):
    # Alg. 2 line 3: z = 0 at the paper's t = 1 (index 0); with T = 1 the sample is μ_θ(x_T, 0)
    sched = NoiseSchedule(torch.tensor([0.3]))
    model = lambda x, t: 0.5 * x
    x_T = torch.randn(4, 2, generator=gen)
    for variance in ("posterior", "beta"):
        x0 = ddpm_sample(model, (4, 2), sched, gen, x_T=x_T, variance=variance)
        torch.testing.assert_close(x0, (x_T - 0.3 / math.sqrt(0.3) * 0.5 * x_T) / math.sqrt(0.7))


def test_ddim_with_eta_one_and_all_steps_is_ddpm(f64):
    # σ_t² = β̃_t and √(1 − ᾱ_{t−1} − β̃_t) ε + √ᾱ_{t−1} x̂_0 = μ_θ: the same chain, same draws.
    sched = NoiseSchedule(linear_beta_schedule(50, 2e-3, 0.4))
    eps_star = gaussian_eps_star(sched)
    a = ddim_sample(eps_star, (100, 2), sched, steps=50, eta=1.0, generator=torch.Generator().manual_seed(1))
    b = ddpm_sample(eps_star, (100, 2), sched, torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_ddim_is_deterministic_and_recovers_gaussian_data(f64):
    sched = NoiseSchedule(linear_beta_schedule(1000))
    eps_star = gaussian_eps_star(sched)
    x_T = torch.randn(N_MC, 1, generator=torch.Generator().manual_seed(0))
    few = ddim_sample(eps_star, (N_MC, 1), sched, steps=50, x_T=x_T, generator=torch.Generator().manual_seed(1))
    again = ddim_sample(eps_star, (N_MC, 1), sched, steps=50, x_T=x_T, generator=torch.Generator().manual_seed(2))
    assert torch.equal(few, again)
    # the deterministic map halves the x_T sample-mean error (S / 1), so the same tolerance holds
    assert abs(few.mean().item() - M) < TOL_MEAN
    full = ddim_sample(eps_star, (N_MC, 1), sched, steps=1000, x_T=x_T)
    assert abs(full.mean().item() - M) < TOL_MEAN
    assert abs(full.var().item() - S ** 2) < TOL_VAR      # 50 steps under-disperse (≈ 0.227): not checked


# ------------------------------------------------------------------------------------------------
# VP-SDE: marginal, score matching, reverse Euler–Maruyama
# ------------------------------------------------------------------------------------------------
@pytest.mark.exercise("ddpm.sde_marginal")
def test_vp_sde_marginal_matches_integral_of_beta(f64, gen):
    t = torch.tensor([0.0, 1e-3, 0.3, 0.77, 1.0])
    x0, noise = torch.randn(5, 3, generator=gen), torch.randn(5, 3, generator=gen)
    x_t, std = vp_sde_marginal(x0, t, 0.1, 20.0, noise=noise)
    assert std.shape == (5, 1) and x_t.dtype == torch.float64
    for i, ti in enumerate(t.tolist()):
        s_grid = torch.linspace(0.0, ti, 20_001)
        integral = torch.trapezoid(0.1 + s_grid * (20.0 - 0.1), s_grid).item()  # exact for a linear β
        a, var = math.exp(-0.5 * integral), 1 - math.exp(-integral)
        assert std[i, 0].item() == pytest.approx(math.sqrt(var), rel=1e-10, abs=1e-12)
        torch.testing.assert_close(x_t[i], a * x0[i] + math.sqrt(var) * noise[i], rtol=1e-10, atol=1e-12)


@pytest.mark.exercise("ddpm.sde_marginal")
def test_vp_sde_marginal_solves_the_forward_sde(f64):
    # Simulate dx = −½β x dt + √β dw with 1000 Euler–Maruyama steps up to t = 0.4 from x_0 = 2.
    gen = torch.Generator().manual_seed(0)
    t_end, n_steps = 0.4, 1000
    dt = t_end / n_steps
    x = torch.full((N_MC,), 2.0)
    for k in range(n_steps):
        beta = 0.1 + (k * dt) * 19.9
        x = x - 0.5 * beta * x * dt + math.sqrt(beta * dt) * torch.randn(N_MC, generator=gen)
    x_t, std = vp_sde_marginal(torch.full((N_MC,), 2.0), torch.full((N_MC,), t_end), generator=gen)
    a, var = vp_terms(t_end)
    for samples in (x, x_t):                                  # SE(mean) ≈ 0.007, SE(var) ≈ 0.01
        assert abs(samples.mean().item() - 2 * a) < 0.03
        assert abs(samples.var().item() - var) < 0.04


@pytest.mark.exercise("ddpm.sde_marginal")
def test_vp_sde_marginal_gradcheck(f64, gen):
    x0 = torch.randn(3, 2, generator=gen, requires_grad=True)
    t = torch.tensor([0.1, 0.5, 0.9], requires_grad=True)
    noise = torch.randn(3, 2, generator=gen)
    assert torch.autograd.gradcheck(lambda a, b: vp_sde_marginal(a, b, noise=noise), (x0, t))


def gaussian_score(x, t, m=M, s=S):
    """∇ log p_t for x_0 ~ N(m, s²): −(x − a m)/(a² s² + σ²), with ∫β written out once more."""
    integral = (0.1 * t + 0.5 * (20.0 - 0.1) * t ** 2).to(x).view(-1, 1)
    a, var = torch.exp(-0.5 * integral), 1 - torch.exp(-integral)
    return -(x - a * m) / (a ** 2 * s ** 2 + var)


@pytest.mark.exercise("ddpm.score_matching")
def test_score_matching_loss_matches_formula(f64, gen):
    x0, noise = torch.randn(4, 3, generator=gen), torch.randn(4, 3, generator=gen)
    t = torch.tensor([1e-3, 0.2, 0.6, 1.0])
    model = lambda x, tt: -x * tt[:, None]
    per_sample = []
    for i, ti in enumerate(t.tolist()):
        a, var = vp_terms(ti)
        x_t = a * x0[i] + math.sqrt(var) * noise[i]
        per_sample.append(((math.sqrt(var) * (-x_t * ti) + noise[i]) ** 2).mean())
    loss = score_matching_loss(model, x0, t=t, noise=noise)
    torch.testing.assert_close(loss, torch.stack(per_sample).mean(), rtol=1e-12, atol=1e-12)


def test_score_matching_loss_draws_t_uniformly_in_eps_one():
    seen = []
    model = lambda x, t: (seen.append(t), torch.zeros_like(x))[1]
    x0 = torch.zeros(4000, 1)
    a = score_matching_loss(model, x0, eps=0.2, generator=torch.Generator().manual_seed(3))
    b = score_matching_loss(model, x0, eps=0.2, generator=torch.Generator().manual_seed(3))
    assert a == b
    t = seen[0]
    assert t.shape == (4000,) and t.min() >= 0.2 and t.max() <= 1.0
    # U[0.2, 1]: mean 0.6, sd 0.8/√12 ≈ 0.23, SE(mean) ≈ 0.0037; each half of the range ≈ 2000
    assert abs(t.mean().item() - 0.6) < 0.02 and abs(int((t < 0.6).sum()) - 2000) < 160


@pytest.mark.exercise("ddpm.score_matching")
def test_score_matching_loss_is_minimised_by_the_true_score(f64):
    gen = torch.Generator().manual_seed(0)
    x0 = M + S * torch.randn(N_MC, 1, generator=gen)
    t = 1e-3 + (1 - 1e-3) * torch.rand(N_MC, generator=gen)
    noise = torch.randn(N_MC, 1, generator=gen)
    loss = lambda score_fn: score_matching_loss(score_fn, x0, t=t, noise=noise).item()
    best = loss(gaussian_score)
    # Its expected value: σ s* + ε = ε (a²s²/v) − σ a s u / v has variance a²s²/v, v = a²s² + σ².
    a, var = [torch.tensor(v) for v in zip(*(vp_terms(ti) for ti in t.tolist()))]
    expected = (a ** 2 * S ** 2 / (a ** 2 * S ** 2 + var)).mean().item()
    assert best == pytest.approx(expected, rel=0.05)          # SE ≈ 1.4 % of the value
    for perturbed in (lambda x, tt: gaussian_score(x, tt) + 0.1, lambda x, tt: gaussian_score(x, tt) - 0.1,
                      lambda x, tt: 1.1 * gaussian_score(x, tt), lambda x, tt: 0.9 * gaussian_score(x, tt)):
        assert loss(perturbed) > best


@pytest.mark.exercise("ddpm.euler_maruyama")
def test_euler_maruyama_two_steps_by_hand(f64):
    # Δ = (1 − eps)/2; the score is read at t = 1 and t = 1 − Δ; noise is added after step 1 only.
    eps, beta = 0.1, lambda t: 0.1 + t * 19.9
    seen = []
    model = lambda x, t: (seen.append(t.clone()), -x)[1]
    x_T = torch.randn(3, 2, generator=torch.Generator().manual_seed(5))
    x = euler_maruyama_sample(model, (3, 2), 2, eps=eps, x_T=x_T, generator=torch.Generator().manual_seed(6))
    z = torch.randn(3, 2, generator=torch.Generator().manual_seed(6))
    d = (1 - eps) / 2
    x1 = x_T + (0.5 * beta(1.0) * x_T + beta(1.0) * -x_T) * d + math.sqrt(beta(1.0) * d) * z
    x2 = x1 + (0.5 * beta(1 - d) * x1 + beta(1 - d) * -x1) * d
    torch.testing.assert_close(x, x2, rtol=1e-12, atol=1e-12)
    assert [s_t.tolist() for s_t in seen] == [[1.0] * 3, [1 - d] * 3]


@pytest.mark.exercise("ddpm.euler_maruyama")
def test_euler_maruyama_recovers_gaussian_data(f64):
    x = euler_maruyama_sample(gaussian_score, (N_MC, 1), 500, generator=torch.Generator().manual_seed(0))
    assert x.shape == (N_MC, 1) and x.dtype == torch.float64
    assert abs(x.mean().item() - M) < TOL_MEAN
    assert abs(x.var().item() - S ** 2) < TOL_VAR


# ------------------------------------------------------------------------------------------------
# dtypes and input validation
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_functions_keep_dtype(dtype, gen):
    sched = NoiseSchedule(linear_beta_schedule(10, 0.01, 0.2))
    x0 = torch.randn(3, 2, generator=gen).to(dtype)
    t = torch.tensor([0, 4, 9])
    assert q_step(x0, t, sched, generator=gen).dtype == dtype
    assert q_sample(x0, t, sched, generator=gen).dtype == dtype
    assert all(v.dtype == dtype for v in q_posterior(x0, x0, t, sched))
    assert all(v.dtype == dtype for v in p_mean_variance(lambda x, tt: x, x0, t, sched))
    assert ddpm_loss(lambda x, tt: x, x0, sched, generator=gen).dtype == dtype
    assert all(v.dtype == dtype for v in vp_sde_marginal(x0, torch.rand(3, generator=gen), generator=gen))
    assert score_matching_loss(lambda x, tt: x, x0, generator=gen).dtype == dtype
    assert ddpm_sample(lambda x, tt: x, (2, 2), sched, gen, dtype=dtype).dtype == dtype
    assert ddim_sample(lambda x, tt: x, (2, 2), sched, 3, dtype=dtype).dtype == dtype
    assert euler_maruyama_sample(lambda x, tt: x, (2, 2), 3, dtype=dtype).dtype == dtype


def _sched():
    return NoiseSchedule(linear_beta_schedule(10, 0.01, 0.2))


@pytest.mark.parametrize("call,arg", [
    (lambda: linear_beta_schedule(0), "T"),
    (lambda: cosine_beta_schedule(0), "T"),
    (lambda: linear_beta_schedule(10.0), "T"),
    (lambda: linear_beta_schedule(10, 0.0, 0.02), "beta_start"),
    (lambda: linear_beta_schedule(10, 1e-4, 1.0), "beta_end"),
    (lambda: cosine_beta_schedule(10, s=-0.1), "s"),
    (lambda: NoiseSchedule(torch.tensor([0.1, 1.0])), "betas"),
    (lambda: NoiseSchedule(torch.tensor([0.0, 0.5])), "betas"),
    (lambda: NoiseSchedule(torch.tensor([-0.1, 0.5])), "betas"),
    (lambda: NoiseSchedule(torch.tensor([0.1, float("nan")])), "betas"),
    (lambda: NoiseSchedule(torch.empty(0)), "betas"),
    (lambda: NoiseSchedule(torch.full((2, 2), 0.1)), "betas"),
    (lambda: q_sample(torch.zeros(2, 3), torch.tensor([0.0, 1.0]), _sched()), "t"),
    (lambda: q_sample(torch.zeros(2, 3), torch.tensor([0, 10]), _sched()), "t"),
    (lambda: q_sample(torch.zeros(2, 3), torch.tensor([-1, 0]), _sched()), "t"),
    (lambda: q_sample(torch.zeros(2, 3), torch.tensor([0, 1, 2]), _sched()), "t"),
    (lambda: q_step(torch.zeros(2, 3), torch.tensor([True, False]), _sched()), "t"),
    (lambda: q_sample(torch.tensor([[0.0], [float("nan")]]), torch.tensor([0, 1]), _sched()), "x0"),
    (lambda: q_step(torch.tensor([[0.0], [float("inf")]]), torch.tensor([0, 1]), _sched()), "x_prev"),
    (lambda: q_sample(torch.zeros(2, 3), torch.tensor([0, 1]), _sched(), noise=torch.zeros(2, 2)), "noise"),
    (lambda: q_sample(torch.zeros(2, 3), torch.tensor([0, 1]), _sched(), noise=torch.zeros(2, 3).double()), "noise"),
    (lambda: q_sample(torch.zeros(2, 3), torch.tensor([0, 1]), linear_beta_schedule(10)), "schedule"),
    (lambda: q_posterior(torch.zeros(2, 3), torch.zeros(2, 4), torch.tensor([0, 1]), _sched()), "x0"),
    (lambda: p_mean_variance(lambda x, t: x[:, :1], torch.zeros(2, 3), torch.tensor([0, 1]), _sched()), "eps_model output"),
    (lambda: p_mean_variance(lambda x, t: x / 0, torch.zeros(2, 3), torch.tensor([0, 1]), _sched()), "eps_model output"),
    (lambda: p_mean_variance(lambda x, t: x, torch.zeros(2, 3), torch.tensor([0, 1]), _sched(), variance="x"), "variance"),
    (lambda: ddpm_loss(lambda x, t: x, torch.zeros(2, 3), _sched(), reduction="max"), "reduction"),
    (lambda: ddpm_loss(lambda x, t: x, torch.zeros(2, 3), _sched(), t=torch.tensor([0, 99])), "t"),
    (lambda: ddpm_sample(lambda x, t: x, (0, 2), _sched()), "shape"),
    (lambda: ddpm_sample(lambda x, t: x, (2, 2), _sched(), x_T=torch.zeros(3, 2)), "x_T"),
    (lambda: ddim_sample(lambda x, t: x, (2, 2), _sched(), steps=11), "steps"),
    (lambda: ddim_sample(lambda x, t: x, (2, 2), _sched(), steps=0), "steps"),
    (lambda: ddim_sample(lambda x, t: x, (2, 2), _sched(), steps=5, eta=1.5), "eta"),
    (lambda: vp_sde_marginal(torch.zeros(2, 3), torch.tensor([0.5, 1.5])), "t"),
    (lambda: vp_sde_marginal(torch.zeros(2, 3), torch.tensor([0.5])), "t"),
    (lambda: vp_sde_marginal(torch.zeros(2, 3), torch.tensor([0.5, float("nan")])), "t"),
    (lambda: vp_sde_marginal(torch.zeros(2, 3), torch.tensor([0.5, 0.5]), beta_min=0.0), "beta_min"),
    (lambda: vp_sde_marginal(torch.zeros(2, 3), torch.tensor([0.5, 0.5]), 1.0, 0.5), "beta_max"),
    (lambda: vp_sde_marginal(torch.full((2, 3), float("nan")), torch.tensor([0.5, 0.5])), "x0"),
    (lambda: score_matching_loss(lambda x, t: x, torch.zeros(2, 3), eps=0.0), "eps"),
    (lambda: score_matching_loss(lambda x, t: x[:, :1], torch.zeros(2, 3)), "score_model output"),
    (lambda: euler_maruyama_sample(lambda x, t: x, (2, 2), 0), "steps"),
    (lambda: euler_maruyama_sample(lambda x, t: x, (2, 2), 5, eps=1.0), "eps"),
])
def test_bad_inputs_raise_value_error_naming_the_argument(call, arg):
    with pytest.raises(ValueError, match=rf"^{arg}:"):
        call()


def test_cosine_schedule_default_offset_dtype_and_float64_accuracy():
    """s = 0.008 by default; the schedule is computed in float64 whatever the default dtype and
    returned in the default dtype unless asked; max_beta clips the last steps."""
    assert torch.get_default_dtype() == torch.float32
    T, s = 50, 0.008

    def f(u):
        return math.cos((u / T + s) / (1 + s) * math.pi / 2) ** 2
    expected = torch.tensor([min(1 - f(u) / f(u - 1), 0.999) for u in range(1, T + 1)],
                            dtype=torch.float64)
    torch.testing.assert_close(cosine_beta_schedule(T, dtype=torch.float64), expected, rtol=1e-12, atol=1e-15)
    assert cosine_beta_schedule(T).dtype == torch.float32
    clipped = cosine_beta_schedule(T, max_beta=0.5, dtype=torch.float64)
    torch.testing.assert_close(clipped, expected.clamp(max=0.5), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("kwargs, message", [
    (dict(max_beta=0.0), r"^max_beta: must lie in \(0.0, 1.0\), got 0.0$"),
    (dict(max_beta=1.0), r"^max_beta: must lie in \(0.0, 1.0\), got 1.0$"),
    (dict(max_beta=1.5), r"^max_beta: must lie in \(0.0, 1.0\), got 1.5$"),
    (dict(s=-0.1), r"^s: must lie in \[0.0, inf\), got -0.1$"),
    (dict(T=0), r"^T: must be >= 1, got 0$"),
])
def test_cosine_schedule_messages(kwargs, message):
    with pytest.raises(ValueError, match=message):
        cosine_beta_schedule(**{"T": 10, **kwargs})


def test_losses_accept_one_number_per_sample(f64, gen):
    """x0 of shape [B] (one scalar per sample) is data too: both losses reduce to the mean of
    the per-sample squared errors, written out here."""
    sched = _sched()
    x0, noise = torch.randn(4, generator=gen), torch.randn(4, generator=gen)
    t = torch.tensor([0, 3, 6, 9])
    model = lambda x, tt: 0.5 * x
    ab = sched.alpha_bars
    expected = [(noise[i] - 0.5 * (ab[t[i]].sqrt() * x0[i] + (1 - ab[t[i]]).sqrt() * noise[i])) ** 2
                for i in range(4)]
    torch.testing.assert_close(ddpm_loss(model, x0, sched, t=t, noise=noise),
                               torch.stack(expected).mean(), rtol=1e-12, atol=1e-12)
    tc = torch.tensor([0.1, 0.3, 0.6, 1.0])
    per = []
    for i, ti in enumerate(tc.tolist()):
        a, var = vp_terms(ti)
        x_t = a * x0[i] + math.sqrt(var) * noise[i]
        per.append((math.sqrt(var) * 0.5 * x_t + noise[i]) ** 2)
    torch.testing.assert_close(score_matching_loss(model, x0, t=tc, noise=noise),
                               torch.stack(per).mean(), rtol=1e-12, atol=1e-12)


def test_ddpm_loss_draws_t_and_noise_from_the_generator(f64):
    seen = []
    model = lambda x, t: (seen.append(t), torch.zeros_like(x))[1]
    x0 = torch.zeros(6, 2)
    ddpm_loss(model, x0, _sched(), generator=torch.Generator().manual_seed(11))
    expected_t = torch.randint(0, 10, (6,), generator=torch.Generator().manual_seed(11))
    assert torch.equal(seen[0], expected_t)


@pytest.mark.parametrize("call, message", [
    (lambda: ddpm_loss(lambda x, t: x, torch.tensor(1.0), _sched()), r"^x0: expected at least 1 dimensions"),
    (lambda: ddpm_loss(lambda x, t: x, torch.zeros(0, 3), _sched()),
     r"^x0: expected a non-empty tensor, got shape \[0, 3\]$"),
    (lambda: ddpm_loss(3, torch.zeros(2, 3), _sched()), r"^eps_model: expected a callable, got int$"),
    (lambda: ddpm_loss(lambda x, t: x, torch.zeros(2, 3), _sched(), noise=torch.zeros(2, 2)),
     r"^noise: shapes must match, got noise\[2, 2\], x0\[2, 3\]$"),
    (lambda: ddpm_loss(lambda x, t: x, torch.zeros(2, 3), _sched(), noise=torch.zeros(2, 3, dtype=torch.float64)),
     r"^noise: dtypes must match, got noise:torch.float64, x0:torch.float32$"),
    (lambda: score_matching_loss("model", torch.zeros(2, 3)), r"^score_model: expected a callable, got str$"),
    (lambda: score_matching_loss(lambda x, t: x, torch.tensor(1.0)), r"^x0: expected at least 1 dimensions"),
    (lambda: score_matching_loss(lambda x, t: x, torch.full((2, 3), float("nan"))), r"^x0: contains 6 NaN/inf"),
])
def test_loss_messages(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_forward_draws_come_from_the_generator_in_the_data_dtype():
    """With noise=None, q_sample / q_step / score_matching_loss draw ε (and t) from ``generator``
    in x0's dtype: the same seed reproduces them exactly (default dtype left at float32)."""
    sched = NoiseSchedule(linear_beta_schedule(10, 0.01, 0.2, dtype=torch.float64))
    x0 = torch.linspace(-1, 1, 6, dtype=torch.float64).reshape(3, 2)
    t = torch.tensor([0, 4, 9])
    eps = torch.randn(3, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    torch.testing.assert_close(q_sample(x0, t, sched, generator=torch.Generator().manual_seed(2)),
                               q_sample(x0, t, sched, noise=eps), rtol=0, atol=0)
    torch.testing.assert_close(q_step(x0, t, sched, generator=torch.Generator().manual_seed(2)),
                               q_step(x0, t, sched, noise=eps), rtol=0, atol=0)
    seen = []
    model = lambda x, tt: (seen.append((x, tt)), torch.zeros_like(x))[1]
    score_matching_loss(model, x0, 0.5, 3.0, eps=0.1, generator=torch.Generator().manual_seed(4))
    g = torch.Generator().manual_seed(4)
    t_ref = 0.1 + 0.9 * torch.rand(3, generator=g, dtype=torch.float64)
    noise_ref = torch.randn(3, 2, generator=g, dtype=torch.float64)
    torch.testing.assert_close(seen[0][1], t_ref, rtol=0, atol=0)
    torch.testing.assert_close(seen[0][0], vp_sde_marginal(x0, t_ref, 0.5, 3.0, noise=noise_ref)[0],
                               rtol=0, atol=0)


def test_score_matching_loss_reductions_and_betas(f64, gen):
    x0, noise = torch.randn(3, 2, generator=gen), torch.randn(3, 2, generator=gen)
    t = torch.tensor([0.2, 0.5, 0.9])
    model = lambda x, tt: -x
    sq = []
    for i, ti in enumerate(t.tolist()):
        integral = 0.5 * ti + 0.5 * (3.0 - 0.5) * ti ** 2          # β_min = 0.5, β_max = 3
        a, var = math.exp(-0.5 * integral), 1 - math.exp(-integral)
        x_t = a * x0[i] + math.sqrt(var) * noise[i]
        sq.append((math.sqrt(var) * -x_t + noise[i]) ** 2)
    sq = torch.stack(sq)                                            # (B, D)
    kw = dict(t=t, noise=noise)
    torch.testing.assert_close(score_matching_loss(model, x0, 0.5, 3.0, **kw), sq.mean(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(score_matching_loss(model, x0, 0.5, 3.0, reduction="sum", **kw),
                               sq.sum(1).mean(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(score_matching_loss(model, x0, 0.5, 3.0, reduction="none", **kw),
                               sq.mean(1), rtol=1e-12, atol=1e-12)


def test_euler_maruyama_one_step_with_other_betas_and_no_graph(f64):
    """One step from t = 1 with β_min = 0.5, β_max = 2: x = x_T + (½β x_T + β s) Δ with no noise
    (the last step returns its mean); a torch.Size shape works; no graph is kept by default."""
    x_T = torch.randn(3, 2, generator=torch.Generator().manual_seed(5))
    d = 1 - 0.2
    w = torch.nn.Parameter(torch.tensor(-1.0))
    model = lambda x, t: w * x
    x = euler_maruyama_sample(model, torch.Size((3, 2)), 1, 0.5, 2.0, eps=0.2, x_T=x_T)
    torch.testing.assert_close(x, x_T + (0.5 * 2.0 * x_T - 2.0 * x_T) * d, rtol=1e-12, atol=1e-12)
    assert not x.requires_grad
    assert euler_maruyama_sample(model, (3, 2), 1, x_T=x_T, enable_grad=True).requires_grad


def test_euler_maruyama_noise_is_drawn_in_the_requested_dtype():
    assert torch.get_default_dtype() == torch.float32
    x_T = torch.zeros(2, 2, dtype=torch.float64)
    x = euler_maruyama_sample(lambda x, t: torch.zeros_like(x), (2, 2), 2, 0.5, 2.0, eps=0.2, x_T=x_T,
                              generator=torch.Generator().manual_seed(1))
    d, beta1 = 0.4, 2.0
    z = torch.randn(2, 2, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    x1 = math.sqrt(beta1 * d) * z
    beta2 = 0.5 + (1 - d) * 1.5
    torch.testing.assert_close(x, x1 + 0.5 * beta2 * x1 * d, rtol=1e-12, atol=1e-12)


def test_ddim_timesteps_and_no_graph_by_default(f64):
    from genmodels.diffusion.ddpm import ddim_timesteps
    assert ddim_timesteps(10, 1) == [9]
    assert ddim_timesteps(10, 2) == [0, 9]
    assert ddim_timesteps(10, 3) == [0, 4, 9] and all(isinstance(i, int) for i in ddim_timesteps(10, 3))
    w = torch.nn.Parameter(torch.tensor(0.5))
    x = ddim_sample(lambda x, t: w * x, (2, 2), _sched(), steps=3, generator=torch.Generator().manual_seed(0))
    assert not x.requires_grad


def test_vp_sde_marginal_equal_betas_and_an_empty_batch(f64, gen):
    """β_min = β_max = β gives a(t) = exp(−βt/2); an empty batch is a valid (empty) input."""
    x0, noise = torch.randn(2, 3, generator=gen), torch.randn(2, 3, generator=gen)
    t = torch.tensor([0.3, 0.8])
    x_t, std = vp_sde_marginal(x0, t, 1.0, 1.0, noise=noise)
    a = torch.exp(-0.5 * t)[:, None]
    torch.testing.assert_close(x_t, a * x0 + (1 - a ** 2).sqrt() * noise, rtol=1e-12, atol=1e-12)
    x_e, std_e = vp_sde_marginal(torch.zeros(0, 3), torch.zeros(0))
    assert x_e.shape == (0, 3) and std_e.shape == (0, 1)


@pytest.mark.parametrize("call, message", [
    (lambda: q_posterior(torch.full((2, 3), float("nan")), torch.zeros(2, 3), torch.tensor([0, 1]), _sched()),
     r"^x0: contains 6 NaN/inf"),
    (lambda: q_posterior(torch.zeros(2, 3), torch.full((2, 3), float("nan")), torch.tensor([0, 1]), _sched()),
     r"^x_t: contains 6 NaN/inf"),
    (lambda: q_posterior(torch.zeros(2, 3), torch.zeros(2, 4), torch.tensor([0, 1]), _sched()),
     r"^x0: shapes must match, got x0\[2, 3\], x_t\[2, 4\]$"),
    (lambda: q_posterior(torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.float64), torch.tensor([0, 1]), _sched()),
     r"^x0: dtypes must match, got x0:torch.float32, x_t:torch.float64$"),
    (lambda: q_posterior(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0.5, 1.0]), _sched()),
     r"^t: expected an integer dtype"),
    (lambda: q_sample(torch.zeros(2, 3), torch.tensor([0, 1]), _sched(), noise=torch.zeros(2, 2)),
     r"^noise: shapes must match, got noise\[2, 2\], x0\[2, 3\]$"),
    (lambda: q_step(torch.zeros(2, 3), torch.tensor([0, 1]), _sched(), noise=torch.zeros(2, 2)),
     r"^noise: shapes must match, got noise\[2, 2\], x_prev\[2, 3\]$"),
    (lambda: q_step(torch.zeros(2, 3), torch.tensor([0, 1]), _sched(), noise=torch.full((2, 3), float("inf"))),
     r"^noise: contains 6 NaN/inf"),
    (lambda: vp_sde_marginal(torch.zeros(2, 3), torch.tensor([0.5, 0.5]), 0.5, 0.0),
     r"^beta_max: must be > 0, got 0.0$"),
    (lambda: vp_sde_marginal(torch.zeros(2, 3), torch.tensor([0.5, 0.5]), 1.0, 0.5),
     r"^beta_max: must be >= beta_min = 1.0, got 0.5$"),
    (lambda: vp_sde_marginal(torch.zeros(2, 3), torch.zeros(2, 1)), r"^t: expected 1 dimensions"),
    (lambda: vp_sde_marginal(torch.zeros(2, 3), torch.zeros(3)),
     r"^t: expected shape \[2\] \(one time per sample\), got \[3\]$"),
    (lambda: score_matching_loss(lambda x, t: x, torch.zeros(2, 3), eps=1.0), r"^eps: must lie in \(0.0, 1.0\), got 1.0$"),
    (lambda: score_matching_loss(lambda x, t: x, torch.zeros(2, 3), eps=1.5), r"^eps: must lie in \(0.0, 1.0\), got 1.5$"),
    (lambda: score_matching_loss(lambda x, t: x, torch.zeros(2, 3), reduction="max"), r"^reduction: must be one of"),
    (lambda: score_matching_loss(lambda x, t: x[:, :1], torch.zeros(2, 3)),
     r"^score_model output: shapes must match, got score_model output\[2, 1\], x_t\[2, 3\]$"),
    (lambda: score_matching_loss(lambda x, t: x / 0, torch.ones(2, 3)), r"^score_model output: contains"),
    (lambda: euler_maruyama_sample(3, (2, 2), 2), r"^score_model: expected a callable, got int$"),
    (lambda: euler_maruyama_sample(lambda x, t: x, (2, 2), 2, eps=0.0), r"^eps: must lie in \(0.0, 1.0\), got 0.0$"),
    (lambda: euler_maruyama_sample(lambda x, t: x[:, :1], (2, 2), 2),
     r"^score_model output: shapes must match, got score_model output\[2, 1\], x\[2, 2\]$"),
    (lambda: euler_maruyama_sample(lambda x, t: x / 0, (2, 2), 2, x_T=torch.ones(2, 2)),
     r"^score_model output: contains"),
])
def test_more_diffusion_messages(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_noise_schedule_every_coefficient_by_hand():
    """Each precomputed coefficient against its expression in Python floats (product loop)."""
    betas = [0.1, 0.2, 0.3]
    s = NoiseSchedule(torch.tensor(betas, dtype=torch.float64))
    ab, prod = [], 1.0
    for b in betas:
        prod *= 1 - b
        ab.append(prod)
    want = {
        "sqrt_recip_alphas": [1 / math.sqrt(1 - b) for b in betas],
        "sqrt_recip_alpha_bars": [1 / math.sqrt(a) for a in ab],
        "sqrt_recip_alpha_bars_minus_one": [math.sqrt(1 / a - 1) for a in ab],
        "betas_over_sqrt_one_minus_alpha_bars": [b / math.sqrt(1 - a) for b, a in zip(betas, ab)],
    }
    for name, values in want.items():
        torch.testing.assert_close(getattr(s, name), torch.tensor(values, dtype=torch.float64),
                                   rtol=1e-13, atol=0, msg=name)


def test_linear_schedule_is_float64_accurate_and_vp_beta_defaults():
    assert torch.get_default_dtype() == torch.float32
    T = 1000
    want = torch.tensor([1e-4 + (0.02 - 1e-4) * t / (T - 1) for t in range(T)], dtype=torch.float64)
    torch.testing.assert_close(linear_beta_schedule(T, dtype=torch.float64), want, rtol=1e-13, atol=1e-17)
    from genmodels.diffusion import vp_sde_beta
    torch.testing.assert_close(vp_sde_beta(torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)),
                               torch.tensor([0.1, 10.05, 20.0], dtype=torch.float64), rtol=1e-14, atol=0)


def test_ddpm_sample_two_steps_by_hand_with_beta_variance():
    """T = 2, ε_θ = 0, variance="beta": x_0 = (x_T/√α_1 + √β_1 z)/√α_0, z from the generator in
    the schedule's dtype; a one-dimensional shape and a torch.Size work; no graph by default."""
    betas = torch.tensor([0.1, 0.3], dtype=torch.float64)
    sched = NoiseSchedule(betas)
    w = torch.nn.Parameter(torch.tensor(0.0, dtype=torch.float64))
    model = lambda x, t: w * x
    x_T = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    x = ddpm_sample(model, torch.Size([3]), sched, generator=torch.Generator().manual_seed(8),
                    x_T=x_T, variance="beta")
    z = torch.randn(3, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    x1 = x_T / math.sqrt(0.7) + math.sqrt(0.3) * z
    torch.testing.assert_close(x, x1 / math.sqrt(0.9), rtol=1e-12, atol=1e-12)
    assert not x.requires_grad
    drawn = ddpm_sample(model, (3,), sched, generator=torch.Generator().manual_seed(8))
    g = torch.Generator().manual_seed(8)
    xT = torch.randn(3, generator=g, dtype=torch.float64)   # x_T, then z, from one generator
    z = torch.randn(3, generator=g, dtype=torch.float64)
    post = 0.3 * (1 - 0.9) / (1 - 0.9 * 0.7)                 # β̃_1
    torch.testing.assert_close(drawn, (xT / math.sqrt(0.7) + math.sqrt(post) * z) / math.sqrt(0.9),
                               rtol=1e-12, atol=1e-12)


def test_euler_maruyama_draws_x_T_from_the_generator():
    x = euler_maruyama_sample(lambda x, t: torch.zeros_like(x), (2, 2), 1, 0.5, 2.0, eps=0.2,
                              generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    x_T = torch.randn(2, 2, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    torch.testing.assert_close(x, x_T + 0.5 * 2.0 * x_T * 0.8, rtol=1e-12, atol=1e-12)
    assert euler_maruyama_sample(lambda x, t: torch.zeros_like(x), (3,), 1).shape == (3,)


_Z2 = torch.zeros(2, 3)
_T2 = torch.tensor([0, 1])


@pytest.mark.parametrize("call, message", [
    (lambda: vp_sde_marginal(torch.tensor(1.0), torch.tensor([0.5])), r"^x0: expected at least 1 dimensions"),
    (lambda: vp_sde_marginal(_Z2, torch.tensor([0.5, 0.5]), noise=torch.full((2, 3), float("nan"))),
     r"^noise: contains 6 NaN/inf"),
    (lambda: vp_sde_marginal(_Z2, torch.tensor([0.5, 0.5]), noise=torch.zeros(2, 2)),
     r"^noise: shapes must match, got noise\[2, 2\], x0\[2, 3\]$"),
    (lambda: vp_sde_marginal(_Z2, torch.tensor([0.5, 0.5]), noise=torch.zeros(2, 3, dtype=torch.float64)),
     r"^noise: dtypes must match, got noise:torch.float64, x0:torch.float32$"),
    (lambda: linear_beta_schedule(10, 1.0), r"^beta_start: must lie in \(0.0, 1.0\), got 1.0$"),
    (lambda: linear_beta_schedule(10, 1.5), r"^beta_start: must lie in \(0.0, 1.0\), got 1.5$"),
    (lambda: linear_beta_schedule(10, 1e-4, 0.0), r"^beta_end: must lie in \(0.0, 1.0\), got 0.0$"),
    (lambda: NoiseSchedule(torch.empty(0)), r"^betas: expected at least one step \(T >= 1\), got an empty tensor$"),
    (lambda: q_sample(_Z2, _T2, torch.tensor([0.1, 0.2])), r"^schedule: expected a NoiseSchedule, got Tensor$"),
    (lambda: q_sample(_Z2, [0, 1], _sched()), r"^t: expected an integer torch.Tensor, got list$"),
    (lambda: q_sample(_Z2, torch.tensor([0, 10]), _sched()),
     r"^t: timesteps must lie in \{0, \.\.\., 9\} \(index t is the paper's step t\+1\), got min 0, max 10$"),
    (lambda: p_mean_variance(lambda x, t: x, torch.full((2, 3), float("nan")), _T2, _sched()), r"^x_t: contains"),
    (lambda: p_mean_variance(lambda x, t: x, _Z2, torch.tensor([0.0, 1.0]), _sched()), r"^t: expected an integer dtype"),
    (lambda: p_mean_variance("model", _Z2, _T2, _sched()), r"^eps_model: expected a callable, got str$"),
    (lambda: p_mean_variance(lambda x, t: x[:, :1], _Z2, _T2, _sched()),
     r"^eps_model output: shapes must match, got eps_model output\[2, 1\], x_t\[2, 3\]$"),
    (lambda: p_mean_variance(lambda x, t: x, _Z2, _T2, _sched(), variance="x"), r"^variance: must be one of"),
    (lambda: ddpm_sample(lambda x, t: x, (2, 2), _sched(), variance="x"), r"^variance: must be one of"),
    (lambda: ddpm_sample(lambda x, t: x, (), _sched()), r"^shape: expected a non-empty tuple of ints, got \(\)$"),
    (lambda: ddpm_sample(lambda x, t: x, "ab", _sched()), r"^shape: expected a non-empty tuple of ints, got 'ab'$"),
    (lambda: ddpm_sample(lambda x, t: x, (2, 0), _sched()), r"^shape: must be >= 1, got 0$"),
    (lambda: ddpm_sample(lambda x, t: x, (2, 2), _sched(), x_T=torch.full((2, 2), float("nan"))),
     r"^x_T: contains 4 NaN/inf"),
    (lambda: ddpm_sample(lambda x, t: x, (2, 2), _sched(), x_T=torch.zeros(3, 2)),
     r"^x_T: expected shape \[2, 2\], got \[3, 2\]$"),
    (lambda: euler_maruyama_sample(lambda x, t: x, (), 2), r"^shape: expected a non-empty tuple of ints, got \(\)$"),
    (lambda: euler_maruyama_sample(lambda x, t: x, "ab", 2), r"^shape: expected a non-empty tuple of ints, got 'ab'$"),
    (lambda: euler_maruyama_sample(lambda x, t: x, (2, 0), 2), r"^shape: must be >= 1, got 0$"),
    (lambda: euler_maruyama_sample(lambda x, t: x, (2, 2), 2, x_T=torch.full((2, 2), float("nan"))),
     r"^x_T: contains 4 NaN/inf"),
    (lambda: euler_maruyama_sample(lambda x, t: x, (2, 2), 2, x_T=torch.zeros(3, 2)),
     r"^x_T: expected shape \[2, 2\], got \[3, 2\]$"),
])
def test_sampler_and_schedule_messages(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- small cases: one float64 case per exercise, the expected value computed independently;
# `genmodels-exercise check` shows each as expected vs got ----------------------------------
CASE_BETAS = np.array([0.1, 0.2, 0.3, 0.4])
CASE_ALPHA_BAR = np.cumprod(1 - CASE_BETAS)
CASE_X, CASE_NOISE, CASE_T = np.array([[1.0, -1.0]]), np.array([[0.5, 0.25]]), 2


def _case_schedule(betas=CASE_BETAS):
    return NoiseSchedule(t64(betas))


def _case_t(t=CASE_T):
    return torch.tensor([t])


def _case_eps_model(x, t):                 # ε_θ(x, t) = 0.5·x + 0.1·t
    return 0.5 * x + 0.1 * t.to(x.dtype)[:, None]


def _case_np_eps(x, t):
    return 0.5 * x + 0.1 * t


@pytest.mark.exercise("ddpm.q_step")
def test_q_step_small_case(small_case):
    b = CASE_BETAS[CASE_T]
    small_case((f"betas={CASE_BETAS.tolist()}, t={CASE_T}, x_prev={CASE_X.tolist()}, "
                f"noise={CASE_NOISE.tolist()}", np.sqrt(1 - b) * CASE_X + np.sqrt(b) * CASE_NOISE,
                lambda: q_step(t64(CASE_X), _case_t(), _case_schedule(), noise=t64(CASE_NOISE))))


@pytest.mark.exercise("ddpm.q_sample")
def test_q_sample_small_case(small_case):
    ab = CASE_ALPHA_BAR[CASE_T]
    small_case((f"betas={CASE_BETAS.tolist()}, t={CASE_T}, x0={CASE_X.tolist()}, "
                f"noise={CASE_NOISE.tolist()}", np.sqrt(ab) * CASE_X + np.sqrt(1 - ab) * CASE_NOISE,
                lambda: q_sample(t64(CASE_X), _case_t(), _case_schedule(), noise=t64(CASE_NOISE))))


@pytest.mark.exercise("ddpm.q_posterior")
def test_q_posterior_small_case(small_case):
    x_t, t = CASE_NOISE, CASE_T
    ab, ab_prev, a, b = CASE_ALPHA_BAR[t], CASE_ALPHA_BAR[t - 1], 1 - CASE_BETAS[t], CASE_BETAS[t]
    mean = b * np.sqrt(ab_prev) / (1 - ab) * CASE_X + np.sqrt(a) * (1 - ab_prev) / (1 - ab) * x_t
    var = b * (1 - ab_prev) / (1 - ab)

    def got():
        return q_posterior(t64(CASE_X), t64(x_t), _case_t(), _case_schedule())
    small_case((f"betas={CASE_BETAS.tolist()}, t={t}, x0={CASE_X.tolist()}, x_t={x_t.tolist()} → mean",
                mean, lambda: got()[0]),
               ("the same → variance", [[var]], lambda: got()[1]))


@pytest.mark.exercise("ddpm.p_mean_variance")
def test_p_mean_variance_small_case(small_case):
    t = CASE_T
    ab, ab_prev, a, b = CASE_ALPHA_BAR[t], CASE_ALPHA_BAR[t - 1], 1 - CASE_BETAS[t], CASE_BETAS[t]
    mean = (CASE_X - b / np.sqrt(1 - ab) * _case_np_eps(CASE_X, t)) / np.sqrt(a)
    var = b * (1 - ab_prev) / (1 - ab)

    def got():
        return p_mean_variance(_case_eps_model, t64(CASE_X), _case_t(), _case_schedule())
    small_case((f"eps_model(x, t) = 0.5·x + 0.1·t, betas={CASE_BETAS.tolist()}, t={t}, "
                f"x_t={CASE_X.tolist()} → mean", mean, lambda: got()[0]),
               ("the same → variance", [[var]], lambda: got()[1]))


@pytest.mark.exercise("ddpm.loss")
def test_ddpm_loss_small_case(small_case):
    ab = CASE_ALPHA_BAR[CASE_T]
    x_t = np.sqrt(ab) * CASE_X + np.sqrt(1 - ab) * CASE_NOISE
    exp = np.mean((CASE_NOISE - _case_np_eps(x_t, CASE_T)) ** 2)
    small_case((f"eps_model(x, t) = 0.5·x + 0.1·t, betas={CASE_BETAS.tolist()}, t={CASE_T}, "
                f"x0={CASE_X.tolist()}, noise={CASE_NOISE.tolist()}", exp,
                lambda: ddpm_loss(_case_eps_model, t64(CASE_X), _case_schedule(), t=_case_t(),
                                  noise=t64(CASE_NOISE))))


@pytest.mark.exercise("ddpm.sample")
def test_ddpm_sample_small_case(small_case):
    b = 0.3                                       # T = 1: one step, which adds no noise
    exp = (CASE_X - b / np.sqrt(b) * _case_np_eps(CASE_X, 0)) / np.sqrt(1 - b)
    small_case((f"T=1, betas=[{b}], x_T={CASE_X.tolist()}, eps_model(x, t) = 0.5·x + 0.1·t", exp,
                lambda: ddpm_sample(_case_eps_model, CASE_X.shape, _case_schedule([b]),
                                    x_T=t64(CASE_X))))


@pytest.mark.exercise("ddpm.sde_marginal")
def test_sde_marginal_small_case(small_case):
    a, var = vp_terms(0.3)
    s = math.sqrt(var)

    def got():
        return vp_sde_marginal(t64(CASE_X), t64([0.3]), noise=t64(CASE_NOISE))
    small_case((f"x0={CASE_X.tolist()}, t=[0.3], noise={CASE_NOISE.tolist()}, beta_min=0.1, "
                "beta_max=20 → x_t", a * CASE_X + s * CASE_NOISE, lambda: got()[0]),
               ("the same → std", [[s]], lambda: got()[1]))


@pytest.mark.exercise("ddpm.score_matching")
def test_score_matching_small_case(small_case):
    a, var = vp_terms(0.3)
    s = math.sqrt(var)
    x_t = a * CASE_X + s * CASE_NOISE
    exp = np.mean((s * (-x_t) + CASE_NOISE) ** 2)
    small_case((f"score_model(x, t) = −x, x0={CASE_X.tolist()}, t=[0.3], "
                f"noise={CASE_NOISE.tolist()}", exp,
                lambda: score_matching_loss(lambda x, t: -x, t64(CASE_X), t=t64([0.3]),
                                            noise=t64(CASE_NOISE))))


@pytest.mark.exercise("ddpm.euler_maruyama")
def test_euler_maruyama_small_case(small_case):
    eps, beta = 0.5, 0.1 + 1.0 * (20.0 - 0.1)      # one step from t = 1: no noise is added
    exp = CASE_X + (0.5 * beta * CASE_X + beta * (-CASE_X)) * (1 - eps)
    small_case((f"steps=1, eps=0.5, x_T={CASE_X.tolist()}, score_model(x, t) = −x", exp,
                lambda: euler_maruyama_sample(lambda x, t: -x, CASE_X.shape, 1, eps=eps,
                                              x_T=t64(CASE_X))))
