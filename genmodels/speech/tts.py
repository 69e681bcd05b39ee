r"""Text-to-speech, duration-based (FastSpeech-like): phones → log-magnitude STFT frames.

Why durations and not attention: the corpus knows when every phone starts and ends (the script
its synthesiser rendered, ``Utterance.phones``), and on a CPU budget a model that is *told* the
alignment trains in minutes, while an autoregressive decoder must first learn to align through
its attention (the ASR's decoder needed 350–1,000 steps for it, experiments/asr_speech) and can
skip or repeat words when it fails. The text goes through the corpus's own grapheme-to-phone
step (:func:`~genmodels.speech.g2p.phonemize`), so the model reads phones, not letters.

**The model** (:class:`FastSpeechTTS`), all attention through the library's Transformer blocks
(eqs. 2.22–2.26; no second copy of attention):

1. *encoder*: phone embeddings + sinusoidal positions (2.22) → ``enc_layers``
   :class:`~genmodels.transformer.modules.EncoderBlock` (bidirectional self-attention and
   FFN, padding hidden) → H ``[B, K, d]``; plus a learned **speaker embedding** (one vector per
   training voice) added to every position, so a new voice is a new vector (cloning);
2. *duration predictor*: two 1-D convolutions (ReLU, LayerNorm) and a linear map, per phone,
   predict ``log(1 + d_k)`` (d_k = frames of phone k); trained by squared error on the corpus's
   durations, used only at inference;
3. *length regulator* (:func:`length_regulator`): phone k's state is repeated d_k times — the
   true durations in training, the rounded predictions at inference — giving ``[B, T, d]``;
4. *decoder*: + sinusoidal frame positions + a linear code of where the frame lies inside its
   phone (``(t − start_k + ½) / d_k``, so a stop knows its closure from its burst) →
   ``dec_layers`` EncoderBlocks over the frames → linear map to the ``1 + n_fft/2``
   normalised log-magnitudes; trained by L1 on the real frames.

The frames are ``log max(|STFT|, 1e-4)`` of the recording (n_fft 256, hop 64 at 8 kHz: 8 ms),
normalised per frequency bin by the training set's mean and standard deviation (kept in the
model's buffers). The waveform comes from Griffin-Lim
(:func:`~genmodels.audio.griffinlim.griffin_lim`) on the de-normalised magnitudes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from genmodels._checks import check_int, check_range, check_tensor
from genmodels.audio.stft import stft
from genmodels.speech.g2p import SPEECH_PHONES, phonemize
from genmodels.transformer.attention import sinusoidal_positional_encoding
from genmodels.transformer.modules import EncoderBlock

__all__ = ["PhoneVocab", "frame_durations", "log_magnitude", "length_regulator",
           "DurationPredictor", "FastSpeechTTS", "LOG_FLOOR"]

#: magnitudes are floored here before the log (about 80 dB below a full-scale sinusoid)
LOG_FLOOR = 1e-4


class PhoneVocab:
    """Token ids of the phones: 0 = padding, then :data:`SPEECH_PHONES` in sorted order."""

    def __init__(self):
        self.phones = tuple(sorted(SPEECH_PHONES))
        self.index = {p: i + 1 for i, p in enumerate(self.phones)}

    def __len__(self) -> int:
        return 1 + len(self.phones)

    def encode(self, phones) -> list[int]:
        bad = sorted(set(phones) - set(self.index))
        if bad:
            raise ValueError(f"phones: {bad} are not in the phone inventory")
        return [self.index[p] for p in phones]

    def text_to_ids(self, text: str) -> list[int]:
        """The phone ids the corpus would render ``text`` with: the edge silences around the
        phones of :func:`~genmodels.speech.g2p.phonemize`."""
        return self.encode(["sil", *phonemize(text), "sil"])


def frame_durations(phones: list, n_samples: int, hop_length: int) -> list[int]:
    """Frames per phone of a script ``[(phone, start, end), ...]`` (samples, contiguous, as in
    ``Utterance.phones``) for the centred STFT of ``n_samples`` samples: phone k owns frames
    ``round(start_k / hop) … round(start_{k+1} / hop) − 1`` (frame t is centred on sample
    ``t·hop``); the last phone runs to the last frame. The durations sum to the frame count."""
    check_int("hop_length", hop_length, minimum=1)
    if not phones:
        raise ValueError("phones: the script is empty")
    check_int("n_samples", n_samples, minimum=1)
    T = 1 + n_samples // hop_length                       # frames of a centred STFT (even n_fft)
    bounds = [0] + [min(T, int(round(s / hop_length))) for _, s, _ in phones[1:]] + [T]
    return [b - a for a, b in zip(bounds[:-1], bounds[1:])]


def log_magnitude(audio: torch.Tensor, n_fft: int, hop_length: int) -> torch.Tensor:
    """``log max(|STFT|, LOG_FLOOR)`` of ``audio [N]`` as frames ``[T, 1 + n_fft//2]``."""
    return stft(audio, n_fft, hop_length).abs().clamp(min=LOG_FLOOR).log().T.contiguous()


def length_regulator(h: torch.Tensor, durations: torch.Tensor,
                     max_frames: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Expand encoder states by integer durations (FastSpeech's length regulator).

    .. math::
        y_t = h_k \quad\text{for}\quad E_{k-1} \le t < E_k,\qquad E_k = \textstyle\sum_{j \le k} d_j

    State k fills ``d_k`` consecutive frames; a state of duration 0 fills none. Each sequence
    is ``Σ_k d_k`` frames long; the batch is padded with zeros to the longest (or to
    ``max_frames``, which cuts longer ones).

    Args:
        h: ``[B, K, d]`` states (padding positions should have duration 0).
        durations: ``[B, K]`` non-negative integers.
        max_frames: the output length T (default: the longest sequence).

    Returns:
        ``(y [B, T, d], mask [B, T])``, mask True on real frames.
    """
    check_tensor("h", h, ndim=3)
    if not isinstance(durations, torch.Tensor) or durations.is_floating_point() \
            or durations.is_complex() or durations.dtype == torch.bool:
        raise ValueError(f"durations: expected an integer tensor, got "
                         f"{getattr(durations, 'dtype', type(durations).__name__)}")
    if durations.shape != h.shape[:2]:
        raise ValueError(f"durations: expected shape {list(h.shape[:2])} like h's [B, K], got "
                         f"{list(durations.shape)}")
    if durations.numel() and bool((durations < 0).any()):
        raise ValueError("durations: must be >= 0")
    if max_frames is not None:
        check_int("max_frames", max_frames, minimum=0)
    B, K, d = h.shape
    ends = durations.long().cumsum(-1)                                   # E_k, [B, K]
    total = ends[:, -1] if K else torch.zeros(B, dtype=torch.long, device=h.device)
    T = (int(total.max()) if B else 0) if max_frames is None else max_frames
    t = torch.arange(T, device=h.device)
    # >>> exercise speech.length_regulator: FastSpeech length regulator
    # what: repeat each state d_k times: frame t takes the state k with E_{k−1} ≤ t < E_k
    # hint: with the running ends E_k = d_1 + … + d_k, frame t belongs to the first k whose end
    #   is > t, i.e. k = the number of ends ≤ t (searchsorted with right=True); a zero-duration
    #   state owns no frame, and frames past Σ d_k are padding (zeros, mask False).
    # mistake: `right=True)` -> `right=False)`
    k = torch.searchsorted(ends, t.expand(B, T).contiguous(), right=True)   # [B, T]
    mask = t[None, :] < total[:, None]                                   # [B, T]
    k = k.clamp(max=max(K - 1, 0))
    y = torch.gather(h, 1, k[..., None].expand(B, T, d)) if K else h.new_zeros(B, T, d)
    return y * mask[..., None].to(h.dtype), mask
    # <<< exercise speech.length_regulator


class DurationPredictor(nn.Module):
    """Per-phone ``log(1 + frames)`` from the encoder states: (Conv1d → ReLU → LayerNorm →
    dropout) × 2 → Linear. ``forward(h [B, K, d], mask [B, K]) -> [B, K]``."""

    def __init__(self, d_model: int, hidden: int = 128, kernel_size: int = 3, dropout: float = 0.1):
        super().__init__()
        if kernel_size % 2 == 0:
            raise ValueError(f"kernel_size: must be odd, got {kernel_size}")
        self.convs = nn.ModuleList([nn.Conv1d(d_model, hidden, kernel_size, padding=kernel_size // 2),
                                    nn.Conv1d(hidden, hidden, kernel_size, padding=kernel_size // 2)])
        self.norms = nn.ModuleList([nn.LayerNorm(hidden), nn.LayerNorm(hidden)])
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden, 1)

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = h * mask[..., None]
        for conv, norm in zip(self.convs, self.norms):
            x = conv(x.transpose(1, 2)).transpose(1, 2)                 # (B, K, hidden)
            x = self.drop(norm(F.relu(x))) * mask[..., None]
        return self.out(x).squeeze(-1)                                   # (B, K)


class FastSpeechTTS(nn.Module):
    """Phones + speaker → normalised log-magnitude frames (see the module docstring).

    ``encode(phones [B, K], speaker [B]) -> (H [B, K, d], mask [B, K])``;
    ``decode(H, durations [B, K]) -> (frames [B, T, n_bins], frame_mask [B, T])``;
    ``forward(phones, speaker, durations) -> (frames, frame_mask, log_duration [B, K])``
    (teacher-forced durations); ``synthesize(phones, speaker) -> (frames, frame_mask,
    durations)`` with the predicted ones. ``frame_mean``/``frame_std [n_bins]`` de-normalise."""

    def __init__(self, n_phones: int, n_speakers: int, n_bins: int, d_model: int = 128,
                 num_heads: int = 2, enc_layers: int = 3, dec_layers: int = 2, d_ff: int = 512,
                 dropout: float = 0.1, kernel_size: int = 3, max_len: int = 4096):
        super().__init__()
        for name, v in (("n_phones", n_phones), ("n_speakers", n_speakers), ("n_bins", n_bins),
                        ("d_model", d_model), ("num_heads", num_heads), ("enc_layers", enc_layers),
                        ("dec_layers", dec_layers), ("d_ff", d_ff), ("max_len", max_len)):
            check_int(name, v, minimum=1)
        if d_model % num_heads:
            raise ValueError(f"num_heads: must divide d_model={d_model}, got {num_heads}")
        check_range("dropout", dropout, 0.0, 1.0, high_open=True)
        self.d_model, self.max_len = d_model, max_len
        self.embed = nn.Embedding(n_phones, d_model, padding_idx=0)
        nn.init.normal_(self.embed.weight, std=d_model ** -0.5)
        self.register_buffer("pe", sinusoidal_positional_encoding(max_len, d_model),
                             persistent=False)                            # eq. 2.22
        self.encoder = nn.ModuleList(EncoderBlock(d_model, num_heads, dropout, d_ff=d_ff)
                                     for _ in range(enc_layers))
        self.enc_ln = nn.LayerNorm(d_model)
        self.speaker = nn.Embedding(n_speakers, d_model)
        nn.init.normal_(self.speaker.weight, std=0.1)
        self.duration = DurationPredictor(d_model, d_model, kernel_size, dropout)
        self.in_phone = nn.Linear(1, d_model)
        self.decoder = nn.ModuleList(EncoderBlock(d_model, num_heads, dropout, d_ff=d_ff)
                                     for _ in range(dec_layers))
        self.dec_ln = nn.LayerNorm(d_model)
        self.out = nn.Linear(d_model, n_bins)
        self.drop = nn.Dropout(dropout)
        self.register_buffer("frame_mean", torch.zeros(n_bins))
        self.register_buffer("frame_std", torch.ones(n_bins))

    def _check_len(self, name: str, n: int) -> None:
        if n > self.max_len:
            raise ValueError(f"{name}: {n} positions exceed the model's max_len={self.max_len}")

    def encode(self, phones: torch.Tensor, speaker: torch.Tensor):
        if not isinstance(phones, torch.Tensor) or phones.dim() != 2 or phones.is_floating_point():
            raise ValueError(f"phones: expected integer ids [B, K], got "
                             f"{getattr(phones, 'shape', type(phones).__name__)}")
        self._check_len("phones", phones.shape[1])
        mask = phones != 0                                               # (B, K)
        x = self.drop(self.embed(phones) + self.pe[:phones.shape[1]])
        for block in self.encoder:
            x = block(x, key_mask=mask)
        h = self.enc_ln(x) + self.speaker(speaker)[:, None, :]          # + speaker embedding
        return h * mask[..., None], mask

    def decode(self, h: torch.Tensor, durations: torch.Tensor, max_frames: int | None = None):
        y, frame_mask = length_regulator(h, durations, max_frames)       # (B, T, d)
        T = y.shape[1]
        self._check_len("durations", T)
        # where each frame lies inside its phone: the regulator expands (start, duration) too
        ends = durations.cumsum(-1)
        span = torch.stack([ends - durations, durations], -1).to(h.dtype)   # (B, K, 2)
        sd, _ = length_regulator(span, durations, T)                     # (B, T, 2)
        t = torch.arange(T, device=h.device, dtype=h.dtype)
        frac = ((t[None] - sd[..., 0] + 0.5) / sd[..., 1].clamp(min=1.0)) * frame_mask
        x = self.drop(y + self.pe[:T] + self.in_phone(frac[..., None]))
        for block in self.decoder:
            x = block(x, key_mask=frame_mask)
        return self.out(self.dec_ln(x)) * frame_mask[..., None], frame_mask

    def forward(self, phones, speaker, durations):
        h, mask = self.encode(phones, speaker)
        log_duration = self.duration(h, mask)
        frames, frame_mask = self.decode(h, durations)
        return frames, frame_mask, log_duration

    @torch.no_grad()
    def synthesize(self, phones: torch.Tensor, speaker: torch.Tensor, pace: float = 1.0):
        """Frames from the predicted durations ``round((exp(ℓ) − 1) / pace)``, at least one
        frame per real phone."""
        h, mask = self.encode(phones, speaker)
        d = ((self.duration(h, mask).exp() - 1.0) / pace).round().clamp(min=1).long() * mask
        frames, frame_mask = self.decode(h, d)
        return frames, frame_mask, d

    def denormalise(self, frames: torch.Tensor) -> torch.Tensor:
        """Magnitudes ``exp(frames · std + mean)`` of normalised log-magnitude frames."""
        return (frames * self.frame_std + self.frame_mean).exp()
