"""Rotary positions (RoPE) and the KV cache, against independent references: the rotation as a
complex multiplication (torch.view_as_complex, float64), explicit 2×2 rotation matrices, the
relative-position property, F.scaled_dot_product_attention on hand-rotated heads, and the GPT's
own uncached forward (a cached step must reproduce it to 1e-10 in float64)."""

import math

import pytest
import torch
import torch.nn.functional as F

from conftest import compose, randn64
from genmodels._checks import input_checks
from genmodels.train.config import ConfigError, to_object
from genmodels.transformer import GPT, MultiHeadAttention, multi_head_attention, rotary_embedding

pytestmark = pytest.mark.transformer

TOL = dict(rtol=1e-10, atol=1e-12)


def complex_rope(x, positions, base=10000.0):
    """RoPE written as complex multiplication: pair (x_2i, x_2i+1) is x_2i + j·x_2i+1, times
    exp(j·p·base^(−2i/d))."""
    d = x.shape[-1]
    z = torch.view_as_complex(x.reshape(*x.shape[:-1], d // 2, 2).contiguous())  # (..., L, d/2)
    freqs = torch.tensor([base ** (-2 * i / d) for i in range(d // 2)], dtype=torch.float64)
    rot = torch.polar(torch.ones(len(positions), d // 2, dtype=torch.float64),
                      positions.double()[:, None] * freqs)                       # (L, d/2)
    return torch.view_as_real(z * rot).reshape(x.shape)


# --- the function ---------------------------------------------------------------------------

@pytest.mark.exercise("transformer.rotary_embedding")
@pytest.mark.parametrize("shape, positions, base", [
    ((7, 8), None, 10000.0),
    ((2, 3, 5, 16), None, 10000.0),
    ((6, 4), torch.tensor([3, 0, 11, 100, 2, 7]), 10000.0),
    ((2, 5, 4), torch.tensor([0.5, 1.25, -3.0, 40.0, 1e3], dtype=torch.float64), 500.0),
    ((1, 2), torch.tensor([9]), 10.0),
])
def test_rope_is_the_complex_rotation(f64, shape, positions, base):
    x = randn64(*shape, seed=3)
    L = shape[-2]
    pos = torch.arange(L) if positions is None else positions
    got = rotary_embedding(x, positions, base=base) if base != 10000.0 else \
        rotary_embedding(x, positions)
    torch.testing.assert_close(got, complex_rope(x, pos, base), **TOL)
    assert got.dtype == torch.float64 and got.shape == x.shape


@pytest.mark.exercise("transformer.rotary_embedding")
def test_rope_scores_depend_only_on_the_offset(f64):
    """q·k after RoPE is a function of i − j: the same q and k placed at (i, j) and (i+s, j+s)
    give one score, and every diagonal of the score matrix of a repeated q and k is constant."""
    d, L = 16, 12
    q, k = randn64(d, seed=1), randn64(d, seed=2)
    Q = rotary_embedding(q.expand(L, d), None)   # q at positions 0..L-1
    K = rotary_embedding(k.expand(L, d), None)
    S = Q @ K.T                                   # (L, L): S[i, j] = q_i · k_j
    for off in range(-L + 1, L):
        diag = torch.diagonal(S, off)
        torch.testing.assert_close(diag, diag[:1].expand_as(diag), **TOL)
    # shifted by 37 positions: the same scores
    shifted = torch.arange(37, 37 + L)
    S2 = rotary_embedding(q.expand(L, d), shifted) @ rotary_embedding(k.expand(L, d), shifted).T
    torch.testing.assert_close(S2, S, **TOL)
    # and not a function of i alone or j alone (the scores do vary with the offset)
    assert (S[0, 0] - S[5, 0]).abs() > 1e-3


@pytest.mark.exercise("transformer.rotary_embedding")
def test_rope_keeps_norms_and_position_zero_is_identity(f64):
    x = randn64(3, 9, 10, seed=4)
    y = rotary_embedding(x)
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1), **TOL)
    torch.testing.assert_close(y[..., 0, :], x[..., 0, :], rtol=0, atol=0)
    # each pair's angle grows by θ_i per position: pair 0 turns by exactly 1 radian per step
    a = torch.atan2(y[0, :, 1], y[0, :, 0]) - torch.atan2(x[0, :, 1], x[0, :, 0])
    torch.testing.assert_close(torch.remainder(a - torch.arange(9.0, dtype=torch.float64)
                                               + math.pi, 2 * math.pi) - math.pi,
                               torch.zeros(9, dtype=torch.float64), rtol=0, atol=1e-12)


def test_rope_float32_follows_float64():
    x = torch.randn(2, 50, 8, generator=torch.Generator().manual_seed(0))
    y32 = rotary_embedding(x, torch.arange(1000, 1050))
    y64 = rotary_embedding(x.double(), torch.arange(1000, 1050))
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), y64, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("call, name", [
    (lambda: rotary_embedding(torch.randn(4, 7)), "x"),                      # odd d
    (lambda: rotary_embedding(torch.randn(8)), "x"),                         # one dimension
    (lambda: rotary_embedding(torch.arange(8).reshape(2, 4)), "x"),          # integer x
    (lambda: rotary_embedding(torch.full((2, 4), float("nan"))), "x"),
    (lambda: rotary_embedding(torch.randn(3, 4), torch.arange(4)), "positions"),   # wrong length
    (lambda: rotary_embedding(torch.randn(3, 4), torch.zeros(3, 1)), "positions"),
    (lambda: rotary_embedding(torch.randn(3, 4), torch.ones(3, dtype=torch.bool)), "positions"),
    (lambda: rotary_embedding(torch.randn(3, 4), [0, 1, 2]), "positions"),
    (lambda: rotary_embedding(torch.randn(3, 4), torch.tensor([0.0, float("inf"), 1.0])),
     "positions"),
    (lambda: rotary_embedding(torch.randn(3, 4), None, base=1.0), "base"),
    (lambda: rotary_embedding(torch.randn(3, 4), None, base=-2.0), "base"),
])
def test_rope_bad_inputs_name_the_argument(call, name):
    with pytest.raises(ValueError, match=f"^{name}"):
        call()


def test_rope_odd_width_is_refused_even_with_checks_off():
    with input_checks(False), pytest.raises(ValueError, match="^x"):
        rotary_embedding(torch.randn(3, 5))


@pytest.mark.exercise("transformer.rotary_embedding")
def test_rotary_embedding_small_case(small_case):
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 2.0, 0.0]], dtype=torch.float64)
    pos = torch.tensor([0, 3])
    rows = []
    for p, row in zip(pos.tolist(), x):          # explicit 2×2 rotation matrices per pair
        out = []
        for i in range(2):
            t = p * 10000 ** (-2 * i / 4)
            R = torch.tensor([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]],
                             dtype=torch.float64)
            out += (R @ row[2 * i:2 * i + 2]).tolist()
        rows.append(out)
    small_case(("x [2, 4] at positions [0, 3], base 10000 (2x2 rotation matrices)", rows,
                lambda: rotary_embedding(x, pos)))


# --- RoPE and the cache inside multi-head attention -----------------------------------------

def _heads(x, w, h):
    B, L, d = x.shape
    return (x @ w).view(B, L, h, d // h).transpose(1, 2)  # (B, h, L, d_h)


def test_multi_head_attention_rope_against_hand_rotated_heads(f64):
    B, L, d, h = 2, 6, 8, 2
    x = randn64(B, L, d, seed=1)
    wq, wk, wv, wo = (randn64(d, d, seed=s) / 3 for s in (2, 3, 4, 5))
    pos = torch.tensor([4, 5, 6, 7, 8, 9])
    causal = torch.ones(L, L, dtype=torch.bool).tril()
    got = multi_head_attention(x, x, x, wq, wk, wv, wo, h, causal, rotary_positions=pos)
    q = complex_rope(_heads(x, wq, h), pos)
    k = complex_rope(_heads(x, wk, h), pos)
    y = F.scaled_dot_product_attention(q, k, _heads(x, wv, h), is_causal=True)
    torch.testing.assert_close(got, y.transpose(1, 2).reshape(B, L, d) @ wo, **TOL)


@pytest.mark.parametrize("use_sdpa", [False, True])
@pytest.mark.parametrize("rope", [False, True])
def test_attention_module_with_cache_equals_full_causal_attention(f64, use_sdpa, rope):
    """Feeding 5 tokens, then 1, then 3 through the cache gives the rows of one causal pass."""
    torch.manual_seed(0)
    B, L, d, h = 2, 9, 8, 2
    mha = MultiHeadAttention(d, h, use_sdpa=use_sdpa).double()
    for b in (mha.b_q, mha.b_k, mha.b_v, mha.b_o):
        torch.nn.init.normal_(b)
    x = randn64(B, L, d, seed=1)
    pos = torch.arange(L) if rope else None
    full = mha(x, is_causal=True, rotary_positions=pos)
    cache, outs = None, []
    for a, b in ((0, 5), (5, 6), (6, 9)):
        out, cache = mha(x[:, a:b], is_causal=True, past_key_value=cache, use_cache=True,
                         rotary_positions=None if pos is None else pos[a:b])
        outs.append(out)
    torch.testing.assert_close(torch.cat(outs, 1), full, **TOL)
    assert cache[0].shape == (B, h, L, d // h) and cache[1].shape == (B, h, L, d // h)


def test_cache_and_rope_bad_inputs_name_the_argument(f64):
    d, h = 8, 2
    x = randn64(1, 3, d, seed=1)
    w = [randn64(d, d, seed=s) for s in range(4)]
    with pytest.raises(ValueError, match="^rotary_positions"):     # cross-attention
        multi_head_attention(x, randn64(1, 4, d), randn64(1, 4, d), *w, h,
                             rotary_positions=torch.arange(3))
    with pytest.raises(ValueError, match="^rotary_positions"):     # odd head width
        multi_head_attention(randn64(1, 3, 6), randn64(1, 3, 6), randn64(1, 3, 6),
                             *[randn64(6, 6) for _ in range(4)], 2, rotary_positions=torch.arange(3))
    with pytest.raises(ValueError, match="^positions"):
        multi_head_attention(x, x, x, *w, h, rotary_positions=torch.arange(4))
    with pytest.raises(ValueError, match="^past_key_value"):
        multi_head_attention(x, x, x, *w, h, past_key_value=randn64(1, 2, 3, 4))
    with pytest.raises(ValueError, match=r"^past_key_value\[0\]"):
        multi_head_attention(x, x, x, *w, h, past_key_value=(randn64(1, 2, 3, 3),
                                                               randn64(1, 2, 3, 3)))
    with pytest.raises(ValueError, match=r"^past_key_value\[1\]"):
        multi_head_attention(x, x, x, *w, h, past_key_value=(randn64(1, 2, 3, 4),
                                                               randn64(1, 2, 2, 4)))
    with pytest.raises(ValueError, match=r"^past_key_value\[0\]"):
        multi_head_attention(x, x, x, *w, h, past_key_value=(torch.randn(1, 2, 3, 4).float(),
                                                               torch.randn(1, 2, 3, 4).float()))


# --- the GPT: RoPE option and the KV cache --------------------------------------------------

def _gpt(pos_encoding, use_sdpa=False, block_size=24, seed=0):
    torch.manual_seed(seed)
    m = GPT(13, block_size, n_layer=2, n_head=2, n_embd=16, pos_encoding=pos_encoding,
            use_sdpa=use_sdpa).double().eval()
    with torch.no_grad():                          # larger weights: peaked, input-dependent logits
        for p in m.parameters():
            if p.dim() > 1:
                p.mul_(12)
    return m


@pytest.mark.parametrize("use_sdpa", [False, True])
@pytest.mark.parametrize("pos_encoding", ["learned", "rope", "sinusoidal"])
def test_cached_steps_give_the_uncached_logits_to_1e10(pos_encoding, use_sdpa):
    m = _gpt(pos_encoding, use_sdpa)
    idx = torch.randint(13, (3, 24), generator=torch.Generator().manual_seed(1))
    full, _ = m(idx)                                         # (B, 24, V), no cache
    logits, cache = m.step(idx[:, :7])                       # the prompt
    got = [logits]
    for t in range(7, 24):                                   # then one token at a time
        logits, cache = m.step(idx[:, t:t + 1], cache)
        got.append(logits)
    got = torch.cat(got, 1)
    assert got.dtype == torch.float64
    assert (got - full).abs().max().item() < 1e-10
    assert len(cache) == 2 and cache[0][0].shape == (3, 2, 24, 8)


@pytest.mark.parametrize("use_sdpa", [False, True])
@pytest.mark.parametrize("pos_encoding", ["learned", "rope"])
def test_cached_greedy_generation_equals_uncached_token_for_token(pos_encoding, use_sdpa):
    m = _gpt(pos_encoding, use_sdpa, block_size=40)
    prompt = torch.randint(13, (2, 5), generator=torch.Generator().manual_seed(2))
    fast = m.generate(prompt, 35, top_k=1, use_cache=True)         # greedy: top-1 only
    slow = m.generate(prompt, 35, top_k=1, use_cache=False)
    assert torch.equal(fast, slow) and fast.shape == (2, 40)
    assert len(set(fast[0, 5:].tolist())) > 2          # the weights make greedy text vary
    # and greedy by an independent route: argmax of the uncached forward, one token at a time
    idx = prompt
    for _ in range(35):
        idx = torch.cat([idx, m(idx)[0][:, -1].argmax(-1, keepdim=True)], 1)
    assert torch.equal(idx, fast)


@pytest.mark.parametrize("pos_encoding", ["learned", "rope"])
def test_generation_past_the_block_size_recomputes_and_gives_the_same_tokens(pos_encoding,
                                                                          monkeypatch):
    """Up to block_size tokens the cache feeds one token per step; beyond, the window slides and
    every step recomputes the last block_size tokens, as use_cache=False does."""
    m = _gpt(pos_encoding, block_size=12)
    prompt = torch.randint(13, (2, 4), generator=torch.Generator().manual_seed(3))
    fed = []
    real_hidden = GPT.hidden

    def spy(self, idx, past_key_values=None, use_cache=False):
        fed.append((idx.shape[1], past_key_values is not None))
        return real_hidden(self, idx, past_key_values, use_cache)

    monkeypatch.setattr(GPT, "hidden", spy)
    g = lambda: torch.Generator().manual_seed(5)  # noqa: E731
    fast = m.generate(prompt, 20, generator=g(), use_cache=True)
    steps_cached = list(fed)
    fed.clear()
    slow = m.generate(prompt, 20, generator=g(), use_cache=False)
    assert torch.equal(fast, slow) and fast.shape == (2, 24)
    # cached: the prompt (4), then one token at a time up to 12 tokens, then windows of 12
    assert steps_cached == [(4, False)] + [(1, True)] * 8 + [(12, False)] * 11
    assert fed == [(min(4 + i, 12), False) for i in range(20)]


def test_a_prompt_longer_than_the_block_is_cropped_with_or_without_cache():
    m = _gpt("rope", block_size=8)
    prompt = torch.randint(13, (1, 20), generator=torch.Generator().manual_seed(4))
    a = m.generate(prompt, 6, top_k=1, use_cache=True)
    b = m.generate(prompt, 6, top_k=1, use_cache=False)
    assert torch.equal(a, b) and torch.equal(a[:, :20], prompt)


def test_step_refuses_to_go_past_the_block_size():
    m = _gpt("learned", block_size=6)
    _, cache = m.step(torch.zeros(1, 5, dtype=torch.long))
    _, cache = m.step(torch.zeros(1, 1, dtype=torch.long), cache)      # 6 tokens: fits
    with pytest.raises(ValueError, match="^idx"):
        m.step(torch.zeros(1, 1, dtype=torch.long), cache)
    with pytest.raises(ValueError, match="^past_key_values"):
        m.step(torch.zeros(1, 1, dtype=torch.long), cache[:1])


def test_rope_gpt_has_no_position_parameters_and_formula_and_fused_paths_agree():
    """The RoPE GPT trains through multi_head_attention (default) or the fused kernel (opt-in):
    same loss and gradients in float64 from the same weights."""
    a, b = _gpt("rope", False), _gpt("rope", True)
    assert not any("pos" in n for n, _ in a.named_parameters())
    n_learned = sum(p.numel() for p in _gpt("learned").parameters())
    assert sum(p.numel() for p in a.parameters()) == n_learned - 24 * 16
    idx = torch.randint(13, (2, 24), generator=torch.Generator().manual_seed(6))
    a.train(), b.train()
    la, lb = a(idx, idx)[1], b(idx, idx)[1]
    la.backward(), lb.backward()
    torch.testing.assert_close(la, lb, **TOL)
    for (n, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        torch.testing.assert_close(pa.grad, pb.grad, rtol=1e-9, atol=1e-11, msg=n)


def test_gpt_rope_refuses_odd_head_width():
    with pytest.raises(ValueError, match="^pos_encoding"):
        GPT(10, 8, n_layer=1, n_head=2, n_embd=6, pos_encoding="rope")
    with pytest.raises(ValueError, match="^pos_encoding"):
        GPT(10, 8, n_layer=1, n_head=2, n_embd=8, pos_encoding="alibi")


def test_config_pos_encoding_rope():
    cfg = to_object(compose(["experiment=gpt_shakespeare", "model.pos_encoding=rope"]))
    assert cfg.model.pos_encoding == "rope"
    with pytest.raises(ConfigError, match="pos_encoding"):
        to_object(compose(["experiment=gpt_shakespeare", "model.pos_encoding=rope",
                           "model.n_embd=12", "model.n_head=4"]))          # head width 3
    with pytest.raises(ConfigError, match="pos_encoding"):
        to_object(compose(["experiment=mlm_shakespeare", "model.pos_encoding=rope"]))


def test_generate_checks_inputs_in_its_first_step_and_restores_the_switch():
    from genmodels._checks import checks_enabled
    m = _gpt("rope", block_size=8)
    with torch.no_grad():
        m.blocks[0].attn.w_q[0, 0] = float("nan")
    for use_cache in (True, False):
        with pytest.raises(ValueError, match="NaN|nan|finite"):
            m.generate(torch.zeros(1, 2, dtype=torch.long), 3, use_cache=use_cache)
        assert checks_enabled()
