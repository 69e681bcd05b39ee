"""Schema of the LSTM character language model (``model`` group: lstm_char).

Its data (tiny Shakespeare, the embedded corpus) is registered in
``genmodels/transformer/config.py`` with the other text corpora.
"""

from __future__ import annotations

from dataclasses import dataclass

from genmodels.train.config import choice, positive, register_model, unit
from genmodels.transformer.config import CharLMEval


@dataclass
class LSTMLMConfig(CharLMEval):
    """Embedding -> from-scratch LSTM (eqs. 2.16-2.21) -> read-out (eq. 2.15), loss eq. 2.29."""
    family: str = "lstm_lm"
    arch: str = "lstm"
    n_embd: int = 64                 # character embedding width (the LSTM's input size I)
    hidden_size: int = 256           # H
    num_layers: int = 2
    dropout: float = 0.0             # between layers and before the read-out
    impl: str = "bptt"               # bptt: hand-written backward (fast) | fused: autograd, one gate matmul | cells: lstm_cell per step

    def problems(self):
        yield from super().problems()
        yield from choice(self, "arch", ("lstm",))
        for name in ("n_embd", "hidden_size", "num_layers"):
            yield from positive(self, name)
        yield from unit(self, "dropout", high_open=True)
        yield from choice(self, "impl", ("bptt", "fused", "cells"))


register_model("lstm_lm_schema", LSTMLMConfig, family="lstm_lm",
               task="genmodels.rnn.task:LSTMLMTask")
