"""Eqs. 2.22–2.29 against independent references: F.scaled_dot_product_attention,
nn.MultiheadAttention with copied weights, Python-loop formulas, nn.Linear and F.cross_entropy."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from genmodels.transformer import (masked_lm_loss, multi_head_attention, next_token_distribution,
                                   position_wise_ffn, scaled_dot_product_attention,
                                   sinusoidal_positional_encoding, task_loss)
from genmodels.transformer.seq2seq import CrossAttention, cross_attention
from conftest import randn64

pytestmark = pytest.mark.transformer

TOL = dict(rtol=1e-10, atol=1e-12)


def _random_mask(*shape, gen, p=0.6):
    """Random bool mask with at least one allowed key per query row."""
    m = torch.rand(*shape, generator=gen) < p
    m[..., 0] |= ~m.any(-1)
    return m


# --- 2.22 positional encoding ---------------------------------------------------------------

@pytest.mark.exercise("transformer.positional_encoding")
@pytest.mark.parametrize("d_model", [8, 7, 1])
def test_positional_encoding_matches_python_loops(f64, d_model):
    L = 11
    pe = sinusoidal_positional_encoding(L, d_model)
    assert pe.shape == (L, d_model) and pe.dtype == torch.float64
    for p in range(L):
        for j in range(d_model):
            i = j // 2  # column 2i is sin, 2i+1 is cos, both with frequency 1/10000^{2i/d}
            angle = p / 10000 ** (2 * i / d_model)
            expected = math.sin(angle) if j % 2 == 0 else math.cos(angle)
            assert abs(pe[p, j].item() - expected) < 1e-12


def test_positional_encoding_dtype_and_errors():
    assert sinusoidal_positional_encoding(4, 6).dtype == torch.get_default_dtype()
    assert sinusoidal_positional_encoding(4, 6, dtype=torch.float64).dtype == torch.float64
    with pytest.raises(ValueError, match="d_model"):
        sinusoidal_positional_encoding(4, 0)
    with pytest.raises(ValueError, match="seq_len"):
        sinusoidal_positional_encoding(2.5, 4)


# --- 2.23 scaled dot-product attention ------------------------------------------------------

@pytest.mark.exercise("transformer.attention")
@pytest.mark.parametrize("mask_kind", ["none", "random", "causal", "broadcast"])
def test_attention_matches_torch_sdpa(f64, gen, mask_kind):
    B, h, Lq, Lk, dk, dv = 2, 3, 5, 5, 4, 6
    q = torch.randn(B, h, Lq, dk, generator=gen, requires_grad=True)
    k = torch.randn(B, h, Lk, dk, generator=gen, requires_grad=True)
    v = torch.randn(B, h, Lk, dv, generator=gen, requires_grad=True)
    mask, ref_kwargs = None, {}
    if mask_kind == "random":
        mask = _random_mask(B, h, Lq, Lk, gen=gen)
        ref_kwargs = {"attn_mask": mask}
    elif mask_kind == "causal":
        mask = torch.ones(Lq, Lk, dtype=torch.bool).tril()
        ref_kwargs = {"is_causal": True}
    elif mask_kind == "broadcast":
        mask = _random_mask(B, 1, Lq, Lk, gen=gen)  # one mask for every head
        ref_kwargs = {"attn_mask": mask}

    out, weights = scaled_dot_product_attention(q, k, v, mask)
    ref = F.scaled_dot_product_attention(q, k, v, **ref_kwargs)
    torch.testing.assert_close(out, ref, **TOL)
    assert weights.shape == (B, h, Lq, Lk)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, h, Lq), **TOL)
    if mask is not None:
        assert (weights.masked_select(~mask.expand_as(weights)) == 0).all()

    g = torch.randn(B, h, Lq, dv, generator=gen)
    ours = torch.autograd.grad(out, [q, k, v], g)
    theirs = torch.autograd.grad(ref, [q, k, v], g)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, **TOL)


@pytest.mark.exercise("transformer.attention")
def test_attention_cross_lengths_and_scale(f64, gen):
    q = torch.randn(4, 3, 8, generator=gen)
    k = torch.randn(4, 7, 8, generator=gen)
    v = torch.randn(4, 7, 2, generator=gen)
    out, w = scaled_dot_product_attention(q, k, v, scale=0.3)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, scale=0.3), **TOL)
    assert out.shape == (4, 3, 2) and w.shape == (4, 3, 7)


@pytest.mark.exercise("transformer.attention")
@settings(max_examples=25, deadline=None)
@given(Lq=st.integers(1, 6), Lk=st.integers(1, 6), dk=st.integers(1, 5),
       seed=st.integers(0, 10_000))
def test_attention_weights_are_distributions(Lq, Lk, dk, seed):
    """Property: weights ≥ 0, rows sum to 1, masked entries exactly 0, out is a convex
    combination of the values (each coordinate between the min and max over allowed keys)."""
    g = torch.Generator().manual_seed(seed)
    q, k = torch.randn(2, Lq, dk, generator=g), torch.randn(2, Lk, dk, generator=g)
    v = torch.randn(2, Lk, 3, generator=g)
    mask = _random_mask(2, Lq, Lk, gen=g)
    out, w = scaled_dot_product_attention(q, k, v, mask)
    assert (w >= 0).all() and (w[~mask] == 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(2, Lq))
    allowed = mask[..., None]                   # (2, Lq, Lk, 1)
    vals = v[:, None]                           # (2, 1, Lk, 3)
    lo = torch.where(allowed, vals, float("inf")).amin(2)   # (2, Lq, 3)
    hi = torch.where(allowed, vals, float("-inf")).amax(2)  # (2, Lq, 3)
    assert (out >= lo - 1e-5).all() and (out <= hi + 1e-5).all()


def test_attention_value_errors(gen):
    q = torch.randn(2, 3, 4, generator=gen)
    k = torch.randn(2, 5, 4, generator=gen)
    v = torch.randn(2, 5, 6, generator=gen)
    with pytest.raises(ValueError, match="mask"):
        scaled_dot_product_attention(q, k, v, torch.ones(2, 3, 5))  # float mask
    with pytest.raises(ValueError, match="mask"):
        scaled_dot_product_attention(q, k, v, torch.ones(2, 4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="mask"):  # a query that may attend to nothing
        scaled_dot_product_attention(q, k, v, torch.zeros(3, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="k"):
        scaled_dot_product_attention(q, torch.randn(2, 5, 3), v)
    with pytest.raises(ValueError, match="v"):
        scaled_dot_product_attention(q, k, torch.randn(2, 4, 6))
    bad = q.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="q"):
        scaled_dot_product_attention(bad, k, v)
    with pytest.raises(ValueError, match="dtypes"):
        scaled_dot_product_attention(q.double(), k, v)


# --- 2.24–2.25 multi-head attention ---------------------------------------------------------

@pytest.mark.exercise("transformer.multi_head")
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize("mask_kind", ["none", "2d", "3d"])
def test_multi_head_attention_matches_torch(f64, gen, bias, mask_kind):
    B, Lq, Lk, d, h = 2, 4, 6, 12, 3
    ref = nn.MultiheadAttention(d, h, bias=bias, batch_first=True)
    if bias:  # torch initialises biases to zero; make them matter
        with torch.no_grad():
            ref.in_proj_bias.normal_(generator=gen)
            ref.out_proj.bias.normal_(generator=gen)
    W = ref.in_proj_weight.detach()  # (3d, d), acts as x @ W.T
    w_q, w_k, w_v = (W[i * d:(i + 1) * d].T.clone().requires_grad_() for i in range(3))
    w_o = ref.out_proj.weight.detach().T.clone().requires_grad_()
    biases = {}
    if bias:
        b_in = ref.in_proj_bias.detach()
        biases = dict(b_q=b_in[:d], b_k=b_in[d:2 * d], b_v=b_in[2 * d:],
                      b_o=ref.out_proj.bias.detach())
    query = torch.randn(B, Lq, d, generator=gen, requires_grad=True)
    key = torch.randn(B, Lk, d, generator=gen, requires_grad=True)
    value = torch.randn(B, Lk, d, generator=gen, requires_grad=True)
    mask = torch_mask = None
    if mask_kind == "2d":
        mask = _random_mask(Lq, Lk, gen=gen)
        torch_mask = ~mask  # torch: True = NOT allowed
    elif mask_kind == "3d":
        mask = _random_mask(B, Lq, Lk, gen=gen)
        torch_mask = ~mask.repeat_interleave(h, dim=0)  # (B*h, Lq, Lk)

    out, weights = multi_head_attention(query, key, value, w_q, w_k, w_v, w_o, h, mask,
                                        return_weights=True, **biases)
    ref_out, ref_w = ref(query, key, value, attn_mask=torch_mask, need_weights=True)
    torch.testing.assert_close(out, ref_out, **TOL)
    torch.testing.assert_close(weights.mean(1), ref_w, **TOL)  # torch averages over heads

    g = torch.randn(B, Lq, d, generator=gen)
    ours = torch.autograd.grad(out, [query, key, value, w_q, w_o], g)
    theirs = torch.autograd.grad(ref_out, [query, key, value, ref.in_proj_weight,
                                           ref.out_proj.weight], g)
    for a, b in zip(ours[:3], theirs[:3]):
        torch.testing.assert_close(a, b, **TOL)
    torch.testing.assert_close(ours[3], theirs[3][:d].T, **TOL)
    torch.testing.assert_close(ours[4], theirs[4].T, **TOL)


@pytest.mark.exercise("transformer.multi_head")
def test_multi_head_attention_head_columns(f64, gen):
    """Eqs. 2.24–2.25 written literally: head i projects with columns i·d_h:(i+1)·d_h."""
    B, L, d, h = 2, 5, 8, 4
    dh = d // h
    x = torch.randn(B, L, d, generator=gen)
    w_q, w_k, w_v, w_o = torch.randn(4, d, d, generator=gen)
    heads = []
    for i in range(h):
        cols = slice(i * dh, (i + 1) * dh)
        heads.append(F.scaled_dot_product_attention(x @ w_q[:, cols], x @ w_k[:, cols],
                                                    x @ w_v[:, cols]))
    expected = torch.cat(heads, dim=-1) @ w_o
    torch.testing.assert_close(multi_head_attention(x, x, x, w_q, w_k, w_v, w_o, h), expected,
                               **TOL)


def test_multi_head_attention_value_errors(gen):
    x = torch.randn(2, 5, 8, generator=gen)
    w = torch.randn(8, 8, generator=gen)
    with pytest.raises(ValueError, match="num_heads"):
        multi_head_attention(x, x, x, w, w, w, w, 3)
    with pytest.raises(ValueError, match="w_k"):
        multi_head_attention(x, x, x, w, torch.randn(8, 4), w, w, 2)
    with pytest.raises(ValueError, match="key"):
        multi_head_attention(x, torch.randn(2, 5, 6), x, w, w, w, w, 2)
    with pytest.raises(ValueError, match="mask"):
        multi_head_attention(x, x, x, w, w, w, w, 2, mask=torch.ones(5, 5, dtype=torch.int64))
    bad = x.clone()
    bad[1, 1, 1] = float("inf")
    with pytest.raises(ValueError, match="value"):
        multi_head_attention(x, x, bad, w, w, w, w, 2)


# --- 2.26 feed-forward, 2.27 next-token distribution ----------------------------------------

@pytest.mark.exercise("transformer.ffn")
def test_position_wise_ffn_matches_hand_computation(f64, gen):
    d, f = 4, 6
    x = torch.randn(2, 3, d, generator=gen)
    w1, b1 = torch.randn(d, f, generator=gen), torch.randn(f, generator=gen)
    w2, b2 = torch.randn(f, d, generator=gen), torch.randn(d, generator=gen)
    y = position_wise_ffn(x, w1, b1, w2, b2)
    expected = torch.empty_like(x)
    for b in range(2):
        for t in range(3):  # the same two affine maps at every position
            hidden = [max(0.0, sum(x[b, t, i].item() * w1[i, j].item() for i in range(d))
                          + b1[j].item()) for j in range(f)]
            for o in range(d):
                expected[b, t, o] = sum(hidden[j] * w2[j, o].item() for j in range(f)) + b2[o]
    torch.testing.assert_close(y, expected, **TOL)
    assert position_wise_ffn(x.float(), w1.float(), b1.float(), w2.float(), b2.float()).dtype \
        == torch.float32
    with pytest.raises(ValueError, match="w2"):
        position_wise_ffn(x, w1, b1, torch.randn(f, d + 1), b2)


@pytest.mark.exercise("transformer.next_token")
def test_next_token_distribution_matches_softmax_of_linear(f64, gen):
    d, V = 6, 11
    lin = nn.Linear(d, V)
    h = torch.randn(2, 3, d, generator=gen)
    p = next_token_distribution(h, lin.weight.T, lin.bias)
    torch.testing.assert_close(p, torch.softmax(lin(h), dim=-1), **TOL)
    torch.testing.assert_close(p.sum(-1), torch.ones(2, 3), **TOL)
    with pytest.raises(ValueError, match="h"):
        next_token_distribution(torch.randn(2, d + 1), lin.weight.T, lin.bias)
    with pytest.raises(ValueError, match="b"):
        next_token_distribution(h, lin.weight.T, torch.randn(V + 1))


# --- 2.28 masked LM loss, 2.29 task loss ----------------------------------------------------

@pytest.mark.exercise("transformer.masked_lm_loss")
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_masked_lm_loss_matches_cross_entropy(f64, gen, reduction):
    B, L, V = 3, 7, 10
    logits = torch.randn(B, L, V, generator=gen, requires_grad=True)
    targets = torch.randint(V, (B, L), generator=gen)
    mask = _random_mask(B, L, gen=gen, p=0.3)
    targets = targets.masked_fill(~mask, -100)  # junk outside M must be ignored
    loss = masked_lm_loss(logits, targets, mask, reduction=reduction)
    ref = F.cross_entropy(logits[mask], targets[mask], reduction=reduction)
    torch.testing.assert_close(loss, ref, **TOL)
    assert loss.dim() == 0
    torch.testing.assert_close(torch.autograd.grad(loss, logits)[0],
                               torch.autograd.grad(ref, logits)[0], **TOL)


def test_masked_lm_loss_edge_cases_and_errors(gen):
    logits = torch.randn(2, 4, 5, generator=gen)
    targets = torch.randint(5, (2, 4), generator=gen)
    empty = torch.zeros(2, 4, dtype=torch.bool)
    assert masked_lm_loss(logits, targets, empty, reduction="sum") == 0
    with pytest.raises(ValueError, match="mask"):
        masked_lm_loss(logits, targets, empty)
    with pytest.raises(ValueError, match="mask"):
        masked_lm_loss(logits, targets, empty.float())
    with pytest.raises(ValueError, match="targets"):
        masked_lm_loss(logits, targets.float(), ~empty)
    with pytest.raises(ValueError, match="targets"):
        masked_lm_loss(logits, targets + 5, ~empty)
    with pytest.raises(ValueError, match="reduction"):
        masked_lm_loss(logits, targets, ~empty, reduction="avg")
    assert masked_lm_loss(logits, targets, ~empty).dtype == torch.float32


@pytest.mark.exercise("transformer.task_loss")
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("shape", [(6,), (2, 5)])
def test_task_loss_matches_cross_entropy(f64, gen, reduction, shape):
    V = 4
    logits = torch.randn(*shape, V, generator=gen, requires_grad=True)
    targets = torch.randint(V, shape, generator=gen)
    loss = task_loss(logits, targets, reduction=reduction)
    ref = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), reduction=reduction)
    torch.testing.assert_close(loss, ref, **TOL)
    torch.testing.assert_close(torch.autograd.grad(loss, logits)[0],
                               torch.autograd.grad(ref, logits)[0], **TOL)


@pytest.mark.exercise("transformer.task_loss")
def test_task_loss_ignore_index_and_errors(f64, gen):
    logits = torch.randn(3, 5, 4, generator=gen)
    targets = torch.randint(4, (3, 5), generator=gen)
    targets[0, :2] = -100
    torch.testing.assert_close(task_loss(logits, targets, ignore_index=-100),
                               F.cross_entropy(logits.reshape(-1, 4), targets.reshape(-1),
                                               ignore_index=-100), **TOL)
    with pytest.raises(ValueError, match="targets"):
        task_loss(logits, targets)  # -100 without ignore_index is out of range
    with pytest.raises(ValueError, match="targets"):
        task_loss(logits, targets[:, :4])
    bad = logits.clone()
    bad[0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="logits"):
        task_loss(bad, targets.clamp(min=0))


# --- every check's message names the argument and says what is wrong -------------------------

_Z, _F64, _NAN = torch.zeros, torch.float64, float("nan")
_T = torch.ones(1, 2, dtype=torch.bool)


def _mha(**change):
    B, L, d = 2, 3, 4
    args = dict(query=_Z(B, L, d), key=_Z(B, L, d), value=_Z(B, L, d), w_q=_Z(d, d), w_k=_Z(d, d),
                w_v=_Z(d, d), w_o=_Z(d, d), num_heads=2)
    args.update(change)
    return multi_head_attention(**args)


@pytest.mark.parametrize("call, message", [
    (lambda: sinusoidal_positional_encoding(0, 4), r"^seq_len: must be >= 1, got 0$"),
    (lambda: sinusoidal_positional_encoding(3, 0), r"^d_model: must be >= 1, got 0$"),
    (lambda: sinusoidal_positional_encoding(3, 4, base=1.0), r"^base: must lie in \(1.0, inf\), got 1.0$"),
    (lambda: scaled_dot_product_attention(_Z(3), _Z(2, 3), _Z(2, 3)), r"^q: expected at least 2 dimensions"),
    (lambda: scaled_dot_product_attention(_Z(1, 3), _Z(3), _Z(2, 3)), r"^k: expected at least 2 dimensions"),
    (lambda: scaled_dot_product_attention(_Z(1, 3), _Z(2, 3), _Z(3)), r"^v: expected at least 2 dimensions"),
    (lambda: scaled_dot_product_attention(_Z(1, 3), _Z(2, 3), _Z(2, 3, dtype=_F64)),
     r"^q: dtypes must match, got q:torch.float32, k:torch.float32, v:torch.float64$"),
    (lambda: scaled_dot_product_attention(_Z(1, 3), _Z(2, 4), _Z(2, 3)),
     r"^k: last dimension must equal q's dk=3, got \[2, 4\]$"),
    (lambda: scaled_dot_product_attention(_Z(1, 3), _Z(2, 3), _Z(5, 3)),
     r"^v: shape \[5, 3\] must match k's \[2, 3\] except in the last dimension$"),
    (lambda: scaled_dot_product_attention(_Z(2, 1, 3), _Z(3, 2, 3), _Z(3, 2, 3)),
     r"^q: leading dimensions of q \[2, 1, 3\] and k \[3, 2, 3\] do not broadcast$"),
    (lambda: scaled_dot_product_attention(_Z(1, 3), _Z(2, 3), _Z(2, 3), dropout_p=1.0),
     r"^dropout_p: must lie in \[0.0, 1.0\), got 1.0$"),
    (lambda: scaled_dot_product_attention(_Z(1, 3), _Z(2, 3), _Z(2, 3), scale=0.0),
     r"^scale: must lie in \(0.0, inf\), got 0.0$"),
    (lambda: scaled_dot_product_attention(_Z(1, 3), _Z(2, 3), _Z(2, 3), [[True, True]]),
     r"^mask: expected a torch.Tensor, got list$"),
    (lambda: scaled_dot_product_attention(_Z(1, 3), _Z(2, 3), _Z(2, 3), _T.long()),
     r"^mask: expected dtype torch.bool \(True = may attend\), got torch.int64$"),
    (lambda: scaled_dot_product_attention(_Z(1, 3), _Z(2, 3), _Z(2, 3), torch.ones(1, 3, dtype=torch.bool)),
     r"^mask: shape \[1, 3\] does not broadcast to the attention scores' \[1, 2\]$"),
    (lambda: scaled_dot_product_attention(_Z(1, 3), _Z(2, 3), _Z(2, 3), torch.ones(2, 1, 2, dtype=torch.bool)),
     r"^mask: shape \[2, 1, 2\] does not broadcast to the attention scores' \[1, 2\]$"),
    (lambda: scaled_dot_product_attention(_Z(1, 3), _Z(2, 3), _Z(2, 3), ~_T),
     r"^mask: some query row may attend to no key \(its softmax would be NaN\)$"),
    (lambda: _mha(query=_Z(2, 4)), r"^query: expected 3 dimensions"),
    (lambda: _mha(key=_Z(2, 4)), r"^key: expected 3 dimensions"),
    (lambda: _mha(value=_Z(2, 4)), r"^value: expected 3 dimensions"),
    (lambda: _mha(key=_Z(2, 3, 5)), r"^key: expected shape \[2, 3, 4\], got \[2, 3, 5\]$"),
    (lambda: _mha(value=_Z(2, 2, 4)), r"^value: expected shape \[2, 3, 4\], got \[2, 2, 4\]$"),
    *[(lambda n=n: _mha(**{n: torch.full((4, 4), _NAN)}), rf"^{n}: contains 16 NaN")
      for n in ("w_q", "w_k", "w_v", "w_o")],
    *[(lambda n=n: _mha(**{n: _Z(4, 5)}), rf"^{n}: expected shape \[4, 4\], got \[4, 5\]$")
      for n in ("w_q", "w_k", "w_v", "w_o")],
    *[(lambda n=n: _mha(**{n: torch.full((4,), _NAN)}), rf"^{n}: contains 4 NaN")
      for n in ("b_q", "b_k", "b_v", "b_o")],
    *[(lambda n=n: _mha(**{n: _Z(5)}), rf"^{n}: expected shape \[4\], got \[5\]$")
      for n in ("b_q", "b_k", "b_v", "b_o")],
    (lambda: _mha(b_v=_Z(4), w_o=_Z(4, 4, dtype=_F64)),
     r"^query: dtypes must match, got query:torch.float32, key:torch.float32, value:torch.float32, "
     r"w_q:torch.float32, w_k:torch.float32, w_v:torch.float32, w_o:torch.float64, b_v:torch.float32$"),
    (lambda: _mha(num_heads=0), r"^num_heads: must be >= 1, got 0$"),
    (lambda: _mha(num_heads=3), r"^num_heads: must divide the model width d=4, got 3$"),
    (lambda: position_wise_ffn(torch.tensor(1.0), _Z(1, 2), _Z(2), _Z(2, 1), _Z(1)),
     r"^x: expected at least 1 dimensions"),
    (lambda: position_wise_ffn(_Z(3), _Z(3), _Z(2), _Z(2, 3), _Z(3)), r"^w1: expected 2 dimensions"),
    (lambda: position_wise_ffn(_Z(3), _Z(3, 2), _Z(1, 2), _Z(2, 3), _Z(3)), r"^b1: expected 1 dimensions"),
    (lambda: position_wise_ffn(_Z(3), _Z(3, 2), _Z(2), _Z(6), _Z(3)), r"^w2: expected 2 dimensions"),
    (lambda: position_wise_ffn(_Z(3), _Z(3, 2), _Z(2), _Z(2, 3), _Z(1, 3)), r"^b2: expected 1 dimensions"),
    (lambda: position_wise_ffn(_Z(3), _Z(4, 2), _Z(2), _Z(2, 3), _Z(3)),
     r"^w1: expected shape \[3, 2\], got \[4, 2\]$"),
    (lambda: position_wise_ffn(_Z(3), _Z(3, 2), _Z(5), _Z(2, 3), _Z(3)), r"^b1: expected shape \[2\], got \[5\]$"),
    (lambda: position_wise_ffn(_Z(3), _Z(3, 2), _Z(2), _Z(2, 4), _Z(3)),
     r"^w2: expected shape \[2, 3\], got \[2, 4\]$"),
    (lambda: position_wise_ffn(_Z(3), _Z(3, 2), _Z(2), _Z(2, 3), _Z(4)), r"^b2: expected shape \[3\], got \[4\]$"),
    (lambda: position_wise_ffn(_Z(3), _Z(3, 2), _Z(2), _Z(2, 3), _Z(3, dtype=_F64)),
     r"^x: dtypes must match, got x:torch.float32, w1:torch.float32, b1:torch.float32, "
     r"w2:torch.float32, b2:torch.float64$"),
    (lambda: next_token_distribution(torch.tensor(1.0), _Z(1, 2), _Z(2)), r"^h: expected at least 1 dimensions"),
    (lambda: next_token_distribution(_Z(3), _Z(6), _Z(2)), r"^w: expected 2 dimensions"),
    (lambda: next_token_distribution(_Z(3), _Z(3, 2), _Z(1, 2)), r"^b: expected 1 dimensions"),
    (lambda: next_token_distribution(_Z(2, 4), _Z(3, 2), _Z(2)),
     r"^h: last dimension must be d=3 \(w is \[3, 2\]\), got shape \[2, 4\]$"),
    (lambda: next_token_distribution(_Z(3), _Z(3, 2), _Z(5)), r"^b: expected shape \[2\], got \[5\]$"),
    (lambda: next_token_distribution(_Z(3), _Z(3, 2), _Z(2, dtype=_F64)),
     r"^h: dtypes must match, got h:torch.float32, w:torch.float32, b:torch.float64$"),
])
def test_attention_block_messages(call, message):
    with pytest.raises(ValueError, match=message):
        call()


_M = torch.tensor([[True, False, True]])


@pytest.mark.parametrize("call, message", [
    (lambda: masked_lm_loss(_Z(3, 4), torch.zeros(3, dtype=torch.long), _M[0]), r"^logits: expected 3 dimensions"),
    (lambda: masked_lm_loss(_Z(1, 3, 4), torch.zeros(1, 3, dtype=torch.long), _M, "avg"),
     r"^reduction: must be one of \('mean', 'sum', 'none'\), got 'avg'$"),
    (lambda: masked_lm_loss(_Z(1, 3, 4), torch.zeros(1, 3, dtype=torch.long), _M.long()),
     r"^mask: expected a bool tensor \(True = masked position in M\), got torch.int64$"),
    (lambda: masked_lm_loss(_Z(1, 3, 4), torch.zeros(1, 3, dtype=torch.long), [[True] * 3]),
     r"^mask: expected a bool tensor \(True = masked position in M\), got list$"),
    (lambda: masked_lm_loss(_Z(1, 3, 4), torch.zeros(1, 3, dtype=torch.long), _M[:, :2]),
     r"^mask: expected shape \[1, 3\], got \[1, 2\]$"),
    (lambda: masked_lm_loss(_Z(1, 3, 4), [[0, 0, 0]], _M), r"^targets: expected a torch.Tensor, got list$"),
    (lambda: masked_lm_loss(_Z(1, 3, 4), _Z(1, 3), _M),
     r"^targets: expected an integer tensor of class ids, got torch.float32$"),
    (lambda: masked_lm_loss(_Z(1, 3, 4), torch.zeros(1, 3, dtype=torch.bool), _M),
     r"^targets: expected an integer tensor of class ids, got torch.bool$"),
    (lambda: masked_lm_loss(_Z(1, 3, 4), torch.zeros(1, 2, dtype=torch.long), _M),
     r"^targets: expected shape \[1, 3\] \(logits without the vocabulary dimension\), got \[1, 2\]$"),
    (lambda: masked_lm_loss(_Z(1, 3, 4), torch.tensor([[0, 9, 4]]), _M),
     r"^targets: class ids must lie in \[0, 4\), got values in \[0, 4\]$"),
    (lambda: masked_lm_loss(_Z(1, 3, 4), torch.tensor([[-1, 9, 2]]), _M),
     r"^targets: class ids must lie in \[0, 4\), got values in \[-1, 2\]$"),
    (lambda: masked_lm_loss(_Z(1, 3, 4), torch.zeros(1, 3, dtype=torch.long), _M & False),
     r"^mask: no masked position, so the mean over M is undefined$"),
    (lambda: task_loss(torch.tensor(1.0), torch.tensor(0)), r"^logits: expected at least 1 dimensions"),
    (lambda: task_loss(_Z(2, 4), torch.zeros(2, dtype=torch.long), "avg"), r"^reduction: must be one of"),
    (lambda: task_loss(_Z(2, 4), torch.zeros(2, dtype=torch.long), ignore_index=True),
     r"^ignore_index: expected an int or None, got bool$"),
    (lambda: task_loss(_Z(2, 4), torch.zeros(2, dtype=torch.long), ignore_index=1.0),
     r"^ignore_index: expected an int or None, got float$"),
    (lambda: task_loss(_Z(2, 4), torch.tensor([-100, -100]), ignore_index=-100),
     r"^targets: every target equals ignore_index, so the mean is undefined$"),
])
def test_loss_messages(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_losses_ignore_junk_targets_outside_the_selection(f64):
    """Targets outside M (or equal to ignore_index) may be any id, even out of range."""
    logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.2, 0.3, 0.5], [0.1, 0.1, 0.8]]]))
    targets = torch.tensor([[1, -100, 2]])
    mask = torch.tensor([[True, False, True]])
    expected = -(math.log(0.25) + math.log(0.8))
    torch.testing.assert_close(masked_lm_loss(logits, targets, mask, "sum"), torch.tensor(expected), **TOL)
    torch.testing.assert_close(masked_lm_loss(logits, targets, mask), torch.tensor(expected / 2), **TOL)
    none = masked_lm_loss(logits, targets, mask, "none")
    torch.testing.assert_close(none, torch.tensor([[-math.log(0.25), 0.0, -math.log(0.8)]]), **TOL)
    torch.testing.assert_close(task_loss(logits, targets, ignore_index=-100),
                               torch.tensor(expected / 2), **TOL)
    torch.testing.assert_close(task_loss(logits, targets, "sum", ignore_index=-100),
                               torch.tensor(expected), **TOL)
    torch.testing.assert_close(task_loss(logits[0, 0], torch.tensor(0)), torch.tensor(-math.log(0.5)), **TOL)


def test_more_attention_messages():
    with pytest.raises(ValueError, match=r"^mask: some query row may attend to no key"):
        scaled_dot_product_attention(_Z(2, 3), _Z(2, 3), _Z(2, 3), torch.tensor([[True, True], [False, False]]))
    with pytest.raises(ValueError, match=r"^k: last dimension must equal q's dk=3, got \[1, 2, 4\]$"):
        scaled_dot_product_attention(_Z(1, 1, 3), _Z(1, 2, 4), _Z(1, 2, 3))


def test_attention_dropout_acts_on_the_weights_that_multiply_v_in_training_only(f64, gen):
    q, k, v = (torch.randn(2, 4, 3, generator=gen) for _ in range(3))
    with torch.random.fork_rng():
        torch.manual_seed(1)
        out, weights = scaled_dot_product_attention(q, k, v, dropout_p=0.5)  # training by default
        torch.manual_seed(1)
        expected = F.dropout(weights, 0.5, training=True) @ v
    torch.testing.assert_close(out, expected, **TOL)
    assert not torch.allclose(out, weights @ v)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 4), **TOL)  # undropped weights
    out_eval, _ = scaled_dot_product_attention(q, k, v, dropout_p=0.5, training=False)
    torch.testing.assert_close(out_eval, weights @ v, **TOL)


def test_multi_head_attention_dropout_follows_training(f64, gen):
    d = 4
    x = torch.randn(2, 3, d, generator=gen)
    w = [torch.randn(d, d, generator=gen) for _ in range(4)]
    plain = multi_head_attention(x, x, x, *w, num_heads=2)
    torch.testing.assert_close(multi_head_attention(x, x, x, *w, num_heads=2, dropout_p=0.5,
                                                    training=False), plain, **TOL)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        assert not torch.allclose(multi_head_attention(x, x, x, *w, num_heads=2, dropout_p=0.5), plain)


def test_positional_encoding_is_float64_accurate_whatever_the_default_dtype():
    assert torch.get_default_dtype() == torch.float32
    L, d = 60, 16
    pe = sinusoidal_positional_encoding(L, d, dtype=torch.float64)
    expected = torch.tensor([[math.sin(p / 10000 ** (i / d)) if i % 2 == 0 else
                              math.cos(p / 10000 ** ((i - 1) / d)) for i in range(d)]
                             for p in range(L)], dtype=torch.float64)
    torch.testing.assert_close(pe, expected, rtol=0, atol=1e-12)


def test_task_loss_none_reduction_is_per_position(f64, gen):
    logits = torch.randn(2, 3, 5, generator=gen)
    targets = torch.randint(0, 5, (2, 3), generator=gen)
    per = task_loss(logits, targets, "none")
    assert per.shape == (2, 3)
    torch.testing.assert_close(per, F.cross_entropy(logits.reshape(6, 5), targets.reshape(6),
                                                    reduction="none").reshape(2, 3), **TOL)


# --- small cases: one float64 case per exercise, the expected value computed independently;
# `genmodels-exercise check` shows each as expected vs got ----------------------------------
@pytest.mark.exercise("transformer.positional_encoding")
def test_positional_encoding_small_case(small_case):
    L, d = 3, 4
    exp = [[(math.sin if j % 2 == 0 else math.cos)(p / 10000 ** ((j - j % 2) / d)) for j in range(d)]
           for p in range(L)]
    small_case(("seq_len=3, d_model=4", exp,
                lambda: sinusoidal_positional_encoding(L, d, dtype=torch.float64)))


@pytest.mark.exercise("transformer.attention")
def test_attention_small_case(small_case):
    q, k, v = randn64(1, 2, 3, seed=1), randn64(1, 4, 3, seed=2), randn64(1, 4, 2, seed=3)
    mask = torch.tensor([[True, True, False, True], [True, False, False, False]])
    small_case(("q [1,2,3], k [1,4,3], v [1,4,2], no mask (vs F.scaled_dot_product_attention)",
                F.scaled_dot_product_attention(q, k, v),
                lambda: scaled_dot_product_attention(q, k, v)[0]),
               ("the same with a boolean mask", F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
                lambda: scaled_dot_product_attention(q, k, v, mask)[0]))


@pytest.mark.exercise("transformer.multi_head")
def test_multi_head_small_case(small_case):
    d, h = 4, 2
    mha = nn.MultiheadAttention(d, h, bias=False, batch_first=True).double()
    x, y = randn64(1, 2, d, seed=1), randn64(1, 3, d, seed=2)
    with torch.no_grad():
        exp = mha(x, y, y, need_weights=False)[0]
    wq, wk, wv = (w.t().detach() for w in mha.in_proj_weight.chunk(3))
    wo = mha.out_proj.weight.t().detach()
    small_case(("torch.nn.MultiheadAttention(d=4, heads=2, no bias), same weights, query [1,2,4], "
                "key = value [1,3,4]", exp, lambda: multi_head_attention(x, y, y, wq, wk, wv, wo, h)))


@pytest.mark.exercise("transformer.ffn")
def test_ffn_small_case(small_case):
    x, w1, b1, w2, b2 = (randn64(*s, seed=i) for i, s in enumerate([(2, 3), (3, 4), (4,), (4, 3), (3,)]))
    n = [t.numpy() for t in (x, w1, b1, w2, b2)]
    exp = np.maximum(0, n[0] @ n[1] + n[2]) @ n[3] + n[4]
    small_case(("x [2,3], w1 [3,4], b1 [4], w2 [4,3], b2 [3] (randn)", exp,
                lambda: position_wise_ffn(x, w1, b1, w2, b2)))


@pytest.mark.exercise("transformer.next_token")
def test_next_token_small_case(small_case):
    h, w, b = randn64(2, 3, seed=1), randn64(3, 5, seed=2), randn64(5, seed=3)
    z = h.numpy() @ w.numpy() + b.numpy()
    exp = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    small_case(("h [2,3], w [3,5], b [5] (randn)", exp, lambda: next_token_distribution(h, w, b)))


@pytest.mark.exercise("transformer.masked_lm_loss")
def test_masked_lm_loss_small_case(small_case):
    logits, targets = randn64(1, 4, 5, seed=1), torch.tensor([[1, 4, 0, 2]])
    mask = torch.tensor([[True, False, True, False]])
    small_case(("logits [1,4,5], targets [[1,4,0,2]], mask [[T,F,T,F]], mean",
                F.cross_entropy(logits[mask], targets[mask]),
                lambda: masked_lm_loss(logits, targets, mask)),
               ("the same, reduction='sum'", F.cross_entropy(logits[mask], targets[mask], reduction="sum"),
                lambda: masked_lm_loss(logits, targets, mask, reduction="sum")))


@pytest.mark.exercise("transformer.task_loss")
def test_task_loss_small_case(small_case):
    logits, targets = randn64(2, 3, 5, seed=1), torch.tensor([[1, 4, 0], [2, -100, 3]])
    small_case(("logits [2,3,5], targets [[1,4,0],[2,-100,3]], ignore_index=-100",
                F.cross_entropy(logits.reshape(-1, 5), targets.reshape(-1), ignore_index=-100),
                lambda: task_loss(logits, targets, ignore_index=-100)))


# --- encoder-decoder (cross) attention, the speech Transformer's (genmodels.transformer.seq2seq)
@pytest.mark.exercise("transformer.cross_attention")
def test_cross_attention_matches_torch(f64):
    g = torch.Generator().manual_seed(2)
    B, T, S, d, h = 2, 4, 6, 8, 2
    x, mem = torch.randn(B, T, d, generator=g), torch.randn(B, S, d, generator=g)
    w = [torch.randn(d, d, generator=g) / d ** 0.5 for _ in range(4)]
    b = [torch.randn(d, generator=g) for _ in range(4)]
    mask = torch.tensor([[True] * S, [True] * 4 + [False] * 2])
    out, weights = cross_attention(x, mem, *w, h, mask, b_q=b[0], b_k=b[1], b_v=b[2], b_o=b[3],
                                   return_weights=True)

    def heads(y):                                            # (B, L, d) -> (B, h, L, d/h)
        return y.view(B, -1, h, d // h).transpose(1, 2)

    ref = F.scaled_dot_product_attention(heads(x @ w[0] + b[0]), heads(mem @ w[1] + b[1]),
                                         heads(mem @ w[2] + b[2]), attn_mask=mask[:, None, None])
    ref = ref.transpose(1, 2).reshape(B, T, d) @ w[3] + b[3]
    assert torch.allclose(out, ref, atol=1e-10)
    assert torch.allclose(weights.sum(-1), torch.ones(B, h, T)) and weights[1, ..., 4:].max() == 0
    mha = torch.nn.MultiheadAttention(d, h, batch_first=True)      # the module, copied weights
    ours = CrossAttention(d, h).load_torch_weights(mha)
    ref2, _ = mha(x, mem, mem, key_padding_mask=~mask)
    assert torch.allclose(ours(x, mem, mask), ref2, atol=1e-10)


@pytest.mark.exercise("transformer.cross_attention")
def test_cross_attention_small_case(small_case):
    """One head, d = 2: queries from x, keys and values from the memory; the last source frame is
    padding (NumPy softmax by hand)."""
    x = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    mem = np.array([[[1.0, 2.0], [3.0, -1.0], [5.0, 5.0]]])
    s = x[0] @ mem[0, :2].T / math.sqrt(2)                       # scores over the 2 real frames
    p = np.exp(s - s.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    eye = torch.eye(2, dtype=torch.float64)
    small_case(("x [[1,0],[0,1]], memory [[1,2],[3,-1],[5,5]] with the last frame masked, W = I",
                (p @ mem[0, :2])[None],
                lambda: cross_attention(torch.tensor(x), torch.tensor(mem), eye, eye, eye, eye, 1,
                                        torch.tensor([[True, True, False]]))))
