"""Recurrent cells, eqs. 2.14–2.21: one time step of an RNN and of an LSTM.

Conventions (see ``docs/equations.md``):

* weights act on row-vector batches, ``x @ W.T``, exactly like ``torch.nn.Linear``;
* the LSTM gates act on the concatenation ``[h_{t-1}, x_t]`` in THAT order, so every gate weight
  ``W_*`` is ``[H, H + I]`` (hidden columns first, input columns after);
* shapes: ``B`` batch, ``I`` input size, ``H`` hidden size, ``O`` output size.

These functions are the readable reference. :mod:`genmodels.rnn.modules` runs the same
arithmetic faster (all four gates in one matmul, the input projection of a whole sequence at
once) and its tests check that it equals these functions.
"""

from __future__ import annotations

from typing import Callable

import torch

from genmodels._checks import check_same_dtype, check_shape, check_tensor

__all__ = ["rnn_cell", "rnn_output", "lstm_cell", "lstm_gates"]


def rnn_cell(x_t: torch.Tensor, h_prev: torch.Tensor, W_ih: torch.Tensor, W_hh: torch.Tensor,
             b_h: torch.Tensor,
             activation: Callable[[torch.Tensor], torch.Tensor] = torch.tanh) -> torch.Tensor:
    r"""Eq. 2.14, one step of an Elman RNN.

    .. math:: h_t = \phi(W_{ih} x_t + W_{hh} h_{t-1} + b_h), \qquad \phi = \tanh \text{ by default}

    Args:
        x_t: input at step t, ``[B, I]``.
        h_prev: previous hidden state h_{t-1}, ``[B, H]``.
        W_ih: input-to-hidden weight, ``[H, I]``.
        W_hh: hidden-to-hidden weight, ``[H, H]``.
        b_h: hidden bias, ``[H]`` (torch's ``bias_ih + bias_hh``).
        activation: the elementwise nonlinearity φ.

    Returns:
        h_t, ``[B, H]``.
    """
    check_tensor("x_t", x_t, ndim=2)
    check_tensor("h_prev", h_prev, ndim=2)
    check_tensor("W_ih", W_ih, ndim=2)
    check_tensor("W_hh", W_hh, ndim=2)
    check_tensor("b_h", b_h, ndim=1)
    B, I = x_t.shape
    H = W_hh.shape[0]
    check_shape("W_hh", W_hh, [H, H])
    check_shape("W_ih", W_ih, [H, I])
    check_shape("h_prev", h_prev, [B, H])
    check_shape("b_h", b_h, [H])
    check_same_dtype(["x_t", "h_prev", "W_ih", "W_hh", "b_h"], x_t, h_prev, W_ih, W_hh, b_h)
    if not callable(activation):
        raise ValueError(f"activation: expected a callable, got {type(activation).__name__}")

    # >>> exercise rnn.rnn_cell: eq. 2.14
    # what: one Elman step h_t = φ(W_ih x_t + W_hh h_{t−1} + b_h)
    # hint: row-vector batches: x_t @ W_ih.T + h_prev @ W_hh.T + b_h, then the activation.
    # mistake: `h_prev @ W_hh.T` -> `h_prev @ W_hh`
    h_t = activation(x_t @ W_ih.T + h_prev @ W_hh.T + b_h)  # (B, H)
    return h_t
    # <<< exercise rnn.rnn_cell


def rnn_output(h_t: torch.Tensor, W_ho: torch.Tensor, b_o: torch.Tensor) -> torch.Tensor:
    r"""Eq. 2.15, the read-out of an RNN: a linear map of the hidden state.

    .. math:: y_t = W_{ho} h_t + b_o

    Args:
        h_t: hidden state, ``[B, H]`` (any leading dimensions, e.g. ``[B, T, H]``, also work).
        W_ho: hidden-to-output weight, ``[O, H]``.
        b_o: output bias, ``[O]``.

    Returns:
        y_t, ``[B, O]`` (same leading dimensions as ``h_t``).
    """
    check_tensor("h_t", h_t, min_ndim=1)
    check_tensor("W_ho", W_ho, ndim=2)
    check_tensor("b_o", b_o, ndim=1)
    O, H = W_ho.shape
    if h_t.shape[-1] != H:
        raise ValueError(f"h_t: last dimension must be H={H} (W_ho is {list(W_ho.shape)}), "
                         f"got shape {list(h_t.shape)}")
    check_shape("b_o", b_o, [O])
    check_same_dtype(["h_t", "W_ho", "b_o"], h_t, W_ho, b_o)

    # >>> exercise rnn.rnn_output: eq. 2.15
    # what: the read-out y_t = W_ho h_t + b_o
    # hint: a linear map of the hidden state: h_t @ W_ho.T + b_o (no nonlinearity).
    # mistake: `h_t @ W_ho.T + b_o` -> `torch.tanh(h_t @ W_ho.T + b_o)`
    y_t = h_t @ W_ho.T + b_o  # (B, O)
    return y_t
    # <<< exercise rnn.rnn_output


def lstm_cell(x_t: torch.Tensor, h_prev: torch.Tensor, c_prev: torch.Tensor,
              W_f: torch.Tensor, b_f: torch.Tensor, W_i: torch.Tensor, b_i: torch.Tensor,
              W_C: torch.Tensor, b_C: torch.Tensor, W_o: torch.Tensor, b_o: torch.Tensor
              ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Eqs. 2.16–2.21, one step of an LSTM.

    .. math::
        f_t &= \sigma(W_f [h_{t-1}, x_t] + b_f)            && (2.16)\ \text{forget gate} \\
        i_t &= \sigma(W_i [h_{t-1}, x_t] + b_i)            && (2.17)\ \text{input gate} \\
        \tilde C_t &= \tanh(W_C [h_{t-1}, x_t] + b_C)      && (2.18)\ \text{candidate} \\
        C_t &= f_t \odot C_{t-1} + i_t \odot \tilde C_t    && (2.19)\ \text{cell update} \\
        o_t &= \sigma(W_o [h_{t-1}, x_t] + b_o)            && (2.20)\ \text{output gate} \\
        h_t &= o_t \odot \tanh(C_t)                        && (2.21)\ \text{hidden state}

    Args:
        x_t: input, ``[B, I]``.
        h_prev, c_prev: previous hidden and cell states, ``[B, H]`` each.
        W_f, W_i, W_C, W_o: gate weights, ``[H, H + I]`` each; columns ``:H`` multiply
            h_{t-1}, columns ``H:`` multiply x_t.
        b_f, b_i, b_C, b_o: gate biases, ``[H]`` each.

    Returns:
        ``(h_t, c_t)``, ``[B, H]`` each.
    """
    check_tensor("x_t", x_t, ndim=2)
    check_tensor("h_prev", h_prev, ndim=2)
    check_tensor("c_prev", c_prev, ndim=2)
    B, I = x_t.shape
    H = h_prev.shape[1]
    check_shape("h_prev", h_prev, [B, H])
    check_shape("c_prev", c_prev, [B, H])
    names = ["W_f", "b_f", "W_i", "b_i", "W_C", "b_C", "W_o", "b_o"]
    params = [W_f, b_f, W_i, b_i, W_C, b_C, W_o, b_o]
    for name, p in zip(names, params):
        check_tensor(name, p)
        check_shape(name, p, [H, H + I] if name.startswith("W") else [H])
    check_same_dtype(["x_t", "h_prev", "c_prev", *names], x_t, h_prev, c_prev, *params)

    # >>> exercise rnn.lstm_cell: eqs. 2.16–2.21
    # what: one LSTM step: forget, input, candidate, cell update, output gate, hidden state
    # hint: gates act on [h_{t−1}, x_t] in THAT order; C_t = f⊙C_{t−1} + i⊙C̃; h_t = o ⊙ tanh(C_t).
    # mistake: `h_t = o_t * torch.tanh(C_t)` -> `h_t = o_t * C_t`
    hx = torch.cat([h_prev, x_t], dim=-1)           # [h_{t-1}, x_t]: (B, H + I)
    return lstm_gates(lambda W, b: hx @ W.T + b, c_prev, W_f, b_f, W_i, b_i, W_C, b_C, W_o, b_o)
    # <<< exercise rnn.lstm_cell


def lstm_gates(affine: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], c_prev: torch.Tensor,
               W_f: torch.Tensor, b_f: torch.Tensor, W_i: torch.Tensor, b_i: torch.Tensor,
               W_C: torch.Tensor, b_C: torch.Tensor, W_o: torch.Tensor, b_o: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Eqs. 2.16–2.21 once ``affine(W, b) = W·[h_{t−1}, x_t] + b`` says how a gate's weights act
    on the concatenated state and input: a matrix product in :func:`lstm_cell`, a convolution in
    the ConvLSTM (:func:`genmodels.video.conv_lstm_cell`). Returns ``(h_t, C_t)``; the inputs are
    checked by the callers."""
    # >>> exercise rnn.lstm_cell: eqs. 2.16–2.21
    f_t = torch.sigmoid(affine(W_f, b_f))           # (2.16) forget gate
    i_t = torch.sigmoid(affine(W_i, b_i))           # (2.17) input gate
    C_tilde = torch.tanh(affine(W_C, b_C))          # (2.18) candidate cell state
    C_t = f_t * c_prev + i_t * C_tilde              # (2.19) cell update
    o_t = torch.sigmoid(affine(W_o, b_o))           # (2.20) output gate
    h_t = o_t * torch.tanh(C_t)                     # (2.21) hidden state
    return h_t, C_t
    # <<< exercise rnn.lstm_cell
