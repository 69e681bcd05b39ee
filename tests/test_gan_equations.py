"""GAN equations 2.9–2.11, checked against torch's binary cross-entropy with logits, the naive
log-σ formula, and values one can derive (V = −log 4 at D = ½; the gradients of the saturating
and non-saturating generator losses)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from genmodels.gan import discriminator_loss, gan_value, generator_loss
from conftest import t64

pytestmark = pytest.mark.gan


def bce(logits, label):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(label)))


@pytest.mark.parametrize("b_real,b_fake", [(1, 1), (7, 7), (5, 3)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_values_match_binary_cross_entropy(b_real, b_fake, dtype, gen):
    real = (3 * torch.randn(b_real, generator=gen)).to(dtype)
    fake = (3 * torch.randn(b_fake, generator=gen)).to(dtype)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == torch.float64 else dict(rtol=1e-6, atol=1e-6)
    # V = E log D(x) + E log(1 − D(G(z))) = −BCE(real, 1) − BCE(fake, 0)
    torch.testing.assert_close(gan_value(real, fake), -bce(real, 1) - bce(fake, 0), **tol)
    torch.testing.assert_close(discriminator_loss(real, fake), bce(real, 1) + bce(fake, 0), **tol)
    torch.testing.assert_close(generator_loss(fake, saturating=True), -bce(fake, 0), **tol)
    torch.testing.assert_close(generator_loss(fake, saturating=False), bce(fake, 1), **tol)
    for out in (gan_value(real, fake), discriminator_loss(real, fake), generator_loss(fake)):
        assert out.shape == () and out.dtype == dtype


def test_values_match_naive_formula(f64, gen):
    real, fake = torch.randn(6, generator=gen), torch.randn(4, generator=gen)
    d_real, d_fake = torch.sigmoid(real), torch.sigmoid(fake)
    expected = torch.log(d_real).mean() + torch.log(1 - d_fake).mean()
    torch.testing.assert_close(gan_value(real, fake), expected, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(generator_loss(fake), torch.log(1 - d_fake).mean(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(generator_loss(fake, saturating=False), -torch.log(d_fake).mean(),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.exercise("gan.value")
def test_value_at_the_global_optimum_is_minus_log_4(f64):
    # p_g = p_data makes D* = ½ everywhere (logit 0): V(D*, G*) = 2 log ½ = −log 4
    zeros = torch.zeros(5)
    assert gan_value(zeros, zeros).item() == pytest.approx(-math.log(4), abs=1e-15)


@pytest.mark.parametrize("value", [200.0, -200.0, 1e4, -1e4])
def test_extreme_logits_give_finite_values_and_gradients(value):
    for dtype in (torch.float32, torch.float64):
        real = torch.tensor([value, -value], dtype=dtype, requires_grad=True)
        fake = torch.tensor([value, -value], dtype=dtype, requires_grad=True)
        for out in (gan_value(real, fake), discriminator_loss(real, fake),
                    generator_loss(fake, saturating=True), generator_loss(fake, saturating=False)):
            grads = torch.autograd.grad(out, (real, fake), allow_unused=True)
            assert torch.isfinite(out)
            assert all(g is None or torch.isfinite(g).all() for g in grads)


def test_extreme_logit_values_are_exact():
    # −log σ(−200) = 200 + log(1 + e^{−200}) = 200 in float64
    assert discriminator_loss(torch.tensor([-200.0]), torch.tensor([200.0])).item() == pytest.approx(400.0)
    assert discriminator_loss(torch.tensor([200.0]), torch.tensor([-200.0])).item() == pytest.approx(0.0, abs=1e-12)
    assert generator_loss(torch.tensor([-200.0]), saturating=False).item() == pytest.approx(200.0)


def test_gradients_match_the_derivative_of_the_log_sigmoid(f64, gen):
    # d/dl [−log σ(l)] = σ(l) − 1 and d/dl [−log(1 − σ(l))] = σ(l), each divided by its batch size
    real = torch.randn(5, generator=gen, requires_grad=True)
    fake = torch.randn(3, generator=gen, requires_grad=True)
    g_real, g_fake = torch.autograd.grad(discriminator_loss(real, fake), (real, fake))
    torch.testing.assert_close(g_real, (torch.sigmoid(real) - 1).detach() / 5)
    torch.testing.assert_close(g_fake, torch.sigmoid(fake).detach() / 3)
    assert torch.autograd.gradcheck(gan_value, (real, fake))
    assert torch.autograd.gradcheck(lambda f: generator_loss(f, saturating=False), (fake,))


@pytest.mark.exercise("gan.generator_loss")
def test_saturating_loss_saturates_and_non_saturating_does_not(f64):
    # Early in training D rejects fakes confidently (logit ≪ 0): the saturating gradient −σ(l)
    # vanishes, the non-saturating one σ(l) − 1 stays ≈ −1 (both push the logit up when descended).
    fake = torch.tensor([-20.0], requires_grad=True)
    (g_sat,) = torch.autograd.grad(generator_loss(fake, saturating=True), fake)
    (g_non,) = torch.autograd.grad(generator_loss(fake, saturating=False), fake)
    assert g_sat.item() == pytest.approx(-torch.sigmoid(torch.tensor(-20.0)).item(), rel=1e-12)
    assert abs(g_sat.item()) < 1e-8 and g_non.item() == pytest.approx(-1.0, abs=1e-8)


@pytest.mark.exercise("gan.discriminator_loss")
@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-300, 300), min_size=1, max_size=8),
       st.lists(st.floats(-300, 300), min_size=1, max_size=8))
def test_property_discriminator_loss_is_bce_and_non_negative(real, fake):
    real, fake = torch.tensor(real, dtype=torch.float64), torch.tensor(fake, dtype=torch.float64)
    loss = discriminator_loss(real, fake)
    assert loss >= 0 and gan_value(real, fake) <= 0
    torch.testing.assert_close(loss, bce(real, 1) + bce(fake, 0), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("call,arg", [
    (lambda: gan_value(torch.zeros(3, 1), torch.zeros(3)), "real_logits"),
    (lambda: gan_value(torch.zeros(3), torch.zeros(3, 1)), "fake_logits"),
    (lambda: gan_value(torch.zeros(3), torch.zeros(3, dtype=torch.float64)), "real_logits"),
    (lambda: gan_value(torch.tensor([0.0, float("nan")]), torch.zeros(2)), "real_logits"),
    (lambda: discriminator_loss(torch.zeros(2), torch.tensor([float("inf"), 0.0])), "fake_logits"),
    (lambda: discriminator_loss(torch.zeros(0), torch.zeros(2)), "real_logits"),
    (lambda: discriminator_loss(torch.zeros(2, dtype=torch.long), torch.zeros(2)), "real_logits"),
    (lambda: discriminator_loss([0.0, 1.0], torch.zeros(2)), "real_logits"),
    (lambda: generator_loss(torch.zeros(())), "fake_logits"),
    (lambda: generator_loss(torch.tensor([float("nan")]), saturating=False), "fake_logits"),
    (lambda: generator_loss(torch.zeros(2), saturating="yes"), "saturating"),
])
def test_bad_inputs_raise_value_error_naming_the_argument(call, arg):
    with pytest.raises(ValueError, match=rf"^{arg}:"):
        call()


def test_error_messages_name_every_argument_and_what_was_given():
    """The message a student reads lists both mismatched arguments and the offending type."""
    with pytest.raises(ValueError, match=r"real_logits:torch.float32, fake_logits:torch.float64"):
        gan_value(torch.zeros(3), torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match=r"expected a bool, got str$"):
        generator_loss(torch.zeros(2), saturating="yes")


# --- small cases: one float64 case per exercise, the expected value computed independently;
# `genmodels-exercise check` shows each as expected vs got ----------------------------------
CASE_REAL, CASE_FAKE = [2.0, -1.0, 0.5], [-3.0, 1.0]


def _np_sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x)))


@pytest.mark.exercise("gan.value")
def test_value_small_case(small_case):
    exp = np.mean(np.log(_np_sigmoid(CASE_REAL))) + np.mean(np.log(1 - _np_sigmoid(CASE_FAKE)))
    big = [200.0, -200.0]                       # log σ(l) = −log(1 + e^{−l}), finite for any l
    exp_big = np.mean(-np.logaddexp(0, -np.array(big))) + np.mean(-np.logaddexp(0, np.array(big)))
    small_case((f"real_logits={CASE_REAL}, fake_logits={CASE_FAKE}", exp,
                lambda: gan_value(t64(CASE_REAL), t64(CASE_FAKE))),
               (f"real_logits = fake_logits = {big}", exp_big, lambda: gan_value(t64(big), t64(big))))


@pytest.mark.exercise("gan.discriminator_loss")
def test_discriminator_loss_small_case(small_case):
    exp = (F.binary_cross_entropy_with_logits(t64(CASE_REAL), torch.ones(3, dtype=torch.float64))
           + F.binary_cross_entropy_with_logits(t64(CASE_FAKE), torch.zeros(2, dtype=torch.float64)))
    small_case((f"real_logits={CASE_REAL}, fake_logits={CASE_FAKE}", exp,
                lambda: discriminator_loss(t64(CASE_REAL), t64(CASE_FAKE))))


@pytest.mark.exercise("gan.generator_loss")
def test_generator_loss_small_case(small_case):
    d = _np_sigmoid(CASE_FAKE)
    small_case((f"fake_logits={CASE_FAKE}, saturating=True", np.mean(np.log(1 - d)),
                lambda: generator_loss(t64(CASE_FAKE), saturating=True)),
               (f"fake_logits={CASE_FAKE}, saturating=False", -np.mean(np.log(d)),
                lambda: generator_loss(t64(CASE_FAKE), saturating=False)),
               ("fake_logits=[-200], saturating=False", 200.0,
                lambda: generator_loss(t64([-200.0]), saturating=False)))
