"""The LSTM character language model with the generic trainer: the task is
:class:`genmodels.transformer.task.CharLMTask` (windows, eval, samples) with a
:class:`~genmodels.rnn.lm.CharLSTM` as its model."""

from __future__ import annotations

from genmodels.rnn.lm import CharLSTM
from genmodels.transformer.task import CharLMTask

__all__ = ["LSTMLMTask", "build_lstm_lm"]


def build_lstm_lm(m, vocab_size: int) -> CharLSTM:
    return CharLSTM(vocab_size, m.n_embd, m.hidden_size, m.num_layers, dropout=m.dropout,
                    impl=m.impl)


class LSTMLMTask(CharLMTask):
    @staticmethod
    def build_model(m, vocab_size):
        return build_lstm_lm(m, vocab_size)
