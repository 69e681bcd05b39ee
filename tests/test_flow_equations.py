"""Flow matching: the straight path, the conditional flow-matching loss and the Euler sampler.

References computed another way: NumPy by hand for the path and for the loss on fixed draws, the
generator's own draws replayed in the test (t first, then x_0), and the closed forms of Gaussian
data. Time runs from noise (t = 0) to data (t = 1).

Gaussian data, derivation used below. With x_0 ~ N(0, 1), x_1 ~ N(m, s²) independent (per element)
and x_t = (1 − t) x_0 + t x_1, u = x_1 − x_0:
    x_t ~ N(t m, v_t),  v_t = (1 − t)² + t² s²,   Cov(u, x_t) = t s² − (1 − t), so the optimal
    (marginal) velocity is  v*(x, t) = E[u | x_t = x] = m + (t s² − (1 − t)) (x − t m)/v_t,
    and the smallest loss at time t is Var(u | x_t) = 1 + s² − (t s² − (1 − t))²/v_t = s²/v_t.
    Averaged over t ~ U[0, 1]:  ∫₀¹ s²/((1 − t)² + t² s²) dt = s (arctan s + arctan(1/s)) = π s/2.
The ODE dx/dt = v*(x, t) has the exact solution x_t = t m + √v_t · x_0 (d/dt of it is v* at it),
so from x_0 it ends at x_1 = m + s x_0: Euler's error there shrinks like 1/steps.
"""

import math

import numpy as np
import pytest
import torch

from genmodels.flow import euler_flow_sample, flow_interpolant, flow_matching_draw, flow_matching_loss
from conftest import t64

pytestmark = [pytest.mark.flow]

M, S = 1.5, 0.5
N_MC = 200_000


def gaussian_velocity(m=M, s=S):
    """v*(x, t) = m + (t s² − (1 − t)) (x − t m) / ((1 − t)² + t² s²)."""
    def v_star(x, t):
        tb = t.view(-1, *([1] * (x.dim() - 1))).to(x.dtype)
        return m + (tb * s ** 2 - (1 - tb)) * (x - tb * m) / ((1 - tb) ** 2 + tb ** 2 * s ** 2)
    return v_star


# ------------------------------------------------------------------------------------------------
# the path
# ------------------------------------------------------------------------------------------------
@pytest.mark.exercise("flow.interpolant")
def test_flow_interpolant_by_hand(f64, gen):
    x0, x1 = torch.randn(4, 2, 3, generator=gen), torch.randn(4, 2, 3, generator=gen)
    t = torch.tensor([0.0, 0.25, 0.6, 1.0])
    x_t, velocity = flow_interpolant(x0, x1, t)
    a0, a1 = x0.numpy(), x1.numpy()
    want = np.stack([(1 - ti) * a0[i] + ti * a1[i] for i, ti in enumerate([0.0, 0.25, 0.6, 1.0])])
    np.testing.assert_allclose(x_t.numpy(), want, rtol=0, atol=1e-15)
    np.testing.assert_allclose(velocity.numpy(), a1 - a0, rtol=0, atol=1e-15)
    # the ends: noise at t = 0, data at t = 1
    assert torch.equal(x_t[0], x0[0]) and torch.equal(x_t[3], x1[3])


@pytest.mark.exercise("flow.interpolant")
def test_flow_velocity_is_the_time_derivative_of_the_path(f64, gen):
    """Central finite differences of t ↦ x_t equal the returned velocity (the path is straight)."""
    x0, x1 = torch.randn(5, 4, generator=gen), torch.randn(5, 4, generator=gen)
    t, h = torch.rand(5, generator=gen) * 0.8 + 0.1, 1e-6
    fd = (flow_interpolant(x0, x1, t + h)[0] - flow_interpolant(x0, x1, t - h)[0]) / (2 * h)
    torch.testing.assert_close(fd, flow_interpolant(x0, x1, t)[1], rtol=1e-8, atol=1e-8)


@pytest.mark.exercise("flow.interpolant")
def test_flow_interpolant_small_case(small_case):
    x0, x1, t = [[1.0, -2.0], [0.5, 0.0]], [[3.0, 1.0], [-1.0, 2.0]], [0.25, 0.5]
    want_xt = [[0.75 * 1.0 + 0.25 * 3.0, 0.75 * -2.0 + 0.25 * 1.0],
               [0.5 * 0.5 + 0.5 * -1.0, 0.5 * 0.0 + 0.5 * 2.0]]
    small_case((f"x0={x0}, x1={x1}, t={t} → x_t", want_xt,
                lambda: flow_interpolant(t64(x0), t64(x1), t64(t))[0]),
               ("the same → velocity", [[2.0, 3.0], [-1.5, 2.0]],
                lambda: flow_interpolant(t64(x0), t64(x1), t64(t))[1]))


# ------------------------------------------------------------------------------------------------
# the loss
# ------------------------------------------------------------------------------------------------
def _np_model(x, t):                       # v(x, t) = 0.5·x − t + 0.2, written in NumPy
    return 0.5 * x - t + 0.2


def _model(x, t):
    return 0.5 * x - t.view(-1, *([1] * (x.dim() - 1))).to(x.dtype) + 0.2


@pytest.mark.exercise("flow.loss")
def test_flow_matching_loss_on_given_draws_by_hand(f64, gen):
    x1, x0 = torch.randn(3, 2, 2, generator=gen), torch.randn(3, 2, 2, generator=gen)
    t = torch.tensor([0.1, 0.5, 0.9])
    a0, a1, tt = x0.numpy(), x1.numpy(), t.numpy()
    sq = [(_np_model((1 - tt[i]) * a0[i] + tt[i] * a1[i], tt[i]) - (a1[i] - a0[i])) ** 2 for i in range(3)]
    loss = flow_matching_loss(_model, x1, t=t, x0=x0)
    assert loss.dim() == 0
    np.testing.assert_allclose(loss.item(), np.mean(sq), rtol=1e-13)


@pytest.mark.exercise("flow.loss")
def test_flow_matching_loss_draws_t_then_x0_from_the_generator(f64):
    """Monte-Carlo agreement with an explicit estimate: the test replays the generator's draws
    (t ~ U[0, 1] first, then x_0 ~ N(0, I)) and computes the loss in NumPy."""
    x1 = M + S * torch.randn(500, 3, generator=torch.Generator().manual_seed(7))
    loss = flow_matching_loss(_model, x1, generator=torch.Generator().manual_seed(11))
    g = torch.Generator().manual_seed(11)
    t = torch.rand(500, generator=g, dtype=torch.float64).numpy()[:, None]
    x0 = torch.randn(500, 3, generator=g, dtype=torch.float64).numpy()
    a1 = x1.numpy()
    explicit = np.mean((_np_model((1 - t) * x0 + t * a1, t) - (a1 - x0)) ** 2)
    np.testing.assert_allclose(loss.item(), explicit, rtol=1e-12)
    again = flow_matching_loss(_model, x1, generator=torch.Generator().manual_seed(11))
    assert again.item() == loss.item()
    assert flow_matching_loss(_model, x1, generator=torch.Generator().manual_seed(12)).item() != loss.item()


def test_flow_matching_draw_is_uniform_and_standard_normal():
    t, x0 = flow_matching_draw(torch.zeros(40_000, 2), torch.Generator().manual_seed(3))
    assert t.shape == (40_000,) and x0.shape == (40_000, 2)
    assert float(t.min()) >= 0 and float(t.max()) <= 1
    # U[0, 1]: mean ½ (SE 0.0014), variance 1/12; N(0, 1): mean 0 (SE 0.0035), variance 1
    assert abs(t.mean().item() - 0.5) < 0.007 and abs(t.var().item() - 1 / 12) < 0.003
    assert abs(x0.mean().item()) < 0.015 and abs(x0.var().item() - 1) < 0.03


@pytest.mark.exercise("flow.loss")
def test_flow_matching_loss_of_the_optimal_field_is_pi_s_over_2(f64):
    """Gaussian data N(m, s²): the optimal field's expected loss is π s/2 (module docstring),
    whatever m; any other field scores higher."""
    g = torch.Generator().manual_seed(0)
    x1 = M + S * torch.randn(N_MC, 1, generator=g)
    best = flow_matching_loss(gaussian_velocity(), x1, generator=torch.Generator().manual_seed(1)).item()
    # per-sample loss s²/v_t · χ²₁: its sd over t and x is ≈ 1.7 · π s/2, so SE ≈ 0.4 % here
    assert best == pytest.approx(math.pi * S / 2, rel=0.02)
    for worse in (lambda x, t: gaussian_velocity()(x, t) + 0.1,
                  lambda x, t: 1.1 * gaussian_velocity()(x, t),
                  gaussian_velocity(m=M + 0.1), gaussian_velocity(s=S * 1.2)):
        assert flow_matching_loss(worse, x1, generator=torch.Generator().manual_seed(1)).item() > best


@pytest.mark.exercise("flow.loss")
def test_optimal_field_is_the_conditional_mean_of_the_target(f64):
    """v*(x, t) = E[x_1 − x_0 | x_t = x], checked by Monte-Carlo: bin x_t at fixed t and average
    the conditional velocity in each bin."""
    g = torch.Generator().manual_seed(2)
    n, t = 400_000, 0.4
    x1, x0 = M + S * torch.randn(n, 1, generator=g), torch.randn(n, 1, generator=g)
    x_t, u = flow_interpolant(x0, x1, torch.full((n,), t))
    for centre in (-0.5, 0.3, 0.6, 1.2):
        near = (x_t - centre).abs() < 0.02
        mc = u[near].mean().item()
        se = u[near].std().item() / math.sqrt(int(near.sum()))
        exact = gaussian_velocity()(torch.tensor([[centre]]), torch.tensor([t])).item()
        assert abs(mc - exact) < 5 * se + 0.01, (centre, mc, exact)


@pytest.mark.exercise("flow.loss")
def test_flow_matching_loss_gradient_reaches_the_model(gen):
    net = torch.nn.Linear(3, 3)
    model = lambda x, t: net(x)
    flow_matching_loss(model, torch.randn(8, 3, generator=gen), generator=gen).backward()
    assert net.weight.grad is not None and net.weight.grad.abs().sum() > 0


@pytest.mark.exercise("flow.loss")
def test_flow_matching_loss_small_case(small_case):
    x1, x0, t = [[1.0, 2.0], [-1.0, 0.5]], [[0.5, -0.5], [0.0, 1.0]], [0.2, 0.8]
    a1, a0, tt = np.array(x1), np.array(x0), np.array(t)[:, None]
    want = np.mean((_np_model((1 - tt) * a0 + tt * a1, tt) - (a1 - a0)) ** 2)
    small_case((f"v(x, t) = 0.5·x − t + 0.2, x1={x1}, x0={x0}, t={t}", want,
                lambda: flow_matching_loss(_model, t64(x1), t=t64(t), x0=t64(x0))))


# ------------------------------------------------------------------------------------------------
# the sampler
# ------------------------------------------------------------------------------------------------
@pytest.mark.exercise("flow.euler")
def test_euler_flow_sample_two_steps_by_hand(f64):
    seen = []
    model = lambda x, t: (seen.append(t.clone()), 2 * x + t[:, None])[1]   # v = 2x + t
    x0 = torch.tensor([[1.0, -0.5], [0.25, 2.0]])
    x = euler_flow_sample(model, (2, 2), 2, x0=x0)
    x_half = x0 + 0.5 * (2 * x0 + 0.0)             # step 1 at t = 0
    want = x_half + 0.5 * (2 * x_half + 0.5)       # step 2 at t = ½
    torch.testing.assert_close(x, want, rtol=1e-15, atol=1e-15)
    assert [s.tolist() for s in seen] == [[0.0, 0.0], [0.5, 0.5]]


@pytest.mark.exercise("flow.euler")
def test_euler_flow_sample_solves_a_linear_ode(f64):
    """dx/dt = a x: Euler gives x_0 (1 + a/n)^n, which tends to x_0 eᵃ."""
    x0 = torch.tensor([[1.0], [-2.0]])
    for n in (1, 3, 10, 1000):
        x = euler_flow_sample(lambda x, t: 0.7 * x, (2, 1), n, x0=x0)
        torch.testing.assert_close(x, x0 * (1 + 0.7 / n) ** n, rtol=1e-12, atol=1e-12)
    assert abs(x[0].item() - math.exp(0.7)) < 1e-3


@pytest.mark.exercise("flow.euler")
def test_euler_flow_sample_transports_noise_to_gaussian_data(f64):
    """With the optimal field the exact flow ends at m + s x_0: the Euler error is first order
    in 1/steps, and the samples' moments approach (m, s²)."""
    x0 = torch.randn(N_MC // 10, 1, generator=torch.Generator().manual_seed(4))
    exact = M + S * x0
    errors = []
    for steps in (10, 20, 40, 80):
        x = euler_flow_sample(gaussian_velocity(), x0.shape, steps, x0=x0)
        errors.append((x - exact).abs().max().item())
    for coarse, fine in zip(errors, errors[1:]):
        assert 0.4 < fine / coarse < 0.6, errors               # halving Δ halves the error
    assert errors[-1] < 0.05                                   # max over 20,000 starts, |x_0| ≤ 4.5
    x = euler_flow_sample(gaussian_velocity(), (N_MC, 1), 200, generator=torch.Generator().manual_seed(5))
    assert abs(x.mean().item() - M) < 0.01                      # SE 0.0011
    assert abs(x.var().item() - S ** 2) < 0.01                  # SE 0.0008, plus the O(1/200) bias


@pytest.mark.exercise("flow.euler")
def test_euler_flow_sample_small_case(small_case):
    x0 = [[1.0, -0.5], [0.25, 2.0]]
    a = np.array(x0)
    x_third = a + (1 / 3) * (2 * a + 0.0)
    x_two_thirds = x_third + (1 / 3) * (2 * x_third + 1 / 3)
    want = x_two_thirds + (1 / 3) * (2 * x_two_thirds + 2 / 3)
    small_case((f"v(x, t) = 2x + t, 3 steps from x0={x0}", want,
                lambda: euler_flow_sample(lambda x, t: 2 * x + t[:, None], (2, 2), 3, x0=t64(x0))))


def test_euler_flow_sample_is_reproducible_from_its_generator():
    model = lambda x, t: -x
    a = euler_flow_sample(model, (4, 3), 5, generator=torch.Generator().manual_seed(9))
    b = euler_flow_sample(model, (4, 3), 5, generator=torch.Generator().manual_seed(9))
    c = euler_flow_sample(model, (4, 3), 5, generator=torch.Generator().manual_seed(10))
    assert torch.equal(a, b) and not torch.equal(a, c)
    x0 = torch.randn(4, 3, generator=torch.Generator().manual_seed(9))   # the start is its first draw
    torch.testing.assert_close(a, x0 * 0.8 ** 5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_functions_keep_dtype(dtype, gen):
    x0, x1 = torch.randn(3, 2, generator=gen).to(dtype), torch.randn(3, 2, generator=gen).to(dtype)
    t = torch.tensor([0.1, 0.5, 0.9], dtype=dtype)
    assert all(r.dtype == dtype for r in flow_interpolant(x0, x1, t))
    assert flow_matching_loss(lambda x, t: x, x1).dtype == dtype
    assert euler_flow_sample(lambda x, t: x, (2, 2), 3, dtype=dtype).dtype == dtype
    assert euler_flow_sample(lambda x, t: x, (3, 2), 3, x0=x0).dtype == dtype


def test_sampler_does_not_build_a_graph_unless_asked():
    net = torch.nn.Linear(2, 2)
    assert not euler_flow_sample(lambda x, t: net(x), (3, 2), 2).requires_grad
    assert euler_flow_sample(lambda x, t: net(x), (3, 2), 2, enable_grad=True).requires_grad


@pytest.mark.parametrize("call,arg", [
    (lambda: flow_interpolant(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0.5, 1.5])), "t"),
    (lambda: flow_interpolant(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([-0.1, 0.5])), "t"),
    (lambda: flow_interpolant(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0.5])), "t"),
    (lambda: flow_interpolant(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0, 1])), "t"),
    (lambda: flow_interpolant(torch.zeros(2, 3), torch.zeros(2, 3), torch.tensor([0.5, float("nan")])), "t"),
    (lambda: flow_interpolant(torch.zeros(2, 3), torch.zeros(2, 4), torch.tensor([0.5, 0.5])), "x1"),
    (lambda: flow_interpolant(torch.zeros(2, 3), torch.zeros(2, 3).double(), torch.tensor([0.5, 0.5])), "x1"),
    (lambda: flow_interpolant(torch.full((2, 3), float("nan")), torch.zeros(2, 3), torch.tensor([0.5, 0.5])), "x0"),
    (lambda: flow_interpolant(torch.zeros(0, 3), torch.zeros(0, 3), torch.zeros(0)), "x0"),
    (lambda: flow_interpolant([1.0], torch.zeros(1), torch.tensor([0.5])), "x0"),
    (lambda: flow_matching_loss("model", torch.zeros(2, 3)), "velocity_model"),
    (lambda: flow_matching_loss(lambda x, t: x, torch.zeros(2, 3).long()), "x1"),
    (lambda: flow_matching_loss(lambda x, t: x, torch.tensor([[0.0], [float("inf")]])), "x1"),
    (lambda: flow_matching_loss(lambda x, t: x[:, :1], torch.zeros(2, 3)), "velocity_model output"),
    (lambda: flow_matching_loss(lambda x, t: x / 0, torch.zeros(2, 3)), "velocity_model output"),
    (lambda: flow_matching_loss(lambda x, t: x, torch.zeros(2, 3), x0=torch.zeros(2, 2)), "x0"),
    (lambda: flow_matching_loss(lambda x, t: x, torch.zeros(2, 3), t=torch.tensor([0.5, 2.0])), "t"),
    (lambda: euler_flow_sample(lambda x, t: x, (2, 2), 0), "steps"),
    (lambda: euler_flow_sample(lambda x, t: x, (2, 2), 2.0), "steps"),
    (lambda: euler_flow_sample(lambda x, t: x, (0, 2), 2), "shape"),
    (lambda: euler_flow_sample(lambda x, t: x, 4, 2), "shape"),
    (lambda: euler_flow_sample(lambda x, t: x, (2, 2), 2, x0=torch.zeros(3, 2)), "x0"),
    (lambda: euler_flow_sample(None, (2, 2), 2), "velocity_model"),
    (lambda: euler_flow_sample(lambda x, t: x[:, :1], (2, 2), 2), "velocity_model output"),
])
def test_bad_inputs_raise_value_error_naming_the_argument(call, arg):
    with pytest.raises(ValueError, match=rf"^{arg}:"):
        call()
