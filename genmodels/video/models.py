r"""A ConvLSTM frame predictor (Shi et al., 2015): encoder convolutions, a stack of ConvLSTM
layers whose every step is :func:`~genmodels.video.conv_lstm_cell` (eqs. 2.16–2.21 with
convolutions), and a decoder from the layers' hidden maps to the logits of the next frame.

At step t the network reads frame x_t and predicts x_{t+1}. Given k context frames it reads
x_1 … x_k (the prediction of x_{k+1} comes out of the last of them) and then, for each further
frame, its own previous prediction σ(logits) — or, in training with teacher forcing, the true
frame.

Two ways to draw the next frame (``output``):

* ``"pixels"``: the decoder writes every pixel's logit (Shi et al.'s ConvLSTM). Uncertain motion
  comes out as a blurred average of the possible frames.
* ``"transform"``: the next frame is the frame just read, *moved*: a k × k kernel, a softmax
  predicted from the ConvLSTM's state for each clip, is convolved with x_t (a normalised kernel is
  a weighted average of shifts by up to ±k//2 pixels), and a per-pixel mask m from the decoder
  blends it with the decoder's own pixels, x̂_{t+1} = m ⊙ (K_t ⋆ x_t) + (1 − m) ⊙ σ(logits) —
  the CDNA model of Finn, Goodfellow and Levine (2016) with one kernel. The pixels of the digit
  are carried along instead of redrawn, so a confident kernel keeps the digit sharp frame after
  frame. Its output is returned as logits, log(x̂ / (1 − x̂)) (x̂ clamped to [1e-6, 1 − 1e-6]), so
  the losses and the feedback σ(logits) are those of ``"pixels"``.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from genmodels._checks import check_tensor
from genmodels.video.conv_lstm import conv_lstm_cell

__all__ = ["ConvLSTMLayer", "ConvLSTMPredictor"]

_GATES = ("f", "i", "C", "o")


class ConvLSTMLayer(nn.Module):
    """The parameters of one ConvLSTM layer: per gate a ``[K, K + C, k, k]`` kernel over
    [h_{t−1}, x_t] and a ``[K]`` bias (forget bias 1, a common start that keeps the cell's memory
    early in training)."""

    def __init__(self, in_channels: int, hidden: int, kernel_size: int):
        super().__init__()
        for name, v, low in (("in_channels", in_channels, 1), ("hidden", hidden, 1),
                             ("kernel_size", kernel_size, 1)):
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ValueError(f"{name}: expected an integer >= {low}, got {v!r}")
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size: must be odd ('same' padding), got {kernel_size}")
        self.in_channels, self.hidden, self.kernel_size = in_channels, hidden, kernel_size
        bound = 1 / math.sqrt((hidden + in_channels) * kernel_size ** 2)      # as nn.Conv2d
        for g in _GATES:
            w = torch.empty(hidden, hidden + in_channels, kernel_size, kernel_size).uniform_(-bound, bound)
            b = torch.full((hidden,), 1.0) if g == "f" else torch.empty(hidden).uniform_(-bound, bound)
            setattr(self, f"W_{g}", nn.Parameter(w))
            setattr(self, f"b_{g}", nn.Parameter(b))

    def weights(self) -> tuple[torch.Tensor, ...]:
        """``(W_f, b_f, W_i, b_i, W_C, b_C, W_o, b_o)`` in :func:`conv_lstm_cell`'s order."""
        return tuple(getattr(self, f"{p}_{g}") for g in _GATES for p in ("W", "b"))

    def forward(self, x, state):
        h, c = state
        return conv_lstm_cell(x, h, c, *self.weights())


class ConvLSTMPredictor(nn.Module):
    """Frames ``[B, T, C, H, W]`` in [0, 1] → logits of the next frames.

    Encoder: 3×3 conv + ReLU, then a 3×3 conv of stride ``downsample`` (1 or 2) + ReLU. ConvLSTM
    layers of ``hidden`` channels each, layer l reading layer l−1's h. Decoder: the hidden maps of
    all layers, concatenated, through a transposed conv (back to full resolution) + ReLU and a 3×3
    conv to ``channels`` logits.
    """

    def __init__(self, channels: int = 1, enc_channels: int = 16, hidden: Sequence[int] = (32,),
                 kernel_size: int = 5, downsample: int = 2, output: str = "pixels",
                 motion_kernel: int = 7, canvas: int | None = None):
        super().__init__()
        if downsample not in (1, 2):
            raise ValueError(f"downsample: must be 1 or 2, got {downsample!r}")
        if output not in ("pixels", "transform"):
            raise ValueError(f"output: must be 'pixels' or 'transform', got {output!r}")
        if output == "transform":
            if isinstance(motion_kernel, bool) or not isinstance(motion_kernel, int) \
                    or motion_kernel < 1 or motion_kernel % 2 == 0:
                raise ValueError(f"motion_kernel: expected an odd integer >= 1, got {motion_kernel!r}")
            if isinstance(canvas, bool) or not isinstance(canvas, int) or canvas < 1:
                raise ValueError(f"canvas: the transform head needs the frame size, got {canvas!r}")
        hidden = list(hidden)
        if not hidden:
            raise ValueError("hidden: expected at least one ConvLSTM layer, got []")
        for name, v in (("channels", channels), ("enc_channels", enc_channels)):
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{name}: expected an integer >= 1, got {v!r}")
        self.downsample, self.output, self.motion_kernel = downsample, output, motion_kernel
        self.encoder = nn.Sequential(
            nn.Conv2d(channels, enc_channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(enc_channels, enc_channels, 3, stride=downsample, padding=1), nn.ReLU())
        ins = [enc_channels] + hidden[:-1]
        self.layers = nn.ModuleList(ConvLSTMLayer(i, k, kernel_size) for i, k in zip(ins, hidden))
        up = (nn.ConvTranspose2d(sum(hidden), enc_channels, 4, stride=2, padding=1) if downsample == 2
              else nn.Conv2d(sum(hidden), enc_channels, 3, padding=1))
        extra = 1 if output == "transform" else 0                # + the mask's logit
        self.decoder = nn.Sequential(up, nn.ReLU(), nn.Conv2d(enc_channels, channels + extra, 3, padding=1))
        if output == "transform":                                # the state → one k × k kernel per clip
            side = -(-canvas // downsample)
            self.kernel_head = nn.Sequential(nn.Conv2d(sum(hidden), 8, 3, padding=1), nn.ReLU(),
                                             nn.Flatten(), nn.Linear(8 * side * side, motion_kernel ** 2))

    def init_state(self, x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Zero (h, C) of every layer for frames ``x [B, C, H, W]``."""
        check_tensor("x", x, ndim=4)
        B, _, H, W = x.shape
        h, w = -(-H // self.downsample), -(-W // self.downsample)
        return [(x.new_zeros(B, l.hidden, h, w), x.new_zeros(B, l.hidden, h, w)) for l in self.layers]

    def step(self, x: torch.Tensor, state) -> tuple[torch.Tensor, list]:
        """Read frame ``x [B, C, H, W]``; return the logits of the next frame and the new state
        (``state``: one (h, C) pair per layer, as :meth:`init_state` makes)."""
        check_tensor("x", x, ndim=4)
        if len(state) != len(self.layers):
            raise ValueError(f"state: expected one (h, C) pair per layer ({len(self.layers)}), got {len(state)}")
        z = self.encoder(x)
        new, hs = [], []
        for layer, s in zip(self.layers, state):
            h, c = layer(z, s)
            new.append((h, c))
            hs.append(h)
            z = h
        hcat = torch.cat(hs, 1)
        out = self.decoder(hcat)
        if self.output == "pixels":
            return out, new
        return self.transform(x, out, self.kernel_head(hcat)), new

    def transform(self, x: torch.Tensor, decoded: torch.Tensor, kernel_logits: torch.Tensor) -> torch.Tensor:
        """The ``"transform"`` output as logits: ``x [B, C, H, W]`` convolved with each clip's
        softmax kernel (``kernel_logits [B, k²]``), blended by the mask σ(``decoded[:, C]``) with
        the pixels σ(``decoded[:, :C]``)."""
        B, C, H, W = x.shape
        k = self.motion_kernel
        kernel = torch.softmax(kernel_logits, dim=1).view(B, 1, k, k).repeat_interleave(C, 0)
        moved = F.conv2d(x.reshape(1, B * C, H, W), kernel, padding=k // 2, groups=B * C).view(B, C, H, W)
        mask = torch.sigmoid(decoded[:, C:C + 1])
        frame = mask * moved + (1 - mask) * torch.sigmoid(decoded[:, :C])
        return torch.logit(frame.clamp(1e-6, 1 - 1e-6))

    def forward(self, frames: torch.Tensor, context: int, teacher_forcing: bool = False) -> torch.Tensor:
        """Logits ``[B, T − 1, C, H, W]`` of frames 2…T of ``frames [B, T, C, H, W]``: frames
        1…``context`` are read; after them the network reads its own prediction σ(logits) (or,
        with ``teacher_forcing``, the true frame). Only ``frames[:, :context]`` is used unless
        ``teacher_forcing``; T − context is the horizon."""
        check_tensor("frames", frames, ndim=5)
        T = frames.shape[1]
        if isinstance(context, bool) or not isinstance(context, int) or not 1 <= context < T:
            raise ValueError(f"context: expected an integer in [1, {T - 1}] (frames has {T}), got {context!r}")
        state = self.init_state(frames[:, 0])
        out, x = [], frames[:, 0]
        for t in range(T - 1):
            logits, state = self.step(x, state)
            out.append(logits)
            x = frames[:, t + 1] if (t + 1 < context or teacher_forcing) else torch.sigmoid(logits)
        return torch.stack(out, 1)

    @torch.no_grad()
    def predict(self, context: torch.Tensor, horizon: int) -> torch.Tensor:
        """``[B, horizon, C, H, W]`` in [0, 1]: the frames after ``context [B, k, C, H, W]``."""
        check_tensor("context", context, ndim=5)
        if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon < 1:
            raise ValueError(f"horizon: expected an integer >= 1, got {horizon!r}")
        k = context.shape[1]
        pad = context.new_zeros(context.shape[0], horizon, *context.shape[2:])
        logits = self(torch.cat([context, pad], 1), k)
        return torch.sigmoid(logits[:, k - 1:])
