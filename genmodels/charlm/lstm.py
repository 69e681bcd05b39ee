"""A character-level LSTM language model: embedding → :class:`~genmodels.rnn.LSTM` (eqs.
2.16–2.21) → read-out :func:`~genmodels.rnn.rnn_output` (eq. 2.15) → next-character loss
:func:`~genmodels.transformer.task_loss` (eq. 2.29). It lives in the character-LM stack, above
both building-block families it uses.

Same interface as :class:`genmodels.transformer.GPT`, so the same task, evaluation and
``genmodels-sample`` serve both: ``forward(idx[B, T], targets=None) -> (logits[B, T, V], loss)``
and ``generate(idx, max_new_tokens, temperature, top_k, generator)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genmodels._checks import check_choice, check_int, check_positive, check_range
from genmodels.rnn.cells import rnn_output
from genmodels.rnn.fast import FastLSTM
from genmodels.rnn.modules import LSTM
from genmodels.transformer.losses import task_loss

__all__ = ["CharLSTM"]


class CharLSTM(nn.Module):
    """Args: vocab_size V; n_embd (the LSTM's input size); hidden_size H; num_layers; dropout
    (between layers and before the read-out); impl: ``"cells"`` (default: :class:`LSTM`, which
    calls :func:`lstm_cell` at every step, with autograd) or ``"bptt"`` (:class:`FastLSTM`, the
    opt-in kernel with the hand-written backward). Both compute the same numbers with the same
    parameters (tested to 1e-12 in float64)."""

    ignore_index = -100

    def __init__(self, vocab_size: int, n_embd: int = 64, hidden_size: int = 256,
                 num_layers: int = 2, dropout: float = 0.0, impl: str = "cells"):
        super().__init__()
        check_int("vocab_size", vocab_size, minimum=1)
        check_int("n_embd", n_embd, minimum=1)
        check_range("dropout", dropout, 0.0, 1.0, high_open=True)
        check_choice("impl", impl, ("cells", "bptt"))
        self.vocab_size = vocab_size
        self.block_size = None           # an RNN has no maximum context
        self.embed = nn.Embedding(vocab_size, n_embd)
        if impl == "bptt":
            self.lstm = FastLSTM(n_embd, hidden_size, num_layers, dropout=dropout)
        else:
            self.lstm = LSTM(n_embd, hidden_size, num_layers, dropout=dropout)
        self.dropout = float(dropout)
        # read-out of eq. 2.15, y_t = W_ho h_t + b_o: logits over the next character
        self.W_ho = nn.Parameter(torch.empty(vocab_size, hidden_size))
        self.b_o = nn.Parameter(torch.zeros(vocab_size))
        nn.init.uniform_(self.W_ho, -1 / math.sqrt(hidden_size), 1 / math.sqrt(hidden_size))
        with torch.no_grad():
            # forget-gate bias +1 (Jozefowicz et al. 2015): remember by default early in training
            for l in range(num_layers):
                _, b = self.lstm.layer_params(l)
                b[:hidden_size].add_(1.0)  # gates stacked f, i, C, o: f is the first block

    def step(self, idx: torch.Tensor, state=None):
        """Logits ``[B, T, V]`` and the final ``(h, c)`` after reading ``idx[B, T]`` from ``state``."""
        out, state = self.lstm(self.embed(idx), state)  # (B, T, H)
        out = F.dropout(out, self.dropout, self.training)
        return rnn_output(out, self.W_ho, self.b_o), state  # eq. 2.15: (B, T, V)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        logits, _ = self.step(idx)
        loss = None
        if targets is not None:  # eq. 2.29, mean −log P(next char)
            loss = task_loss(logits, targets, ignore_index=self.ignore_index)
        return logits, loss

    @torch.no_grad()
    def generate(self, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
                 top_k: int | None = None, generator: torch.Generator | None = None
                 ) -> torch.Tensor:
        """Read the prompt ``idx[B, T]`` once, then draw one character at a time, carrying the
        state (h, c): each new character costs one LSTM step. Returns ``[B, T + new]``."""
        check_int("max_new_tokens", max_new_tokens, minimum=0)
        check_positive("temperature", temperature)
        if top_k is not None:
            check_int("top_k", top_k, minimum=1)
        logits, state = self.step(idx)
        out = [idx]
        for _ in range(max_new_tokens):
            z = logits[:, -1] / temperature  # (B, V)
            if top_k is not None and top_k < self.vocab_size:
                kth = z.topk(top_k, dim=-1).values[:, -1:]
                z = z.masked_fill(z < kth, float("-inf"))
            nxt = torch.multinomial(torch.softmax(z, dim=-1), 1, generator=generator)  # (B, 1)
            out.append(nxt)
            logits, state = self.step(nxt, state)
        return torch.cat(out, dim=1)
