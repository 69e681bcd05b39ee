"""Vector quantisation (VQ-VAE): nearest code, straight-through gradient and the two losses, each
against an independent reference (brute-force loops, hand-derived gradients, numbers by hand)."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from genmodels.vae import VQVAE, codebook_usage, vector_quantize

pytestmark = pytest.mark.vae
F64 = torch.float64


def _case(gen, shape=(3, 4, 5), K=7):
    z_e = torch.randn(*shape, generator=gen, dtype=F64)
    codebook = torch.randn(K, shape[-1], generator=gen, dtype=F64)
    return z_e, codebook


@pytest.mark.exercise("vae.vector_quantize")
def test_nearest_code_matches_a_brute_force_argmin(gen):
    z_e, codebook = _case(gen)
    z_q, idx, _ = vector_quantize(z_e, codebook)
    flat = z_e.reshape(-1, 5).numpy()
    book = codebook.numpy()
    want = [min(range(len(book)), key=lambda k: float(((v - book[k]) ** 2).sum())) for v in flat]
    assert idx.shape == (3, 4) and idx.dtype == torch.int64
    assert idx.reshape(-1).tolist() == want
    np.testing.assert_allclose(z_q.detach().reshape(-1, 5).numpy(), book[want], rtol=0, atol=1e-12)


@pytest.mark.exercise("vae.vector_quantize")
def test_hand_case(small_case):
    """d = 1, codes {0, 10}: z_e = 2 → code 0, z_e = 9 → code 10. Codebook loss = mean of
    (2 − 0)², (9 − 10)² = 2.5; with β = 0.5 the commitment adds 0.5 · 2.5."""
    z_e = torch.tensor([[2.0], [9.0]], dtype=F64)
    codebook = torch.tensor([[0.0], [10.0]], dtype=F64)
    small_case(("indices", [0, 1], lambda: vector_quantize(z_e, codebook, 0.5)[1].tolist()),
               ("z_q", [[0.0], [10.0]], lambda: vector_quantize(z_e, codebook, 0.5)[0].tolist()),
               ("loss (β = 0.5)", 3.75, lambda: vector_quantize(z_e, codebook, 0.5)[2].item()),
               ("loss (β = 0)", 2.5, lambda: vector_quantize(z_e, codebook, 0.0)[2].item()))


def test_ties_go_to_the_lowest_index():
    z_e = torch.tensor([[0.5]], dtype=F64)
    codebook = torch.tensor([[1.0], [0.0], [1.0]], dtype=F64)   # 0.5 is as far from 1 as from 0
    assert vector_quantize(z_e, codebook)[1].item() == 0


@pytest.mark.exercise("vae.vector_quantize")
def test_straight_through_gradient_copies_the_decoders_gradient(gen):
    """d f(z_q)/d z_e = ∇f evaluated at z_q (the code's value): the identity Jacobian of the
    straight-through estimator, for a nonlinear f; the codebook gets no gradient through z_q."""
    z_e, codebook = _case(gen)
    z_e.requires_grad_(True)
    codebook.requires_grad_(True)
    w = torch.randn(5, generator=gen, dtype=F64)
    z_q, _, _ = vector_quantize(z_e, codebook)
    f = (torch.sin(z_q) * w).sum()
    f.backward()
    torch.testing.assert_close(z_e.grad, torch.cos(z_q.detach()) * w, rtol=0, atol=1e-12)
    assert codebook.grad is None or bool((codebook.grad == 0).all())


@pytest.mark.exercise("vae.vector_quantize")
def test_loss_gradients_match_the_hand_derivation(gen):
    """L = mean (sg[z_e] − e)² + β mean (z_e − sg[e])² over the N·d elements: ∂L/∂z_e =
    2β(z_e − e)/(N d); ∂L/∂e_k = Σ over the vectors assigned to k of 2(e_k − z_e)/(N d)."""
    z_e, codebook = _case(gen)
    z_e.requires_grad_(True)
    codebook.requires_grad_(True)
    beta = 0.3
    _, idx, loss = vector_quantize(z_e, codebook, beta)
    loss.backward()
    n = z_e.numel()
    e = codebook.detach()[idx]
    torch.testing.assert_close(z_e.grad, 2 * beta * (z_e.detach() - e) / n, rtol=0, atol=1e-14)
    want = torch.zeros_like(codebook)
    for v, k in zip(z_e.detach().reshape(-1, 5), idx.reshape(-1)):
        want[k] += 2 * (codebook.detach()[k] - v) / n
    torch.testing.assert_close(codebook.grad, want, rtol=0, atol=1e-14)


def test_loss_value_against_finite_differences_of_the_codebook(gen):
    """The assignments are locally constant, so the loss is smooth in the codebook: with β = 0
    (the codebook term alone; the commitment term's e is behind a stop-gradient by design)
    central differences of the value agree with autograd."""
    z_e, codebook = _case(gen, shape=(6, 3), K=4)
    codebook.requires_grad_(True)
    vector_quantize(z_e, codebook, 0.0)[2].backward()
    eps, fd = 1e-6, torch.zeros_like(codebook)
    for i in range(codebook.shape[0]):
        for j in range(codebook.shape[1]):
            cp, cm = codebook.detach().clone(), codebook.detach().clone()
            cp[i, j] += eps
            cm[i, j] -= eps
            fd[i, j] = (vector_quantize(z_e, cp, 0.0)[2] - vector_quantize(z_e, cm, 0.0)[2]) / (2 * eps)
    torch.testing.assert_close(codebook.grad, fd, rtol=1e-6, atol=1e-9)


def test_float32_assignments_agree_with_float64(gen):
    z_e, codebook = _case(gen, shape=(200, 8), K=32)
    i64 = vector_quantize(z_e, codebook)[1]
    i32 = vector_quantize(z_e.float(), codebook.float())[1]
    d = ((z_e[:, None] - codebook[None]) ** 2).sum(-1)
    top2 = d.topk(2, largest=False).values
    clear = (top2[:, 1] - top2[:, 0]) > 1e-4           # not a near tie
    assert bool((i64[clear] == i32[clear]).all())


@pytest.mark.parametrize("kwargs, name", [
    (dict(z_e=torch.zeros(3, 4), codebook=torch.zeros(5, 3)), "codebook"),
    (dict(z_e=torch.zeros(3, 4), codebook=torch.zeros(0, 4)), "codebook"),
    (dict(z_e=torch.zeros(0, 4), codebook=torch.zeros(5, 4)), "z_e"),
    (dict(z_e=torch.zeros(3, 4), codebook=torch.zeros(5, 4, dtype=F64)), "z_e"),
    (dict(z_e=torch.full((3, 4), float("nan")), codebook=torch.zeros(5, 4)), "z_e"),
    (dict(z_e=torch.zeros(3, 4), codebook=torch.zeros(5, 4), beta=-0.1), "beta"),
    (dict(z_e=torch.zeros(3, 4, dtype=torch.long), codebook=torch.zeros(5, 4)), "z_e"),
])
def test_bad_inputs_name_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        vector_quantize(**kwargs)


def test_codebook_usage_perplexity_and_dead_codes():
    # codes 0, 0, 1, 2 of K = 5: p = (½, ¼, ¼, 0, 0), H = ½ ln 2 + 2 · ¼ ln 4 = 1.5 ln 2
    perplexity, dead = codebook_usage(torch.tensor([0, 0, 1, 2]), 5)
    assert perplexity == pytest.approx(math.exp(1.5 * math.log(2)), abs=1e-12) and dead == 2
    assert codebook_usage(torch.arange(8), 8) == (pytest.approx(8.0), 0)
    assert codebook_usage(torch.zeros(10, dtype=torch.long), 4) == (pytest.approx(1.0), 3)
    for bad, name in ((torch.tensor([5]), "indices"), (torch.tensor([], dtype=torch.long), "indices"),
                      (torch.tensor([0.0]), "indices")):
        with pytest.raises(ValueError, match=f"^{name}:"):
            codebook_usage(bad, 5)


def test_vqvae_trains_through_vector_quantize_and_reconstructs(monkeypatch):
    """The model calls the SPEC function (patched to count), and a few hundred steps on a small
    batch of digits lower the reconstruction loss well below its start."""
    import genmodels.vae.models as models
    from sklearn.datasets import load_digits

    calls = []
    original = models.vector_quantize
    monkeypatch.setattr(models, "vector_quantize", lambda *a, **k: calls.append(1) or original(*a, **k))
    torch.manual_seed(0)
    x = torch.tensor(load_digits().images[:64] / 16.0, dtype=torch.float32).unsqueeze(1)
    model = VQVAE((1, 8, 8), channels=16, code_dim=4, num_codes=16)
    model.init_codebook_from(x, generator=torch.Generator().manual_seed(0))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(150):
        logits, idx, vq = model(x)
        loss = F.binary_cross_entropy_with_logits(logits, x) + vq
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert calls and idx.shape == (64, 4, 4)
    assert losses[-1] < 0.7 * losses[0]
