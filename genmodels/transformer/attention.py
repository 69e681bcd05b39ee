"""Transformer building blocks, eqs. 2.22–2.27, as small pure functions.

Conventions (see ``docs/equations.md``):

* weights act as ``x @ w`` (``w`` is ``[d_in, d_out]``), as the equations write ``XW``;
* attention masks are boolean, ``True`` where attending is allowed (the convention of
  ``torch.nn.functional.scaled_dot_product_attention``); a query row that may attend to no key
  at all raises ``ValueError`` (its softmax would be 0/0 = NaN);
* shapes: ``B`` batch, ``L``/``T`` sequence length, ``d`` model width, ``h`` heads,
  ``d_h = d / h`` head width, ``V`` vocabulary size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from genmodels._checks import (check_int, check_range, check_same_dtype, check_shape, check_tensor,
                               checks_enabled)
from genmodels.transformer.rotary import rotary_embedding

__all__ = [
    "sinusoidal_positional_encoding",
    "scaled_dot_product_attention",
    "multi_head_attention",
    "position_wise_ffn",
    "next_token_distribution",
]


def sinusoidal_positional_encoding(seq_len: int, d_model: int, *, base: float = 10000.0,
                                   dtype: torch.dtype | None = None,
                                   device: torch.device | str | None = None) -> torch.Tensor:
    r"""Eq. 2.22, the fixed sinusoidal position encoding of "Attention Is All You Need".

    .. math::
        PE_{(p, 2i)} = \sin\!\big(p / 10000^{2i/d}\big), \qquad
        PE_{(p, 2i+1)} = \cos\!\big(p / 10000^{2i/d}\big)

    Positions ``p = 0 … seq_len−1``. An odd ``d_model`` keeps the sine of the last pair.
    The angles are computed in float64 and cast once to ``dtype`` (default: torch's default).

    Returns:
        ``[seq_len, d_model]``.
    """
    check_int("seq_len", seq_len, minimum=1)
    check_int("d_model", d_model, minimum=1)
    check_range("base", base, 1.0, math.inf, low_open=True, high_open=True)
    # >>> exercise transformer.positional_encoding: eq. 2.22
    # what: the sinusoidal encoding PE(p, 2i) = sin(p/10000^{2i/d}), PE(p, 2i+1) = cos(…)
    # hint: even columns hold sines and odd columns cosines of the SAME angle p / 10000^{2i/d}.
    # mistake: `two_i / d_model` -> `two_i / (2 * d_model)`
    p = torch.arange(seq_len, dtype=torch.float64, device=device).unsqueeze(1)  # (L, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64, device=device)     # (ceil(d/2),)
    angle = p / base ** (two_i / d_model)                                       # (L, ceil(d/2))
    pe = torch.empty(seq_len, d_model, dtype=torch.float64, device=device)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return pe.to(dtype or torch.get_default_dtype())
    # <<< exercise transformer.positional_encoding


def _check_qkv(q, k, v, *, v_broadcasts: bool = False) -> torch.Size:
    """Check attention inputs ``q [..., Lq, dk]``, ``k [..., Lk, dk]``, ``v [..., Lk, dv]``;
    return the broadcast leading shape of q and k. ``v_broadcasts``: v's leading dimensions need
    only broadcast with q's and k's (the fast kernel) instead of equalling k's."""
    check_tensor("q", q, min_ndim=2)
    check_tensor("k", k, min_ndim=2)
    check_tensor("v", v, min_ndim=2)
    check_same_dtype(["q", "k", "v"], q, k, v)
    if k.shape[-1] != q.shape[-1]:
        raise ValueError(f"k: last dimension must equal q's dk={q.shape[-1]}, got {list(k.shape)}")
    if v_broadcasts and v.shape[-2] != k.shape[-2]:
        raise ValueError(f"v: must have k's {k.shape[-2]} positions, got {list(v.shape)}")
    if not v_broadcasts and v.shape[:-1] != k.shape[:-1]:
        raise ValueError(f"v: shape {list(v.shape)} must match k's {list(k.shape)} except in "
                         f"the last dimension")
    try:
        lead = torch.broadcast_shapes(q.shape[:-2], k.shape[:-2])
        if v_broadcasts:
            torch.broadcast_shapes(lead, v.shape[:-2])
    except RuntimeError:
        shapes = (f"q {list(q.shape)}, k {list(k.shape)} and v {list(v.shape)}" if v_broadcasts
                  else f"q {list(q.shape)} and k {list(k.shape)}")
        raise ValueError(f"q: leading dimensions of {shapes} do not broadcast") from None
    return lead


def _check_mask(mask, scores_shape: torch.Size) -> torch.Tensor:
    if not isinstance(mask, torch.Tensor):
        raise ValueError(f"mask: expected a torch.Tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise ValueError(f"mask: expected dtype torch.bool (True = may attend), got {mask.dtype}")
    try:
        shape = torch.broadcast_shapes(mask.shape, scores_shape)
    except RuntimeError:
        shape = None
    if shape != scores_shape:
        raise ValueError(f"mask: shape {list(mask.shape)} does not broadcast to the attention "
                         f"scores' {list(scores_shape)}")
    if checks_enabled() and not bool(mask.any(dim=-1).all()):
        raise ValueError("mask: some query row may attend to no key (its softmax would be NaN)")
    return mask


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None, *,
                                 scale: float | None = None, dropout_p: float = 0.0,
                                 training: bool = True
                                 ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Eq. 2.23, scaled dot-product attention.

    .. math:: \mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\Big(\frac{QK^\top}{\sqrt{d_k}}\Big) V

    Masked-out scores are set to −∞ before the softmax, so their weights are exactly 0.

    Args:
        q: queries ``[..., Lq, dk]``. k: keys ``[..., Lk, dk]``. v: values ``[..., Lk, dv]``.
            The leading dimensions of ``q`` and ``k`` broadcast.
        mask: optional bool tensor broadcastable to ``[..., Lq, Lk]``, True = may attend.
        scale: the factor on the scores, default ``1/√dk``.
        dropout_p: dropout on the attention weights before they multiply ``v`` (applied only
            when ``training``); the returned ``weights`` are the undropped softmax.

    Returns:
        ``(out [..., Lq, dv], weights [..., Lq, Lk])``; every row of ``weights`` sums to 1.
    """
    lead = _check_qkv(q, k, v)
    check_range("dropout_p", dropout_p, 0.0, 1.0, high_open=True)
    if scale is not None:
        check_range("scale", scale, 0.0, math.inf, low_open=True, high_open=True)
    if mask is not None:
        _check_mask(mask, torch.Size((*lead, q.shape[-2], k.shape[-2])))

    # >>> exercise transformer.attention: eq. 2.23
    # what: scaled dot-product attention softmax(QKᵀ/√d_k) V with a mask
    # hint: scale by 1/√d_k, set masked-out scores to −inf, softmax over the KEY axis (the last one).
    # mistake: `torch.softmax(scores, dim=-1)` -> `torch.softmax(scores, dim=-2)`
    d_k = q.shape[-1]
    if scale is None:
        scale = 1.0 / math.sqrt(d_k)
    scores = (q @ k.transpose(-2, -1)) * scale  # (..., Lq, Lk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = torch.softmax(scores, dim=-1)  # (..., Lq, Lk), rows sum to 1
    attn = F.dropout(weights, dropout_p, training) if dropout_p > 0 else weights
    out = attn @ v  # (..., Lq, dv)
    return out, weights
    # <<< exercise transformer.attention


def multi_head_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                         w_q: torch.Tensor, w_k: torch.Tensor, w_v: torch.Tensor,
                         w_o: torch.Tensor, num_heads: int, mask: torch.Tensor | None = None, *,
                         b_q: torch.Tensor | None = None, b_k: torch.Tensor | None = None,
                         b_v: torch.Tensor | None = None, b_o: torch.Tensor | None = None,
                         dropout_p: float = 0.0, training: bool = True,
                         return_weights: bool = False,
                         rotary_positions: torch.Tensor | None = None,
                         past_key_value: tuple[torch.Tensor, torch.Tensor] | None = None,
                         return_key_value: bool = False):
    r"""Eqs. 2.24–2.25, multi-head attention.

    .. math::
        \mathrm{head}_i &= \mathrm{Attention}(Q W^Q_i, K W^K_i, V W^V_i)   && (2.24) \\
        \mathrm{MultiHead}(Q, K, V) &= \mathrm{Concat}(\mathrm{head}_1..\mathrm{head}_h) W^O && (2.25)

    ``W^Q_i`` is columns ``i·d_h:(i+1)·d_h`` of ``w_q`` (likewise ``w_k``, ``w_v``), so all heads
    are projected by one matmul and split by a reshape.

    Args:
        query: ``[B, Lq, d]``. key, value: ``[B, Lk, d]``.
        w_q, w_k, w_v, w_o: ``[d, d]``, applied as ``x @ w``.
        num_heads: h; must divide d.
        mask: optional bool, True = may attend; ``[Lq, Lk]``, ``[B, Lq, Lk]`` (same for every
            head) or ``[B, h, Lq, Lk]`` (anything broadcastable to the last).
        b_q, b_k, b_v, b_o: optional biases ``[d]`` added after each projection.
        dropout_p, training: dropout on the attention weights (see
            :func:`scaled_dot_product_attention`).
        return_weights: also return the attention weights ``[B, h, Lq, Lk]``.
        rotary_positions: ``[Lq]`` positions; when given, each head's queries and keys are
            rotated by :func:`~genmodels.transformer.rotary.rotary_embedding` after the
            projection (RoPE, self-attention: ``key`` must have the query's length, its rows
            sit at the same positions).
        past_key_value: ``(K_past, V_past)``, each ``[B, h, Lp, d_h]``: the projected (and
            rotated) keys and values of earlier tokens (a KV cache); the new keys and values
            are appended after them, so the queries attend to ``Lp + Lk`` keys and ``mask``,
            if given, must broadcast to ``[B, h, Lq, Lp + Lk]``.
        return_key_value: also return ``(K, V)``, each ``[B, h, Lp + Lk, d_h]``, the cache for
            the next call.

    Returns:
        ``[B, Lq, d]``, followed by the weights when ``return_weights`` and by ``(K, V)``
        when ``return_key_value``.
    """
    check_tensor("query", query, ndim=3)
    check_tensor("key", key, ndim=3)
    check_tensor("value", value, ndim=3)
    B, Lq, d = query.shape
    Lk = key.shape[1]
    check_shape("key", key, [B, Lk, d])
    check_shape("value", value, [B, Lk, d])
    for name, w in (("w_q", w_q), ("w_k", w_k), ("w_v", w_v), ("w_o", w_o)):
        check_tensor(name, w)
        check_shape(name, w, [d, d])
    biases = {"b_q": b_q, "b_k": b_k, "b_v": b_v, "b_o": b_o}
    for name, b in biases.items():
        if b is not None:
            check_tensor(name, b)
            check_shape(name, b, [d])
    present = {n: t for n, t in biases.items() if t is not None}
    check_same_dtype(["query", "key", "value", "w_q", "w_k", "w_v", "w_o", *present],
                     query, key, value, w_q, w_k, w_v, w_o, *present.values())
    check_int("num_heads", num_heads, minimum=1)
    if d % num_heads != 0:
        raise ValueError(f"num_heads: must divide the model width d={d}, got {num_heads}")
    h, d_h = num_heads, d // num_heads
    _check_rope_and_cache(rotary_positions, past_key_value, B, Lq, Lk, h, d_h, query.dtype)
    if mask is not None and isinstance(mask, torch.Tensor) and mask.dim() == 3:
        mask = mask.unsqueeze(1)  # (B, 1, Lq, Lk): one mask for every head

    # >>> exercise transformer.multi_head: eqs. 2.24–2.25
    # what: multi-head attention: project, split into heads, attend, concatenate, W^O
    # hint: head i uses columns i·d_h:(i+1)·d_h of each projection: reshape to [B, L, h, d_h] then
    #   move h before L; undo it before the output projection.
    # mistake: `heads.transpose(1, 2).reshape(B, Lq, d)` -> `heads.reshape(B, Lq, d)`
    # uses: transformer.attention
    def project(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        y = x @ w if b is None else x @ w + b          # (B, L, d): every head at once
        return y.view(B, y.shape[1], h, d_h).transpose(1, 2)  # (B, h, L, d_h); head i: cols i*d_h..

    Q, K, V = project(query, w_q, b_q), project(key, w_k, b_k), project(value, w_v, b_v)
    # <<< exercise transformer.multi_head
    Q, K, V = rotate_and_extend(Q, K, V, rotary_positions, past_key_value)  # RoPE, KV cache
    # >>> exercise transformer.multi_head: eqs. 2.24–2.25
    heads, weights = scaled_dot_product_attention(Q, K, V, mask, dropout_p=dropout_p,
                                                  training=training)  # (B, h, Lq, d_h)  eq. 2.24
    concat = heads.transpose(1, 2).reshape(B, Lq, d)   # (B, Lq, h*d_h): Concat(head_1..head_h)
    out = concat @ w_o if b_o is None else concat @ w_o + b_o  # (B, Lq, d)  eq. 2.25
    extra = ((weights,) if return_weights else ()) + (((K, V),) if return_key_value else ())
    return (out, *extra) if extra else out
    # <<< exercise transformer.multi_head


def _check_rope_and_cache(rotary_positions, past_key_value, B: int, Lq: int, Lk: int, h: int,
                          d_h: int, dtype: torch.dtype) -> None:
    """Check :func:`multi_head_attention`'s RoPE positions and KV cache."""
    if rotary_positions is not None:
        if Lk != Lq:
            raise ValueError(f"rotary_positions: RoPE needs self-attention (key and query of one "
                             f"length), got Lq={Lq}, Lk={Lk}")
        if d_h % 2:
            raise ValueError(f"rotary_positions: RoPE rotates pairs, the head width "
                             f"d/num_heads={d_h} must be even")
    if past_key_value is None:
        return
    if not isinstance(past_key_value, (tuple, list)) or len(past_key_value) != 2:
        raise ValueError("past_key_value: expected a pair (K_past, V_past)")
    for name, t in zip(("past_key_value[0]", "past_key_value[1]"), past_key_value):
        check_tensor(name, t, ndim=4)
        check_shape(name, t, [B, h, None, d_h])
        if t.dtype != dtype:
            raise ValueError(f"{name}: dtype {t.dtype} differs from query's {dtype}")
    if past_key_value[0].shape != past_key_value[1].shape:
        raise ValueError(f"past_key_value[1]: shape {list(past_key_value[1].shape)} differs from "
                         f"the keys' {list(past_key_value[0].shape)}")


def rotate_and_extend(Q: torch.Tensor, K: torch.Tensor, V: torch.Tensor,
                      rotary_positions: torch.Tensor | None,
                      past_key_value: tuple[torch.Tensor, torch.Tensor] | None
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-head ``Q [B, h, Lq, d_h]``, ``K``, ``V [B, h, Lk, d_h]`` after RoPE (queries and keys
    rotated by ``rotary_positions`` when given) and the KV cache (``past_key_value``'s keys and
    values put before the new ones). Used by :func:`multi_head_attention` and by the fused path
    of :class:`~genmodels.transformer.modules.MultiHeadAttention`."""
    if rotary_positions is not None:
        Q = rotary_embedding(Q, rotary_positions)
        K = rotary_embedding(K, rotary_positions)
    if past_key_value is not None:
        K = torch.cat([past_key_value[0], K], dim=-2)  # (B, h, Lp + Lk, d_h)
        V = torch.cat([past_key_value[1], V], dim=-2)
    return Q, K, V


def position_wise_ffn(x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor,
                      b2: torch.Tensor) -> torch.Tensor:
    r"""Eq. 2.26, the position-wise feed-forward network (applied to every position alike).

    .. math:: \mathrm{FFN}(x) = \max(0, x W_1 + b_1) W_2 + b_2

    Args:
        x: ``[..., d]``. w1: ``[d, f]``. b1: ``[f]``. w2: ``[f, d]``. b2: ``[d]``.

    Returns:
        ``[..., d]``.
    """
    check_tensor("x", x, min_ndim=1)
    for name, t, nd in (("w1", w1, 2), ("b1", b1, 1), ("w2", w2, 2), ("b2", b2, 1)):
        check_tensor(name, t, ndim=nd)
    d = x.shape[-1]
    f = w1.shape[1]
    check_shape("w1", w1, [d, f])
    check_shape("b1", b1, [f])
    check_shape("w2", w2, [f, d])
    check_shape("b2", b2, [d])
    check_same_dtype(["x", "w1", "b1", "w2", "b2"], x, w1, b1, w2, b2)
    # >>> exercise transformer.ffn: eq. 2.26
    # what: the position-wise feed-forward network max(0, xW₁ + b₁)W₂ + b₂
    # hint: ReLU between the two affine maps; weights act as x @ w.
    # mistake: `torch.relu(x @ w1 + b1)` -> `torch.relu(x @ w1) + b1`
    hidden = torch.relu(x @ w1 + b1)  # (..., f)
    return hidden @ w2 + b2           # (..., d)
    # <<< exercise transformer.ffn


def next_token_distribution(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    r"""Eq. 2.27, the distribution over the next token from the last hidden state.

    .. math:: P(w_{t+1} \mid w_{\le t}) = \mathrm{softmax}(h_t W + b)

    Args:
        h: hidden states ``[..., d]``. w: ``[d, V]``. b: ``[V]``.

    Returns:
        probabilities ``[..., V]`` (each row sums to 1).
    """
    check_tensor("h", h, min_ndim=1)
    check_tensor("w", w, ndim=2)
    check_tensor("b", b, ndim=1)
    d, V = w.shape
    if h.shape[-1] != d:
        raise ValueError(f"h: last dimension must be d={d} (w is {list(w.shape)}), "
                         f"got shape {list(h.shape)}")
    check_shape("b", b, [V])
    check_same_dtype(["h", "w", "b"], h, w, b)
    # >>> exercise transformer.next_token: eq. 2.27
    # what: the next-token distribution softmax(hW + b)
    # hint: softmax over the vocabulary axis (the last one) of h @ w + b.
    # mistake: `torch.softmax(logits, dim=-1)` -> `torch.softmax(logits, dim=0)`
    logits = h @ w + b                  # (..., V)
    return torch.softmax(logits, dim=-1)
    # <<< exercise transformer.next_token
