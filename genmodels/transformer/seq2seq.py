r"""The encoder–decoder Transformer of "Attention Is All You Need" (eqs. 2.22–2.27).

* :func:`cross_attention` — the decoder's attention over the encoder's output: eqs. 2.24–2.25
  (:func:`~genmodels.transformer.attention.multi_head_attention`) with the queries from the
  decoder and the keys and values from the encoder's ``memory``, padding frames hidden.
* :class:`CrossAttention` — its module (the weights of
  :class:`~genmodels.transformer.modules.MultiHeadAttention`).
* :class:`Seq2SeqDecoderBlock` — masked self-attention, cross-attention, FFN (eq. 2.26), each a
  pre-norm residual branch ``x + f(LN(x))`` as the library's other blocks (pre-norm trains
  without the original's warm-up schedule; the original is post-norm ``LN(x + f(x))``).
* :class:`EncoderDecoderTransformer` — a source of continuous vectors ``[B, S, d_src]`` (e.g.
  acoustic frames, projected to ``d``) through :class:`~genmodels.transformer.modules.EncoderBlock`
  layers; target tokens embedded (scaled by ``√d``) plus the sinusoidal encoding (eq. 2.22)
  through the decoder blocks; next-token logits (eq. 2.27 before its softmax).

Every attention runs the one implementation of eq. 2.23
(:func:`~genmodels.transformer.attention.scaled_dot_product_attention`).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genmodels._checks import check_int, check_range, check_tensor, checks_enabled
from genmodels.transformer.attention import multi_head_attention, sinusoidal_positional_encoding
from genmodels.transformer.modules import (EncoderBlock, MultiHeadAttention, PositionWiseFFN,
                                           _check_ids)

__all__ = ["cross_attention", "CrossAttention", "Seq2SeqDecoderBlock",
           "EncoderDecoderTransformer"]


def cross_attention(x: torch.Tensor, memory: torch.Tensor, w_q: torch.Tensor, w_k: torch.Tensor,
                    w_v: torch.Tensor, w_o: torch.Tensor, num_heads: int,
                    memory_mask: torch.Tensor | None = None, *,
                    b_q: torch.Tensor | None = None, b_k: torch.Tensor | None = None,
                    b_v: torch.Tensor | None = None, b_o: torch.Tensor | None = None,
                    return_weights: bool = False):
    r"""Encoder–decoder attention: every decoder position attends over the source.

    .. math::
        \mathrm{CrossAttn}(X, M) = \mathrm{MultiHead}(Q = X,\ K = M,\ V = M)
        \quad (2.24\text{–}2.25)

    The queries come from the decoder states ``x``, the keys and values from the encoder
    output ``memory``; no causal mask (the whole source is known), only the padding of the
    source is hidden.

    Args:
        x: decoder states ``[B, T, d]``. memory: encoder output ``[B, S, d]``.
        w_q, w_k, w_v, w_o: ``[d, d]`` (applied as ``x @ w``). num_heads: h, divides d.
        memory_mask: optional bool ``[B, S]``, True = real source frame (each row needs one).
        b_q, b_k, b_v, b_o: optional biases ``[d]``.
        return_weights: also return the weights ``[B, h, T, S]`` (rows sum to 1).

    Returns:
        ``[B, T, d]`` (and the weights when ``return_weights``).
    """
    check_tensor("x", x, ndim=3)
    check_tensor("memory", memory, ndim=3)
    if memory.shape[0] != x.shape[0] or memory.shape[2] != x.shape[2]:
        raise ValueError(f"memory: expected [B={x.shape[0]}, S, d={x.shape[2]}] like x, got "
                         f"{list(memory.shape)}")
    if memory.dtype != x.dtype or memory.device != x.device:
        raise ValueError(f"memory: expected x's dtype and device ({x.dtype}, {x.device}), got "
                         f"{memory.dtype}, {memory.device}")
    if memory_mask is not None:
        if not isinstance(memory_mask, torch.Tensor) or memory_mask.dtype != torch.bool:
            raise ValueError(f"memory_mask: expected a bool tensor (True = real frame), got "
                             f"{getattr(memory_mask, 'dtype', type(memory_mask).__name__)}")
        if memory_mask.shape != memory.shape[:2]:
            raise ValueError(f"memory_mask: expected shape {list(memory.shape[:2])}, got "
                             f"{list(memory_mask.shape)}")
        if checks_enabled() and not bool(memory_mask.any(dim=1).all()):
            raise ValueError("memory_mask: every source needs at least one real frame")
    # >>> exercise transformer.cross_attention: eqs. 2.24–2.25 (encoder–decoder attention)
    # what: encoder–decoder attention: queries from the decoder, keys and values from the encoder
    # hint: it is multi-head attention with Q from x and K = V = memory; the source's padding
    #   becomes a [B, 1, 1, S] mask (every head, every query); no causal mask.
    # mistake: `multi_head_attention(x, memory, memory,` -> `multi_head_attention(x, x, x,`
    # uses: transformer.multi_head
    mask = None if memory_mask is None else memory_mask[:, None, None, :]   # (B, 1, 1, S)
    return multi_head_attention(x, memory, memory, w_q, w_k, w_v, w_o, num_heads, mask,
                                b_q=b_q, b_k=b_k, b_v=b_v, b_o=b_o,
                                return_weights=return_weights)
    # <<< exercise transformer.cross_attention


class CrossAttention(MultiHeadAttention):
    """:class:`MultiHeadAttention`'s weights run through :func:`cross_attention`.

    ``forward(x[B, T, d], memory[B, S, d], memory_mask=None) -> [B, T, d]``; with
    ``keep_weights = True`` the last call's weights ``[B, h, T, S]`` stay in ``self.weights``
    (for alignment plots)."""

    keep_weights = False

    def forward(self, x: torch.Tensor, memory: torch.Tensor,  # type: ignore[override]
                memory_mask: torch.Tensor | None = None) -> torch.Tensor:
        out = cross_attention(x, memory, self.w_q, self.w_k, self.w_v, self.w_o, self.num_heads,
                              memory_mask, b_q=self.b_q, b_k=self.b_k, b_v=self.b_v, b_o=self.b_o,
                              return_weights=self.keep_weights)
        if self.keep_weights:
            out, self.weights = out
        return out


class Seq2SeqDecoderBlock(nn.Module):
    """Pre-norm decoder block of the encoder–decoder Transformer, shapes ``[B, T, d]``:
    ``x + SelfAttn_causal(LN(x))``, ``x + CrossAttn(LN(x), memory)``, ``x + FFN(LN(x))``."""

    def __init__(self, d_model: int, num_heads: int, d_ff: int | None = None,
                 dropout: float = 0.0):
        super().__init__()
        self.ln1, self.ln2, self.ln3 = (nn.LayerNorm(d_model) for _ in range(3))
        self.self_attn = MultiHeadAttention(d_model, num_heads, dropout=dropout)
        self.cross_attn = CrossAttention(d_model, num_heads, dropout=dropout)
        self.ffn = PositionWiseFFN(d_model, d_ff, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, memory: torch.Tensor,
                memory_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.drop(self.self_attn(self.ln1(x), is_causal=True))   # position t sees <= t
        x = x + self.drop(self.cross_attn(self.ln2(x), memory, memory_mask))
        return x + self.ffn(self.ln3(x))


class EncoderDecoderTransformer(nn.Module):
    """Encoder–decoder Transformer from continuous source vectors to target tokens.

    Args:
        src_dim: width of a source vector. vocab_size: V target tokens.
        d_model, num_heads, enc_layers, dec_layers, d_ff, dropout: the sizes (``d_ff`` default
            ``4 d``). max_src_len, max_tgt_len: longest source / target (sinusoidal tables).
        src_scale: the projected source is multiplied by this before the positions are added
            (``√d`` does for a continuous source what eq. 2.22's ``√d`` does for embeddings:
            keeps the sinusoids from drowning the content at initialisation).

    ``encode(src[B, S, src_dim], src_mask[B, S] | None) -> memory[B, S, d]``;
    ``decode(tgt[B, T], memory, src_mask) -> logits[B, T, V]`` (position t sees target tokens
    ``<= t`` and the whole source); ``forward(src, src_mask, tgt)`` does both.
    """

    def __init__(self, src_dim: int, vocab_size: int, d_model: int = 128, num_heads: int = 4,
                 enc_layers: int = 3, dec_layers: int = 2, d_ff: int | None = None,
                 dropout: float = 0.1, max_src_len: int = 1024, max_tgt_len: int = 256,
                 src_scale: float = 1.0):
        super().__init__()
        for name, v in (("src_dim", src_dim), ("vocab_size", vocab_size), ("d_model", d_model),
                        ("num_heads", num_heads), ("enc_layers", enc_layers),
                        ("dec_layers", dec_layers), ("max_src_len", max_src_len),
                        ("max_tgt_len", max_tgt_len)):
            check_int(name, v, minimum=1)
        if d_model % num_heads:
            raise ValueError(f"num_heads: must divide d_model={d_model}, got {num_heads}")
        check_range("dropout", dropout, 0.0, 1.0, high_open=True)
        if not src_scale > 0:
            raise ValueError(f"src_scale: must be > 0, got {src_scale!r}")
        self.src_dim, self.vocab_size, self.d_model = src_dim, vocab_size, d_model
        self.src_scale = float(src_scale)
        self.max_src_len, self.max_tgt_len = max_src_len, max_tgt_len
        self.src_proj = nn.Linear(src_dim, d_model)
        self.tok = nn.Embedding(vocab_size, d_model)
        self.register_buffer("pe", sinusoidal_positional_encoding(
            max(max_src_len, max_tgt_len), d_model), persistent=False)        # eq. 2.22
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.ModuleList(EncoderBlock(d_model, num_heads, dropout, d_ff=d_ff)
                                     for _ in range(enc_layers))
        self.enc_ln = nn.LayerNorm(d_model)
        self.decoder = nn.ModuleList(Seq2SeqDecoderBlock(d_model, num_heads, d_ff, dropout)
                                     for _ in range(dec_layers))
        self.dec_ln = nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, vocab_size)
        nn.init.normal_(self.tok.weight, std=d_model ** -0.5)

    def encode(self, src: torch.Tensor, src_mask: torch.Tensor | None = None,
               intermediate: int = 0):
        """``src [B, S, src_dim]`` (``src_mask [B, S]`` bool, True = real frame) → ``[B, S, d]``;
        with ``intermediate = k`` (1 … enc_layers − 1) also the output of encoder layer ``k``
        through the final layer norm: ``(memory, hidden_k)`` (for an intermediate CTC loss)."""
        check_tensor("src", src, ndim=3)
        if not 0 <= intermediate < len(self.encoder):
            raise ValueError(f"intermediate: must be 0 … {len(self.encoder) - 1}, got "
                             f"{intermediate!r}")
        if src.shape[2] != self.src_dim or not 1 <= src.shape[1] <= self.max_src_len:
            raise ValueError(f"src: expected [B, S <= {self.max_src_len}, {self.src_dim}], got "
                             f"{list(src.shape)}")
        S = src.shape[1]
        x = self.src_proj(src) * self.src_scale + self.pe[:S].to(src.dtype)
        x = self.drop(x)                                                   # (B, S, d)
        hidden = None
        for i, block in enumerate(self.encoder, 1):
            x = block(x, key_mask=src_mask)
            if i == intermediate:
                hidden = self.enc_ln(x)
        return self.enc_ln(x) if hidden is None else (self.enc_ln(x), hidden)

    def decode(self, tgt: torch.Tensor, memory: torch.Tensor,
               src_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Next-token logits ``[B, T, V]`` for the target prefix ``tgt [B, T]``."""
        _check_ids("tgt", tgt, self.vocab_size, self.max_tgt_len)
        T = tgt.shape[1]
        y = self.tok(tgt) * math.sqrt(self.d_model) + self.pe[:T].to(memory.dtype)
        y = self.drop(y)                                                   # (B, T, d)
        for block in self.decoder:
            y = block(y, memory, src_mask)
        return self.out(self.dec_ln(y))

    def forward(self, src: torch.Tensor, src_mask: torch.Tensor | None,
                tgt: torch.Tensor) -> torch.Tensor:
        return self.decode(tgt, self.encode(src, src_mask), src_mask)
