"""Transformer modules wired from the formulas of eqs. 2.22–2.29.

* :class:`MultiHeadAttention` — eqs. 2.23–2.25 through :func:`multi_head_attention` (which calls
  :func:`scaled_dot_product_attention`); ``use_sdpa=True`` opts into the fused
  ``torch.nn.functional.scaled_dot_product_attention`` kernel instead (the tests check they
  agree, values and gradients, in float64).
* :class:`PositionWiseFFN` — eq. 2.26.
* :class:`TransformerBlock` — pre-norm residual block ``x + Attn(LN(x))``, ``x + FFN(LN(x))``
  (pre-norm as in GPT-2: it trains without warm-up tricks); :class:`DecoderBlock` is the causal
  one, :class:`EncoderBlock` the bidirectional one.
* :class:`GPT` — a decoder-only character model, next-token loss eq. 2.29, sampling eq. 2.27.
* :class:`MaskedEncoder` — a small BERT: bidirectional encoder, MLM head (eq. 2.28) and a
  classification head for fine-tuning (eq. 2.29); :func:`mask_tokens` makes MLM inputs.

Masks are boolean with ``True`` = may attend / is a real token, everywhere.
"""

from __future__ import annotations

import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from genmodels._checks import (check_choice, check_int, check_positive, check_range, check_tensor,
                               checks_enabled, input_checks)
from genmodels.transformer.attention import (_check_rope_and_cache, multi_head_attention,
                                             next_token_distribution, position_wise_ffn,
                                             rotate_and_extend, sinusoidal_positional_encoding)
from genmodels.transformer.losses import masked_lm_loss, task_loss

__all__ = ["MultiHeadAttention", "PositionWiseFFN", "TransformerBlock", "DecoderBlock",
           "EncoderBlock", "GPT", "MaskedEncoder", "mask_tokens"]


def _check_ids(name: str, idx, vocab_size: int, max_len: int | None = None) -> None:
    """An integer ``[B, T]`` tensor, ``1 <= T <= max_len``, ids in ``[0, vocab_size)``."""
    if not isinstance(idx, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(idx).__name__}")
    if idx.is_floating_point() or idx.is_complex() or idx.dtype == torch.bool:
        raise ValueError(f"{name}: expected an integer tensor of token ids, got {idx.dtype}")
    if idx.dim() != 2 or idx.shape[1] < 1:
        raise ValueError(f"{name}: expected shape [B, T] with T >= 1, got {list(idx.shape)}")
    if max_len is not None and idx.shape[1] > max_len:
        raise ValueError(f"{name}: sequence length {idx.shape[1]} exceeds the model's "
                         f"maximum {max_len}")
    if checks_enabled() and (bool((idx < 0).any()) or bool((idx >= vocab_size).any())):
        raise ValueError(f"{name}: token ids must lie in [0, {vocab_size})")


def _check_key_mask(name: str, mask, idx: torch.Tensor) -> None:
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise ValueError(f"{name}: expected a bool tensor (True = real token), got "
                         f"{getattr(mask, 'dtype', type(mask).__name__)}")
    if mask.shape != idx.shape:
        raise ValueError(f"{name}: expected shape {list(idx.shape)}, got {list(mask.shape)}")
    if checks_enabled() and not bool(mask.any(dim=1).all()):
        raise ValueError(f"{name}: every sequence needs at least one real token")


class MultiHeadAttention(nn.Module):
    """Multi-head attention, eqs. 2.23–2.25, with weights ``w_q, w_k, w_v, w_o`` ``[d, d]``.

    Args:
        d_model: d. num_heads: h (must divide d). bias: add biases ``b_q, b_k, b_v, b_o``.
        dropout: dropout on the attention weights (training only).
        use_sdpa: False (default) for the formulas of eqs. 2.23–2.25, True for the fused
            PyTorch kernel (opt-in).

    ``forward(query[B, Lq, d], key=None, value=None, mask=None, is_causal=False, key_mask=None)``
    returns ``[B, Lq, d]``. ``key`` defaults to ``query`` and ``value`` to ``key``
    (self-attention). ``mask`` (bool, True = may attend) is ``[Lq, Lk]``, ``[B, Lq, Lk]`` or
    ``[B, h, Lq, Lk]``; ``is_causal`` lets query i see keys ``<= i``; ``key_mask`` ``[B, Lk]``
    (True = real token) hides padding. All given masks are combined with AND.

    Keyword options (both paths): ``rotary_positions[Lq]`` rotates each head's queries and keys
    (RoPE); ``past_key_value=(K_past, V_past)`` ``[B, h, Lp, d_h]`` are the cached keys and values
    of the ``Lp`` earlier tokens (then ``is_causal`` lets new query i see keys ``<= Lp + i`` and
    ``mask``/``key_mask`` cover all ``Lp + Lk`` keys); ``use_cache=True`` returns
    ``(out, (K, V))`` with the keys and values of all ``Lp + Lk`` tokens.
    """

    def __init__(self, d_model: int, num_heads: int, bias: bool = True, dropout: float = 0.0,
                 use_sdpa: bool = False):
        super().__init__()
        check_int("d_model", d_model, minimum=1)
        check_int("num_heads", num_heads, minimum=1)
        if d_model % num_heads:
            raise ValueError(f"num_heads: must divide d_model={d_model}, got {num_heads}")
        check_range("dropout", dropout, 0.0, 1.0, high_open=True)
        self.d_model, self.num_heads, self.dropout = d_model, num_heads, float(dropout)
        self.use_sdpa = bool(use_sdpa)
        for name in ("w_q", "w_k", "w_v", "w_o"):
            self.register_parameter(name, nn.Parameter(torch.empty(d_model, d_model)))
        for name in ("b_q", "b_k", "b_v", "b_o"):
            self.register_parameter(name, nn.Parameter(torch.zeros(d_model)) if bias else None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for w in (self.w_q, self.w_k, self.w_v, self.w_o):
            nn.init.xavier_uniform_(w)
        for b in (self.b_q, self.b_k, self.b_v, self.b_o):
            if b is not None:
                nn.init.zeros_(b)

    def _combined_mask(self, mask, is_causal: bool, key_mask, B: int, Lq: int, Lk: int,
                       device, past: int = 0) -> torch.Tensor | None:
        """AND of all given masks, broadcastable to ``(B, h, Lq, Lk)``; None if none given.
        With ``past`` cached keys in front (``Lk`` counts them), query i is token ``past + i``
        and the causal mask lets it see keys ``<= past + i``."""
        out = None
        if mask is not None:
            if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
                raise ValueError(f"mask: expected a bool tensor (True = may attend), got "
                                 f"{getattr(mask, 'dtype', type(mask).__name__)}")
            if mask.dim() not in (2, 3, 4):
                raise ValueError(f"mask: expected 2, 3 or 4 dimensions, got {list(mask.shape)}")
            out = mask.unsqueeze(1) if mask.dim() == 3 else mask  # (B, 1, Lq, Lk) for 3-d
        if is_causal and not (past and Lq == 1):  # one new token after the cache sees all keys
            causal = torch.ones(Lq, Lk, dtype=torch.bool, device=device).tril(past)  # (Lq, Lk)
            out = causal if out is None else out & causal
        if key_mask is not None:
            if not isinstance(key_mask, torch.Tensor) or key_mask.dtype != torch.bool:
                raise ValueError("key_mask: expected a bool tensor (True = real token)")
            if key_mask.shape != (B, Lk):
                raise ValueError(f"key_mask: expected shape [{B}, {Lk}], got "
                                 f"{list(key_mask.shape)}")
            km = key_mask[:, None, None, :]  # (B, 1, 1, Lk)
            out = km if out is None else out & km
        return out

    def forward(self, query: torch.Tensor, key: torch.Tensor | None = None,
                value: torch.Tensor | None = None, mask: torch.Tensor | None = None,
                is_causal: bool = False, key_mask: torch.Tensor | None = None, *,
                rotary_positions: torch.Tensor | None = None,
                past_key_value: tuple[torch.Tensor, torch.Tensor] | None = None,
                use_cache: bool = False):
        key = query if key is None else key
        value = key if value is None else value
        check_tensor("query", query, ndim=3, finite=False)
        B, Lq, d = query.shape
        Lk = key.shape[1]
        Lp = 0
        if past_key_value is not None and isinstance(past_key_value, (tuple, list)) \
                and len(past_key_value) == 2 and isinstance(past_key_value[0], torch.Tensor) \
                and past_key_value[0].dim() == 4:
            Lp = past_key_value[0].shape[2]
        p = self.dropout if self.training else 0.0
        if not self.use_sdpa:
            m = self._combined_mask(mask, is_causal, key_mask, B, Lq, Lp + Lk, query.device, Lp)
            return multi_head_attention(query, key, value, self.w_q, self.w_k, self.w_v, self.w_o,
                                        self.num_heads, m, b_q=self.b_q, b_k=self.b_k,
                                        b_v=self.b_v, b_o=self.b_o, dropout_p=p,
                                        training=self.training, rotary_positions=rotary_positions,
                                        past_key_value=past_key_value, return_key_value=use_cache)
        if query.shape[-1] != self.d_model or key.shape != (B, Lk, d) or value.shape != key.shape:
            raise ValueError(f"query: expected [B, Lq, {self.d_model}] with key/value "
                             f"[B, Lk, {self.d_model}], got {list(query.shape)}, "
                             f"{list(key.shape)}, {list(value.shape)}")
        h, d_h = self.num_heads, d // self.num_heads
        _check_rope_and_cache(rotary_positions, past_key_value, B, Lq, Lk, h, d_h, query.dtype)
        only_causal = is_causal and mask is None and key_mask is None and Lq == Lk and Lp == 0
        m = None if only_causal else self._combined_mask(mask, is_causal, key_mask, B, Lq,
                                                         Lp + Lk, query.device, Lp)

        def project(x, w, b):
            y = x @ w if b is None else x @ w + b        # (B, L, d)
            return y.view(B, -1, h, d_h).transpose(1, 2)  # (B, h, L, d_h)

        q = project(query, self.w_q, self.b_q)
        k = project(key, self.w_k, self.b_k)
        v = project(value, self.w_v, self.b_v)
        q, k, v = rotate_and_extend(q, k, v, rotary_positions, past_key_value)  # RoPE, cache
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=m, dropout_p=p,
                                           is_causal=only_causal)  # (B, h, Lq, d_h)
        y = y.transpose(1, 2).reshape(B, Lq, d)  # (B, Lq, d): Concat(heads)
        out = y @ self.w_o if self.b_o is None else y @ self.w_o + self.b_o
        return (out, (k, v)) if use_cache else out

    @torch.no_grad()
    def load_torch_weights(self, module: nn.MultiheadAttention) -> "MultiHeadAttention":
        """Copy a ``torch.nn.MultiheadAttention`` (same d and h, one shared in-projection).

        torch stores ``in_proj_weight`` ``[3d, d]`` acting as ``x @ W.T``; here ``w_q`` is the
        transpose of its first d rows, and so on.
        """
        if not isinstance(module, nn.MultiheadAttention):
            raise ValueError(f"module: expected nn.MultiheadAttention, got {type(module).__name__}")
        if (module.embed_dim, module.num_heads) != (self.d_model, self.num_heads):
            raise ValueError("module: embed_dim/num_heads differ")
        if (not module._qkv_same_embed_dim or module.bias_k is not None
                or module.add_zero_attn):
            raise ValueError("module: kdim/vdim, add_bias_kv and add_zero_attn are not supported")
        has_bias = module.in_proj_bias is not None
        if has_bias != (self.b_q is not None):
            raise ValueError("module: bias setting differs")
        d = self.d_model
        W_in = module.in_proj_weight  # (3d, d), rows: q, k, v
        for i, (w, b) in enumerate(((self.w_q, self.b_q), (self.w_k, self.b_k),
                                    (self.w_v, self.b_v))):
            w.copy_(W_in[i * d:(i + 1) * d].T)
            if b is not None:
                b.copy_(module.in_proj_bias[i * d:(i + 1) * d])
        self.w_o.copy_(module.out_proj.weight.T)
        if self.b_o is not None:
            self.b_o.copy_(module.out_proj.bias)
        return self


class PositionWiseFFN(nn.Module):
    """Eq. 2.26, ``max(0, x W1 + b1) W2 + b2``, then dropout; ``d_ff`` defaults to ``4 d``."""

    def __init__(self, d_model: int, d_ff: int | None = None, dropout: float = 0.0):
        super().__init__()
        d_ff = 4 * d_model if d_ff is None else d_ff
        check_int("d_model", d_model, minimum=1)
        check_int("d_ff", d_ff, minimum=1)
        self.w1 = nn.Parameter(torch.empty(d_model, d_ff))
        self.b1 = nn.Parameter(torch.zeros(d_ff))
        self.w2 = nn.Parameter(torch.empty(d_ff, d_model))
        self.b2 = nn.Parameter(torch.zeros(d_model))
        nn.init.xavier_uniform_(self.w1)
        nn.init.xavier_uniform_(self.w2)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(position_wise_ffn(x, self.w1, self.b1, self.w2, self.b2))


class TransformerBlock(nn.Module):
    """Pre-norm block: ``x + Dropout(MHA(LN(x)))`` then ``x + FFN(LN(x))``; shapes ``[B, T, d]``."""

    causal = False

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0, bias: bool = True,
                 use_sdpa: bool = False, d_ff: int | None = None):
        super().__init__()
        self.ln1 = nn.LayerNorm(n_embd)
        self.attn = MultiHeadAttention(n_embd, n_head, bias=bias, dropout=dropout,
                                       use_sdpa=use_sdpa)
        self.drop = nn.Dropout(dropout)
        self.ln2 = nn.LayerNorm(n_embd)
        self.ffn = PositionWiseFFN(n_embd, d_ff, dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None, *,
                rotary_positions: torch.Tensor | None = None,
                past_key_value: tuple[torch.Tensor, torch.Tensor] | None = None,
                use_cache: bool = False):
        """``x [B, T, d] -> [B, T, d]``, or ``(x, (K, V))`` with ``use_cache`` (the keyword
        options are :class:`MultiHeadAttention`'s)."""
        a = self.attn(self.ln1(x), is_causal=self.causal, key_mask=key_mask,
                      rotary_positions=rotary_positions, past_key_value=past_key_value,
                      use_cache=use_cache)
        a, present = a if use_cache else (a, None)
        x = x + self.drop(a)
        x = x + self.ffn(self.ln2(x))
        return (x, present) if use_cache else x


class DecoderBlock(TransformerBlock):
    """Causal pre-norm block: position t attends to positions ``<= t`` only."""

    causal = True


class EncoderBlock(TransformerBlock):
    """Bidirectional pre-norm block (every position attends to every real token)."""

    causal = False


class _Embedding(nn.Module):
    """Token embedding plus learned or sinusoidal (eq. 2.22) positions, then dropout; with
    ``"rope"`` no position is added here (the attention heads rotate queries and keys)."""

    def __init__(self, vocab_size: int, max_len: int, n_embd: int, dropout: float,
                 pos_encoding: str, choices=("learned", "sinusoidal")):
        super().__init__()
        check_choice("pos_encoding", pos_encoding, choices)
        self.pos_encoding = pos_encoding
        self.tok = nn.Embedding(vocab_size, n_embd)
        if pos_encoding == "learned":
            self.pos = nn.Embedding(max_len, n_embd)
        elif pos_encoding == "sinusoidal":
            self.register_buffer("pe", sinusoidal_positional_encoding(max_len, n_embd),
                                 persistent=False)
        self.drop = nn.Dropout(dropout)
        self.n_embd = n_embd

    def forward(self, idx: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Embed ``idx [B, T]`` at positions ``start … start+T−1`` (``start`` > 0 after a KV
        cache of ``start`` tokens)."""
        T = idx.shape[1]
        x = self.tok(idx)  # (B, T, d)
        if self.pos_encoding == "learned":
            x = x + self.pos.weight[start:start + T]  # (T, d) broadcast over B
        elif self.pos_encoding == "rope":
            pass                                       # positions enter in attention
        else:
            # Vaswani et al. (3.4) scale the embedding by sqrt(d) so it is not drowned by PE.
            x = x * math.sqrt(self.n_embd) + self.pe[start:start + T].to(x.dtype)
        return self.drop(x)


def _init_gpt_style(module: nn.Module, n_layer: int) -> None:
    """N(0, 0.02) weights, zero biases; residual output projections scaled by 1/√(2·n_layer)
    (GPT-2), so the residual stream's variance does not grow with depth."""
    for m in module.modules():
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, std=0.02)
        elif isinstance(m, MultiHeadAttention):
            for w in (m.w_q, m.w_k, m.w_v):
                nn.init.normal_(w, std=0.02)
            nn.init.normal_(m.w_o, std=0.02 / math.sqrt(2 * n_layer))
        elif isinstance(m, PositionWiseFFN):
            nn.init.normal_(m.w1, std=0.02)
            nn.init.normal_(m.w2, std=0.02 / math.sqrt(2 * n_layer))


class GPT(nn.Module):
    """Decoder-only Transformer language model (characters or any token ids).

    Args:
        vocab_size: V. block_size: maximum context length T.
        n_layer, n_head, n_embd: depth, heads and width d.
        dropout: on embeddings, attention weights and residual branches (training only).
        pos_encoding: ``"learned"`` (GPT), ``"sinusoidal"`` (eq. 2.22) or ``"rope"`` (rotary
            positions, :func:`~genmodels.transformer.rotary.rotary_embedding`, applied to each
            head's queries and keys in every layer; nothing is added to the embedding).
        tie_weights: share the token embedding with the output projection (one tensor).
        bias: biases in attention projections. use_sdpa: opt into the fused attention kernel.
        d_ff: FFN width, default ``4 * n_embd``.

    ``forward(idx[B, T], targets=None) -> (logits[B, T, V], loss)``; ``loss`` is the mean
    next-token loss (eq. 2.29) when ``targets[B, T]`` is given (ids equal to ``ignore_index``
    = −100 are skipped), else None. ``step(idx, past)`` is the incremental forward of the KV
    cache that ``generate`` uses.
    """

    ignore_index = -100

    def __init__(self, vocab_size: int, block_size: int, n_layer: int = 4, n_head: int = 4,
                 n_embd: int = 128, dropout: float = 0.0, pos_encoding: str = "learned",
                 tie_weights: bool = True, bias: bool = True, use_sdpa: bool = False,
                 d_ff: int | None = None):
        super().__init__()
        for name, v in (("vocab_size", vocab_size), ("block_size", block_size),
                        ("n_layer", n_layer), ("n_head", n_head), ("n_embd", n_embd)):
            check_int(name, v, minimum=1)
        self.vocab_size, self.block_size = vocab_size, block_size
        self.embed = _Embedding(vocab_size, block_size, n_embd, dropout, pos_encoding,
                                ("learned", "sinusoidal", "rope"))
        self.rope = pos_encoding == "rope"
        if self.rope and (n_embd // n_head) % 2:
            raise ValueError(f"pos_encoding: rope rotates pairs, the head width n_embd/n_head="
                             f"{n_embd // n_head} must be even")
        self.blocks = nn.ModuleList(DecoderBlock(n_embd, n_head, dropout, bias, use_sdpa, d_ff)
                                    for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        _init_gpt_style(self, n_layer)
        if tie_weights:
            self.lm_head.weight = self.embed.tok.weight  # one tensor, [V, d]

    def hidden(self, idx: torch.Tensor, past_key_values: list | None = None,
               use_cache: bool = False):
        """Final (layer-normed) hidden states ``[B, T, d]``.

        With a KV cache: ``past_key_values`` holds one ``(K, V)`` pair ``[B, h, Lp, d_h]`` per
        layer for the ``Lp`` tokens before ``idx`` (which then sit at positions ``Lp … Lp+T−1``;
        ``Lp + T <= block_size``); ``use_cache=True`` returns ``(hidden, present)`` with the
        pairs of all ``Lp + T`` tokens.
        """
        Lp = 0
        if past_key_values is not None:
            if not isinstance(past_key_values, (list, tuple)) or \
                    len(past_key_values) != len(self.blocks):
                raise ValueError(f"past_key_values: expected one (K, V) pair per layer "
                                 f"({len(self.blocks)})")
            Lp = past_key_values[0][0].shape[2]
        _check_ids("idx", idx, self.vocab_size, self.block_size - Lp)
        T = idx.shape[1]
        positions = torch.arange(Lp, Lp + T, device=idx.device) if self.rope else None
        x = self.embed(idx, start=Lp)  # (B, T, d)
        present = []
        for i, block in enumerate(self.blocks):
            past = None if past_key_values is None else past_key_values[i]
            x = block(x, rotary_positions=positions, past_key_value=past, use_cache=use_cache)
            if use_cache:
                x, kv = x
                present.append(kv)
        x = self.ln_f(x)
        return (x, present) if use_cache else x

    def step(self, idx: torch.Tensor, past_key_values: list | None = None
             ) -> tuple[torch.Tensor, list]:
        """Incremental forward: logits ``[B, T, V]`` of ``idx[B, T]`` placed after the cached
        tokens, and the cache extended by them (one ``(K, V)`` per layer, ``[B, h, Lp+T, d_h]``).
        Equal to the last ``T`` rows of ``forward`` on the whole sequence."""
        h, present = self.hidden(idx, past_key_values, use_cache=True)
        return self.lm_head(h), present

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits = self.lm_head(self.hidden(idx))  # (B, T, V)
        loss = None
        if targets is not None:
            loss = task_loss(logits, targets, ignore_index=self.ignore_index)  # eq. 2.29
        return logits, loss

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, generator: torch.Generator | None = None,
                 use_cache: bool = True) -> torch.Tensor:
        """Sample ``max_new_tokens`` tokens after ``idx[B, T]``; returns ``[B, T + new]``.

        Each step takes the next-token distribution softmax((h W + b)/τ) of the last position
        (eq. 2.27; dividing h and b by τ divides the logits), keeps the ``top_k`` most likely
        tokens if given, and draws with ``generator``. Call ``.eval()`` first to switch dropout
        off.

        ``use_cache=False`` feeds the last ``block_size`` tokens at every step. ``use_cache=True``
        (KV cache) feeds the prompt once and then only the newest token, reusing every layer's
        keys and values of the tokens before it: the same tokens, in O(T) instead of O(T²) work
        per step. Past the block size the window slides, and sliding moves every token to a new
        position (learned and sinusoidal positions change; with RoPE the deeper layers' cached
        keys were computed from a context the window has dropped), so the cache is no longer
        valid: from the step where ``T + new`` exceeds ``block_size``, each step recomputes the
        last ``block_size`` tokens as ``use_cache=False`` does. The tokens are the same either
        way; only the speed-up ends there.

        The input checks of the formula functions run in the first step only (as the trainer
        does): later steps feed them the same kinds of tensors, and at one token per step the
        checks would cost more than the model.
        """
        check_int("max_new_tokens", max_new_tokens, minimum=0)
        check_positive("temperature", temperature)
        if top_k is not None:
            check_int("top_k", top_k, minimum=1)
        _check_ids("idx", idx, self.vocab_size)  # longer than block_size is fine: cropped
        W = self.lm_head.weight.T  # (d, V)
        b = self.lm_head.bias if self.lm_head.bias is not None else W.new_zeros(self.vocab_size)
        cache = None
        for step in range(max_new_tokens):
            with contextlib.nullcontext() if step == 0 else input_checks(False):
                idx, cache = self._generate_step(idx, cache, use_cache, W, b, temperature, top_k,
                                                 generator)
        return idx

    def _generate_step(self, idx, cache, use_cache, W, b, temperature, top_k, generator):
        """One step of :meth:`generate`: ``(idx with one more token, cache)``."""
        if use_cache and idx.shape[1] <= self.block_size:
            if cache is None:                                          # the prompt, once
                h, cache = self.hidden(idx, use_cache=True)            # (B, T, d)
            else:                                                      # the newest token only
                h, cache = self.hidden(idx[:, -1:], cache, use_cache=True)  # (B, 1, d)
        else:
            cache = None                                               # the window slides
            h = self.hidden(idx[:, -self.block_size:])                 # (B, <= block_size, d)
        h_last = h[:, -1]  # (B, d)
        probs = next_token_distribution(h_last / temperature, W, b / temperature)  # (B, V)
        if top_k is not None and top_k < self.vocab_size:
            kth = probs.topk(top_k, dim=-1).values[:, -1:]  # (B, 1)
            probs = probs.masked_fill(probs < kth, 0.0)      # renormalised by multinomial
        nxt = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
        return torch.cat([idx, nxt], dim=1), cache


class MaskedEncoder(nn.Module):
    """A small bidirectional (BERT-style) encoder with an MLM head and a classification head.

    Args:
        vocab_size, max_len, n_layer, n_head, n_embd, dropout, pos_encoding, use_sdpa, d_ff:
            as for :class:`GPT`.
        num_classes: size of the classification head (None: no head).
        pooling: ``"mean"`` over real tokens or ``"cls"`` (the first position; put a CLS
            token there).
        pad_id: token id treated as padding when no ``attention_mask`` is given.
        tie_weights: share the token embedding with the MLM decoder.

    ``forward(idx[B, L], attention_mask=None) -> hidden[B, L, d]``; ``attention_mask`` is bool,
    True = real token (padding is never attended to). ``mlm_logits`` gives ``[B, L, V]``,
    ``classify`` gives ``[B, num_classes]``; ``mlm_loss`` (eq. 2.28) and
    ``classification_loss`` (eq. 2.29) wrap them.
    """

    def __init__(self, vocab_size: int, max_len: int, n_layer: int = 2, n_head: int = 4,
                 n_embd: int = 128, dropout: float = 0.0, num_classes: int | None = None,
                 pooling: str = "mean", pos_encoding: str = "learned", pad_id: int | None = None,
                 tie_weights: bool = True, use_sdpa: bool = False, d_ff: int | None = None):
        super().__init__()
        for name, v in (("vocab_size", vocab_size), ("max_len", max_len),
                        ("n_layer", n_layer), ("n_head", n_head), ("n_embd", n_embd)):
            check_int(name, v, minimum=1)
        check_choice("pooling", pooling, ("mean", "cls"))
        if num_classes is not None:
            check_int("num_classes", num_classes, minimum=1)
        if pad_id is not None:
            check_int("pad_id", pad_id, minimum=0)
        self.vocab_size, self.max_len = vocab_size, max_len
        self.pooling, self.pad_id = pooling, pad_id
        self.embed = _Embedding(vocab_size, max_len, n_embd, dropout, pos_encoding)
        self.blocks = nn.ModuleList(EncoderBlock(n_embd, n_head, dropout, True, use_sdpa, d_ff)
                                    for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(n_embd)
        # MLM head (BERT): dense -> GELU -> LayerNorm -> decoder onto the vocabulary
        self.mlm_dense = nn.Linear(n_embd, n_embd)
        self.mlm_ln = nn.LayerNorm(n_embd)
        self.mlm_decoder = nn.Linear(n_embd, vocab_size)
        self.classifier = (nn.Sequential(nn.Dropout(dropout), nn.Linear(n_embd, num_classes))
                           if num_classes is not None else None)
        _init_gpt_style(self, n_layer)
        if tie_weights:
            self.mlm_decoder.weight = self.embed.tok.weight

    def _attention_mask(self, idx: torch.Tensor, attention_mask) -> torch.Tensor | None:
        if attention_mask is None and self.pad_id is not None:
            attention_mask = idx != self.pad_id
        if attention_mask is not None:
            _check_key_mask("attention_mask", attention_mask, idx)
        return attention_mask

    def forward(self, idx: torch.Tensor, attention_mask: torch.Tensor | None = None
                ) -> torch.Tensor:
        _check_ids("idx", idx, self.vocab_size, self.max_len)
        key_mask = self._attention_mask(idx, attention_mask)
        x = self.embed(idx)  # (B, L, d)
        for block in self.blocks:
            x = block(x, key_mask=key_mask)
        return self.ln_f(x)

    def mlm_logits(self, idx: torch.Tensor, attention_mask: torch.Tensor | None = None
                   ) -> torch.Tensor:
        """Logits over the vocabulary at every position, ``[B, L, V]``."""
        h = self(idx, attention_mask)
        return self.mlm_decoder(self.mlm_ln(F.gelu(self.mlm_dense(h))))

    def mlm_loss(self, idx: torch.Tensor, targets: torch.Tensor, mlm_mask: torch.Tensor,
                 attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Eq. 2.28 averaged over the masked positions: ``idx`` is the corrupted input,
        ``targets`` the original tokens, ``mlm_mask`` (bool ``[B, L]``) the set M."""
        return masked_lm_loss(self.mlm_logits(idx, attention_mask), targets, mlm_mask)

    def pool(self, h: torch.Tensor, attention_mask: torch.Tensor | None) -> torch.Tensor:
        """``[B, L, d] -> [B, d]``: mean over real tokens, or the first (CLS) position."""
        if self.pooling == "cls":
            return h[:, 0]
        if attention_mask is None:
            return h.mean(dim=1)
        m = attention_mask.unsqueeze(-1).to(h.dtype)  # (B, L, 1)
        return (h * m).sum(dim=1) / m.sum(dim=1)

    def classify(self, idx: torch.Tensor, attention_mask: torch.Tensor | None = None
                 ) -> torch.Tensor:
        """Class logits ``[B, num_classes]`` from the pooled encoding."""
        if self.classifier is None:
            raise ValueError("num_classes: the model was built without a classification head")
        attention_mask = self._attention_mask(idx, attention_mask)
        return self.classifier(self.pool(self(idx, attention_mask), attention_mask))

    def classification_loss(self, idx: torch.Tensor, labels: torch.Tensor,
                            attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Eq. 2.29, mean −log P(y | x) of the class labels ``[B]``."""
        return task_loss(self.classify(idx, attention_mask), labels)


def mask_tokens(idx: torch.Tensor, mask_token_id: int, vocab_size: int, mask_prob: float = 0.15,
                generator: torch.Generator | None = None,
                special_mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """BERT's corruption for eq. 2.28: pick each position with probability ``mask_prob``
    (never where ``special_mask`` is True); of the picked ones 80 % become ``mask_token_id``,
    10 % a random token and 10 % stay. Returns ``(corrupted[B, L], targets[B, L],
    mlm_mask[B, L] bool)`` with ``targets = idx`` (the originals). ``generator`` fixes the draw.
    """
    _check_ids("idx", idx, vocab_size)
    check_int("mask_token_id", mask_token_id, minimum=0)
    check_range("mask_prob", mask_prob, 0.0, 1.0, low_open=True)
    u = torch.rand(idx.shape, generator=generator, device=idx.device)   # who is in M
    r = torch.rand(idx.shape, generator=generator, device=idx.device)   # what they become
    rand_tok = torch.randint(vocab_size, idx.shape, generator=generator, device=idx.device)
    mlm_mask = u < mask_prob
    if special_mask is not None:
        mlm_mask &= ~special_mask
    corrupted = idx.clone()
    corrupted[mlm_mask & (r < 0.8)] = mask_token_id
    to_random = mlm_mask & (r >= 0.8) & (r < 0.9)
    corrupted[to_random] = rand_tok[to_random]
    return corrupted, idx.clone(), mlm_mask
