"""Transfer learning and EWC (section 2.2.2): L_T, θ', Ω and R(θ) against independent references."""

import math
import warnings

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from genmodels.transfer import cross_entropy, ewc_penalty, fisher_diagonal, sgd_update

pytestmark = pytest.mark.transfer

TOL = dict(rtol=1e-12, atol=1e-12)


def _mlp(gen, dropout=0.0):
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Dropout(dropout), nn.Linear(6, 3))
    with torch.no_grad():  # weights from the seeded generator, not the global RNG
        for p in model.parameters():
            p.copy_(0.7 * torch.randn(p.shape, generator=gen))
    return model


def _nll(model, x, y):
    return F.cross_entropy(model(x), y, reduction="none")  # [B]


def _batches(gen, sizes=(5, 3, 7)):
    return [(torch.randn(b, 4, generator=gen), torch.randint(0, 3, (b,), generator=gen))
            for b in sizes]


# --- L_T: cross-entropy ----------------------------------------------------------------------

def test_cross_entropy_index_targets_by_hand_and_vs_torch(f64, gen):
    logits = torch.randn(6, 4, generator=gen, requires_grad=True)
    y = torch.randint(0, 4, (6,), generator=gen)
    expected = 0.0
    for i in range(6):
        row = logits[i].tolist()
        log_z = math.log(sum(math.exp(z) for z in row))
        expected -= row[int(y[i])] - log_z
    got = cross_entropy(logits, y)
    assert got.shape == () and got.dtype == torch.float64
    torch.testing.assert_close(got, torch.tensor(expected / 6), **TOL)
    ref = F.cross_entropy(logits, y)
    torch.testing.assert_close(got, ref, **TOL)
    g, = torch.autograd.grad(got, logits)
    g_ref, = torch.autograd.grad(ref, logits)
    torch.testing.assert_close(g, g_ref, **TOL)


def test_cross_entropy_one_hot_and_soft_targets_vs_torch(f64, gen):
    logits = torch.randn(5, 3, generator=gen) * 10
    y = torch.randint(0, 3, (5,), generator=gen)
    one_hot_long = F.one_hot(y, 3)
    ref = F.cross_entropy(logits, y)
    torch.testing.assert_close(cross_entropy(logits, one_hot_long), ref, **TOL)
    torch.testing.assert_close(cross_entropy(logits, one_hot_long.double()), ref, **TOL)
    soft = torch.softmax(torch.randn(5, 3, generator=gen), dim=1)
    torch.testing.assert_close(cross_entropy(logits, soft), F.cross_entropy(logits, soft), **TOL)


def test_cross_entropy_keeps_float32_and_is_finite_for_huge_logits(gen):
    logits = torch.tensor([[1000.0, -1000.0], [0.0, 500.0]])
    got = cross_entropy(logits, torch.tensor([1, 1]))
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, torch.tensor(1000.0))


def test_cross_entropy_rejects_bad_targets():
    logits = torch.zeros(3, 4)
    with pytest.raises(ValueError, match="targets"):
        cross_entropy(logits, torch.tensor([0, 1, 4]))
    with pytest.raises(ValueError, match="targets"):
        cross_entropy(logits, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="targets"):
        cross_entropy(logits, torch.tensor([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match="targets"):
        cross_entropy(logits, torch.full((3, 4), 0.5))  # rows do not sum to 1
    with pytest.raises(ValueError, match="targets"):
        cross_entropy(logits, torch.full((3, 4), 0.25, dtype=torch.float64))
    with pytest.raises(ValueError, match="logits"):
        cross_entropy(torch.zeros(4), torch.tensor([0]))
    with pytest.raises(ValueError, match="logits"):
        cross_entropy(torch.full((1, 2), float("nan")), torch.tensor([0]))


# --- θ' = θ − α∇L ----------------------------------------------------------------------------

def test_sgd_update_matches_manual_step(f64, gen):
    model = _mlp(gen)
    x, y = _batches(gen, (8,))[0]
    _nll(model, x, y).mean().backward()
    model[3].bias.grad = None  # skipped
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    grads = {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}
    assert sgd_update(model.parameters(), lr=0.3) is None
    for n, p in model.named_parameters():
        expected = before[n] if grads[n] is None else before[n] - 0.3 * grads[n]
        torch.testing.assert_close(p.detach(), expected, rtol=0, atol=0)
        assert p.requires_grad and p.grad_fn is None


def test_sgd_update_accepts_tensor_lists_and_modules(f64):
    w = torch.tensor([1.0, 2.0], requires_grad=True)
    w.grad = torch.tensor([0.5, -1.0])
    sgd_update([w], 0.1)
    torch.testing.assert_close(w.detach(), torch.tensor([0.95, 2.1]), **TOL)
    lin = nn.Linear(2, 1)
    lin.weight.grad = torch.ones_like(lin.weight)
    w0 = lin.weight.detach().clone()
    sgd_update(lin, 1.0)
    torch.testing.assert_close(lin.weight.detach(), w0 - 1.0, **TOL)
    with pytest.raises(ValueError, match="lr"):
        sgd_update([w], 0.0)
    with pytest.raises(ValueError, match="lr"):
        sgd_update([w], -1.0)


# --- Ω: Fisher diagonal ----------------------------------------------------------------------

def _fisher_reference(model, batches):
    """One .backward() per sample, squared gradients summed, divided by the number of samples."""
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    count = 0
    for x, y in batches:
        for i in range(x.shape[0]):
            model.zero_grad()
            _nll(model, x[i:i + 1], y[i:i + 1]).sum().backward()
            for n, p in params.items():
                total[n] += p.grad.detach() ** 2
            count += 1
    model.zero_grad()
    return {n: t / count for n, t in total.items()}


@pytest.mark.parametrize("method", ["auto", "vmap", "loop"])
def test_fisher_matches_per_sample_backward_loop(f64, gen, method):
    model = _mlp(gen)
    model[0].bias.requires_grad_(False)  # frozen parameters are left out
    batches = _batches(gen)
    expected = _fisher_reference(model, batches)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the plain MLP must not need the loop fallback
        omega = fisher_diagonal(model, iter(batches), _nll, method=method)
    assert list(omega) == [n for n, p in model.named_parameters() if p.requires_grad]
    assert "0.bias" not in omega
    for n, ref in expected.items():
        assert omega[n].shape == ref.shape and omega[n].dtype == torch.float64
        assert not omega[n].requires_grad
        torch.testing.assert_close(omega[n], ref, **TOL)
    assert all(p.grad is None for p in model.parameters())  # .grad untouched


def test_fisher_is_not_the_square_of_the_batch_mean_gradient(f64, gen):
    model = _mlp(gen)
    x, y = _batches(gen, (10,))[0]
    omega = fisher_diagonal(model, [(x, y)], _nll)
    g_mean = torch.autograd.grad(_nll(model, x, y).mean(), model[3].weight)[0]
    # (mean g)² ≤ mean g² (Jensen), strictly for samples with different gradients
    assert torch.all(omega["3.weight"] >= g_mean ** 2 - 1e-15)
    assert not torch.allclose(omega["3.weight"], g_mean ** 2)


def test_fisher_falls_back_to_loop_when_vmap_fails(gen):
    model = _mlp(gen, dropout=0.5)  # random ops in train mode: vmap refuses them by default
    batches = _batches(gen, (4, 2))
    with pytest.warns(RuntimeWarning, match="falling back"):
        omega = fisher_diagonal(model, batches, _nll)
    assert {n: t.shape for n, t in omega.items()} == \
        {n: p.shape for n, p in model.named_parameters()}
    model.eval()  # deterministic: the vmap path works again and agrees with the loop
    a = fisher_diagonal(model, batches, _nll, method="vmap")
    b = fisher_diagonal(model, batches, _nll, method="loop")
    for n in a:
        torch.testing.assert_close(a[n], b[n], rtol=1e-5, atol=1e-7)


def test_fisher_validates_inputs(gen):
    model = _mlp(gen)
    with pytest.raises(ValueError, match="batches"):
        fisher_diagonal(model, [], _nll)
    with pytest.raises(ValueError, match="batches"):
        fisher_diagonal(model, [(torch.zeros(3, 4), torch.zeros(2, dtype=torch.long))], _nll)
    with pytest.raises(ValueError, match="nll_fn"):
        fisher_diagonal(model, _batches(gen, (3,)), lambda m, x, y: _nll(m, x, y).sum())
    with pytest.raises(ValueError, match="method"):
        fisher_diagonal(model, _batches(gen, (3,)), _nll, method="fast")


# --- R(θ): the EWC penalty -------------------------------------------------------------------

def test_ewc_penalty_by_hand_and_gradient(f64, gen):
    model = _mlp(gen)
    anchor = {n: p.detach() + 0.1 * torch.randn(p.shape, generator=gen)
              for n, p in model.named_parameters()}
    fisher = {n: torch.rand(p.shape, generator=gen) for n, p in model.named_parameters()}
    expected = 0.0
    for n, p in model.named_parameters():
        for th, th_star, om in zip(p.detach().flatten().tolist(), anchor[n].flatten().tolist(),
                                   fisher[n].flatten().tolist()):
            expected += 0.5 * om * (th - th_star) ** 2
    R = ewc_penalty(model, anchor, fisher)
    assert R.shape == () and R.dtype == torch.float64
    torch.testing.assert_close(R, torch.tensor(expected), **TOL)
    R.backward()
    for n, p in model.named_parameters():
        torch.testing.assert_close(p.grad, fisher[n] * (p.detach() - anchor[n]), **TOL)
    torch.testing.assert_close(ewc_penalty(model, anchor, fisher, lam=3.0), 3.0 * R.detach(), **TOL)


def test_ewc_penalty_is_zero_at_the_anchor_and_covers_fisher_keys_only(f64, gen):
    model = _mlp(gen)
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    fisher = {n: torch.ones_like(p) for n, p in model.named_parameters()}
    assert float(ewc_penalty(model, anchor, fisher).detach()) == 0.0
    with torch.no_grad():
        model[3].weight.add_(1.0)  # the "new head": not in the Fisher dict, so free
    fisher.pop("3.weight")
    assert float(ewc_penalty(model, anchor, fisher).detach()) == 0.0


def test_ewc_penalty_validates_keys_and_shapes(gen):
    model = _mlp(gen)
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    fisher = {n: torch.ones_like(p) for n, p in model.named_parameters()}
    missing = dict(anchor)
    missing.pop("0.weight")
    with pytest.raises(ValueError, match="anchor_params.*'0.weight'"):
        ewc_penalty(model, missing, fisher)
    with pytest.raises(ValueError, match="anchor_params.*'3.bias'"):
        ewc_penalty(model, {**anchor, "3.bias": torch.zeros(7)}, fisher)
    with pytest.raises(ValueError, match="fisher.*'0.weight'"):
        ewc_penalty(model, anchor, {**fisher, "0.weight": torch.ones(2, 2)})
    with pytest.raises(ValueError, match="fisher.*'nope'"):
        ewc_penalty(model, anchor, {**fisher, "nope": torch.ones(1)})
    with pytest.raises(ValueError, match="fisher"):
        ewc_penalty(model, anchor, {**fisher, "0.bias": -torch.ones(6)})
    with pytest.raises(ValueError, match="lam"):
        ewc_penalty(model, anchor, fisher, lam=-1.0)
