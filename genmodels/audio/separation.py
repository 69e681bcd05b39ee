r"""Models for audio modification (eqs. 2.36–2.38) and the permutation-invariant loss.

- **Separation (2.36)** S_i = F(S_mix; θ_i): :class:`MaskNet` estimates one mask per source on the
  mixture's STFT, M_i ∈ [0, 1]^{F×T}, and returns ŝ_i = ISTFT(M_i ⊙ STFT(S_mix)) (the mixture's
  phase). With one source it is a denoiser (speech from speech + noise).
- **Restoration (2.37)** S_restored = R(S_degraded; θ_r) and **enhancement (2.38)**
  Ŝ = G(S_processed; θ_g): :class:`WaveUNet`, a residual 1-D U-Net on the waveform,
  ŝ = x + U(x). A mask cannot put back what clipping or a gap removed; a waveform model can.
- **Permutation invariance**: a separator's outputs have no natural order, so its loss is the
  best assignment of outputs to references, max over permutations π of (1/S) Σ_i SI-SDR(ŝ_π(i), s_i)
  (:func:`permutation_invariant_si_sdr`, Yu et al., 2017).
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F
from torch import nn

from genmodels._checks import check_int, check_same_dtype, check_same_shape, check_tensor
from genmodels.audio.measures import si_sdr
from genmodels.audio.stft import check_audio, check_stft_args, istft, stft

__all__ = ["permutation_invariant_si_sdr", "MaskNet", "WaveUNet"]


def permutation_invariant_si_sdr(estimates: torch.Tensor, references: torch.Tensor
                                 ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""max_π (1/S) Σ_i SI-SDR(ŝ_{π(i)}, s_i) and the maximising π.

    ``estimates, references [B, S, N]`` (S ≤ 6: all S! permutations are tried). Returns
    ``(best [B] in dB, perm [B, S] long)`` where ``estimates[b, perm[b, i]]`` is matched with
    ``references[b, i]``. Differentiable in ``estimates`` (through the chosen permutation).
    """
    check_audio("estimates", estimates)
    check_audio("references", references)
    check_tensor("estimates", estimates, ndim=3)
    check_same_shape(("estimates", "references"), estimates, references)
    check_same_dtype(("estimates", "references"), estimates, references)
    S = estimates.shape[1]
    if S > 6:
        raise ValueError(f"estimates: at most 6 sources (S! permutations are tried), got {S}")
    # pairwise[b, i, j] = SI-SDR(estimate j, reference i): S² evaluations instead of S!·S
    # >>> exercise audio.pit: eq. 2.36
    # what: the permutation-invariant SI-SDR: best mean SI-SDR over output orderings
    # hint: score every permutation by the MEAN SI-SDR of its pairs and keep the best (largest).
    # mistake: `scores.max(dim=-1)` -> `scores.min(dim=-1)`
    # uses: audio.si_sdr
    B, N = estimates.shape[0], estimates.shape[-1]
    pairwise = si_sdr(estimates[:, None, :, :].expand(B, S, S, N),
                      references[:, :, None, :].expand(B, S, S, N))     # [B, S(ref), S(est)]
    perms = torch.tensor(list(itertools.permutations(range(S))), device=estimates.device)  # [P, S]
    idx = torch.arange(S, device=estimates.device)
    scores = pairwise[:, idx[None, :], perms].mean(-1)                   # [B, P]
    best, which = scores.max(dim=-1)
    return best, perms[which]
    # <<< exercise audio.pit


class _ResBlock(nn.Module):
    """x + Conv1x1(GELU(DilatedConv(GroupNorm(x)))) over frames."""

    def __init__(self, channels: int, kernel_size: int, dilation: int):
        super().__init__()
        self.norm = nn.GroupNorm(1, channels)
        self.conv = nn.Conv1d(channels, channels, kernel_size, dilation=dilation,
                              padding=dilation * (kernel_size - 1) // 2)
        self.out = nn.Conv1d(channels, channels, 1)

    def forward(self, x):
        return x + self.out(F.gelu(self.conv(self.norm(x))))


class MaskNet(nn.Module):
    r"""Eq. 2.36: S_i = F(S_mix; θ_i) by time–frequency masking.

        Y = STFT(S_mix),   M = σ(Net(log(|Y| + ε))) ∈ [0,1]^{S×F×T},   ŝ_i = ISTFT(M_i ⊙ Y)

    ``Net`` is a stack of dilated residual convolutions over frames (frequency bins as channels),
    so each mask value sees about ±(kernel_size−1)/2·Σ dilations frames of context.
    ``forward(mixture [B, N]) → [B, n_sources, N]``.
    """

    def __init__(self, n_fft: int = 256, hop_length: int = 64, n_sources: int = 2,
                 hidden: int = 256, layers: int = 6, kernel_size: int = 3):
        super().__init__()
        check_stft_args(n_fft, hop_length)
        if hop_length > n_fft // 2:
            raise ValueError(f"hop_length: must be <= n_fft // 2 = {n_fft // 2} for perfect "
                             f"reconstruction, got {hop_length}")
        for name, v in (("n_sources", n_sources), ("hidden", hidden), ("layers", layers)):
            check_int(name, v, minimum=1)
        check_int("kernel_size", kernel_size, minimum=1)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size: must be odd (centred context), got {kernel_size}")
        self.n_fft, self.hop_length, self.n_sources = n_fft, hop_length, n_sources
        n_bins = n_fft // 2 + 1
        self.inp = nn.Conv1d(n_bins, hidden, 1)
        self.blocks = nn.Sequential(*[_ResBlock(hidden, kernel_size, 2 ** (i % 4))
                                      for i in range(layers)])
        self.head = nn.Conv1d(hidden, n_sources * n_bins, 1)

    def masks(self, spec: torch.Tensor) -> torch.Tensor:
        """Complex ``spec [B, F, T]`` → masks ``[B, S, F, T]`` in [0, 1]."""
        B, n_bins, T = spec.shape
        feat = torch.log(spec.abs() + 1e-5)                              # [B, F, T]
        feat = feat - feat.mean(dim=(1, 2), keepdim=True)                # level invariance
        h = self.blocks(self.inp(feat))                                  # [B, hidden, T]
        return torch.sigmoid(self.head(h)).view(B, self.n_sources, n_bins, T)

    def forward(self, mixture: torch.Tensor) -> torch.Tensor:
        check_audio("mixture", mixture)
        check_tensor("mixture", mixture, ndim=2)
        N = mixture.shape[-1]
        # >>> exercise audio.masking: eq. 2.36
        # what: mask-based separation ŝ_i = ISTFT(M_i ⊙ STFT(mixture))
        # hint: multiply the COMPLEX mixture spectrogram by each source's mask (keep the phase),
        #   then invert.
        # mistake: `self.masks(spec) * spec[:, None]` -> `self.masks(spec) * spec.abs()[:, None]`
        spec = stft(mixture, self.n_fft, self.hop_length)                # [B, F, T]
        masked = self.masks(spec) * spec[:, None]                        # [B, S, F, T]
        return istft(masked, self.n_fft, self.hop_length, N)             # [B, S, N]
        # <<< exercise audio.masking


class WaveUNet(nn.Module):
    r"""Eqs. 2.37–2.38: R(S_degraded; θ_r) and G(S_processed; θ_g) as ŝ = x + U(x).

    U works on a learned frame representation, as Conv-TasNet does: a strided convolution
    (kernel 2·stride) turns the waveform into ``channels`` features every ``stride`` samples; a
    U-Net of ``depth`` levels (a convolution and stride-2 downsampling each, dilated residual
    blocks at the bottom, transposed-convolution upsampling with skip connections) processes
    them; a transposed convolution turns them back into a waveform. The last layer starts at
    zero, so an untrained model is the identity and training can only move it from there.
    ``forward(x [B, N]) → [B, N]``; N is padded to a multiple of stride·2^depth inside.
    """

    def __init__(self, channels: int = 48, depth: int = 3, kernel_size: int = 5,
                 stride: int = 8, bottleneck_layers: int = 3):
        super().__init__()
        for name, v in (("channels", channels), ("depth", depth), ("stride", stride),
                        ("bottleneck_layers", bottleneck_layers)):
            check_int(name, v, minimum=1)
        check_int("kernel_size", kernel_size, minimum=1)
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size: must be odd, got {kernel_size}")
        self.depth, self.stride = depth, stride
        pad = kernel_size // 2
        C = channels
        self.encoder = nn.Conv1d(1, C, 2 * stride, stride=stride, padding=stride // 2)
        self.down = nn.ModuleList(
            nn.Sequential(nn.Conv1d(C, C, kernel_size, stride=2, padding=pad), nn.GELU())
            for _ in range(depth))
        self.bottleneck = nn.Sequential(*[_ResBlock(C, 3, 2 ** i) for i in range(bottleneck_layers)])
        self.up = nn.ModuleList(nn.ModuleDict({
            "up": nn.ConvTranspose1d(C, C, 4, stride=2, padding=1),
            "conv": nn.Sequential(nn.Conv1d(2 * C, C, kernel_size, padding=pad), nn.GELU())})
            for _ in range(depth))
        self.decoder = nn.ConvTranspose1d(C, 1, 2 * stride, stride=stride, padding=stride // 2)
        nn.init.zeros_(self.decoder.weight)
        nn.init.zeros_(self.decoder.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_audio("x", x)
        check_tensor("x", x, ndim=2)
        N = x.shape[-1]
        multiple = self.stride * 2 ** self.depth
        padded = F.pad(x, (0, (-N) % multiple))[:, None]                 # [B, 1, N']
        h = F.gelu(self.encoder(padded))                                 # [B, C, N'/stride]
        skips = []
        for down in self.down:
            skips.append(h)
            h = down(h)                                                  # halve the length
        h = self.bottleneck(h)
        for up, skip in zip(self.up, reversed(skips)):
            h = up["up"](h)                                              # double the length
            h = up["conv"](torch.cat([h, skip], dim=1))
        # >>> exercise audio.waveunet: eqs. 2.37–2.38
        # what: the residual waveform model ŝ = x + U(x)
        # hint: the network predicts a CORRECTION added to its input, cropped back to the input length N.
        # mistake: `return x + self.decoder(h)[:, 0, :N]` -> `return self.decoder(h)[:, 0, :N]`
        return x + self.decoder(h)[:, 0, :N]
        # <<< exercise audio.waveunet
