"""Recurrent networks, eqs. 2.14–2.21.

* :mod:`genmodels.rnn.cells` — one time step: :func:`rnn_cell` (2.14), :func:`rnn_output`
  (2.15), :func:`lstm_cell` (2.16–2.21).
* :mod:`genmodels.rnn.modules` — :class:`RNN` and :class:`LSTM`, batch-first sequence modules
  built from those cells, loadable from ``torch.nn.RNN`` / ``torch.nn.LSTM``.
"""

from genmodels.rnn.cells import lstm_cell, rnn_cell, rnn_output
from genmodels.rnn.modules import LSTM, RNN

__all__ = ["rnn_cell", "rnn_output", "lstm_cell", "RNN", "LSTM"]
