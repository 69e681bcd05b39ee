"""Attention with the hand-written backward vs F.scaled_dot_product_attention and the autograd
formula (eq. 2.23), float64, with boolean and causal masks."""

import pytest
import torch
import torch.nn.functional as F

from genmodels.transformer import scaled_dot_product_attention
from genmodels.transformer.fast_attention import AttentionFunction, fast_attention

pytestmark = pytest.mark.transformer


@pytest.mark.parametrize("mask_kind", ["none", "causal", "padding"])
def test_fast_attention_values_and_gradients(f64, gen, mask_kind):
    q = torch.randn(2, 3, 5, 4, generator=gen, requires_grad=True)
    k = torch.randn(2, 3, 6, 4, generator=gen, requires_grad=True)
    v = torch.randn(2, 3, 6, 7, generator=gen, requires_grad=True)
    mask = None
    if mask_kind == "causal":
        mask = torch.ones(5, 6, dtype=torch.bool).tril(1)
    elif mask_kind == "padding":
        mask = torch.ones(2, 1, 1, 6, dtype=torch.bool)
        mask[0, ..., 4:] = False
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    out = fast_attention(q, k, v, mask)
    formula = scaled_dot_product_attention(q, k, v, mask)[0]
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(formula, ref, atol=1e-12, rtol=0)
    w = torch.randn(ref.shape, generator=gen)
    g_ref = torch.autograd.grad((ref * w).sum(), (q, k, v))
    g_out = torch.autograd.grad((out * w).sum(), (q, k, v))
    for a, b in zip(g_ref, g_out):
        torch.testing.assert_close(b, a, atol=1e-12, rtol=0)


def test_fast_attention_gradcheck_and_broadcast_kv(f64, gen):
    q = torch.randn(2, 3, 4, 2, generator=gen, requires_grad=True)
    k = torch.randn(1, 3, 4, 2, generator=gen, requires_grad=True)    # broadcast over batch
    v = torch.randn(1, 3, 4, 2, generator=gen, requires_grad=True)
    causal = torch.ones(4, 4, dtype=torch.bool).tril()
    assert torch.autograd.gradcheck(lambda a, b, c: AttentionFunction.apply(a, b, c, causal, 0.7),
                                    (q, k, v))


def test_fast_attention_is_causal(gen):
    q, k, v = (torch.randn(1, 2, 6, 4, generator=gen) for _ in range(3))
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    before = fast_attention(q, k, v, causal)
    k2, v2 = k.clone(), v.clone()
    k2[..., 4, :] += 1.0
    v2[..., 4, :] -= 2.0                                              # change position 4
    after = fast_attention(q, k2, v2, causal)
    torch.testing.assert_close(after[..., :4, :], before[..., :4, :], atol=0, rtol=0)
    assert not torch.allclose(after[..., 4:, :], before[..., 4:, :])


def test_fast_attention_rejects_bad_inputs():
    q = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match="k:"):
        fast_attention(q, torch.randn(2, 3, 5), torch.randn(2, 3, 4))
    with pytest.raises(ValueError, match="mask"):
        fast_attention(q, q, q, torch.ones(3, 3))
