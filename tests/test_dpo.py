"""DPO: the loss against the formula written out by hand (NumPy, float64), its limits and its
gradient (the task on a tiny corpus: tests/test_rlhf_pipeline.py)."""

import math

import numpy as np
import pytest
import torch

from conftest import compose
from genmodels.rl.dpo import dpo_loss
from genmodels.train.config import ConfigError, to_object

pytestmark = pytest.mark.rl
F64 = torch.float64


def _logps(gen, B=6):
    return [torch.randn(B, generator=gen, dtype=F64) * 5 - 20 for _ in range(4)]


def _by_hand(c, r, c_ref, r_ref, beta):
    m = beta * ((c - c_ref) - (r - r_ref))
    return float(np.mean([-math.log(1.0 / (1.0 + math.exp(-x))) for x in m]))


@pytest.mark.exercise("rl.dpo_loss")
def test_dpo_loss_matches_the_formula_by_hand(gen):
    c, r, c_ref, r_ref = _logps(gen)
    for beta in (0.05, 0.1, 1.0):
        got = dpo_loss(c, r, c_ref, r_ref, beta)
        assert got.shape == () and got.dtype == F64
        assert got.item() == pytest.approx(_by_hand(c.numpy(), r.numpy(), c_ref.numpy(),
                                                    r_ref.numpy(), beta), rel=1e-12)


@pytest.mark.exercise("rl.dpo_loss")
def test_dpo_hand_case(small_case):
    """One pair: the policy raised the chosen completion's log-probability by 2 nats over the
    reference and lowered the rejected one's by 1: margin 3, β = 0.5 → −log σ(1.5)."""
    t = lambda v: torch.tensor([v], dtype=F64)    # noqa: E731
    small_case(("β = 0.5, margin 3", math.log1p(math.exp(-1.5)),
                lambda: dpo_loss(t(-8.0), t(-13.0), t(-10.0), t(-12.0), 0.5).item()),
               ("the same pair swapped", math.log1p(math.exp(1.5)),
                lambda: dpo_loss(t(-13.0), t(-8.0), t(-12.0), t(-10.0), 0.5).item()))


@pytest.mark.exercise("rl.dpo_loss")
def test_dpo_limits(gen):
    c, r, c_ref, r_ref = _logps(gen)
    # β → 0: log 2 whatever the log-probabilities
    assert dpo_loss(c, r, c_ref, r_ref, 1e-12).item() == pytest.approx(math.log(2), abs=1e-9)
    # equal log-ratios (policy = reference, or the same shift on both): log 2 for every β
    for beta in (0.1, 3.0):
        assert dpo_loss(c_ref + 1.5, r_ref + 1.5, c_ref, r_ref, beta).item() == \
            pytest.approx(math.log(2), abs=1e-15)
    # a large margin the right way → 0, the wrong way → β · |margin| (finite, no overflow)
    big = torch.tensor([400.0], dtype=F64)
    zero = torch.zeros(1, dtype=F64)
    assert dpo_loss(big, zero, zero, zero, 1.0).item() == pytest.approx(0.0, abs=1e-15)
    assert dpo_loss(zero, big, zero, zero, 1.0).item() == pytest.approx(400.0, rel=1e-12)


def test_dpo_gradient_matches_the_hand_derivation(gen):
    """∂L/∂log π_c = −(β/B) σ(−β m) and ∂L/∂log π_r = +(β/B) σ(−β m): the gradient raises the
    chosen completion and lowers the rejected one, most where the pair is ranked wrongly."""
    c, r, c_ref, r_ref = _logps(gen)
    c.requires_grad_(True)
    r.requires_grad_(True)
    beta = 0.7
    dpo_loss(c, r, c_ref, r_ref, beta).backward()
    m = (c - c_ref - r + r_ref).detach()
    w = torch.sigmoid(-beta * m) * beta / len(c)
    torch.testing.assert_close(c.grad, -w, rtol=0, atol=1e-15)
    torch.testing.assert_close(r.grad, w, rtol=0, atol=1e-15)


def test_dpo_float32_agrees_with_float64(gen):
    c, r, c_ref, r_ref = _logps(gen, B=500)
    want = dpo_loss(c, r, c_ref, r_ref, 0.1).item()
    got = dpo_loss(c.float(), r.float(), c_ref.float(), r_ref.float(), 0.1).item()
    assert got == pytest.approx(want, rel=1e-5)


@pytest.mark.parametrize("bad, name", [
    (dict(beta=0.0), "beta"), (dict(beta=-1.0), "beta"), (dict(beta=float("nan")), "beta"),
    (dict(logp_rejected=torch.zeros(4, dtype=F64)), "logp_chosen"),
    (dict(ref_logp_chosen=torch.zeros(3)), "logp_chosen"),
    (dict(logp_chosen=torch.tensor([0.0, float("nan"), 0.0], dtype=F64)), "logp_chosen"),
    (dict(logp_chosen=torch.zeros(0, dtype=F64), logp_rejected=torch.zeros(0, dtype=F64),
          ref_logp_chosen=torch.zeros(0, dtype=F64), ref_logp_rejected=torch.zeros(0, dtype=F64)),
     "logp_chosen"),
])
def test_dpo_bad_inputs_name_the_argument(bad, name):
    args = dict(logp_chosen=torch.zeros(3, dtype=F64), logp_rejected=torch.zeros(3, dtype=F64),
                ref_logp_chosen=torch.zeros(3, dtype=F64), ref_logp_rejected=torch.zeros(3, dtype=F64),
                beta=0.1)
    args.update(bad)
    with pytest.raises(ValueError, match=name):
        dpo_loss(**args)


def test_bad_dpo_config_values_name_the_key():
    with pytest.raises(ConfigError, match=r"model\.dpo_beta"):
        to_object(compose(["experiment=rlhf_dpo", "model.dpo_beta=0"]))
