"""RNN and LSTM modules built from the cells of eqs. 2.14–2.21.

Both modules are batch-first: ``forward(x[B, T, I], state=None) -> (outputs[B, T, H], state)``.

``state`` is ``h`` for :class:`RNN` and ``(h, c)`` for :class:`LSTM`. With ``num_layers == 1``
each tensor is ``[B, H]`` (as in the SPEC); with ``num_layers > 1`` each is
``[num_layers, B, H]`` (layer 0 first, as in ``torch.nn.RNN``). A ``[1, B, H]`` state is also
accepted for one layer. ``state=None`` starts from zeros.

Every step of every layer calls :func:`rnn_cell` / :func:`lstm_cell` (eqs. 2.14, 2.16–2.21):
the modules hold no second copy of the equations. (The hand-written BPTT of
:class:`genmodels.rnn.fast.FastLSTM` is the opt-in faster kernel, tested equal to this path.)

Parameters are stored per layer ``l``:

* RNN: ``weight_ih_l{l}`` ``[H, I_l]``, ``weight_hh_l{l}`` ``[H, H]``, ``bias_l{l}`` ``[H]``
  (torch's ``bias_ih + bias_hh``; the two always appear summed);
* LSTM: ``weight_l{l}`` ``[4H, H + I_l]`` = the four gate matrices of eqs. 2.16–2.20 stacked in
  the order f, i, C, o, each acting on ``[h_{t-1}, x_t]``; ``bias_l{l}`` ``[4H]`` likewise.

``from_torch`` / ``load_torch_weights`` copy a ``torch.nn.RNN`` / ``torch.nn.LSTM``
(unidirectional, no projection), re-ordering torch's gates (i, f, g, o; separate input and
hidden matrices) into this layout.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genmodels._checks import check_choice, check_int, check_range, check_shape, check_tensor
from genmodels.rnn.cells import lstm_cell, rnn_cell

__all__ = ["RNN", "LSTM"]

_ACTIVATIONS = {"tanh": torch.tanh, "relu": torch.relu}


class _Recurrent(nn.Module):
    """Shared plumbing: argument checks, state packing, layer stacking, dropout."""

    def __init__(self, input_size: int, hidden_size: int, num_layers: int, dropout: float):
        super().__init__()
        check_int("input_size", input_size, minimum=1)
        check_int("hidden_size", hidden_size, minimum=1)
        check_int("num_layers", num_layers, minimum=1)
        check_range("dropout", dropout, 0.0, 1.0, high_open=True)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = float(dropout)

    def reset_parameters(self) -> None:
        """U(−1/√H, 1/√H) for every parameter, as ``torch.nn.RNN`` and ``LSTM`` initialise."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    _torch_class: type = nn.RNNBase

    @staticmethod
    def _torch_options(module: nn.RNNBase) -> dict:
        """Constructor arguments beyond the sizes and dropout that the torch module fixes."""
        return {}

    @classmethod
    def from_torch(cls, module: nn.RNNBase) -> "_Recurrent":
        """A new module with the sizes, dtype and weights of a ``torch.nn.RNN`` (for
        :class:`RNN`) or ``torch.nn.LSTM`` (for :class:`LSTM`)."""
        if not isinstance(module, cls._torch_class):
            raise ValueError(f"module: expected torch.nn.{cls._torch_class.__name__}, got "
                             f"{type(module).__name__}")
        new = cls(module.input_size, module.hidden_size, module.num_layers,
                  dropout=module.dropout, **cls._torch_options(module))
        new = new.to(dtype=module.weight_ih_l0.dtype, device=module.weight_ih_l0.device)
        return new.load_torch_weights(module)

    # -- state helpers -------------------------------------------------------------------------
    def _unpack_state(self, name: str, s, x: torch.Tensor) -> list[torch.Tensor]:
        """One ``[B, H]`` tensor per layer, zeros when ``s`` is None."""
        B, H, L = x.shape[0], self.hidden_size, self.num_layers
        if s is None:
            return [x.new_zeros(B, H) for _ in range(L)]
        check_tensor(name, s, ndim=(2, 3))
        if s.dim() == 2:
            if L != 1:
                raise ValueError(f"{name}: with num_layers={L} expected shape [{L}, {B}, {H}], "
                                 f"got {list(s.shape)}")
            check_shape(name, s, [B, H])
            s = s.unsqueeze(0)  # (1, B, H)
        check_shape(name, s, [L, B, H])
        if s.dtype != x.dtype:
            raise ValueError(f"{name}: dtype {s.dtype} differs from the input's {x.dtype}")
        return list(s.unbind(0))

    def _pack_state(self, per_layer: list[torch.Tensor]) -> torch.Tensor:
        if self.num_layers == 1:
            return per_layer[0]  # (B, H)
        return torch.stack(per_layer, dim=0)  # (L, B, H)

    def _check_input(self, x: torch.Tensor) -> None:
        check_tensor("x", x, ndim=3)
        if x.shape[1] < 1:
            raise ValueError(f"x: expected at least one time step, got shape {list(x.shape)}")
        if x.shape[2] != self.input_size:
            raise ValueError(f"x: last dimension must be input_size={self.input_size}, "
                             f"got shape {list(x.shape)}")
        p = next(self.parameters())
        if x.dtype != p.dtype:
            raise ValueError(f"x: dtype {x.dtype} differs from the parameters' {p.dtype}")

    def _between_layers(self, out: torch.Tensor, layer: int) -> torch.Tensor:
        """Dropout on each layer's outputs except the last layer's, as in ``torch.nn.LSTM``."""
        if self.dropout > 0 and layer < self.num_layers - 1:
            out = F.dropout(out, self.dropout, self.training)
        return out

    def extra_repr(self) -> str:
        return (f"{self.input_size}, {self.hidden_size}, num_layers={self.num_layers}, "
                f"dropout={self.dropout}")


class RNN(_Recurrent):
    """Multi-layer Elman RNN (eq. 2.14 at every step and layer), batch-first.

    Args:
        input_size: I. hidden_size: H. num_layers: stacked layers (layer l+1 reads layer l's h).
        nonlinearity: ``"tanh"`` or ``"relu"``.
        dropout: dropout on the outputs of every layer but the last (training mode only).

    ``forward(x[B, T, I], state=None) -> (outputs[B, T, H], h_T)``; ``state`` (h_0) and ``h`` are ``[B, H]`` for one
    layer, ``[num_layers, B, H]`` for several. Add a read-out with :func:`rnn_output` (eq. 2.15).
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 nonlinearity: str = "tanh", dropout: float = 0.0):
        super().__init__(input_size, hidden_size, num_layers, dropout)
        check_choice("nonlinearity", nonlinearity, _ACTIVATIONS)
        self.nonlinearity = nonlinearity
        H = hidden_size
        for l in range(num_layers):
            I_l = input_size if l == 0 else hidden_size
            self.register_parameter(f"weight_ih_l{l}", nn.Parameter(torch.empty(H, I_l)))
            self.register_parameter(f"weight_hh_l{l}", nn.Parameter(torch.empty(H, H)))
            self.register_parameter(f"bias_l{l}", nn.Parameter(torch.empty(H)))
        self.reset_parameters()

    def layer_params(self, l: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(W_ih [H, I_l], W_hh [H, H], b_h [H])`` of layer ``l``."""
        return (getattr(self, f"weight_ih_l{l}"), getattr(self, f"weight_hh_l{l}"),
                getattr(self, f"bias_l{l}"))

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        self._check_input(x)
        h0 = self._unpack_state("state", state, x)
        act = _ACTIVATIONS[self.nonlinearity]
        inp, h_last = x, []
        for l in range(self.num_layers):
            W_ih, W_hh, b_h = self.layer_params(l)
            h = h0[l]
            hs = []
            # unbind, not inp[:, t]: each slice's backward would allocate a whole (B, T, I) zero
            # tensor, a cost quadratic in T
            for x_t in inp.unbind(1):
                h = rnn_cell(x_t, h, W_ih, W_hh, b_h, activation=act)  # eq. 2.14, (B, H)
                hs.append(h)
            h_last.append(h)
            inp = self._between_layers(torch.stack(hs, dim=1), l)  # (B, T, H)
        return inp, self._pack_state(h_last)

    @torch.no_grad()
    def load_torch_weights(self, module: nn.RNN) -> "RNN":
        """Copy the weights of a ``torch.nn.RNN`` with the same sizes; returns ``self``."""
        _check_torch_rnn(module, self)
        if module.nonlinearity != self.nonlinearity:
            raise ValueError(f"module: nonlinearity {module.nonlinearity!r} differs from "
                             f"{self.nonlinearity!r}")
        for l in range(self.num_layers):
            W_ih, W_hh, b_h = self.layer_params(l)
            W_ih.copy_(getattr(module, f"weight_ih_l{l}"))
            W_hh.copy_(getattr(module, f"weight_hh_l{l}"))
            b_h.copy_(_torch_bias(module, l))
        return self

    _torch_class = nn.RNN

    @staticmethod
    def _torch_options(module: nn.RNN) -> dict:
        return {"nonlinearity": module.nonlinearity}


class LSTM(_Recurrent):
    """Multi-layer LSTM (eqs. 2.16–2.21 at every step and layer), batch-first.

    Args:
        input_size: I. hidden_size: H. num_layers: stacked layers.
        dropout: dropout on the outputs of every layer but the last (training mode only).

    ``forward(x[B, T, I], state=None) -> (outputs[B, T, H], (h_T, c_T))``; ``h`` and ``c`` are
    ``[B, H]`` for one layer, ``[num_layers, B, H]`` for several.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1,
                 dropout: float = 0.0):
        super().__init__(input_size, hidden_size, num_layers, dropout)
        H = hidden_size
        for l in range(num_layers):
            I_l = input_size if l == 0 else hidden_size
            # rows: [W_f; W_i; W_C; W_o], each [H, H + I_l] acting on [h_{t-1}, x_t]
            self.register_parameter(f"weight_l{l}", nn.Parameter(torch.empty(4 * H, H + I_l)))
            self.register_parameter(f"bias_l{l}", nn.Parameter(torch.empty(4 * H)))
        self.reset_parameters()

    def layer_params(self, l: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(W [4H, H + I_l], b [4H])`` of layer ``l``, gates stacked f, i, C, o."""
        return getattr(self, f"weight_l{l}"), getattr(self, f"bias_l{l}")

    def gate_params(self, l: int) -> tuple[torch.Tensor, ...]:
        """``(W_f, b_f, W_i, b_i, W_C, b_C, W_o, b_o)`` of layer ``l``, :func:`lstm_cell`'s order."""
        W, b = self.layer_params(l)
        Ws, bs = W.chunk(4, dim=0), b.chunk(4, dim=0)  # 4 x (H, H + I_l), 4 x (H,)
        return tuple(t for pair in zip(Ws, bs) for t in pair)

    def _unpack_lstm_state(self, state, x):
        """``state`` = None or (h, c) → per-layer ``(h0, c0)``, each checked against ``x``."""
        if state is None:
            h0 = c0 = None
        elif isinstance(state, (tuple, list)) and len(state) == 2:
            h0, c0 = state
        else:
            raise ValueError("state: expected None or a pair (h, c)")
        return (self._unpack_state("state[0] (h)", h0, x),
                self._unpack_state("state[1] (c)", c0, x))

    def forward(self, x: torch.Tensor,
                state: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        self._check_input(x)
        h0, c0 = self._unpack_lstm_state(state, x)
        inp, h_last, c_last = x, [], []
        for l in range(self.num_layers):
            h, c = h0[l], c0[l]
            hs = []
            params = self.gate_params(l)
            for x_t in inp.unbind(1):          # unbind: see the RNN above
                h, c = lstm_cell(x_t, h, c, *params)  # eqs. 2.16-2.21
                hs.append(h)
            h_last.append(h)
            c_last.append(c)
            inp = self._between_layers(torch.stack(hs, dim=1), l)  # (B, T, H)
        return inp, (self._pack_state(h_last), self._pack_state(c_last))

    @torch.no_grad()
    def load_torch_weights(self, module: nn.LSTM) -> "LSTM":
        """Copy the weights of a ``torch.nn.LSTM`` with the same sizes; returns ``self``.

        torch stacks its gates i, f, g, o and keeps separate ``weight_ih`` ``[4H, I]`` and
        ``weight_hh`` ``[4H, H]``; here gate k is ``[W_hh_k, W_ih_k]`` (hidden columns first)
        and the gates are stacked f, i, C(=g), o.
        """
        _check_torch_rnn(module, self)
        H = self.hidden_size
        torch_block = {"f": 1, "i": 0, "C": 2, "o": 3}  # our gate -> torch's block index
        for l in range(self.num_layers):
            W, b = self.layer_params(l)
            W_ih, W_hh = getattr(module, f"weight_ih_l{l}"), getattr(module, f"weight_hh_l{l}")
            b_torch = _torch_bias(module, l)
            for k, gate in enumerate("fiCo"):
                src = slice(torch_block[gate] * H, (torch_block[gate] + 1) * H)
                dst = slice(k * H, (k + 1) * H)
                W[dst, :H].copy_(W_hh[src])
                W[dst, H:].copy_(W_ih[src])
                b[dst].copy_(b_torch[src])
        return self

    _torch_class = nn.LSTM


def _check_torch_rnn(module: nn.RNNBase, ours: _Recurrent) -> None:
    if not isinstance(module, nn.RNNBase):
        raise ValueError(f"module: expected a torch.nn.RNN or LSTM, got {type(module).__name__}")
    if module.bidirectional:
        raise ValueError("module: bidirectional modules are not supported")
    if getattr(module, "proj_size", 0):
        raise ValueError("module: LSTM with proj_size > 0 is not supported")
    ours_sizes = (ours.input_size, ours.hidden_size, ours.num_layers)
    theirs = (module.input_size, module.hidden_size, module.num_layers)
    if ours_sizes != theirs:
        raise ValueError(f"module: (input_size, hidden_size, num_layers) {theirs} differ from "
                         f"{ours_sizes}")


def _torch_bias(module: nn.RNNBase, l: int) -> torch.Tensor:
    """torch adds two biases inside the nonlinearity; they only ever appear as their sum."""
    if not module.bias:
        return torch.zeros_like(getattr(module, f"weight_hh_l{l}")[:, 0])
    return getattr(module, f"bias_ih_l{l}") + getattr(module, f"bias_hh_l{l}")
