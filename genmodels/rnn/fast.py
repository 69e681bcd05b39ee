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

The code groups these lines so that each time step costs few operations (on a CPU each costs
microseconds of dispatch whatever its size): the factors that do not depend on the recursion —
``o(1−o) tanh(C_t)``, ``o(1 − tanh²(C_t))``, ``C_{t−1} f(1−f)``, ``C̃ i(1−i)``, ``i(1−C̃²)`` — are
computed for all t at once before the loop, which then runs five operations per step.

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

    ``xp`` is the input half of every pre-activation, ``x_t W_x^T + b``, with the gates stacked
    **o, f, i, C̃** (not the f, i, C̃, o of :class:`genmodels.rnn.LSTM`; :func:`lstm_layer`
    reorders): the three σ gates are then one slice in the forward step and the three gates that
    ∂L/∂C_t feeds (f, i, C̃) one slice in the backward step, so each is one operation. Per time
    step the forward loop runs 7 operations and the backward loop 5; everything that does not
    depend on the recursion (the σ' and tanh' factors) is computed for all T at once.
    """

    @staticmethod
    def forward(ctx, xp, h0, c0, W_h):
        B, T, H4 = xp.shape
        H = H4 // 4
        xp_t = xp.transpose(0, 1)                        # (T, B, 4H) view: step t is xp_t[t]
        gates = xp.new_empty(T, B, H4)                   # activated o, f, i, C̃ of every step
        cs = xp.new_empty(T + 1, B, H)                   # C_0 .. C_T
        tanh_cs = xp.new_empty(T, B, H)                  # tanh(C_1) .. tanh(C_T)
        hs = xp.new_empty(T + 1, B, H)                   # h_0 .. h_T
        hs[0], cs[0] = h0, c0
        W_hT = W_h.t()                                   # (H, 4H)
        # per-step views made once (indexing inside the loop would cost one dispatch each)
        x_, g_ = xp_t.unbind(0), gates.unbind(0)
        sig_, tanh_ = gates[:, :, :3 * H].unbind(0), gates[:, :, 3 * H:].unbind(0)
        o_, f_, i_, C_ = (part.unbind(0) for part in gates.split(H, dim=2))
        c_, tc_, h_ = cs.unbind(0), tanh_cs.unbind(0), hs.unbind(0)
        for t in range(T):
            torch.addmm(x_[t], h_[t], W_hT, out=g_[t])   # pre-activations a, (B, 4H)
            torch.sigmoid_(sig_[t])                      # o, f, i   (2.20, 2.16, 2.17)
            torch.tanh_(tanh_[t])                        # C̃         (2.18)
            torch.addcmul(f_[t] * c_[t], i_[t], C_[t], out=c_[t + 1])    # C_t  (2.19)
            torch.mul(o_[t], torch.tanh(c_[t + 1], out=tc_[t]), out=h_[t + 1])  # h_t (2.21)
        ctx.save_for_backward(gates, cs, tanh_cs, hs, W_h)
        out = hs[1:].transpose(0, 1)                     # (B, T, H)
        return out, hs[T].clone(), cs[T].clone()

    @staticmethod
    def backward(ctx, d_out, d_hT, d_cT):
        gates, cs, tanh_cs, hs, W_h = ctx.saved_tensors
        T, B, H4 = gates.shape
        H = H4 // 4
        o, f, i, C_tilde = gates.split(H, dim=2)         # (T, B, H) each
        # the factors that do not depend on the recursion, for all T at once:
        # ∂L/∂C_t -> ∂L/∂a_f, ∂L/∂a_i, ∂L/∂a_C̃ (2.19, then σ' = σ(1 − σ), tanh' = 1 − tanh²)
        to_a = gates.new_empty(T, B, 3, H)
        torch.mul(cs[:-1], f * (1 - f), out=to_a[:, :, 0])     # C_{t−1} σ'(a_f)
        torch.mul(C_tilde, i * (1 - i), out=to_a[:, :, 1])     # C̃ σ'(a_i)
        torch.mul(i, 1 - C_tilde * C_tilde, out=to_a[:, :, 2])  # i tanh'(a_C̃)
        h_to_ao = tanh_cs * o * (1 - o)                  # ∂L/∂h_t -> ∂L/∂a_o         (2.21)
        h_to_c = o * (1 - tanh_cs * tanh_cs)             # ∂L/∂h_t -> ∂L/∂C_t         (2.21)
        d_out_t = (d_out if d_out is not None else gates.new_zeros(B, T, H)).transpose(0, 1)
        dh = d_out_t[T - 1] + d_hT if d_hT is not None else d_out_t[T - 1].clone()
        dc = d_cT.clone() if d_cT is not None else gates.new_zeros(B, H)
        da = gates.new_empty(T, B, H4)                   # ∂L/∂a_t for every step
        da_, da_o_ = da.unbind(0), da[:, :, :H].unbind(0)
        da_fiC_ = da[:, :, H:].view(T, B, 3, H).unbind(0)
        ao_, c_, a_, f_, dout_ = (h_to_ao.unbind(0), h_to_c.unbind(0), to_a.unbind(0),
                                  f.unbind(0), d_out_t.unbind(0))
        dc_b = dc[:, None]                               # (B, 1, H) view of dc, broadcast over f, i, C̃
        for t in range(T - 1, -1, -1):
            torch.mul(dh, ao_[t], out=da_o_[t])                  # da_o
            dc.addcmul_(dh, c_[t])                               # dC_t
            torch.mul(dc_b, a_[t], out=da_fiC_[t])               # da_f, da_i, da_C̃
            dc.mul_(f_[t])                                       # dC_{t−1}
            # dh_{t−1}: from the output at t−1 and through W_h (a_t depends on h_{t−1})
            dh = torch.addmm(dout_[t - 1], da_[t], W_h) if t > 0 else da_[t] @ W_h
        d_xp = da.transpose(0, 1) if ctx.needs_input_grad[0] else None  # (B, T, 4H)
        d_W = None
        if ctx.needs_input_grad[3]:
            # dW_h = Σ_t da_t^T h_{t-1}: one (4H, T·B) @ (T·B, H) matmul
            d_W = da.reshape(T * B, H4).t() @ hs[:-1].reshape(T * B, H)
        return d_xp, dh, dc, d_W


def lstm_layer(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor, h0: torch.Tensor,
               c0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One LSTM layer over ``x[B, T, I]`` with stacked weights ``W[4H, H + I]`` acting on
    ``[h, x]`` and bias ``b[4H]`` (gates f, i, C̃, o as in eqs. 2.16–2.20); returns
    ``(outputs[B, T, H], h_T, c_T)``."""
    H = W.shape[0] // 4
    # rows f, i, C̃, o -> o, f, i, C̃ (the layout LSTMLayerFunction wants): the last block of H
    # rows moves to the front; autograd routes the gradients back to the original rows
    W, b = W.roll(H, dims=0), b.roll(H, dims=0)
    xp = x @ W[:, H:].t() + b                            # (B, T, 4H): input half, all steps
    return LSTMLayerFunction.apply(xp, h0, c0, W[:, :H])


class FastLSTM(LSTM):
    """:class:`genmodels.rnn.LSTM` (same parameters) with the hand-written BPTT of
    :class:`LSTMLayerFunction`: the opt-in fast kernel (``model.impl=bptt``)."""

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
