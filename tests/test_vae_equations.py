"""VAE equations 2.5-2.8, each against an independent reference."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence

from genmodels.vae import (MLPVAE, bernoulli_log_likelihood, elbo, gaussian_log_density, iwae_bound,
                           kl_to_standard_normal, reparameterize)
from conftest import t64

pytestmark = pytest.mark.vae


def _stats(gen, B=5, d=3):
    mu = torch.randn(B, d, generator=gen, dtype=torch.float64)
    logvar = torch.randn(B, d, generator=gen, dtype=torch.float64)
    return mu, logvar


# ---------------------------------------------------------------- 2.5
@pytest.mark.exercise("vae.log_density")
def test_gaussian_log_density_matches_torch_normal(gen):
    mu, logvar = _stats(gen)
    z = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    ref = Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    got = gaussian_log_density(z, mu, logvar)
    assert got.shape == (5,) and got.dtype == torch.float64
    torch.testing.assert_close(got, ref, rtol=0, atol=1e-12)


@pytest.mark.exercise("vae.log_density")
def test_gaussian_log_density_hand_case():
    # d=1, z=μ=0, σ²=1: log N(0;0,1) = −½ log 2π
    z = torch.zeros(1, 1, dtype=torch.float64)
    assert gaussian_log_density(z, z, z).item() == pytest.approx(-0.5 * math.log(2 * math.pi), abs=1e-15)


# ---------------------------------------------------------------- 2.6
@pytest.mark.exercise("vae.reparameterize")
def test_reparameterize_value_and_gradient(gen):
    mu, logvar = _stats(gen)
    mu.requires_grad_(True)
    logvar.requires_grad_(True)
    eps = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    z = reparameterize(mu, logvar, eps)
    torch.testing.assert_close(z, mu + eps * torch.sqrt(torch.exp(logvar)), rtol=0, atol=1e-12)
    z.sum().backward()
    # ∂z/∂μ = 1, ∂z/∂logvar = ½ ε σ (derived by hand)
    torch.testing.assert_close(mu.grad, torch.ones_like(mu))
    torch.testing.assert_close(logvar.grad, 0.5 * eps * torch.exp(0.5 * logvar.detach()), rtol=0, atol=1e-12)


@pytest.mark.exercise("vae.reparameterize")
def test_reparameterize_distribution_monte_carlo():
    mu = torch.tensor([[1.5, -2.0]], dtype=torch.float64)
    logvar = torch.tensor([[math.log(0.25), math.log(4.0)]], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)
    z = reparameterize(mu.expand(200_000, 2), logvar.expand(200_000, 2), generator=g)
    # standard errors: σ/√n ≈ 0.0045 for σ = 2; 5 SE tolerance
    torch.testing.assert_close(z.mean(0), mu[0], rtol=0, atol=0.025)
    torch.testing.assert_close(z.var(0), torch.tensor([0.25, 4.0], dtype=torch.float64), rtol=0.02, atol=0)


@pytest.mark.exercise("vae.reparameterize")
def test_reparameterize_multi_sample_eps_shape(gen):
    mu, logvar = _stats(gen)
    eps = torch.randn(7, 5, 3, generator=gen, dtype=torch.float64)
    assert reparameterize(mu, logvar, eps).shape == (7, 5, 3)


# ---------------------------------------------------------------- 2.8
@pytest.mark.exercise("vae.kl")
def test_kl_matches_torch_kl_divergence(gen):
    mu, logvar = _stats(gen)
    q = Normal(mu, torch.exp(0.5 * logvar))
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    ref = kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(kl_to_standard_normal(mu, logvar), ref, rtol=0, atol=1e-12)


@pytest.mark.exercise("vae.kl")
def test_kl_matches_monte_carlo():
    mu = torch.tensor([[0.7, -0.3]], dtype=torch.float64)
    logvar = torch.tensor([[-0.5, 0.4]], dtype=torch.float64)
    g = torch.Generator().manual_seed(1)
    n = 400_000
    z = mu + torch.exp(0.5 * logvar) * torch.randn(n, 2, generator=g, dtype=torch.float64)
    log_q = Normal(mu, torch.exp(0.5 * logvar)).log_prob(z).sum(-1)
    log_p = Normal(0.0, 1.0).log_prob(z).sum(-1)
    mc, se = (log_q - log_p).mean(), (log_q - log_p).std() / math.sqrt(n)
    assert abs(kl_to_standard_normal(mu, logvar).item() - mc.item()) < 5 * se.item()


@pytest.mark.exercise("vae.kl")
def test_kl_zero_at_prior_and_nonnegative(gen):
    zero = torch.zeros(4, 6, dtype=torch.float64)
    assert torch.equal(kl_to_standard_normal(zero, zero), torch.zeros(4, dtype=torch.float64))
    mu = 3 * torch.randn(1000, 4, generator=gen, dtype=torch.float64)
    logvar = 3 * torch.randn(1000, 4, generator=gen, dtype=torch.float64)
    assert (kl_to_standard_normal(mu, logvar) >= 0).all()


# ---------------------------------------------------------------- 2.7
def _bce_by_hand(x, logits):
    # log p(x|z) = Σ x log σ(ℓ) + (1−x) log(1−σ(ℓ)), via the library-independent BCE-with-logits
    return -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits), reduction="none")


@pytest.mark.exercise("vae.elbo")
def test_elbo_one_sample(gen):
    x = torch.rand(5, 1, 4, 4, generator=gen, dtype=torch.float64)
    logits = torch.randn(5, 1, 4, 4, generator=gen, dtype=torch.float64)
    mu, logvar = _stats(gen)
    log_px = _bce_by_hand(x, logits).flatten(1).sum(1)
    kl = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(elbo(x, logits, mu, logvar), log_px - kl, rtol=0, atol=1e-12)


@pytest.mark.exercise("vae.elbo")
def test_elbo_L_samples_averages_the_likelihood(gen):
    L = 4
    x = torch.rand(5, 6, generator=gen, dtype=torch.float64)
    logits = torch.randn(L, 5, 6, generator=gen, dtype=torch.float64)
    mu, logvar = _stats(gen)
    log_px = torch.stack([_bce_by_hand(x, logits[l]).sum(-1) for l in range(L)]).mean(0)
    kl = kl_divergence(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(elbo(x, logits, mu, logvar), log_px - kl, rtol=0, atol=1e-12)


@pytest.mark.exercise("vae.elbo")
def test_elbo_finite_for_extreme_logits():
    x = torch.tensor([[0.0, 1.0, 0.5]], dtype=torch.float64)
    logits = torch.tensor([[-300.0, 300.0, 200.0]], dtype=torch.float64, requires_grad=True)
    mu = torch.zeros(1, 2, dtype=torch.float64)
    val = elbo(x, logits, mu, mu)
    val.sum().backward()
    assert torch.isfinite(val).all() and torch.isfinite(logits.grad).all()
    assert val.item() == pytest.approx(-0.5 * 200.0, rel=1e-9)   # only the x=0.5 pixel costs


@pytest.mark.exercise("vae.elbo")
def test_gradcheck_float64(gen):
    x = torch.rand(3, 4, generator=gen, dtype=torch.float64)
    logits = torch.randn(2, 3, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    mu = torch.randn(3, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    logvar = torch.randn(3, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    eps = torch.randn(3, 2, generator=gen, dtype=torch.float64)
    z = torch.randn(3, 2, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda l, m, v: elbo(x, l, m, v), (logits, mu, logvar))
    assert torch.autograd.gradcheck(lambda m, v: reparameterize(m, v, eps), (mu, logvar))
    assert torch.autograd.gradcheck(kl_to_standard_normal, (mu, logvar))
    assert torch.autograd.gradcheck(gaussian_log_density, (z, mu, logvar))


def test_float32_stays_float32():
    mu = torch.zeros(2, 3)
    assert kl_to_standard_normal(mu, mu).dtype == torch.float32
    assert reparameterize(mu, mu).dtype == torch.float32


# ---------------------------------------------------------------- IWAE (used for the test NLL)
def test_iwae_bound_k1_is_single_sample_elbo_and_exact_for_linear_gaussian_free_case(gen):
    x = torch.rand(3, 5, generator=gen, dtype=torch.float64)
    mu, logvar = _stats(gen, B=3, d=2)
    z = torch.randn(1, 3, 2, generator=gen, dtype=torch.float64)
    logits = torch.randn(1, 3, 5, generator=gen, dtype=torch.float64)
    # K=1: log p(x|z) + log p(z) − log q(z|x), written with torch.distributions
    ref = (_bce_by_hand(x, logits[0]).sum(-1) + Normal(0.0, 1.0).log_prob(z[0]).sum(-1)
           - Normal(mu, torch.exp(0.5 * logvar)).log_prob(z[0]).sum(-1))
    torch.testing.assert_close(iwae_bound(x, logits, z, mu, logvar), ref, rtol=0, atol=1e-12)


def test_iwae_of_decoder_independent_of_z_is_exact():
    # If p(x|z) does not depend on z, log p(x) = log p(x|z) exactly, and the bound with q = prior
    # has all importance weights equal: the estimate is exact for any K.
    torch.manual_seed(0)
    model = MLPVAE(image_shape=(1, 2, 2), hidden=8, latent_dim=3).double()
    with torch.no_grad():
        for p in model.decoder.parameters():
            p.zero_()
        model.decoder[-1].bias.copy_(torch.tensor([0.3, -1.0, 2.0, 0.0]))
    model.encode = lambda x: (torch.zeros(len(x), 3, dtype=x.dtype), torch.zeros(len(x), 3, dtype=x.dtype))
    x = torch.tensor([[[[0.0, 1.0], [0.25, 0.5]]]], dtype=torch.float64)
    ref = _bce_by_hand(x.flatten(1), model.decoder[-1].bias.view(1, 4)).sum()
    torch.testing.assert_close(model.log_likelihood(x, k=50, chunk=20)[0], ref, rtol=0, atol=1e-10)


# ---------------------------------------------------------------- input checks
@pytest.mark.parametrize("call, name", [
    (lambda: gaussian_log_density(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, 4)), "z"),
    (lambda: gaussian_log_density(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(3, 3)), "mu"),
    (lambda: kl_to_standard_normal(torch.zeros(3), torch.zeros(3)), "mu"),
    (lambda: kl_to_standard_normal(torch.zeros(2, 3), torch.full((2, 3), float("nan"))), "logvar"),
    (lambda: reparameterize(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 4)), "eps"),
    (lambda: elbo(torch.zeros(2, 5), torch.zeros(2, 6), torch.zeros(2, 3), torch.zeros(2, 3)), "logits"),
    (lambda: elbo(torch.full((2, 5), 2.0), torch.zeros(2, 5), torch.zeros(2, 3), torch.zeros(2, 3)), "x"),
    (lambda: elbo(torch.zeros(2, 5), torch.zeros(2, 5), torch.zeros(3, 3), torch.zeros(3, 3)), "mu"),
    (lambda: kl_to_standard_normal(torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 3)), "mu"),
])
def test_value_errors_name_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"^{name}\b"):
        call()


# Each message names the argument AND says what was wrong with it, so a student can act on it.
_F32, _F64 = torch.float32, torch.float64


@pytest.mark.parametrize("call, message", [
    (lambda: gaussian_log_density(torch.zeros(3), torch.zeros(2, 3), torch.zeros(2, 3)),
     r"^z: expected 2 dimensions, got shape \(3,\)"),
    (lambda: gaussian_log_density(torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, 4)),
     r"^z: shapes must match, got z\[2, 3\], mu\[2, 4\]"),
    (lambda: gaussian_log_density(torch.zeros(2, 3), torch.zeros(2, 3, dtype=_F64),
                                  torch.zeros(2, 3, dtype=_F64)),
     r"^z: dtypes must match, got z:torch.float32, mu:torch.float64"),
    (lambda: kl_to_standard_normal(torch.zeros(2, 3), torch.zeros(2, 3, 1)),
     r"^logvar: expected 2 dimensions"),
    (lambda: kl_to_standard_normal(torch.zeros(2, 3), torch.zeros(2, 4)),
     r"^mu: shapes must match, got mu\[2, 3\], logvar\[2, 4\]"),
    (lambda: kl_to_standard_normal(torch.zeros(2, 3), torch.zeros(2, 3, dtype=_F64)),
     r"^mu: dtypes must match, got mu:torch.float32, logvar:torch.float64"),
    (lambda: reparameterize(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(1, 1, 2, 3)),
     r"^eps: expected 2 or 3 dimensions"),
    (lambda: reparameterize(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3, dtype=_F64)),
     r"^eps: dtypes must match, got eps:torch.float64, mu:torch.float32"),
    (lambda: bernoulli_log_likelihood(torch.tensor(0.5), torch.zeros(2)),
     r"^x: expected at least 1 dimensions"),
    (lambda: bernoulli_log_likelihood(torch.zeros(2), torch.tensor(0.0)),
     r"^logits: expected at least 1 dimensions"),
    (lambda: bernoulli_log_likelihood(torch.zeros(2, 5), torch.zeros(2, 6)),
     r"^logits: expected shape \[2, 5\] or \[L, 2, 5\] to match x, got \[2, 6\]$"),
    (lambda: bernoulli_log_likelihood(torch.zeros(2, 5), torch.zeros(2, 5, dtype=_F64)),
     r"^logits: dtypes must match, got logits:torch.float64, x:torch.float32"),
    (lambda: bernoulli_log_likelihood(torch.full((2, 5), -0.5), torch.zeros(2, 5)),
     r"^x: Bernoulli targets must lie in \[0, 1\]"),
    (lambda: elbo(torch.tensor(0.5), torch.zeros(2), torch.zeros(2, 3), torch.zeros(2, 3)),
     r"^x: expected at least 1 dimensions"),
    (lambda: elbo(torch.zeros(2, 5), torch.zeros(2, 5), torch.zeros(3, 4), torch.zeros(3, 4)),
     r"^mu: batch size 3 does not match x's 2$"),
    (lambda: elbo(torch.zeros(2, 5), torch.zeros(2, 5), torch.zeros(2, 3, dtype=_F64),
                  torch.zeros(2, 3, dtype=_F64)),
     r"^mu: dtypes must match, got mu:torch.float64, x:torch.float32"),
    (lambda: iwae_bound(torch.zeros(2, 5), torch.zeros(3, 2, 5), torch.zeros(2, 4),
                        torch.zeros(2, 4), torch.zeros(2, 4)),
     r"^z: expected 3 dimensions"),
    (lambda: iwae_bound(torch.zeros(2, 5), torch.zeros(2, 2, 5), torch.zeros(3, 2, 4),
                        torch.zeros(2, 4), torch.zeros(2, 4)),
     r"^logits: expected \[K=3, B=2, \.\.\.\], got \[2, 2, 5\]$"),
])
def test_value_error_messages_say_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_one_dimensional_data_is_accepted(gen):
    """x of shape [B] (one pixel per example) is valid data: the hand-written Bernoulli sum."""
    x = torch.tensor([0.0, 1.0, 0.25], dtype=torch.float64)
    logits = torch.randn(3, generator=gen, dtype=torch.float64)
    p = torch.sigmoid(logits)
    ref = x * torch.log(p) + (1 - x) * torch.log(1 - p)
    torch.testing.assert_close(bernoulli_log_likelihood(x, logits), ref, rtol=1e-12, atol=0)
    mu, logvar = _stats(gen, B=3, d=2)
    kl = 0.5 * (mu ** 2 + logvar.exp() - logvar - 1).sum(-1)
    torch.testing.assert_close(elbo(x, logits, mu, logvar), ref - kl, rtol=1e-12, atol=1e-12)


def test_reparameterize_draws_eps_from_the_generator_in_the_input_dtype(gen):
    """With eps=None the noise comes from ``generator`` in mu's dtype: the same seed gives the
    same z = mu + sigma * randn(seeded, float64), and an unseeded call gives another z."""
    mu, logvar = _stats(gen)
    z = reparameterize(mu, logvar, generator=torch.Generator().manual_seed(7))
    eps = torch.randn(5, 3, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
    assert z.dtype == torch.float64
    torch.testing.assert_close(z, mu + torch.exp(0.5 * logvar) * eps, rtol=0, atol=1e-15)


@pytest.mark.parametrize("call, message", [
    (lambda: iwae_bound(torch.tensor(0.5), torch.zeros(3, 2), torch.zeros(3, 2, 4), torch.zeros(2, 4),
                        torch.zeros(2, 4)), r"^x: expected at least 1 dimensions"),
    (lambda: iwae_bound(torch.zeros(2), torch.zeros(2), torch.zeros(3, 2, 4), torch.zeros(2, 4),
                        torch.zeros(2, 4)), r"^logits: expected at least 2 dimensions"),
    (lambda: iwae_bound(torch.zeros(2, 5), torch.zeros(3, 2, 5), torch.zeros(3, 2, 4), torch.zeros(2, 3),
                        torch.zeros(2, 3)), r"^mu: expected shape \[B=2, d=4\] to match z \[3, 2, 4\], got \[2, 3\]$"),
    (lambda: iwae_bound(torch.zeros(2, 5), torch.zeros(3, 2, 5), torch.zeros(3, 2, 4, dtype=_F64),
                        torch.zeros(2, 4), torch.zeros(2, 4)),
     r"^mu: dtypes must match, got mu:torch.float32, z:torch.float64, x:torch.float32$"),
])
def test_iwae_messages(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_iwae_with_one_dimensional_data_and_k_equal_one_is_the_one_sample_elbo_term(gen):
    """K = 1: log w = log p(x|z) + log p(z) − log q(z|x), computed here with torch.distributions."""
    x = torch.tensor([0.0, 1.0, 0.5], dtype=_F64)
    logits = torch.randn(1, 3, generator=gen, dtype=_F64)
    mu, logvar = _stats(gen, B=3, d=2)
    z = mu + torch.exp(0.5 * logvar) * torch.randn(1, 3, 2, generator=gen, dtype=_F64)
    p = torch.sigmoid(logits[0])
    log_px = x * torch.log(p) + (1 - x) * torch.log(1 - p)
    log_pz = Normal(0.0, 1.0).log_prob(z[0]).sum(-1)
    log_qz = Normal(mu, torch.exp(0.5 * logvar)).log_prob(z[0]).sum(-1)
    torch.testing.assert_close(iwae_bound(x, logits, z, mu, logvar), log_px + log_pz - log_qz,
                               rtol=1e-12, atol=1e-12)


# --- small cases: one float64 case per exercise, the expected value computed independently;
# `genmodels-exercise check` shows each as expected vs got ----------------------------------
CASE_MU, CASE_LOGVAR = [[0.5, -1.0]], [[0.2, -0.7]]


def _case_q():
    return Normal(t64(CASE_MU), t64(CASE_LOGVAR).mul(0.5).exp())


@pytest.mark.exercise("vae.log_density")
def test_log_density_small_case(small_case):
    z = [[0.1, 0.3]]
    small_case((f"z={z}, mu={CASE_MU}, logvar={CASE_LOGVAR}", _case_q().log_prob(t64(z)).sum(-1),
                lambda: gaussian_log_density(t64(z), t64(CASE_MU), t64(CASE_LOGVAR))))


@pytest.mark.exercise("vae.reparameterize")
def test_reparameterize_small_case(small_case):
    eps = [[1.0, -0.5]]
    exp = [[m + e * math.sqrt(math.exp(lv)) for m, e, lv in zip(CASE_MU[0], eps[0], CASE_LOGVAR[0])]]
    small_case((f"mu={CASE_MU}, logvar={CASE_LOGVAR}, eps={eps}", exp,
                lambda: reparameterize(t64(CASE_MU), t64(CASE_LOGVAR), t64(eps))))


@pytest.mark.exercise("vae.kl")
def test_kl_small_case(small_case):
    exp = kl_divergence(_case_q(), Normal(0.0, 1.0)).sum(-1)
    small_case((f"mu={CASE_MU}, logvar={CASE_LOGVAR}", exp,
                lambda: kl_to_standard_normal(t64(CASE_MU), t64(CASE_LOGVAR))))


@pytest.mark.exercise("vae.elbo")
def test_elbo_small_case(small_case):
    x, logits = t64([[1.0, 0.0, 1.0]]), t64([[[0.5, -1.0, 2.0]], [[1.5, 0.0, -1.0]]])  # L = 2
    log_px = -F.binary_cross_entropy_with_logits(logits, x.expand_as(logits),
                                                 reduction="none").sum(-1).mean(0)
    kl = kl_divergence(_case_q(), Normal(0.0, 1.0)).sum(-1)
    small_case((f"x=[[1,0,1]], L=2 samples of logits [[.5,-1,2]], [[1.5,0,-1]], mu={CASE_MU}, "
                f"logvar={CASE_LOGVAR}", log_px - kl,
                lambda: elbo(x, logits, t64(CASE_MU), t64(CASE_LOGVAR))))
