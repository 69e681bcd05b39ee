r"""Eq. 2.23 with its gradient written out by hand: a faster from-scratch attention for training.

:func:`genmodels.transformer.scaled_dot_product_attention` lets autograd record
``QKᵀ → scale → mask → softmax → ·V`` and keeps every intermediate. Here the forward keeps only
the attention weights ``P = softmax(S)``, ``S = QKᵀ/√d_k`` (masked entries −∞, so ``P = 0``
there) and the backward is the textbook chain rule for ``O = P V``::

    dV = Pᵀ dO
    dP = dO Vᵀ
    dS = P ⊙ (dP − rowsum(dP ⊙ P))          (the softmax Jacobian, row by row)
    dQ = dS K / √d_k,   dK = dSᵀ Q / √d_k

(masked entries have ``P = 0``, so ``dS = 0`` there: no gradient flows through a masked score).
The tests compare values and gradients with the autograd formula and with
``F.scaled_dot_product_attention`` in float64; experiments/attention_speed times it.
"""

from __future__ import annotations

import math

import torch

from genmodels.transformer.attention import _check_mask, _check_qkv

__all__ = ["AttentionFunction", "fast_attention"]


class AttentionFunction(torch.autograd.Function):
    """``(q[..., Lq, dk], k[..., Lk, dk], v[..., Lk, dv], mask or None, scale) -> out``."""

    @staticmethod
    def forward(ctx, q, k, v, mask, scale):
        S = (q * scale) @ k.transpose(-2, -1)             # (..., Lq, Lk) scaled scores
        if mask is not None:
            S.masked_fill_(~mask, float("-inf"))
        P = torch.softmax(S, dim=-1)                      # (..., Lq, Lk) attention weights
        ctx.save_for_backward(q, k, v, P)
        ctx.scale = scale
        return P @ v                                      # (..., Lq, dv)

    @staticmethod
    def backward(ctx, dO):
        q, k, v, P = ctx.saved_tensors
        s = ctx.scale
        dV = P.transpose(-2, -1) @ dO                     # (..., Lk, dv)
        dP = dO @ v.transpose(-2, -1)                     # (..., Lq, Lk)
        # softmax backward: dS = P ⊙ (dP − Σ_j dP_ij P_ij), in place on dP
        dS = dP.sub_((dP * P).sum(-1, keepdim=True)).mul_(P)
        dQ = (dS @ k).mul_(s)                             # (..., Lq, dk)
        dK = (dS.transpose(-2, -1) @ q).mul_(s)           # (..., Lk, dk)
        return _unbroadcast(dQ, q), _unbroadcast(dK, k), _unbroadcast(dV, v), None, None


def _unbroadcast(grad: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Sum ``grad`` over the leading dimensions that broadcasting added to ``like``."""
    while grad.dim() > like.dim():
        grad = grad.sum(0)
    for i, n in enumerate(like.shape):
        if n == 1 and grad.shape[i] != 1:
            grad = grad.sum(i, keepdim=True)
    return grad


def fast_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                   mask: torch.Tensor | None = None, *, scale: float | None = None
                   ) -> torch.Tensor:
    """Eq. 2.23, ``softmax(QKᵀ/√d_k) V``, with the hand-written backward above.

    Shapes as :func:`genmodels.transformer.scaled_dot_product_attention`; ``mask`` is bool,
    broadcastable to ``[..., Lq, Lk]``, True = may attend (every query row needs one True).
    Returns ``out[..., Lq, dv]`` only (not the weights).
    """
    lead = _check_qkv(q, k, v, v_broadcasts=True)
    if mask is not None:
        _check_mask(mask, torch.Size((*lead, q.shape[-2], k.shape[-2])))
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    return AttentionFunction.apply(q, k, v, mask, scale)
