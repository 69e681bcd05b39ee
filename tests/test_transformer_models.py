"""Transformer modules: attention paths agree with each other and with nn.MultiheadAttention,
GPT is causal, ties its weights, computes eq. 2.29 and samples reproducibly; the masked encoder
is bidirectional, ignores padding and computes eqs. 2.28/2.29."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from genmodels.transformer import GPT, MaskedEncoder, MultiHeadAttention, mask_tokens

pytestmark = pytest.mark.transformer

TOL = dict(rtol=1e-10, atol=1e-12)
V = 13


def _gpt(**kw):
    torch.manual_seed(0)
    cfg = dict(vocab_size=V, block_size=12, n_layer=2, n_head=2, n_embd=16)
    cfg.update(kw)
    return GPT(**cfg).eval()


# --- MultiHeadAttention module --------------------------------------------------------------

@pytest.mark.parametrize("kind", ["causal", "key_mask", "mask3d", "cross"])
def test_mha_sdpa_path_equals_scratch_path(f64, gen, kind):
    B, L, d, h = 2, 6, 12, 3
    torch.manual_seed(0)
    fast = MultiHeadAttention(d, h, use_sdpa=True)
    with torch.no_grad():
        for b in (fast.b_q, fast.b_k, fast.b_v, fast.b_o):
            b.normal_(generator=gen)
    slow = MultiHeadAttention(d, h, use_sdpa=False)
    slow.load_state_dict(fast.state_dict())
    x = torch.randn(B, L, d, generator=gen)
    kw, args = {}, (x,)
    if kind == "causal":
        kw = dict(is_causal=True)
    elif kind == "key_mask":
        km = torch.ones(B, L, dtype=torch.bool)
        km[0, 4:] = False
        kw = dict(key_mask=km, is_causal=True)
    elif kind == "mask3d":
        m = torch.rand(B, L, L, generator=gen) < 0.5
        m[..., 0] = True
        kw = dict(mask=m)
    else:
        args = (x[:, :3], torch.randn(B, L, d, generator=gen))
    torch.testing.assert_close(fast(*args, **kw), slow(*args, **kw), **TOL)


@pytest.mark.parametrize("use_sdpa", [True, False])
def test_mha_module_loads_torch_weights(f64, gen, use_sdpa):
    d, h = 8, 2
    ref = nn.MultiheadAttention(d, h, batch_first=True)
    with torch.no_grad():
        ref.in_proj_bias.normal_(generator=gen)
    ours = MultiHeadAttention(d, h, use_sdpa=use_sdpa).load_torch_weights(ref)
    x = torch.randn(3, 5, d, generator=gen)
    pad = torch.zeros(3, 5, dtype=torch.bool)
    pad[1, 3:] = True  # torch: True = padding
    expected, _ = ref(x, x, x, key_padding_mask=pad)
    torch.testing.assert_close(ours(x, key_mask=~pad), expected, **TOL)
    with pytest.raises(ValueError, match="num_heads"):
        MultiHeadAttention(10, 3)


# --- GPT ------------------------------------------------------------------------------------

@pytest.mark.parametrize("pos_encoding", ["learned", "sinusoidal"])
@pytest.mark.parametrize("use_sdpa", [True, False])
def test_gpt_is_causal(f64, gen, pos_encoding, use_sdpa):
    model = _gpt(pos_encoding=pos_encoding, use_sdpa=use_sdpa)
    idx = torch.randint(V, (2, 10), generator=gen)
    logits, _ = model(idx)
    for k in (0, 4, 9):
        changed = idx.clone()
        changed[:, k] = (changed[:, k] + 1) % V
        logits2, _ = model(changed)
        torch.testing.assert_close(logits2[:, :k], logits[:, :k], rtol=0, atol=1e-12)
        assert not torch.allclose(logits2[:, k], logits[:, k])  # position k itself does change


def test_gpt_paths_agree_and_loss_is_cross_entropy(f64, gen):
    fast, slow = _gpt(use_sdpa=True), _gpt(use_sdpa=False)
    slow.load_state_dict(fast.state_dict())
    idx = torch.randint(V, (3, 12), generator=gen)
    targets = torch.randint(V, (3, 12), generator=gen)
    logits, loss = fast(idx, targets)
    logits_s, loss_s = slow(idx, targets)
    assert logits.shape == (3, 12, V)
    torch.testing.assert_close(logits, logits_s, **TOL)
    torch.testing.assert_close(loss, F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1)),
                               **TOL)
    targets[0, :5] = GPT.ignore_index
    _, loss = fast(idx, targets)
    torch.testing.assert_close(loss, F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1),
                                                     ignore_index=-100), **TOL)
    assert fast(idx)[1] is None


def test_gpt_weight_tying():
    tied, untied = _gpt(tie_weights=True), _gpt(tie_weights=False)
    assert tied.lm_head.weight is tied.embed.tok.weight
    assert untied.lm_head.weight is not untied.embed.tok.weight
    n_tied = sum(p.numel() for p in tied.parameters())
    n_untied = sum(p.numel() for p in untied.parameters())
    assert n_untied - n_tied == V * 16
    # one tensor: a gradient step through the output layer moves the embedding too
    idx = torch.randint(V, (2, 6))
    tied(idx, idx)[1].backward()
    assert tied.embed.tok.weight.grad is tied.lm_head.weight.grad


def test_generate_reproducible_and_respects_top_k(gen):
    model = _gpt()
    idx = torch.randint(V, (2, 3), generator=gen)
    a = model.generate(idx, 12, generator=torch.Generator().manual_seed(7))
    b = model.generate(idx, 12, generator=torch.Generator().manual_seed(7))
    assert a.shape == (2, 15) and torch.equal(a, b) and torch.equal(a[:, :3], idx)

    k = 3
    out = model.generate(idx, 12, temperature=2.0, top_k=k,
                         generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        for t in range(3, out.shape[1]):  # each new token is among the k most likely
            logits, _ = model(out[:, max(0, t - model.block_size):t])
            topk = logits[:, -1].topk(k).indices
            assert (topk == out[:, t:t + 1]).any(-1).all()

    greedy = idx.clone()  # top_k=1 is greedy decoding
    with torch.no_grad():
        for _ in range(5):
            logits, _ = model(greedy[:, -model.block_size:])
            greedy = torch.cat([greedy, logits[:, -1].argmax(-1, keepdim=True)], 1)
    torch.testing.assert_close(model.generate(idx, 5, top_k=1), greedy)


def test_gpt_learns_a_periodic_sequence():
    """A periodic sequence is predictable after its first period: the loss must fall far
    below log V (≈2.56, the loss of uniform guessing)."""
    torch.manual_seed(0)
    model = GPT(vocab_size=V, block_size=8, n_layer=1, n_head=2, n_embd=32)
    data = torch.tensor([0, 3, 5, 1, 7] * 4)
    xs = torch.stack([data[i:i + 8] for i in range(10)])
    ys = torch.stack([data[i + 1:i + 9] for i in range(10)])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(30):
        _, loss = model(xs, ys)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.3


def test_gpt_value_errors():
    model = _gpt()
    with pytest.raises(ValueError, match="idx"):
        model(torch.zeros(1, 13, dtype=torch.long))  # longer than block_size
    with pytest.raises(ValueError, match="idx"):
        model(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="idx"):
        model(torch.full((1, 4), V))
    with pytest.raises(ValueError, match="temperature"):
        model.generate(torch.zeros(1, 2, dtype=torch.long), 3, temperature=0.0)
    with pytest.raises(ValueError, match="top_k"):
        model.generate(torch.zeros(1, 2, dtype=torch.long), 3, top_k=0)
    with pytest.raises(ValueError, match="pos_encoding"):
        GPT(V, 8, pos_encoding="rotary")
    with pytest.raises(ValueError, match="num_heads"):
        GPT(V, 8, n_head=3, n_embd=16)


# --- MaskedEncoder --------------------------------------------------------------------------

def _encoder(**kw):
    torch.manual_seed(0)
    cfg = dict(vocab_size=V, max_len=10, n_layer=2, n_head=2, n_embd=16, num_classes=3)
    cfg.update(kw)
    return MaskedEncoder(**cfg).eval()


def test_encoder_is_bidirectional(f64, gen):
    model = _encoder()
    idx = torch.randint(1, V, (2, 8), generator=gen)
    h = model(idx)
    changed = idx.clone()
    changed[:, -1] = (changed[:, -1] + 1) % V
    assert not torch.allclose(model(changed)[:, 0], h[:, 0])  # the future is seen


@pytest.mark.parametrize("pooling", ["mean", "cls"])
@pytest.mark.parametrize("use_sdpa", [True, False])
def test_encoder_ignores_padding(f64, gen, pooling, use_sdpa):
    """A padded sequence gives the same real-token states and class logits as the unpadded one."""
    model = _encoder(pad_id=0, pooling=pooling, use_sdpa=use_sdpa)
    real = torch.randint(1, V, (1, 5), generator=gen)
    padded = torch.cat([real, torch.zeros(1, 3, dtype=torch.long)], 1)
    torch.testing.assert_close(model(padded)[:, :5], model(real), **TOL)
    torch.testing.assert_close(model.classify(padded), model.classify(real), **TOL)
    # with an explicit attention mask, the padded ids themselves do not matter
    junk = padded.clone()
    junk[:, 5:] = 7
    am = padded != 0
    torch.testing.assert_close(model.classify(junk, am), model.classify(real), **TOL)


def test_encoder_losses_match_cross_entropy(f64, gen):
    model = _encoder()
    idx = torch.randint(V, (3, 9), generator=gen)
    corrupted, targets, mlm_mask = mask_tokens(idx, mask_token_id=1, vocab_size=V, mask_prob=0.4,
                                               generator=gen)
    mlm_mask[:, 0] = True  # make M non-empty whatever the draw
    logits = model.mlm_logits(corrupted)
    torch.testing.assert_close(model.mlm_loss(corrupted, targets, mlm_mask),
                               F.cross_entropy(logits[mlm_mask], targets[mlm_mask]), **TOL)
    labels = torch.tensor([0, 2, 1])
    torch.testing.assert_close(model.classification_loss(idx, labels),
                               F.cross_entropy(model.classify(idx), labels), **TOL)
    assert model.mlm_decoder.weight is model.embed.tok.weight


def test_mask_tokens_corruption(gen):
    idx = torch.randint(2, V, (64, 64), generator=gen)
    special = torch.zeros_like(idx, dtype=torch.bool)
    special[:, 0] = True
    corrupted, targets, m = mask_tokens(idx, 1, V, generator=torch.Generator().manual_seed(3),
                                        special_mask=special)
    again = mask_tokens(idx, 1, V, generator=torch.Generator().manual_seed(3),
                        special_mask=special)
    assert torch.equal(corrupted, again[0]) and torch.equal(m, again[2])
    assert torch.equal(targets, idx)
    assert torch.equal(corrupted[~m], idx[~m])  # outside M nothing changes
    assert not m[:, 0].any()
    n = m.sum().item()  # ≈ 0.15 · 64 · 63 ≈ 605 positions; 80 % of them become [MASK]
    assert 0.12 < n / (64 * 63) < 0.18
    assert 0.74 < (corrupted[m] == 1).float().mean().item() < 0.86


def test_encoder_fine_tunes_on_a_toy_task():
    """Class = whether token 2 occurs in the sequence: learnable only by attending everywhere."""
    g = torch.Generator().manual_seed(0)
    idx = torch.randint(3, V, (64, 8), generator=g)
    labels = torch.randint(2, (64,), generator=g)
    pos = torch.randint(8, (64,), generator=g)
    idx[labels == 1, pos[labels == 1]] = 2
    model = _encoder(num_classes=2, n_layer=1).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(30):
        loss = model.classification_loss(idx, labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    acc = (model.eval().classify(idx).argmax(-1) == labels).float().mean().item()
    assert acc > 0.9


def test_encoder_value_errors():
    model = _encoder()
    idx = torch.randint(V, (2, 6))
    with pytest.raises(ValueError, match="attention_mask"):
        model(idx, torch.zeros(2, 6, dtype=torch.bool))
    with pytest.raises(ValueError, match="attention_mask"):
        model(idx, torch.ones(2, 6))
    with pytest.raises(ValueError, match="num_classes"):
        _encoder(num_classes=None).classify(idx)
    with pytest.raises(ValueError, match="pooling"):
        _encoder(pooling="max")
