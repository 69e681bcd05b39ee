"""Transformer, eqs. 2.22–2.29.

* :mod:`genmodels.transformer.attention` — :func:`sinusoidal_positional_encoding` (2.22),
  :func:`scaled_dot_product_attention` (2.23), :func:`multi_head_attention` (2.24–2.25),
  :func:`position_wise_ffn` (2.26), :func:`next_token_distribution` (2.27).
* :mod:`genmodels.transformer.losses` — :func:`masked_lm_loss` (2.28), :func:`task_loss` (2.29).
* :mod:`genmodels.transformer.modules` — :class:`MultiHeadAttention`, pre-norm blocks, the
  decoder-only :class:`GPT` (learned, sinusoidal or rotary positions; ``generate`` with a KV
  cache) and the BERT-style :class:`MaskedEncoder`.
* :mod:`genmodels.transformer.rotary` — :func:`rotary_embedding` (RoPE, beyond the chapter).
* :mod:`genmodels.transformer.seq2seq` — the original encoder–decoder: :func:`cross_attention`,
  :class:`Seq2SeqDecoderBlock`, :class:`EncoderDecoderTransformer` (speech recognition uses it).
"""

from genmodels.transformer.attention import (multi_head_attention, next_token_distribution,
                                             position_wise_ffn, scaled_dot_product_attention,
                                             sinusoidal_positional_encoding)
from genmodels.transformer.losses import masked_lm_loss, task_loss
from genmodels.transformer.rotary import rotary_embedding
from genmodels.transformer.modules import (GPT, DecoderBlock, EncoderBlock, MaskedEncoder,
                                           MultiHeadAttention, PositionWiseFFN,
                                           TransformerBlock, mask_tokens)
from genmodels.transformer.seq2seq import (CrossAttention, EncoderDecoderTransformer,
                                           Seq2SeqDecoderBlock, cross_attention)

__all__ = [
    "sinusoidal_positional_encoding", "scaled_dot_product_attention", "multi_head_attention",
    "position_wise_ffn", "next_token_distribution", "masked_lm_loss", "task_loss",
    "MultiHeadAttention", "PositionWiseFFN", "TransformerBlock", "DecoderBlock", "EncoderBlock",
    "GPT", "MaskedEncoder", "mask_tokens", "rotary_embedding",
    "cross_attention", "CrossAttention", "Seq2SeqDecoderBlock", "EncoderDecoderTransformer",
]
