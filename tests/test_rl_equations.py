"""RLHF / PPO equations 2.1–2.4 and GAE, each against a reference written out here with loops."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from genmodels.rl import (approx_kl, clip_fraction, discounted_return, gae, kl_shaped_rewards,
                          ppo_clip_objective, preference_loss, probability_ratio, rewards_to_go,
                          value_loss)
from conftest import t64

pytestmark = pytest.mark.rl

TOL = dict(rtol=1e-12, atol=1e-12)
finite_floats = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False)


# --- eq. 2.1: returns ------------------------------------------------------------------------

@pytest.mark.exercise("rl.discounted_return")
@pytest.mark.parametrize("gamma", [0.0, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("batch", [(), (3,), (2, 4)])
def test_discounted_return_matches_loop(f64, gen, gamma, batch):
    T = 7
    rewards = torch.randn(*batch, T, generator=gen)
    flat = rewards.reshape(-1, T)
    expected = torch.empty(flat.shape[0])
    for b in range(flat.shape[0]):
        total, discount = 0.0, 1.0
        for t in range(T):
            total += discount * float(flat[b, t])
            discount *= gamma
        expected[b] = total
    got = discounted_return(rewards, gamma)
    assert got.shape == rewards.shape[:-1] and got.dtype == torch.float64
    torch.testing.assert_close(got, expected.reshape(batch), **TOL)


@pytest.mark.exercise("rl.rewards_to_go")
@pytest.mark.parametrize("gamma", [0.0, 0.7, 1.0])
def test_rewards_to_go_matches_double_loop(f64, gen, gamma):
    B, T = 3, 6
    rewards = torch.randn(B, T, generator=gen)
    expected = torch.zeros(B, T)
    for b in range(B):
        for t in range(T):
            expected[b, t] = sum(gamma ** (k - t) * float(rewards[b, k]) for k in range(t, T))
    torch.testing.assert_close(rewards_to_go(rewards, gamma), expected, **TOL)


@pytest.mark.exercise("rl.rewards_to_go")
@settings(max_examples=50, deadline=None)
@given(st.lists(finite_floats, min_size=1, max_size=12), st.floats(0.0, 1.0))
def test_rewards_to_go_at_zero_is_discounted_return(values, gamma):
    rewards = torch.tensor(values, dtype=torch.float64)
    torch.testing.assert_close(rewards_to_go(rewards, gamma)[..., 0],
                               discounted_return(rewards, gamma), rtol=1e-10, atol=1e-10)


@pytest.mark.exercise("rl.discounted_return", "rl.rewards_to_go")
def test_returns_keep_float32_and_are_differentiable(gen):
    rewards = torch.randn(2, 5, generator=gen, requires_grad=True)
    R = discounted_return(rewards, 0.5)
    assert R.dtype == torch.float32 and rewards_to_go(rewards, 0.5).dtype == torch.float32
    R.sum().backward()
    # ∂R/∂r_t = γ^t
    torch.testing.assert_close(rewards.grad, (0.5 ** torch.arange(5.0)).expand(2, 5))


# --- GAE -------------------------------------------------------------------------------------

def _gae_reference(rewards, values, dones, last_value, gamma, lam):
    """Â_t = Σ_l (γλ)^l δ_{t+l}, the sum stopping at the end of the episode that holds step t."""
    T, N = rewards.shape
    adv = torch.zeros(T, N)
    for n in range(N):
        for t in range(T):
            total = 0.0
            for l in range(T - t):
                k = t + l
                done = bool(dones[k, n])
                v_next = float(last_value[n]) if k == T - 1 else float(values[k + 1, n])
                v_next = 0.0 if done else v_next
                delta = float(rewards[k, n]) + gamma * v_next - float(values[k, n])
                total += (gamma * lam) ** l * delta
                if done:
                    break
            adv[t, n] = total
    return adv


@pytest.mark.exercise("rl.gae")
@pytest.mark.parametrize("gamma,lam", [(0.99, 0.95), (0.9, 0.0), (1.0, 1.0), (0.5, 0.3)])
def test_gae_matches_reference_with_episode_ends(f64, gen, gamma, lam):
    T, N = 9, 3
    rewards = torch.randn(T, N, generator=gen)
    values = torch.randn(T, N, generator=gen)
    last_value = torch.randn(N, generator=gen)
    dones = torch.zeros(T, N, dtype=torch.bool)
    dones[3, 0] = dones[4, 1] = dones[5, 1] = dones[T - 1, 2] = dones[0, 2] = True
    adv, ret = gae(rewards, values, dones, last_value, gamma, lam)
    expected = _gae_reference(rewards, values, dones, last_value, gamma, lam)
    torch.testing.assert_close(adv, expected, **TOL)
    torch.testing.assert_close(ret, expected + values, **TOL)
    # float 0/1 dones give the same answer as bool ones
    adv_f, _ = gae(rewards, values, dones.double(), last_value, gamma, lam)
    torch.testing.assert_close(adv_f, adv, rtol=0, atol=0)


@pytest.mark.exercise("rl.gae")
def test_gae_limits(f64, gen):
    """λ = 1: Monte-Carlo return (bootstrapped with last_value) − V; λ = 0: one-step TD error."""
    T, N, gamma = 6, 2, 0.8
    rewards = torch.randn(T, N, generator=gen)
    values = torch.randn(T, N, generator=gen)
    last_value = torch.randn(N, generator=gen)
    dones = torch.zeros(T, N)
    adv1, ret1 = gae(rewards, values, dones, last_value, gamma, 1.0)
    mc = torch.zeros(T, N)
    for t in range(T):
        mc[t] = sum(gamma ** (k - t) * rewards[k] for k in range(t, T))
        mc[t] += gamma ** (T - t) * last_value
    torch.testing.assert_close(ret1, mc, **TOL)
    adv0, _ = gae(rewards, values, dones, last_value, gamma, 0.0)
    v_next = torch.cat([values[1:], last_value[None]])
    torch.testing.assert_close(adv0, rewards + gamma * v_next - values, **TOL)


# --- eq. 2.4: PPO ----------------------------------------------------------------------------

@pytest.mark.exercise("rl.probability_ratio")
def test_probability_ratio_matches_quotient_of_probabilities(f64, gen):
    logp_new = -torch.rand(4, 5, generator=gen) * 3
    logp_old = -torch.rand(4, 5, generator=gen) * 3
    r = probability_ratio(logp_new, logp_old)
    torch.testing.assert_close(r, torch.exp(logp_new) / torch.exp(logp_old), **TOL)
    assert probability_ratio(logp_new.float(), logp_old.float()).dtype == torch.float32


@pytest.mark.exercise("rl.ppo_clip")
def test_ppo_clip_objective_by_hand(f64, gen):
    eps = 0.2
    logp_old = -torch.rand(20, generator=gen) * 2
    logp_new = logp_old + 0.5 * torch.randn(20, generator=gen)
    adv = torch.randn(20, generator=gen)
    total = 0.0
    for i in range(20):
        r = math.exp(float(logp_new[i]) - float(logp_old[i]))
        r_clip = min(max(r, 1 - eps), 1 + eps)
        total += min(r * float(adv[i]), r_clip * float(adv[i]))
    got = ppo_clip_objective(logp_new, logp_old, adv, eps)
    assert got.shape == ()
    torch.testing.assert_close(got, torch.tensor(total / 20), **TOL)


@pytest.mark.exercise("rl.ppo_clip")
def test_ppo_clip_gradient_zero_exactly_where_clipped_branch_active(f64):
    eps = 0.2
    ratios = torch.tensor([1.5, 0.5, 1.5, 0.5, 1.1, 0.9, 1.0])
    adv = torch.tensor([2.0, -1.0, -2.0, 1.0, 3.0, -3.0, 0.5])
    clipped = torch.tensor([True, True, False, False, False, False, False])
    logp_old = torch.full((7,), -1.3)
    logp_new = (logp_old + torch.log(ratios)).requires_grad_(True)
    ppo_clip_objective(logp_new, logp_old, adv, eps).backward()
    g = logp_new.grad
    assert torch.all(g[clipped] == 0.0)
    assert torch.all(g[~clipped] != 0.0)
    # unclipped branch: ∂(r A / n)/∂ log π_new = r A / n
    torch.testing.assert_close(g[~clipped], (ratios * adv)[~clipped] / 7, **TOL)


@pytest.mark.exercise("rl.ppo_clip")
@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(-2, 2), st.floats(-5, 5)), min_size=1, max_size=16),
       st.floats(0.01, 0.5))
def test_ppo_clipped_objective_below_unclipped(pairs, eps):
    log_r = torch.tensor([p[0] for p in pairs], dtype=torch.float64)
    adv = torch.tensor([p[1] for p in pairs], dtype=torch.float64)
    logp_old = torch.zeros_like(log_r)
    clipped = ppo_clip_objective(log_r, logp_old, adv, eps)
    unclipped = (torch.exp(log_r) * adv).mean()
    assert float(clipped) <= float(unclipped) + 1e-12


@pytest.mark.exercise("rl.ppo_clip")
def test_ppo_clip_objective_mask_averages_valid_elements_only(f64, gen):
    logp_old = -torch.rand(3, 4, generator=gen)
    logp_new = logp_old + 0.3 * torch.randn(3, 4, generator=gen)
    adv = torch.randn(3, 4, generator=gen)
    mask = torch.tensor([[1, 1, 1, 0], [1, 0, 0, 0], [1, 1, 1, 1]], dtype=torch.bool)
    got = ppo_clip_objective(logp_new, logp_old, adv, 0.1, mask=mask)
    expected = ppo_clip_objective(logp_new[mask], logp_old[mask], adv[mask], 0.1)
    torch.testing.assert_close(got, expected, **TOL)


def test_approx_kl_and_clip_fraction_by_hand(f64):
    logp_old = torch.tensor([-1.0, -2.0, -0.5, -3.0])
    logp_new = torch.tensor([-1.0, -1.5, -0.9, -3.05])
    expected_kl = 0.0
    outside = 0
    for a, b in zip(logp_new.tolist(), logp_old.tolist()):
        r = math.exp(a - b)
        expected_kl += (r - 1) - math.log(r)
        outside += abs(r - 1) > 0.2
    torch.testing.assert_close(approx_kl(logp_new, logp_old), torch.tensor(expected_kl / 4), **TOL)
    torch.testing.assert_close(clip_fraction(logp_new, logp_old, 0.2), torch.tensor(outside / 4))
    assert float(approx_kl(logp_old, logp_old)) == 0.0


def test_value_loss_plain_and_clipped_by_hand(f64):
    v = torch.tensor([1.0, 2.0, -1.0])
    ret = torch.tensor([1.5, 0.0, -1.2])
    v_old = torch.tensor([0.5, 2.5, -1.05])
    eps = 0.2
    torch.testing.assert_close(value_loss(v, ret), torch.tensor((0.25 + 4.0 + 0.04) / 6), **TOL)
    expected = 0.0
    for vi, ri, oi in zip(v.tolist(), ret.tolist(), v_old.tolist()):
        v_clip = oi + min(max(vi - oi, -eps), eps)
        expected += 0.5 * max((vi - ri) ** 2, (v_clip - ri) ** 2)
    torch.testing.assert_close(value_loss(v, ret, old_values=v_old, clip_eps=eps),
                               torch.tensor(expected / 3), **TOL)


# --- eq. 2.2: preference loss ----------------------------------------------------------------

@pytest.mark.exercise("rl.preference_loss")
def test_preference_loss_by_hand(f64, gen):
    r_c = torch.randn(8, generator=gen)
    r_r = torch.randn(8, generator=gen)
    expected = sum(-math.log(1 / (1 + math.exp(-(a - b))))
                   for a, b in zip(r_c.tolist(), r_r.tolist()))
    got = preference_loss(r_c, r_r)
    assert got.shape == ()
    torch.testing.assert_close(got, torch.tensor(expected / 8), **TOL)


@pytest.mark.exercise("rl.preference_loss")
def test_preference_loss_stable_for_large_gaps(f64):
    r_c = torch.tensor([200.0, -200.0], requires_grad=True)
    r_r = torch.tensor([0.0, 0.0])
    loss = preference_loss(r_c, r_r)
    # −log σ(200) ≈ e^-200 ≈ 0, −log σ(−200) = 200 + log(1 + e^-200) ≈ 200
    torch.testing.assert_close(loss, torch.tensor(100.0), **TOL)
    loss.backward()
    assert torch.isfinite(r_c.grad).all()
    torch.testing.assert_close(r_c.grad, torch.tensor([0.0, -0.5]), **TOL)


# --- eq. 2.3: KL-shaped rewards ----------------------------------------------------------------

@pytest.mark.exercise("rl.kl_shaped_rewards")
def test_kl_shaped_rewards_by_hand(f64, gen):
    B, T, beta = 3, 5, 0.1
    scores = torch.randn(B, generator=gen)
    lp = -torch.rand(B, T, generator=gen)
    lr = -torch.rand(B, T, generator=gen)
    expected = torch.zeros(B, T)
    for b in range(B):
        for t in range(T):
            expected[b, t] = -beta * (float(lp[b, t]) - float(lr[b, t]))
        expected[b, T - 1] += float(scores[b])
    got = kl_shaped_rewards(scores, lp, lr, beta)
    torch.testing.assert_close(got, expected, **TOL)


@pytest.mark.exercise("rl.kl_shaped_rewards")
def test_kl_shaped_rewards_with_padding_mask_and_lengths(f64, gen):
    B, T, beta = 3, 6, 0.05
    scores = torch.randn(B, generator=gen, requires_grad=True)
    lp = -torch.rand(B, T, generator=gen)
    lr = -torch.rand(B, T, generator=gen)
    lengths = torch.tensor([6, 2, 4])
    mask = torch.zeros(B, T, dtype=torch.bool)
    expected = torch.zeros(B, T)
    for b in range(B):
        for t in range(int(lengths[b])):
            mask[b, t] = True
            expected[b, t] = -beta * (float(lp[b, t]) - float(lr[b, t]))
        expected[b, int(lengths[b]) - 1] += float(scores[b].detach())
    got = kl_shaped_rewards(scores, lp, lr, beta, mask=mask)
    torch.testing.assert_close(got, expected, **TOL)
    torch.testing.assert_close(kl_shaped_rewards(scores, lp, lr, beta, lengths=lengths), expected,
                               **TOL)
    got.sum().backward()  # the score enters once per row
    torch.testing.assert_close(scores.grad, torch.ones(B), **TOL)
    # left padding: the score lands on the last valid token, i.e. the last column
    left = torch.flip(mask, dims=[1])
    got_left = kl_shaped_rewards(scores, lp, lr, beta, mask=left)
    assert torch.all(got_left[~left] == 0)
    torch.testing.assert_close(got_left[:, -1] + beta * (lp[:, -1] - lr[:, -1]), scores.detach(),
                               **TOL)


# --- validation ------------------------------------------------------------------------------

def test_bad_hyperparameters_raise_naming_the_argument():
    x = torch.zeros(4, 3)
    v = torch.zeros(4, 3)
    d = torch.zeros(4, 3)
    lv = torch.zeros(3)
    with pytest.raises(ValueError, match="gamma"):
        discounted_return(x[0], 1.5)
    with pytest.raises(ValueError, match="gamma"):
        rewards_to_go(x, -0.1)
    with pytest.raises(ValueError, match="gamma"):
        gae(x, v, d, lv, gamma=1.01, lam=0.9)
    with pytest.raises(ValueError, match="lam"):
        gae(x, v, d, lv, gamma=0.9, lam=-0.5)
    for eps in (0.0, -0.1):
        with pytest.raises(ValueError, match="clip_eps"):
            ppo_clip_objective(x, x, x, eps)
    with pytest.raises(ValueError, match="beta"):
        kl_shaped_rewards(torch.zeros(4), x, x, beta=-0.1)


def test_bad_shapes_dtypes_and_values_raise():
    x = torch.zeros(4, 3)
    with pytest.raises(ValueError, match="logp_old"):
        probability_ratio(x, torch.zeros(4, 2))
    with pytest.raises(ValueError, match="advantages"):
        ppo_clip_objective(x, x, torch.zeros(3), 0.2)
    with pytest.raises(ValueError, match="r_chosen"):
        preference_loss(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="r_chosen"):
        preference_loss(torch.tensor([float("nan")]), torch.zeros(1))
    with pytest.raises(ValueError, match="scores"):
        kl_shaped_rewards(torch.zeros(5), x, x, 0.1)
    with pytest.raises(ValueError, match="mask"):
        kl_shaped_rewards(torch.zeros(4), x, x, 0.1, mask=torch.ones(4, 3, dtype=torch.bool),
                          lengths=torch.ones(4, dtype=torch.long))
    with pytest.raises(ValueError, match="mask"):
        kl_shaped_rewards(torch.zeros(4), x, x, 0.1, mask=torch.zeros(4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="lengths"):
        kl_shaped_rewards(torch.zeros(4), x, x, 0.1, lengths=torch.tensor([1, 2, 3, 4]))
    with pytest.raises(ValueError, match="dones"):
        gae(x, x, torch.full((4, 3), 2.0), torch.zeros(3), 0.9, 0.9)
    with pytest.raises(ValueError, match="last_value"):
        gae(x, x, x, torch.zeros(4), 0.9, 0.9)
    with pytest.raises(ValueError, match="values"):
        gae(x, x.double(), x, torch.zeros(3), 0.9, 0.9)
    with pytest.raises(ValueError, match="rewards"):
        discounted_return(torch.tensor([1.0, float("inf")]))
    with pytest.raises(ValueError, match="rewards"):
        rewards_to_go(torch.arange(3))


# --- what each error message says (the argument AND what is wrong with it) -------------------

_Z = torch.zeros
_NAN = float("nan")
_F64 = torch.float64
_B = torch.bool


@pytest.mark.parametrize("call, message", [
    # eq. 2.1
    (lambda: discounted_return(torch.tensor(1.0)), r"^rewards: expected at least 1 dimensions"),
    (lambda: rewards_to_go(torch.tensor(1.0)), r"^rewards: expected at least 1 dimensions"),
    (lambda: rewards_to_go(torch.tensor([1.0, _NAN])), r"^rewards: contains 1 NaN/inf"),
    (lambda: discounted_return(_Z(3), 1.5), r"^gamma: must lie in \[0.0, 1.0\], got 1.5$"),
    (lambda: rewards_to_go(_Z(3), -0.5), r"^gamma: must lie in \[0.0, 1.0\], got -0.5$"),
    # GAE
    (lambda: gae(torch.tensor(1.0), _Z(4, 3), _Z(4, 3), _Z(3), 0.9, 0.9),
     r"^rewards: expected at least 1 dimensions"),
    (lambda: gae(_Z(4, 3), torch.tensor(1.0), _Z(4, 3), _Z(3), 0.9, 0.9),
     r"^values: expected at least 1 dimensions"),
    (lambda: gae(_Z(4, 3), _Z(4, 3), _Z(4, 3), torch.tensor([0.0, _NAN, 0.0]), 0.9, 0.9),
     r"^last_value: contains 1 NaN/inf"),
    (lambda: gae(_Z(4, 2), _Z(4, 3), _Z(4, 3), _Z(3), 0.9, 0.9),
     r"^values: shapes must match, got values\[4, 3\], rewards\[4, 2\]$"),
    (lambda: gae(_Z(4, 3), _Z(4, 3), _Z(4, 3), _Z(3, dtype=_F64), 0.9, 0.9),
     r"^values: dtypes must match, got values:torch.float32, rewards:torch.float32, "
     r"last_value:torch.float64$"),
    (lambda: gae(_Z(4, 3), _Z(4, 3), _Z(4, 3), _Z(4), 0.9, 0.9),
     r"^last_value: expected shape \[3\] \(values without its time axis\), got \[4\]$"),
    (lambda: gae(_Z(4, 3), _Z(4, 3), torch.tensor(1.0), _Z(3), 0.9, 0.9),
     r"^dones: shapes must match, got dones\[\], rewards\[4, 3\]$"),
    (lambda: gae(_Z(4, 3), _Z(4, 3), torch.full((4, 3), _NAN), _Z(3), 0.9, 0.9),
     r"^dones: contains 12 NaN/inf"),
    (lambda: gae(_Z(4, 3), _Z(4, 3), torch.full((4, 3), 2), _Z(3), 0.9, 0.9),
     r"^dones: expected bool or 0/1 values$"),
    (lambda: gae(_Z(4, 3), _Z(4, 3), _Z(4, 3), _Z(3), 1.01, 0.9),
     r"^gamma: must lie in \[0.0, 1.0\], got 1.01$"),
    (lambda: gae(_Z(4, 3), _Z(4, 3), _Z(4, 3), _Z(3), 0.9, -0.5),
     r"^lam: must lie in \[0.0, 1.0\], got -0.5$"),
    (lambda: gae(_Z(0, 3), _Z(0, 3), _Z(0, 3), _Z(3), 0.9, 0.9),
     r"^rewards: expected at least one time step, got shape \[0, 3\]$"),
    # eq. 2.4 and its companions
    (lambda: probability_ratio(torch.tensor([_NAN]), _Z(1)), r"^logp_new: contains 1 NaN/inf"),
    (lambda: probability_ratio(_Z(1), torch.tensor([_NAN])), r"^logp_old: contains 1 NaN/inf"),
    (lambda: probability_ratio(_Z(4, 3), _Z(4, 2)),
     r"^logp_old: shapes must match, got logp_old\[4, 2\], logp_new\[4, 3\]$"),
    (lambda: probability_ratio(_Z(3), _Z(3, dtype=_F64)),
     r"^logp_old: dtypes must match, got logp_old:torch.float64, logp_new:torch.float32$"),
    (lambda: ppo_clip_objective(_Z(3), _Z(3), torch.tensor([0.0, _NAN, 0.0]), 0.2),
     r"^advantages: contains 1 NaN/inf"),
    (lambda: ppo_clip_objective(_Z(4, 3), _Z(4, 3), _Z(3), 0.2),
     r"^advantages: shapes must match, got advantages\[3\], logp_new\[4, 3\]$"),
    (lambda: ppo_clip_objective(_Z(3), _Z(3), _Z(3, dtype=_F64), 0.2),
     r"^advantages: dtypes must match, got advantages:torch.float64, logp_new:torch.float32$"),
    (lambda: ppo_clip_objective(_Z(3), _Z(3), _Z(3), 0.0), r"^clip_eps: must be > 0, got 0.0$"),
    (lambda: clip_fraction(_Z(3), _Z(3), -0.1), r"^clip_eps: must be > 0, got -0.1$"),
    (lambda: ppo_clip_objective(_Z(0), _Z(0), _Z(0), 0.2),
     r"^logp_new: cannot average over an empty tensor of shape \[0\]$"),
    (lambda: approx_kl(_Z(4), _Z(4), mask=[True] * 4), r"^mask: expected a torch.Tensor"),
    (lambda: approx_kl(_Z(4), _Z(4), mask=torch.ones(4)),
     r"^mask: expected a bool tensor, got dtype torch.float32$"),
    (lambda: approx_kl(_Z(4), _Z(4), mask=torch.tensor([1.0, _NAN, 1.0, 1.0])),
     r"^mask: contains 1 NaN/inf"),
    (lambda: approx_kl(_Z(4, 3), _Z(4, 3), mask=torch.ones(4, dtype=_B)),
     r"^mask: shapes must match, got mask\[4\], logp_new\[4, 3\]$"),
    (lambda: clip_fraction(_Z(4), _Z(4), 0.2, mask=torch.zeros(4, dtype=_B)),
     r"^mask: selects no element to average over$"),
    (lambda: value_loss(torch.tensor([_NAN]), _Z(1)), r"^values: contains 1 NaN/inf"),
    (lambda: value_loss(_Z(1), torch.tensor([_NAN])), r"^returns: contains 1 NaN/inf"),
    (lambda: value_loss(_Z(3), _Z(2)),
     r"^returns: shapes must match, got returns\[2\], values\[3\]$"),
    (lambda: value_loss(_Z(3), _Z(3, dtype=_F64)),
     r"^returns: dtypes must match, got returns:torch.float64, values:torch.float32$"),
    (lambda: value_loss(_Z(3), _Z(3), old_values=_Z(3)),
     r"^old_values: give both old_values and clip_eps for the clipped loss, or neither$"),
    (lambda: value_loss(_Z(3), _Z(3), clip_eps=0.2),
     r"^old_values: give both old_values and clip_eps for the clipped loss, or neither$"),
    (lambda: value_loss(_Z(2), _Z(2), old_values=torch.tensor([0.0, _NAN]), clip_eps=0.2),
     r"^old_values: contains 1 NaN/inf"),
    (lambda: value_loss(_Z(3), _Z(3), old_values=_Z(2), clip_eps=0.2),
     r"^old_values: shapes must match, got old_values\[2\], values\[3\]$"),
    (lambda: value_loss(_Z(3), _Z(3), old_values=_Z(3, dtype=_F64), clip_eps=0.2),
     r"^old_values: dtypes must match, got old_values:torch.float64, values:torch.float32$"),
    (lambda: value_loss(_Z(3), _Z(3), old_values=_Z(3), clip_eps=0.0),
     r"^clip_eps: must be > 0, got 0.0$"),
    (lambda: value_loss(_Z(0), _Z(0)), r"^values: cannot average over an empty tensor of shape \[0\]$"),
    (lambda: value_loss(_Z(2), _Z(2), mask=torch.ones(3, dtype=_B)),
     r"^mask: shapes must match, got mask\[3\], values\[2\]$"),
    # eq. 2.2
    (lambda: preference_loss(_Z(1), torch.tensor([_NAN])), r"^r_rejected: contains 1 NaN/inf"),
    (lambda: preference_loss(_Z(3), _Z(4)),
     r"^r_chosen: shapes must match, got r_chosen\[3\], r_rejected\[4\]$"),
    (lambda: preference_loss(_Z(3), _Z(3, dtype=_F64)),
     r"^r_chosen: dtypes must match, got r_chosen:torch.float32, r_rejected:torch.float64$"),
    (lambda: preference_loss(_Z(0), _Z(0)), r"^r_chosen: cannot average over an empty batch$"),
    # eq. 2.3
    (lambda: kl_shaped_rewards(_Z(4, 1), _Z(4, 3), _Z(4, 3), 0.1), r"^scores: expected 1 dimensions"),
    (lambda: kl_shaped_rewards(_Z(4), _Z(4), _Z(4, 3), 0.1), r"^logp_policy: expected 2 dimensions"),
    (lambda: kl_shaped_rewards(_Z(4), _Z(4, 3), _Z(4), 0.1), r"^logp_ref: expected 2 dimensions"),
    (lambda: kl_shaped_rewards(_Z(4), _Z(4, 3), _Z(4, 2), 0.1),
     r"^logp_ref: shapes must match, got logp_ref\[4, 2\], logp_policy\[4, 3\]$"),
    (lambda: kl_shaped_rewards(_Z(4, dtype=_F64), _Z(4, 3), _Z(4, 3), 0.1),
     r"^logp_ref: dtypes must match, got logp_ref:torch.float32, logp_policy:torch.float32, "
     r"scores:torch.float64$"),
    (lambda: kl_shaped_rewards(_Z(5), _Z(4, 3), _Z(4, 3), 0.1),
     r"^scores: expected shape \[4\], got \[5\]$"),
    (lambda: kl_shaped_rewards(_Z(4), _Z(4, 3), _Z(4, 3), -0.1), r"^beta: must be >= 0, got -0.1$"),
    (lambda: kl_shaped_rewards(_Z(4), _Z(4, 0), _Z(4, 0), 0.1),
     r"^logp_policy: expected at least one token, got shape \[B, 0\]$"),
    (lambda: kl_shaped_rewards(_Z(4), _Z(4, 3), _Z(4, 3), 0.1, mask=torch.ones(4, 3, dtype=_B),
                               lengths=torch.ones(4, dtype=torch.long)),
     r"^mask: give either mask or lengths, not both$"),
    (lambda: kl_shaped_rewards(_Z(4), _Z(4, 3), _Z(4, 3), 0.1, mask=torch.ones(4, 3)),
     r"^mask: expected bool or 0/1 integer values, got torch.float32$"),
    (lambda: kl_shaped_rewards(_Z(4), _Z(4, 3), _Z(4, 3), 0.1, mask=torch.full((4, 3), 2)),
     r"^mask: expected bool or 0/1 integer values, got torch.int64$"),
    (lambda: kl_shaped_rewards(_Z(4), _Z(4, 3), _Z(4, 3), 0.1, mask=torch.ones(4, 2, dtype=_B)),
     r"^mask: expected shape \[4, 3\], got \[4, 2\]$"),
    (lambda: kl_shaped_rewards(_Z(4), _Z(4, 3), _Z(4, 3), 0.1, mask=torch.full((4, 3), _NAN)),
     r"^mask: contains 12 NaN/inf"),
    (lambda: kl_shaped_rewards(_Z(2), _Z(2, 3), _Z(2, 3), 0.1,
                               mask=torch.tensor([[1, 0, 0], [0, 0, 0]])),
     r"^mask: every row needs at least one True \(valid\) token$"),
    (lambda: kl_shaped_rewards(_Z(4), _Z(4, 3), _Z(4, 3), 0.1, lengths=torch.ones(4, 1, dtype=torch.long)),
     r"^lengths: expected 1 dimensions"),
    (lambda: kl_shaped_rewards(_Z(4), _Z(4, 3), _Z(4, 3), 0.1, lengths=torch.ones(3, dtype=torch.long)),
     r"^lengths: expected shape \[4\], got \[3\]$"),
    (lambda: kl_shaped_rewards(_Z(4), _Z(4, 3), _Z(4, 3), 0.1, lengths=torch.ones(4)),
     r"^lengths: expected an integer tensor, got dtype torch.float32$"),
    (lambda: kl_shaped_rewards(_Z(4), _Z(4, 3), _Z(4, 3), 0.1, lengths=torch.ones(4, dtype=_B)),
     r"^lengths: expected an integer tensor, got dtype torch.bool$"),
    (lambda: kl_shaped_rewards(_Z(4), _Z(4, 3), _Z(4, 3), 0.1, lengths=torch.tensor([1, 2, 3, 4])),
     r"^lengths: every length must lie in \[1, 3\], got \[1, 2, 3, 4\]$"),
    (lambda: kl_shaped_rewards(_Z(2), _Z(2, 3), _Z(2, 3), 0.1, lengths=torch.tensor([0, 2])),
     r"^lengths: every length must lie in \[1, 3\], got \[0, 2\]$"),
])
def test_error_messages_name_the_argument_and_the_problem(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_edge_cases_the_checks_let_through(f64):
    """Empty time axes, γ = 0 / β = 0 and integer 0/1 dones and masks are valid inputs."""
    assert rewards_to_go(torch.zeros(2, 0)).shape == (2, 0)
    r = torch.tensor([1.0, 2.0, 4.0])
    assert torch.equal(rewards_to_go(r, 0.0), r) and float(discounted_return(r, 0.0)) == 1.0
    rewards, values = torch.tensor([[1.0], [2.0]]), torch.tensor([[0.5], [0.25]])
    last = torch.tensor([3.0])
    for dones in (torch.tensor([[0], [1]]), torch.tensor([[False], [True]])):
        adv, ret = gae(rewards, values, dones, last, 0.5, 1.0)
        # episode ends after step 1: Â_1 = r_1 − V_1, Â_0 = r_0 + γ V_1 − V_0 + γ Â_1
        a1 = 2.0 - 0.25
        a0 = 1.0 + 0.5 * 0.25 - 0.5 + 0.5 * a1
        torch.testing.assert_close(adv, torch.tensor([[a0], [a1]]), **TOL)
        torch.testing.assert_close(ret, adv + values, **TOL)
    scores = torch.tensor([2.0, -1.0])
    lp = torch.randn(2, 3, generator=torch.Generator().manual_seed(0))
    by_int_mask = kl_shaped_rewards(scores, lp, lp + 1.0, 0.5, mask=torch.tensor([[1, 1, 0], [1, 0, 0]]))
    torch.testing.assert_close(by_int_mask, torch.tensor([[-0.5 * -1.0, 2.0 + 0.5, 0.0],
                                                          [-1.0 + 0.5, 0.0, 0.0]]), **TOL)
    torch.testing.assert_close(kl_shaped_rewards(scores, lp, lp + 1.0, 0.0),
                               torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, -1.0]]), **TOL)


def test_diagnostics_and_value_loss_average_over_the_mask_only(f64, gen):
    logp_old = -torch.rand(2, 3, generator=gen)
    logp_new = logp_old + 0.4 * torch.randn(2, 3, generator=gen)
    mask = torch.tensor([[True, False, True], [False, False, True]])
    for f in (approx_kl, lambda a, b, **kw: clip_fraction(a, b, 0.1, **kw)):
        torch.testing.assert_close(f(logp_new, logp_old, mask=mask),
                                   f(logp_new[mask], logp_old[mask]), **TOL)
    frac = clip_fraction(logp_new, logp_old, 0.1)
    assert frac.dtype == torch.float64
    v, ret, old = logp_new, logp_old, logp_old + 0.05
    torch.testing.assert_close(value_loss(v, ret, mask=mask), value_loss(v[mask], ret[mask]), **TOL)
    torch.testing.assert_close(value_loss(v, ret, old_values=old, clip_eps=0.1, mask=mask),
                               value_loss(v[mask], ret[mask], old_values=old[mask], clip_eps=0.1),
                               **TOL)


def test_defaults_single_environment_and_length_one_inputs(f64):
    """γ = 1 by default; GAE on one environment ([T] rewards, a 0-dim last value); T = 1 and
    B = 1 are ordinary inputs; a length or mask of one token puts the score on token 0."""
    r = torch.tensor([1.0, 2.0, 4.0])
    assert float(discounted_return(r)) == 7.0
    assert torch.equal(rewards_to_go(r), torch.tensor([7.0, 6.0, 4.0]))
    adv, ret = gae(r, torch.zeros(3), torch.zeros(3), torch.tensor(0.0), 1.0, 1.0)
    assert torch.equal(adv, torch.tensor([7.0, 6.0, 4.0])) and torch.equal(ret, adv)
    adv1, _ = gae(torch.tensor([[1.0]]), torch.tensor([[0.5]]), torch.tensor([[0.0]]),
                  torch.tensor([2.0]), 0.5, 0.5)
    assert torch.equal(adv1, torch.tensor([[1.0 + 0.5 * 2.0 - 0.5]]))
    one = kl_shaped_rewards(torch.tensor([3.0]), torch.zeros(1, 1), torch.zeros(1, 1), 0.1)
    assert torch.equal(one, torch.tensor([[3.0]]))
    lengths = kl_shaped_rewards(torch.tensor([3.0, 5.0]), torch.zeros(2, 3), torch.zeros(2, 3), 0.1,
                                lengths=torch.tensor([1, 3]))
    assert torch.equal(lengths, torch.tensor([[3.0, 0.0, 0.0], [0.0, 0.0, 5.0]]))
    torch.testing.assert_close(preference_loss(torch.tensor([1.0]), torch.tensor([0.0])),
                               torch.tensor(math.log(1 + math.exp(-1.0))), **TOL)
    single = torch.tensor([False, True, False])
    torch.testing.assert_close(approx_kl(torch.tensor([0.0, 0.5, 0.0]), torch.zeros(3), mask=single),
                               torch.tensor(math.expm1(0.5) - 0.5), **TOL)


def test_hyperparameter_upper_bounds():
    with pytest.raises(ValueError, match=r"^gamma: must lie in \[0.0, 1.0\], got 1.5$"):
        rewards_to_go(torch.zeros(3), 1.5)
    with pytest.raises(ValueError, match=r"^lam: must lie in \[0.0, 1.0\], got 1.5$"):
        gae(torch.zeros(2, 1), torch.zeros(2, 1), torch.zeros(2, 1), torch.zeros(1), 0.9, 1.5)


def test_clip_fraction_counts_only_ratios_strictly_outside_the_interval(f64):
    log_r = torch.tensor([0.4, -1.0])
    eps = float(torch.exp(log_r[0]) - 1.0)  # r_0 lies exactly on 1 + ε: inside
    assert float(clip_fraction(log_r, torch.zeros(2), eps)) == 0.5  # only r_1 = e^-1 < 1 − ε


def test_preference_loss_names_a_non_finite_chosen_reward():
    with pytest.raises(ValueError, match=r"^r_chosen: contains 1 NaN/inf"):
        preference_loss(torch.tensor([float("nan")]), torch.zeros(1))


def test_adaptive_kl_controller_by_hand():
    """Ziegler et al. (2019): β ← β (1 + K_β clip(KL/target − 1, −0.2, 0.2)), step by step."""
    from genmodels.rl import AdaptiveKLController
    ctl = AdaptiveKLController(0.1, target=4.0, k_beta=0.5)
    assert ctl.update(4.0) == pytest.approx(0.1)                  # on target: unchanged
    assert ctl.update(4.4) == pytest.approx(0.1 * 1.05)           # error 0.1, gain 0.5
    assert ctl.update(100.0) == pytest.approx(0.1 * 1.05 * 1.1)   # error clipped at +0.2
    assert ctl.update(0.0) == pytest.approx(0.1 * 1.05 * 1.1 * 0.9)  # clipped at −0.2
    assert ctl.update(3.6) == pytest.approx(0.1 * 1.05 * 1.1 * 0.9 * 0.95)
    state = ctl.state_dict()
    other = AdaptiveKLController(1.0, target=1.0)
    other.load_state_dict(state)
    assert other.update(5.0) == pytest.approx(ctl.update(5.0))


@pytest.mark.parametrize("kwargs, name", [
    ({"beta": 0.0, "target": 4.0}, "beta"), ({"beta": -1.0, "target": 4.0}, "beta"),
    ({"beta": 0.1, "target": 0.0}, "target"), ({"beta": 0.1, "target": 4.0, "k_beta": 0.0}, "k_beta"),
])
def test_adaptive_kl_controller_bad_arguments(kwargs, name):
    from genmodels.rl import AdaptiveKLController
    with pytest.raises(ValueError, match=f"^{name}:"):
        AdaptiveKLController(**kwargs)


@pytest.mark.parametrize("kl", [float("nan"), float("inf")])
def test_adaptive_kl_controller_refuses_a_non_finite_kl(kl):
    from genmodels.rl import AdaptiveKLController
    with pytest.raises(ValueError, match="^kl:"):
        AdaptiveKLController(0.1, 4.0).update(kl)


# --- small cases: one float64 case per exercise, the expected value computed independently;
# `genmodels-exercise check` shows each as expected vs got ----------------------------------
@pytest.mark.exercise("rl.discounted_return")
def test_discounted_return_small_case(small_case):
    r = [[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]]      # two trajectories, time along the last axis
    small_case(("rewards=[[1, 2, 3], [0, -1, 4]], gamma=0.5",
                [sum(0.5 ** t * x for t, x in enumerate(row)) for row in r],
                lambda: discounted_return(t64(r), 0.5)))


@pytest.mark.exercise("rl.rewards_to_go")
def test_rewards_to_go_small_case(small_case):
    r = [1.0, 2.0, 3.0]
    exp = [sum(0.5 ** (k - t) * r[k] for k in range(t, 3)) for t in range(3)]
    small_case(("rewards=[1, 2, 3], gamma=0.5", exp, lambda: rewards_to_go(t64(r), 0.5)))


@pytest.mark.exercise("rl.preference_loss")
def test_preference_loss_small_case(small_case):
    rc, rr = np.array([1.0, 0.0]), np.array([0.0, 2.0])
    small_case(("r_chosen=[1, 0], r_rejected=[0, 2]", np.mean(np.log1p(np.exp(-(rc - rr)))),
                lambda: preference_loss(t64(rc), t64(rr))))


@pytest.mark.exercise("rl.kl_shaped_rewards")
def test_kl_shaped_rewards_small_case(small_case):
    # −β·(log π − log π_ref) per token, score 1.0 added at the last token
    exp = [[-0.1 * (-1.0 + 1.5), -0.1 * (-2.0 + 1.0) + 1.0]]
    small_case(("scores=[1], logp_policy=[[-1, -2]], logp_ref=[[-1.5, -1]], beta=0.1", exp,
                lambda: kl_shaped_rewards(t64([1.0]), t64([[-1.0, -2.0]]), t64([[-1.5, -1.0]]), 0.1)))


@pytest.mark.exercise("rl.probability_ratio")
def test_probability_ratio_small_case(small_case):
    small_case(("logp_new=[log .2, log .6], logp_old=[log .4, log .3]", [0.5, 2.0],
                lambda: probability_ratio(t64([math.log(0.2), math.log(0.6)]),
                                          t64([math.log(0.4), math.log(0.3)]))))


@pytest.mark.exercise("rl.ppo_clip")
def test_ppo_clip_small_case(small_case):
    r, A, eps = np.array([1.5, 0.5, 1.1, 0.7]), np.array([1.0, -1.0, 2.0, 3.0]), 0.2
    exp = np.mean(np.minimum(r * A, np.clip(r, 1 - eps, 1 + eps) * A))
    small_case(("ratios=[1.5, 0.5, 1.1, 0.7], advantages=[1, -1, 2, 3], clip_eps=0.2", exp,
                lambda: ppo_clip_objective(t64(np.log(r)), t64(np.zeros(4)), t64(A), eps)))


@pytest.mark.exercise("rl.gae")
def test_gae_small_case(small_case):
    r, v, d, last, g, lam = [1.0, 0.0, 1.0], [0.5, 0.2, 0.1], [0.0, 1.0, 0.0], 0.3, 0.9, 0.8
    # Â_t = Σ_l (γλ)^l δ_{t+l} within the episode, written as explicit sums
    nxt = [v[1], v[2], last]
    delta = [r[t] + g * (1 - d[t]) * nxt[t] - v[t] for t in range(3)]
    A = [delta[0] + g * lam * delta[1], delta[1], delta[2]]     # episode ends after t = 1
    R = [a + b for a, b in zip(A, v)]

    def col(xs):                                                  # one environment: [T, 1]
        return t64([[x] for x in xs])
    small_case(("rewards=[1,0,1], values=[.5,.2,.1], dones=[0,1,0], last_value=.3, γ=.9, λ=.8"
                " → (advantages, returns)", [A, R],
                lambda: torch.stack([x[:, 0] for x in gae(col(r), col(v), col(d), t64([last]), g, lam)])))
