r"""The fast LSTM: eqs. 2.16–2.21 forward, and their gradients written out by hand (BPTT).

Autograd records a dozen small operations per time step and replays them one by one; on a CPU
that bookkeeping, not the arithmetic, is most of the time. :class:`LSTMLayerFunction` computes
one layer's forward loop without recording anything, keeps the activated gates, and runs
backpropagation through time itself. With pre-activations ``a = x_t W_x^T + b + h_{t-1} W_h^T``
split into ``a_f, a_i, a_C, a_o`` (eqs. 2.16–2.18, 2.20), the gates
``f = σ(a_f), i = σ(a_i), C̃ = tanh(a_C), o = σ(a_o)``, ``C_t = f C_{t-1} + i C̃`` (2.19) and
``h_t = o tanh(C_t)`` (2.21), the backward step is, going from ``t = T`` down to 1::

    dh    = ∂L/∂h_t (from the output)  + dh_next                 (h_t feeds the output and step t+1)
    do    = dh · tanh(C_t)                                      (2.21)
    dC    = dC_next + dh · o · (1 − tanh²(C_t))                  (2.21, and C_t feeds C_{t+1})
    df    = dC · C_{t−1},   di = dC · C̃,   dC̃ = dC · i          (2.19)
    dC_next ← dC · f                                            (2.19: ∂C_t/∂C_{t−1} = f)
    da    = [df f(1−f), di i(1−i), dC̃ (1−C̃²), do o(1−o)]        (σ' = σ(1−σ), tanh' = 1 − tanh²)
    dh_next ← da W_h                                            (a depends on h_{t−1} through W_h)

and, after the loop, ``dW_h = Σ_t da_t^T h_{t−1}`` and ``d(x_t W_x^T + b) = da_t`` in one matmul
each. The input projection ``x W_x^T + b`` of the whole sequence stays outside, in autograd.

:class:`FastLSTM` is :class:`genmodels.rnn.LSTM` (same parameters, same ``from_torch``) with this
path; the tests check it against ``torch.nn.LSTM`` and the step-by-step :func:`lstm_cell` path,
values and gradients, in float64, and with ``torch.autograd.gradcheck``.
"""

from __future__ import annotations

import torch

from genmodels.rnn.modules import LSTM

__all__ = ["LSTMLayerFunction", "lstm_layer", "FastLSTM"]


class LSTMLayerFunction(torch.autograd.Function):
    """``(xp[B, T, 4H], h0[B, H], c0[B, H], W_h[4H, H]) -> (hs[B, T, H], h_T, c_T)``.

    ``xp`` is the input half of every pre-activation, ``x_t W_x^T + b``, gates stacked f, i, C, o.
    """

    @staticmethod
    def forward(ctx, xp, h0, c0, W_h):
        B, T, H4 = xp.shape
        H = H4 // 4
        xp_t = xp.transpose(0, 1)                        # (T, B, 4H) view: step t is xp_t[t]
        gates = xp.new_empty(T, B, H4)                   # activated f, i, C̃, o of every step
        cs = xp.new_empty(T + 1, B, H)                   # C_0 .. C_T
        hs = xp.new_empty(T + 1, B, H)                   # h_0 .. h_T
        hs[0], cs[0] = h0, c0
        W_hT = W_h.t()                                   # (H, 4H)
        for t in range(T):
            g = torch.addmm(xp_t[t], hs[t], W_hT, out=gates[t])  # pre-activations a, (B, 4H)
            torch.sigmoid_(g[:, :2 * H])                 # f, i   (2.16, 2.17)
            torch.tanh_(g[:, 2 * H:3 * H])               # C̃      (2.18)
            torch.sigmoid_(g[:, 3 * H:])                 # o      (2.20)
            f, i, C_tilde, o = g.split(H, dim=1)
            c = torch.addcmul(f * cs[t], i, C_tilde, out=cs[t + 1])  # C_t  (2.19)
            torch.mul(o, torch.tanh(c), out=hs[t + 1])   # h_t    (2.21)
        ctx.save_for_backward(gates, cs, hs, W_h)
        out = hs[1:].transpose(0, 1)                     # (B, T, H)
        return out, hs[T].clone(), cs[T].clone()

    @staticmethod
    def backward(ctx, d_out, d_hT, d_cT):
        gates, cs, hs, W_h = ctx.saved_tensors
        T, B, H4 = gates.shape
        H = H4 // 4
        d_out_t = (d_out if d_out is not None else gates.new_zeros(B, T, H)).transpose(0, 1)
        dh = d_hT.clone() if d_hT is not None else gates.new_zeros(B, H)
        dc = d_cT.clone() if d_cT is not None else gates.new_zeros(B, H)
        da = gates.new_empty(T, B, H4)                   # ∂L/∂a_t for every step
        for t in range(T - 1, -1, -1):
            f, i, C_tilde, o = gates[t].split(H, dim=1)
            dh += d_out_t[t]
            tanh_c = torch.tanh(cs[t + 1])
            da_f, da_i, da_C, da_o = da[t].split(H, dim=1)
            torch.mul(dh, tanh_c, out=da_o)                          # do
            dc.addcmul_(dh * o, 1 - tanh_c * tanh_c)                 # dC
            torch.mul(dc, cs[t], out=da_f)                           # df
            torch.mul(dc, C_tilde, out=da_i)                         # di
            torch.mul(dc, i, out=da_C)                               # dC̃
            dc.mul_(f)                                               # dC_{t-1}
            # through the nonlinearities: σ' = σ(1 − σ), tanh' = 1 − tanh²
            da_f.mul_(f * (1 - f))
            da_i.mul_(i * (1 - i))
            da_C.mul_(1 - C_tilde * C_tilde)
            da_o.mul_(o * (1 - o))
            dh = da[t] @ W_h                                         # dh_{t-1}, (B, H)
        d_xp = da.transpose(0, 1) if ctx.needs_input_grad[0] else None  # (B, T, 4H)
        d_W = None
        if ctx.needs_input_grad[3]:
            # dW_h = Σ_t da_t^T h_{t-1}: one (4H, T·B) @ (T·B, H) matmul
            d_W = da.reshape(T * B, H4).t() @ hs[:-1].reshape(T * B, H)
        return d_xp, dh, dc, d_W


def lstm_layer(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor, h0: torch.Tensor,
               c0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One LSTM layer over ``x[B, T, I]`` with stacked weights ``W[4H, H + I]`` acting on
    ``[h, x]`` and bias ``b[4H]``; returns ``(outputs[B, T, H], h_T, c_T)``."""
    H = W.shape[0] // 4
    xp = x @ W[:, H:].t() + b                            # (B, T, 4H): input half, all steps
    return LSTMLayerFunction.apply(xp, h0, c0, W[:, :H])


class FastLSTM(LSTM):
    """:class:`genmodels.rnn.LSTM` with the hand-written BPTT of :class:`LSTMLayerFunction`
    (``fused`` is ignored: this is the fast path)."""

    def forward(self, x, state=None):
        self._check_input(x)
        h0, c0 = self._unpack_lstm_state(state, x)
        inp, h_last, c_last = x, [], []
        for l in range(self.num_layers):
            W, b = self.layer_params(l)
            out, h, c = lstm_layer(inp, W, b, h0[l], c0[l])
            h_last.append(h)
            c_last.append(c)
            inp = self._between_layers(out, l)
        return inp, (self._pack_state(h_last), self._pack_state(c_last))
