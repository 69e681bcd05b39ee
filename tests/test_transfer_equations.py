"""Transfer learning and EWC (section 2.2.2): L_T, θ', Ω and R(θ) against independent references."""

import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from genmodels.transfer import cross_entropy, ewc_penalty, fisher_diagonal, sgd_update
from conftest import t64

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

@pytest.mark.exercise("transfer.cross_entropy")
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


@pytest.mark.exercise("transfer.cross_entropy")
def test_cross_entropy_one_hot_and_soft_targets_vs_torch(f64, gen):
    logits = torch.randn(5, 3, generator=gen) * 10
    y = torch.randint(0, 3, (5,), generator=gen)
    one_hot_long = F.one_hot(y, 3)
    ref = F.cross_entropy(logits, y)
    torch.testing.assert_close(cross_entropy(logits, one_hot_long), ref, **TOL)
    torch.testing.assert_close(cross_entropy(logits, one_hot_long.double()), ref, **TOL)
    soft = torch.softmax(torch.randn(5, 3, generator=gen), dim=1)
    torch.testing.assert_close(cross_entropy(logits, soft), F.cross_entropy(logits, soft), **TOL)


@pytest.mark.exercise("transfer.cross_entropy")
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

@pytest.mark.exercise("transfer.sgd_update")
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


@pytest.mark.exercise("transfer.sgd_update")
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


@pytest.mark.exercise("transfer.fisher")
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


@pytest.mark.exercise("transfer.fisher")
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

@pytest.mark.exercise("transfer.ewc_penalty")
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


@pytest.mark.exercise("transfer.ewc_penalty")
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


# --- what the error messages say, and the edge cases the checks must let through -------------

_F64 = torch.float64


@pytest.mark.parametrize("targets, message", [
    (torch.tensor(1), r"^targets: expected 1 or 2 dimensions"),
    (torch.zeros(3, 4, 1, dtype=torch.long), r"^targets: expected 1 or 2 dimensions"),
    (torch.tensor([0, 1]), r"^targets: expected shape \[3\], got \[2\]"),
    (torch.tensor([True, False, True]), r"^targets: class indices must be integers, got torch.bool"),
    (torch.tensor([0, 1, 4]), r"^targets: class indices must lie in \[0, 3\]$"),
    (torch.zeros(3, 5), r"^targets: expected shape \[3, 4\], got \[3, 5\]"),
    (torch.eye(4, dtype=torch.bool)[:3], r"^targets: expected float or integer labels, got dtype torch.bool"),
    (torch.full((3, 4), float("nan")), r"^targets: contains 12 NaN/inf"),
    (torch.tensor([[1.5, -0.5, 0.0, 0.0]] * 3), r"^targets: labels must be non-negative$"),
    (torch.full((3, 4), 0.5), r"^targets: each row of one-hot / soft labels must sum to 1$"),
])
def test_cross_entropy_target_messages(targets, message):
    with pytest.raises(ValueError, match=message):
        cross_entropy(torch.zeros(3, 4), targets)


def test_cross_entropy_batch_of_one_and_empty_batch():
    logits = torch.tensor([[0.5, -1.0, 2.0]], dtype=_F64)
    expected = math.log(math.exp(0.5) + math.exp(-1.0) + math.exp(2.0)) - 2.0
    torch.testing.assert_close(cross_entropy(logits, torch.tensor([2])),
                               torch.tensor(expected, dtype=_F64), **TOL)
    with pytest.raises(ValueError, match=r"^logits: cannot average over an empty batch \(N = 0\)$"):
        cross_entropy(torch.zeros(0, 3), torch.zeros(0, dtype=torch.long))


def test_soft_label_rows_must_sum_to_one_up_to_the_dtypes_rounding():
    """float64 rows may miss 1 by ~1e-6 per class, float32 rows by ~1e-3 per class, no more."""
    C = 4
    off = lambda delta, dtype: torch.tensor([[0.25 + delta, 0.25, 0.25, 0.25]], dtype=dtype)
    logits64, logits32 = torch.zeros(1, C, dtype=_F64), torch.zeros(1, C)
    ref = math.log(C)
    torch.testing.assert_close(cross_entropy(logits64, off(1e-6, _F64)),
                               torch.tensor(ref * (1 + 1e-6), dtype=_F64), **TOL)
    with pytest.raises(ValueError, match="must sum to 1"):
        cross_entropy(logits64, off(1e-4, _F64))
    torch.testing.assert_close(cross_entropy(logits32, off(1e-4, torch.float32)),
                               torch.tensor(ref * (1 + 1e-4)), rtol=1e-6, atol=0)


def test_sgd_update_skips_only_the_tensors_without_grad_and_accepts_dicts_and_tensors(f64):
    a = torch.tensor([1.0], requires_grad=True)       # no .grad: left as it is
    b = torch.tensor([2.0], requires_grad=True)
    b.grad = torch.tensor([4.0])
    sgd_update([a, b], 0.5)
    assert a.item() == 1.0 and b.item() == 0.0
    c = torch.tensor([1.0], requires_grad=True)
    c.grad = torch.tensor([1.0])
    sgd_update({"c": c}, 0.25)
    assert c.item() == 0.75
    sgd_update(c, 0.25)
    assert c.item() == 0.5


@pytest.mark.parametrize("params, lr, message", [
    ([torch.zeros(1), 3.0], 0.1, r"^params: entry 1 is a float, not a tensor$"),
    ([torch.zeros(1)], 0.0, r"^lr: must be > 0"),
])
def test_sgd_update_messages(params, lr, message):
    with pytest.raises(ValueError, match=message):
        sgd_update(params, lr)


def test_sgd_update_rejects_a_nan_gradient_naming_its_entry():
    w = torch.zeros(2, requires_grad=True)
    w.grad = torch.tensor([0.0, float("nan")])
    with pytest.raises(ValueError, match=r"^params\[0\]\.grad: contains 1 NaN/inf"):
        sgd_update([w], 0.1)


def test_fisher_vmap_method_raises_instead_of_falling_back(gen):
    model = _mlp(gen, dropout=0.5)  # train-mode dropout: vmap refuses it
    with pytest.raises(RuntimeError):
        fisher_diagonal(model, _batches(gen, (3,)), _nll, method="vmap")


def test_fisher_fallback_warning_says_what_happens_instead(gen):
    model = _mlp(gen, dropout=0.5)
    with pytest.warns(RuntimeWarning, match="falling back to one backward pass per sample$"):
        fisher_diagonal(model, _batches(gen, (2,)), _nll)


@pytest.mark.parametrize("method", ["vmap", "loop"])
def test_fisher_of_a_parameter_the_nll_does_not_use_is_zero(f64, gen, method):
    model = _mlp(gen)
    batches = _batches(gen, (3,))
    expected = _fisher_reference(model, batches)["3.bias"]
    model.unused = nn.Parameter(torch.ones(2))  # registered, never touched by _nll
    omega = fisher_diagonal(model, batches, _nll, method=method)
    assert torch.equal(omega["unused"], torch.zeros(2))
    torch.testing.assert_close(omega["3.bias"], expected, **TOL)


def _frozen(gen):
    model = _mlp(gen)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


@pytest.mark.parametrize("make_args, message", [
    (lambda m, b: ("net", b, _nll), r"^model: expected an nn.Module, got str$"),
    (lambda m, b: (m, b, "nll"), r"^nll_fn: expected a callable nll_fn\(model, x, y\) -> \[B\]$"),
    (lambda m, b: (m, b, _nll, "fast"), r"^method: must be one of"),
    (lambda m, b: (m, [], _nll), r"^batches: contained no samples$"),
    (lambda m, b: (m, [b[0], (b[0][0],)], _nll), r"^batches: item 1 is not an \(x, y\) pair$"),
    (lambda m, b: (m, [(torch.tensor(1.0), b[0][1])], _nll),
     r"^batches: item 0: x must be a tensor with a batch dimension$"),
    (lambda m, b: (m, [(b[0][0], [0, 1, 2])], _nll),
     r"^batches: item 0: y must be a tensor with a batch dimension$"),
    (lambda m, b: (m, [(b[0][0], b[0][1][:2])], _nll), r"^batches: item 0: x has 3 samples but y has 2$"),
    (lambda m, b: (m, b, lambda *a: 1.0, "loop"),
     r"^nll_fn: must return the per-sample NLL, shape \[B\] = \[1\], got float$"),
    (lambda m, b: (m, b, lambda *a: _nll(*a).sum(), "loop"),
     r"^nll_fn: must return the per-sample NLL, shape \[B\] = \[1\], got \[\]$"),
    (lambda m, b: (m, b, lambda mm, x, y: torch.sqrt(0.0 * mm(x).sum(-1)), "loop"),
     r"^nll_fn: contains \d+ NaN/inf"),
])
def test_fisher_messages(gen, make_args, message):
    args = make_args(_mlp(gen), _batches(gen, (3,)))
    with pytest.raises(ValueError, match=message):
        fisher_diagonal(*args[:3], **({"method": args[3]} if len(args) > 3 else {}))
    with pytest.raises(ValueError, match=r"^model: has no parameter that requires grad$"):
        fisher_diagonal(_frozen(gen), _batches(gen, (3,)), _nll)


def test_ewc_penalty_edge_cases(gen):
    model = _mlp(gen).double()  # float64 parameters while the default dtype stays float32
    anchor = {n: p.detach() + 1.0 for n, p in model.named_parameters()}
    zeros = {n: torch.zeros_like(p) for n, p in model.named_parameters()}
    assert ewc_penalty(model, anchor, zeros).item() == 0.0  # Ω = 0 is allowed (an unused weight)
    ones = {n: torch.ones_like(p) for n, p in model.named_parameters()}
    assert ewc_penalty(model, anchor, ones, lam=0.0).item() == 0.0  # λ = 0: plain fine-tuning
    empty = ewc_penalty(model, anchor, {})
    assert empty.shape == () and empty.dtype == torch.float64 and float(empty) == 0.0
    none = ewc_penalty(nn.ReLU(), {}, {})  # a model without parameters: the default dtype
    assert none.shape == () and none.dtype == torch.get_default_dtype() and float(none) == 0.0


@pytest.mark.parametrize("change, message", [
    (lambda m, a, f: ("net", a, f, {}), r"^model: expected an nn.Module, got str$"),
    (lambda m, a, f: (m, a, f, {"lam": -1.0}), r"^lam: must be >= 0, got -1.0$"),
    (lambda m, a, f: (m, a, {**f, "0.bias": torch.full((6,), float("nan"))}, {}),
     r"^fisher\['0.bias'\]: contains 6 NaN/inf"),
    (lambda m, a, f: (m, {**a, "0.bias": torch.full((6,), float("inf"))}, f, {}),
     r"^anchor_params\['0.bias'\]: contains 6 NaN/inf"),
    (lambda m, a, f: (m, {**a, "0.bias": a["0.bias"].double()}, f, {}),
     r"^anchor_params\['0.bias'\]: expected dtype torch.float32 \(the parameter's\), got torch.float64$"),
])
def test_ewc_penalty_messages(gen, change, message):
    model = _mlp(gen)
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    fisher = {n: torch.ones_like(p) for n, p in model.named_parameters()}
    m, a, f, kw = change(model, anchor, fisher)
    with pytest.raises(ValueError, match=message):
        ewc_penalty(m, a, f, **kw)


def test_container_type_messages(gen):
    model = _mlp(gen)
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    with pytest.raises(ValueError, match=r"^anchor_params: expected a dict keyed like "
                                         r"model.named_parameters\(\), got list$"):
        ewc_penalty(model, list(anchor.values()), anchor)
    with pytest.raises(ValueError, match=r"^fisher: expected a dict keyed like model.named_parameters\(\), got tuple$"):
        ewc_penalty(model, anchor, tuple(anchor.values()))
    with pytest.raises(ValueError, match=r"^batches: expected an iterable of \(x, y\) pairs, got Tensor$"):
        fisher_diagonal(model, torch.zeros(3, 4), _nll)
    with pytest.raises(ValueError, match=r"^batches: expected an iterable of \(x, y\) pairs, got int$"):
        fisher_diagonal(model, 5, _nll)
    with pytest.raises(ValueError, match=r"^params: expected tensors, a dict of them or an nn.Module, got int$"):
        sgd_update(5, 0.1)
    with pytest.raises(ValueError, match=r"^logits: expected 2 dimensions"):
        cross_entropy(torch.zeros(4), torch.tensor([0]))


# --- small cases: one float64 case per exercise, the expected value computed independently;
# `genmodels-exercise check` shows each as expected vs got ----------------------------------
@pytest.mark.exercise("transfer.cross_entropy")
def test_cross_entropy_small_case(small_case):
    z, y = t64([[1.0, 2.0, 0.0], [0.0, 0.0, 3.0]]), torch.tensor([1, 0])
    soft = t64([[0.5, 0.5, 0.0], [0.0, 0.2, 0.8]])
    small_case(("logits=[[1,2,0],[0,0,3]], targets=[1, 0]", F.cross_entropy(z, y),
                lambda: cross_entropy(z, y)),
               ("same logits, soft targets=[[.5,.5,0],[0,.2,.8]]", F.cross_entropy(z, soft),
                lambda: cross_entropy(z, soft)))


@pytest.mark.exercise("transfer.sgd_update")
def test_sgd_update_small_case(small_case):
    def got():
        p = t64([1.0, -2.0]).requires_grad_()
        p.grad = t64([0.5, 1.0])
        sgd_update([p], 0.1)
        return p.detach()
    small_case(("θ=[1, -2], grad=[0.5, 1], lr=0.1", [0.95, -2.1], got))


@pytest.mark.exercise("transfer.fisher")
def test_fisher_small_case(small_case):
    w, x, y = np.array([1.0, -1.0]), np.array([[1.0, 2.0], [3.0, 0.0]]), np.array([0.5, 1.0])
    g = (x @ w - y)[:, None] * x                   # per-sample ∂/∂w of ½(w·x − y)²
    exp = (g ** 2).mean(0)[None, :]

    def got():
        model = nn.Linear(2, 1, bias=False).double()
        with torch.no_grad():
            model.weight.copy_(t64([w]))
        return fisher_diagonal(model, [(t64(x), t64(y))],
                               lambda m, xb, yb: 0.5 * (m(xb)[:, 0] - yb) ** 2)["weight"]
    small_case(("linear model w=[1,-1], nll=½(w·x−y)², one batch x=[[1,2],[3,0]], y=[.5,1]", exp, got))


@pytest.mark.exercise("transfer.ewc_penalty")
def test_ewc_penalty_small_case(small_case):
    def got():
        model = nn.Linear(2, 1, bias=False).double()
        with torch.no_grad():
            model.weight.copy_(t64([[1.0, 2.0]]))
        return ewc_penalty(model, {"weight": t64([[0.0, 1.0]])}, {"weight": t64([[2.0, 4.0]])}, lam=1.5)
    small_case(("θ=[1,2], θ*=[0,1], Ω=[2,4], lam=1.5", 1.5 * 0.5 * (2.0 * 1.0 ** 2 + 4.0 * 1.0 ** 2), got))
