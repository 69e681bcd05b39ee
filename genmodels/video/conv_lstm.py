r"""The ConvLSTM cell (Shi et al., 2015): eqs. 2.16–2.21 with every W·[h_{t−1}, x_t] a convolution.

The states are feature maps: h and C are ``[B, K, H, W]``, the input frame (or its features)
``[B, C, H, W]``, and each gate's weight is a ``[K, K + C, k, k]`` kernel over the channel
concatenation ``[h_{t−1}, x_t]`` (h first, as in :func:`~genmodels.rnn.lstm_cell`), odd k, "same"
zero padding, stride 1. The gate equations themselves are the LSTM's, computed by
:func:`~genmodels.rnn.cells.lstm_gates` — the one implementation of eqs. 2.16–2.21 — with the
convolution as its affine map, so a ConvLSTM trains on the student's ``rnn.lstm_cell``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genmodels._checks import check_same_dtype, check_shape, check_tensor
from genmodels.rnn.cells import lstm_gates

__all__ = ["conv_lstm_cell"]

_NAMES = ("W_f", "b_f", "W_i", "b_i", "W_C", "b_C", "W_o", "b_o")


def conv_lstm_cell(x_t: torch.Tensor, h_prev: torch.Tensor, c_prev: torch.Tensor,
                   W_f: torch.Tensor, b_f: torch.Tensor, W_i: torch.Tensor, b_i: torch.Tensor,
                   W_C: torch.Tensor, b_C: torch.Tensor, W_o: torch.Tensor, b_o: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor]:
    """One ConvLSTM step: ``x_t [B, C, H, W]``, ``h_prev, c_prev [B, K, H, W]``, kernels
    ``W_* [K, K + C, k, k]`` (k odd), biases ``b_* [K]``. Returns ``(h_t, c_t)``, each
    ``[B, K, H, W]``."""
    check_tensor("x_t", x_t, ndim=4)
    check_tensor("h_prev", h_prev, ndim=4)
    check_tensor("c_prev", c_prev, ndim=4)
    B, C, H, W = x_t.shape
    K = h_prev.shape[1]
    check_shape("h_prev", h_prev, [B, K, H, W])
    check_shape("c_prev", c_prev, [B, K, H, W])
    check_tensor("W_f", W_f, ndim=4)
    k = W_f.shape[-1]
    if k % 2 == 0 or W_f.shape[-2] != k:
        raise ValueError(f"W_f: expected a square kernel of odd size, got {list(W_f.shape)}")
    params = (W_f, b_f, W_i, b_i, W_C, b_C, W_o, b_o)
    for name, p in zip(_NAMES, params):
        check_tensor(name, p)
        check_shape(name, p, [K, K + C, k, k] if name.startswith("W") else [K])
    check_same_dtype(("x_t", "h_prev", "c_prev", *_NAMES), x_t, h_prev, c_prev, *params)
    if 0 in (B, C, H, W, K):
        raise ValueError(f"x_t: expected a non-empty batch of frames, got {list(x_t.shape)} "
                         f"with {K} state channels")
    hx = torch.cat([h_prev, x_t], dim=1)                  # [h_{t−1}, x_t]: (B, K + C, H, W)
    return lstm_gates(lambda w, b: F.conv2d(hx, w, b, padding=k // 2), c_prev, *params)
