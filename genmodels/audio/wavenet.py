r"""WaveNet (eq. 2.34): an autoregressive model of μ-law audio (van den Oord et al., 2016).

    p(x) = Π_t p(x_{t+1} | x_1, …, x_t, h)

Each residual layer ℓ applies a causal dilated convolution (dilation d_ℓ) and a gated unit

    z = tanh(W_f,ℓ ∗ x + V_f,ℓ h) ⊙ σ(W_g,ℓ ∗ x + V_g,ℓ h)

then a 1×1 convolution back onto the residual stream (x ← x + R_ℓ z) and another onto the skip
path (s ← s + S_ℓ z). The summed skips go through ReLU → 1×1 → ReLU → 1×1 to 256 logits: a
softmax over the μ-law levels of the next sample (``measures.mu_law_encode``).

Output ``"gaussian"`` (ClariNet, Ping et al., 2019) instead models the μ-law-*companded* sample
y = f(x) ∈ [−1, 1] (``measures.mu_law_compress``) as a continuous value: the input is y itself
(one channel) and the head gives a mean and a log standard deviation,

    p(y_{t+1} | y_≤t, h) = N(μ_t, σ_t²),   log σ_t ≥ ``log_scale_min``.

8-bit quantisation puts a noise floor about 40 dB under loud speech into every output; the
Gaussian has no such floor (its resolution is σ, which the network chooses per sample). It needs
long training, though: after 2,000 CPU steps on the synthetic corpus its samples still ran away
when fed back (experiments/wavenet_synthetic/README.md), where the softmax stayed stable.

Index convention (used throughout): ``forward(x)[:, :, t]`` are the logits of sample t+1 given
samples 0…t, so training compares ``logits[..., :-1]`` with ``x[:, 1:]``. Position t sees the
inputs t − receptive_field + 1 … t, where receptive_field = (kernel_size − 1)·Σ_ℓ d_ℓ + 1.

Local conditioning ``cond [B, C, frames]`` (e.g. MFCC or mel frames with hop ``hop_length``) is
upsampled to one vector per sample — by repetition (frame ⌊t / hop⌋ at sample t), by linear
interpolation between the frame centres t·hop (the centred frames of ``features.mfcc``) or by a
learned transposed convolution — and added inside every gate through a 1×1 projection V_ℓ.

Generation uses the "Fast WaveNet" queues (Paine et al., 2016): each layer keeps a ring buffer of
its last (kernel_size − 1)·d inputs, so a new sample costs one matrix-vector product per tap
instead of recomputing the whole receptive field.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from genmodels._checks import (check_choice, check_int, check_positive, check_same_dtype,
                               check_shape, check_tensor, checks_enabled)

__all__ = ["causal_conv1d", "gated_activation", "upsample_by_repetition",
           "upsample_by_interpolation", "gaussian_nll", "WaveNet"]


def causal_conv1d(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                  dilation: int) -> torch.Tensor:
    r"""y[t] = b + Σ_{j=0}^{k−1} W[:, :, j] x[t − (k−1−j)·d]: a convolution that never looks ahead.

    ``x [B, C_in, N]``, ``weight [C_out, C_in, k]`` → ``[B, C_out, N]``; x is zero before t = 0.
    """
    check_tensor("x", x, ndim=3)
    check_tensor("weight", weight, ndim=3)
    if 0 in x.shape:
        raise ValueError(f"x: expected a non-empty [B, C_in, N] signal, got {list(x.shape)}")
    if weight.shape[1] != x.shape[1] or 0 in weight.shape:
        raise ValueError(f"weight: expected [C_out, C_in={x.shape[1]}, k] (non-empty) for x "
                         f"{list(x.shape)}, got {list(weight.shape)}")
    if bias is not None:
        check_tensor("bias", bias, ndim=1)
        check_shape("bias", bias, [weight.shape[0]])
    check_same_dtype(("x", "weight", *(("bias",) if bias is not None else ())),
                     x, weight, *((bias,) if bias is not None else ()))
    check_int("dilation", dilation, minimum=1)
    # >>> exercise audio.wavenet: eq. 2.34
    # what: WaveNet's causal dilated convolution and gated unit tanh(z_f) ⊙ σ(z_g)
    # hint: pad (k−1)·d zeros on the LEFT only, so output t never sees inputs after t; gate = tanh ⊙
    #   sigmoid.
    # mistake: `F.pad(x, (pad, 0))` -> `F.pad(x, (pad // 2, pad - pad // 2))`
    pad = (weight.shape[-1] - 1) * dilation
    return F.conv1d(F.pad(x, (pad, 0)), weight, bias, dilation=dilation)
    # <<< exercise audio.wavenet


def gated_activation(z: torch.Tensor) -> torch.Tensor:
    """tanh(z_f) ⊙ σ(z_g), filter and gate halves stacked on dim 1: ``[B, 2D, ...] → [B, D, ...]``."""
    check_tensor("z", z, min_ndim=2)
    if z.shape[1] % 2:
        raise ValueError(f"z: dimension 1 must be even (filter and gate halves), got {list(z.shape)}")
    # >>> exercise audio.wavenet: eq. 2.34
    z_filter, z_gate = z.chunk(2, dim=1)
    return torch.tanh(z_filter) * torch.sigmoid(z_gate)
    # <<< exercise audio.wavenet


def upsample_by_repetition(cond: torch.Tensor, hop_length: int, n_samples: int) -> torch.Tensor:
    """``[B, C, frames] → [B, C, n_samples]``: sample t gets frame ⌊t / hop_length⌋."""
    return cond.repeat_interleave(hop_length, dim=-1)[..., :n_samples]


def upsample_by_interpolation(cond: torch.Tensor, hop_length: int, n_samples: int) -> torch.Tensor:
    """``[B, C, frames] → [B, C, n_samples]``: frame k sits at sample k·hop (a centred STFT frame);
    sample t = k·hop + r gets (1 − r/hop)·cond[k] + (r/hop)·cond[k+1] (the last frame repeated
    past the end), so the conditioning changes smoothly instead of in steps every hop samples."""
    t = torch.arange(n_samples, device=cond.device)
    k = torch.div(t, hop_length, rounding_mode="floor")
    w = ((t - k * hop_length).to(cond.dtype) / hop_length)                  # [N] in [0, 1)
    last = cond.shape[-1] - 1
    return cond[..., k.clamp(max=last)] * (1 - w) + cond[..., (k + 1).clamp(max=last)] * w


def gaussian_nll(mean: torch.Tensor, log_scale: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Elementwise −log N(y; μ, σ²) = log σ + ½ log 2π + ½ ((y − μ)/σ)², σ = exp(log_scale)."""
    return log_scale + 0.5 * math.log(2 * math.pi) + 0.5 * ((y - mean) * torch.exp(-log_scale)) ** 2


class _ResidualLayer(nn.Module):
    """One dilated gated layer with its residual and skip 1×1 convolutions."""

    def __init__(self, residual_channels: int, dilation_channels: int, skip_channels: int,
                 kernel_size: int, dilation: int, cond_channels: int):
        super().__init__()
        self.dilation = dilation
        self.kernel_size = kernel_size
        self.dilated = nn.Conv1d(residual_channels, 2 * dilation_channels, kernel_size,
                                 dilation=dilation)              # W_f, W_g stacked
        self.cond_proj = (nn.Conv1d(cond_channels, 2 * dilation_channels, 1, bias=False)
                          if cond_channels else None)          # V_f, V_g stacked
        self.res = nn.Conv1d(dilation_channels, residual_channels, 1)
        self.skip = nn.Conv1d(dilation_channels, skip_channels, 1)

    @property
    def queue_length(self) -> int:
        """How many past inputs the layer needs: (k − 1)·d."""
        return (self.kernel_size - 1) * self.dilation

    def forward(self, x, cond_term):
        """``x [B, R, N]``, ``cond_term [B, 2D, N]`` or None → (x_next [B, R, N], skip [B, S, N])."""
        z = causal_conv1d(x, self.dilated.weight, self.dilated.bias, self.dilation)
        if cond_term is not None:
            z = z + cond_term
        gated = gated_activation(z)                             # [B, D, N]
        return x + self.res(gated), self.skip(gated)

    def step(self, x_t, cond_t, queue, t: int):
        """One time step with the Fast-WaveNet ring buffer ``queue [B, R, (k−1)·d]``.

        Reads x[t − j·d] for j = k−1 … 1 (slot (t − j·d) mod L), then stores x[t] in slot t mod L,
        which held x[t − L], the oldest tap, just read. ``x_t [B, R]`` → (x_next, skip_t).
        """
        length = queue.shape[-1]
        slots = [(t - j * self.dilation) % length for j in range(self.kernel_size - 1, 0, -1)]
        taps = torch.cat([queue[:, :, slots], x_t[:, :, None]], dim=2)       # [B, R, k], oldest first
        z = torch.einsum("ock,bck->bo", self.dilated.weight, taps) + self.dilated.bias
        if cond_t is not None:
            z = z + cond_t
        queue[:, :, t % length] = x_t                                          # push x[t]
        gated = gated_activation(z)                                            # [B, D]
        x_next = x_t + F.linear(gated, self.res.weight[:, :, 0], self.res.bias)
        return x_next, F.linear(gated, self.skip.weight[:, :, 0], self.skip.bias)


class WaveNet(nn.Module):
    r"""Eq. 2.34: WaveNet over μ-law levels, optionally conditioned on feature frames.

    Args:
        quantization_channels: Q, the number of μ-law levels (softmax size).
        residual_channels, dilation_channels, skip_channels: widths R, D, S.
        kernel_size: taps per dilated convolution (≥ 2; 2 in the paper).
        dilations: dilation of each layer; default ``n_stacks`` repeats of 1, 2, …, 2^{n_layers−1}.
        cond_channels: C of the local conditioning (0 for an unconditional model).
        hop_length: samples per conditioning frame.
        upsample: ``"repeat"`` (frame ⌊t/hop⌋ at sample t), ``"linear"`` (interpolation
            between frame centres) or ``"transposed"`` (a learned ConvTranspose1d with
            kernel = stride = hop_length).
        output: ``"softmax"`` (input and output: Q μ-law levels, long) or ``"gaussian"`` (input
            and output: companded values y ∈ [−1, 1], float; quantization_channels is then only
            the μ of the companding the caller uses and does not size the network).
        log_scale_min: the floor of log σ for the Gaussian output.

    Attributes: ``receptive_field`` = (kernel_size − 1)·Σ dilations + 1 samples;
    ``silence_level`` = Q // 2, the μ-law level of 0.0, used to seed softmax generation (the
    Gaussian model is seeded with y = 0).
    """

    def __init__(self, quantization_channels: int = 256, residual_channels: int = 64,
                 dilation_channels: int = 64, skip_channels: int = 128, kernel_size: int = 2,
                 dilations: Sequence[int] | None = None, n_layers: int = 10, n_stacks: int = 2,
                 cond_channels: int = 0, hop_length: int = 256, upsample: str = "repeat",
                 output: str = "softmax", log_scale_min: float = -9.0):
        super().__init__()
        check_int("quantization_channels", quantization_channels, minimum=2)
        for name, value in (("residual_channels", residual_channels),
                            ("dilation_channels", dilation_channels),
                            ("skip_channels", skip_channels), ("hop_length", hop_length)):
            check_int(name, value, minimum=1)
        check_int("kernel_size", kernel_size, minimum=2)
        check_int("cond_channels", cond_channels, minimum=0)
        check_choice("upsample", upsample, ("repeat", "linear", "transposed"))
        check_choice("output", output, ("softmax", "gaussian"))
        if not (isinstance(log_scale_min, (int, float)) and math.isfinite(log_scale_min)):
            raise ValueError(f"log_scale_min: must be a finite number, got {log_scale_min!r}")
        if dilations is None:
            check_int("n_layers", n_layers, minimum=1)
            check_int("n_stacks", n_stacks, minimum=1)
            dilations = [2 ** i for i in range(n_layers)] * n_stacks
        dilations = list(dilations)
        if not dilations:
            raise ValueError("dilations: needs at least one layer")
        for d in dilations:
            check_int("dilations", d, minimum=1)

        self.quantization_channels = quantization_channels
        self.kernel_size = kernel_size
        self.dilations = tuple(dilations)
        self.cond_channels = cond_channels
        self.hop_length = hop_length
        self.upsample = upsample
        self.output = output
        self.log_scale_min = float(log_scale_min)
        self.receptive_field = (kernel_size - 1) * sum(dilations) + 1
        self.silence_level = quantization_channels // 2

        n_in, n_out = (quantization_channels, quantization_channels) if output == "softmax" \
            else (1, 2)                                          # one-hot → logits | y → (μ, log σ)
        self.embed = nn.Conv1d(n_in, residual_channels, 1)
        self.upsampler = (nn.ConvTranspose1d(cond_channels, cond_channels, hop_length,
                                             stride=hop_length)
                          if cond_channels and upsample == "transposed" else None)
        self.layers = nn.ModuleList(
            _ResidualLayer(residual_channels, dilation_channels, skip_channels, kernel_size, d,
                           cond_channels) for d in dilations)
        self.head1 = nn.Conv1d(skip_channels, skip_channels, 1)
        self.head2 = nn.Conv1d(skip_channels, n_out, 1)

    # ----------------------------------------------------------------------------- helpers
    def _param_dtype(self) -> torch.dtype:
        return self.embed.weight.dtype

    def _embed(self, x: torch.Tensor) -> torch.Tensor:
        """Levels ``[B, N]`` (long) or one-hot ``[B, Q, N]`` (float), or for the Gaussian output
        companded values ``[B, N]`` (float) → ``[B, R, N]``."""
        if self.output == "gaussian":
            return self.embed(x[:, None, :])
        if x.is_floating_point():
            return self.embed(x)
        table = self.embed.weight[:, :, 0].t()                 # [Q, R]: the 1×1 conv as a lookup
        return (F.embedding(x, table) + self.embed.bias).transpose(1, 2)

    def _check_input(self, x) -> tuple[int, int]:
        q = self.quantization_channels
        if not isinstance(x, torch.Tensor):
            raise ValueError(f"x: expected a torch.Tensor, got {type(x).__name__}")
        if self.output == "gaussian":
            check_tensor("x", x, ndim=2)
            if x.dtype != self._param_dtype():
                raise ValueError(f"x: dtype {x.dtype} differs from the model's {self._param_dtype()}")
            if checks_enabled() and x.numel() and bool((x.abs() > 1).any()):
                raise ValueError("x: the Gaussian WaveNet takes μ-law-companded values in [-1, 1] "
                                 "(mu_law_compress), got values outside")
        elif x.is_floating_point():
            check_tensor("x", x, ndim=3)
            if x.shape[1] != q:
                raise ValueError(f"x: float input must be one-hot [B, {q}, N] over the μ-law "
                                 f"levels; got {x.shape[1]} channels (WaveNet models mono audio: "
                                 "quantise one channel with mu_law_encode)")
            if x.dtype != self._param_dtype():
                raise ValueError(f"x: dtype {x.dtype} differs from the model's {self._param_dtype()}")
        else:
            if x.dtype not in (torch.int64, torch.int32):
                raise ValueError(f"x: expected levels as an integer tensor [B, N], got {x.dtype}")
            if x.dim() != 2:
                raise ValueError(f"x: expected levels [B, N] (mono), got shape {list(x.shape)}")
            if x.numel() and (int(x.min()) < 0 or int(x.max()) >= q):
                raise ValueError(f"x: levels must lie in [0, {q - 1}], got "
                                 f"[{int(x.min())}, {int(x.max())}]")
        if x.shape[-1] == 0:
            raise ValueError(f"x: empty audio, shape {list(x.shape)}")
        return x.shape[0], x.shape[-1]

    def upsample_conditioning(self, cond: torch.Tensor | None, batch: int,
                              n_samples: int) -> torch.Tensor | None:
        """Check ``cond [B, C, frames]`` and upsample it to ``[B, C, n_samples]``."""
        if not self.cond_channels:
            if cond is not None:
                raise ValueError("cond: this WaveNet is unconditional (cond_channels=0); pass None")
            return None
        if cond is None:
            raise ValueError(f"cond: this WaveNet needs conditioning [B, {self.cond_channels}, frames]")
        check_tensor("cond", cond, ndim=3)
        if cond.shape[0] != batch or cond.shape[1] != self.cond_channels:
            raise ValueError(f"cond: expected shape [{batch}, {self.cond_channels}, frames], "
                             f"got {list(cond.shape)}")
        if cond.dtype != self._param_dtype():
            raise ValueError(f"cond: dtype {cond.dtype} differs from the model's {self._param_dtype()}")
        if cond.shape[-1] * self.hop_length < n_samples:
            raise ValueError(f"cond: {cond.shape[-1]} frames × hop_length {self.hop_length} cover "
                             f"fewer than the {n_samples} samples requested")
        if self.upsample == "linear":
            return upsample_by_interpolation(cond, self.hop_length, n_samples)
        if self.upsampler is None:
            return upsample_by_repetition(cond, self.hop_length, n_samples)
        return self.upsampler(cond)[..., :n_samples]

    def _head(self, skip: torch.Tensor) -> torch.Tensor:
        """Summed skips ``[B, S, ...]`` → logits ``[B, Q, ...]`` (or μ, log σ ``[B, 2, ...]``):
        ReLU → 1×1 → ReLU → 1×1."""
        return self.head2(F.relu(self.head1(F.relu(skip))))

    # ----------------------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced logits: ``x`` levels ``[B, N]`` (long) or one-hot ``[B, Q, N]`` and
        ``cond [B, C, frames]`` → ``[B, Q, N]``, column t the logits of sample t+1. Gaussian
        output: ``x`` companded values ``[B, N]`` → ``[B, 2, N]``, (μ, raw log σ) of sample t+1."""
        batch, n = self._check_input(x)
        cond_up = self.upsample_conditioning(cond, batch, n)               # [B, C, N] or None
        h = self._embed(x)                                                 # [B, R, N]
        skip_sum = 0.0
        for layer in self.layers:
            cond_term = layer.cond_proj(cond_up) if cond_up is not None else None  # [B, 2D, N]
            h, skip = layer(h, cond_term)
            skip_sum = skip_sum + skip                                     # [B, S, N]
        return self._head(skip_sum)

    def gaussian_parameters(self, out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Head output ``[B, 2, ...]`` → (μ, log σ) each ``[B, ...]``, log σ floored at
        ``log_scale_min`` (keeps the density finite on perfectly predictable samples)."""
        return out[:, 0], out[:, 1].clamp(min=self.log_scale_min)

    def loss(self, x: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Mean negative log-likelihood (nats per sample) of x[1:] given x[:-1]; ``x [B, N]`` long
        (softmax) or companded float values (Gaussian: a density, so it can be negative)."""
        gaussian = self.output == "gaussian"
        if not isinstance(x, torch.Tensor) or x.is_floating_point() != gaussian or x.dim() != 2 \
                or x.shape[1] < 2:
            kind = "companded float values" if gaussian else "integer levels"
            raise ValueError(f"x: loss needs {kind} [B, N] with N >= 2 (the targets are x[:, 1:])")
        out = self(x, cond)                                                # [B, Q or 2, N]
        if gaussian:
            mean, log_scale = self.gaussian_parameters(out[:, :, :-1])
            return gaussian_nll(mean, log_scale, x[:, 1:]).mean()
        return F.cross_entropy(out[:, :, :-1], x[:, 1:])

    @torch.no_grad()
    def generate(self, cond: torch.Tensor | None, n_samples: int,
                 generator: torch.Generator | None = None, temperature: float = 1.0, *,
                 batch_size: int = 1, return_logits: bool = False):
        """Sample ``n_samples`` levels autoregressively with the Fast-WaveNet queues.

        The sequence is seeded with x_0 = ``silence_level``; step t feeds x_t and draws x_{t+1}
        from softmax(logits / temperature) (argmax when temperature = 0). Returns the levels
        ``[B, n_samples]`` = x_1 … x_n (long), and with ``return_logits`` also the raw logits
        ``[B, Q, n_samples]``, which equal ``forward(cat(x_0, x_1 … x_{n−1}), cond)``.
        Gaussian output: seeded with y_0 = 0, y_{t+1} = clamp(μ + temperature·σ·ε, −1, 1) with
        ε ~ N(0, 1) (the mean when temperature = 0); returns float values ``[B, n_samples]``
        and with ``return_logits`` the head outputs ``[B, 2, n_samples]``.
        ``cond [B, C, frames]`` must cover n_samples; B is ``batch_size`` when unconditional.
        """
        check_int("n_samples", n_samples, minimum=1)
        check_positive("temperature", temperature, allow_zero=True)
        check_int("batch_size", batch_size, minimum=1)
        batch = cond.shape[0] if isinstance(cond, torch.Tensor) and cond.dim() == 3 else batch_size
        cond_up = self.upsample_conditioning(cond, batch, n_samples)       # [B, C, n] or None
        cond_terms = ([layer.cond_proj(cond_up) for layer in self.layers]  # each [B, 2D, n]
                      if cond_up is not None else [None] * len(self.layers))
        dtype, device = self._param_dtype(), self.embed.weight.device
        queues = [torch.zeros(batch, layer.res.out_channels, layer.queue_length, dtype=dtype,
                              device=device) for layer in self.layers]
        table = self.embed.weight[:, :, 0].t()                             # [Q, R]
        gaussian = self.output == "gaussian"
        current = (torch.zeros(batch, dtype=dtype, device=device) if gaussian else
                   torch.full((batch,), self.silence_level, dtype=torch.long, device=device))
        samples, all_logits = [], []
        for t in range(n_samples):
            h = (current[:, None] * table[0] if gaussian else table[current]) + self.embed.bias  # [B, R]
            skip_sum = 0.0
            for layer, queue, cond_term in zip(self.layers, queues, cond_terms):
                cond_t = cond_term[:, :, t] if cond_term is not None else None
                h, skip = layer.step(h, cond_t, queue, t)
                skip_sum = skip_sum + skip                                 # [B, S]
            logits = F.linear(F.relu(F.linear(F.relu(skip_sum), self.head1.weight[:, :, 0],
                                              self.head1.bias)),
                              self.head2.weight[:, :, 0], self.head2.bias)  # [B, Q]
            if gaussian:
                mean, log_scale = self.gaussian_parameters(logits[:, :, None])
                noise = torch.randn(batch, 1, generator=generator, dtype=dtype).to(device)
                current = (mean + temperature * log_scale.exp() * noise)[:, 0].clamp(-1.0, 1.0)
            elif temperature == 0:
                current = logits.argmax(dim=-1)
            else:
                probs = torch.softmax(logits / temperature, dim=-1)
                current = torch.multinomial(probs, 1, generator=generator)[:, 0]
            samples.append(current)
            all_logits.append(logits)
        levels = torch.stack(samples, dim=1)                               # [B, n]: levels or y
        if return_logits:
            return levels, torch.stack(all_logits, dim=2)                  # [B, Q, n]
        return levels
