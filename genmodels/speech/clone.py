r"""Voice cloning: a new speaker embedding for a frozen multi-speaker TTS, and the judge of it.

The TTS of :mod:`genmodels.speech.tts` adds a learned vector ``s_v`` (one row of
``FastSpeechTTS.speaker`` per training voice) to every phone state. Cloning a voice it never
heard fits a *new* vector ``s*`` from a little of that voice's speech, everything else frozen
(the speaker-adaptation recipe of Arik et al. 2018, "Neural Voice Cloning with a Few Samples"):

.. math::
    s^* = \arg\min_s \; \frac{1}{|A|}\sum_{(x, y, d) \in A} \Big[\,
          \lVert \hat y_\theta(x, s, d) - y \rVert_1
          + w \,\lVert \hat\ell_\theta(x, s) - \log(1 + d) \rVert_2^2 \Big]

over the adaptation utterances ``A`` (phones x, real frames y, phone durations d from the
corpus alignment): the TTS's own training loss (:meth:`TTSTask._losses`), with θ fixed. Adam
starts from the mean of the training voices' rows (plus a little seeded noise).

What this module holds:

* :func:`take_until` — how many utterances, taken in order, reach an audio budget (15 s, 30 s,
  1 min, 2 min): the shortest prefix whose total is at least the budget;
* :class:`ClonedSpeaker` — the speaker table with one extra, trainable row; the trained rows are
  a frozen buffer, so a clone cannot move them;
* :func:`fit_speaker_embedding` — Adam on that row with the TTS task's loss;
* :func:`frame_f0` and :func:`speaker_features` — what the speaker classifier sees of an
  utterance: the quartiles of its log pitch over voiced frames, the voiced fraction, and the mean
  MFCCs (c1…) of its voiced frames (the spectral envelope: vocal-tract length, tilt, bandwidth);
* :class:`SpeakerClassifier` — a small MLP over those features (standardised), or over the
  pitch ones alone (:data:`PITCH_FEATURES`).

The experiment (:mod:`genmodels.speech.task_clone`, ``experiment=clone_speech``) wires them up.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from genmodels._checks import check_int, check_positive, check_range, check_tensor
from genmodels.audio.features import mfcc
from genmodels.audio.stft import check_audio, hann_window, power_frames_first
from genmodels.train.task import batch_indices

__all__ = [
    "PITCH_FEATURES",
    "ClonedSpeaker",
    "SpeakerClassifier",
    "feature_names",
    "fit_speaker_embedding",
    "frame_f0",
    "speaker_features",
    "take_until",
]


def take_until(seconds: Sequence[float], budget: float) -> int:
    """The number ``n`` of items, taken in order, whose total ``seconds[0] + … + seconds[n−1]``
    first reaches ``budget``: the shortest prefix with a total ≥ ``budget``.

    A ``ValueError`` names ``budget`` when all the items together are shorter."""
    if isinstance(seconds, torch.Tensor):
        seconds = seconds.tolist()
    if not isinstance(seconds, (list, tuple)) or not seconds:
        raise ValueError(f"seconds: expected a non-empty list of durations, got {seconds!r}")
    for s in seconds:
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s) or s <= 0:
            raise ValueError(f"seconds: every duration must be a finite number > 0, got {s!r}")
    check_positive("budget", budget)
    total = 0.0
    for n, s in enumerate(seconds, 1):
        total += s
        if total >= budget:
            return n
    raise ValueError(f"budget: {budget} s exceeds the {total:.2f} s of all {len(seconds)} items")


class ClonedSpeaker(nn.Module):
    """A speaker-embedding table with one new row: ``forward(idx)`` looks ``idx`` up in
    ``[table; new]``, so rows ``0 … S−1`` are the trained voices (a frozen buffer) and row ``S``
    is the clone (the only parameter). Drop-in for ``FastSpeechTTS.speaker``.

    Args: ``table [S, d]`` the trained rows; ``init [d]`` the new row's first value."""

    def __init__(self, table: torch.Tensor, init: torch.Tensor):
        super().__init__()
        check_tensor("table", table, ndim=2)
        check_tensor("init", init, ndim=1)
        if init.shape[0] != table.shape[1]:
            raise ValueError(f"init: expected {table.shape[1]} values like a row of table, got "
                             f"{init.shape[0]}")
        self.register_buffer("table", table.detach().clone())
        self.new = nn.Parameter(init.detach().clone().to(table.dtype))

    @property
    def index(self) -> int:
        """The row of the clone: the number of trained voices."""
        return self.table.shape[0]

    @property
    def weight(self) -> torch.Tensor:
        return torch.cat([self.table, self.new[None]])                   # (S + 1, d)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return F.embedding(idx, self.weight)


def fit_speaker_embedding(tts_task, items: list, init: torch.Tensor, steps: int, lr: float,
                          batch_size: int, seed: int = 0, extra: list | None = None,
                          extra_lr: float | None = None) -> tuple[torch.Tensor, list[float]]:
    """Fit the new row of the TTS's :class:`ClonedSpeaker` to ``items`` by Adam (with
    ``extra``: also those parameters, at ``extra_lr``, e.g. the LoRA adapters of
    :func:`~genmodels.transfer.lora.apply_lora`; the caller resets them between clones).

    ``tts_task``: a :class:`~genmodels.speech.task_tts.TTSTask` whose ``model.speaker`` is a
    :class:`ClonedSpeaker` and whose other parameters are frozen; ``items``: its training items
    (``TTSTask._item(u, speaker=clone row)``, frames normalised); the loss is the task's own
    (``_losses``: frame L1 + duration MSE, teacher-forced durations), on minibatches of
    ``min(batch_size, len(items))`` drawn by epochs (:func:`~genmodels.train.task.batch_indices`
    with ``seed``). The model runs in eval mode (no dropout): the clone sees the TTS it will
    speak with. Returns the fitted row ``[d]`` and the loss at every step."""
    speaker = getattr(getattr(tts_task, "model", None), "speaker", None)
    if not isinstance(speaker, ClonedSpeaker):
        raise ValueError("tts_task: its model.speaker must be a ClonedSpeaker (see "  # noqa: TRY004
                         "task_clone.CloneTask, which installs one)")
    if not isinstance(items, list) or not items:
        raise ValueError(f"items: expected a non-empty list of TTS items, got {type(items).__name__}")
    if any(it.get("speaker") != speaker.index for it in items):
        raise ValueError(f"items: every item must use the clone's row {speaker.index}")
    check_tensor("init", init, ndim=1)
    check_int("steps", steps, minimum=1)
    check_positive("lr", lr)
    check_int("batch_size", batch_size, minimum=1)
    check_int("seed", seed, minimum=0)
    extra = list(extra or [])
    if extra:
        check_positive("extra_lr", extra_lr)
    allowed = {id(speaker.new)} | {id(p) for p in extra}
    trainable = [p for p in tts_task.model.parameters() if p.requires_grad]
    if {id(p) for p in trainable} != allowed or len(trainable) != len(allowed):
        raise ValueError("tts_task: every parameter but the clone's row (and extra) must be "
                         "frozen, and those trainable")
    with torch.no_grad():
        speaker.new.copy_(init)
    tts_task.items["clone"] = items
    tts_task.model.eval()
    groups = [{"params": [speaker.new], "lr": lr}]
    if extra:
        groups.append({"params": extra, "lr": extra_lr})
    opt = torch.optim.Adam(groups)
    B = min(batch_size, len(items))
    losses = []
    with torch.enable_grad():
        for step in range(steps):
            idx = batch_indices(len(items), B, step, seed).tolist()
            loss, _, _ = tts_task._losses("clone", idx)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    del tts_task.items["clone"]
    return speaker.new.detach().clone(), losses


# ------------------------------------------------------------------------------ the judge
def frame_f0(audio: torch.Tensor, sample_rate: int, n_fft: int = 512, hop_length: int = 64,
             fmin: float = 60.0, fmax: float = 400.0, threshold: float = 0.5
             ) -> tuple[torch.Tensor, torch.Tensor]:
    r"""Pitch per frame by the autocorrelation method (Boersma 1993).

    Per Hann-windowed frame, the autocorrelation is the inverse FFT of the power spectrum
    (Wiener–Khinchin), divided by the window's own autocorrelation and by its value at lag 0:

    .. math::
        \rho_t(\tau) = \frac{r_t(\tau) / r_w(\tau)}{r_t(0) / r_w(0)},\qquad
        r_t = \mathrm{IFFT}(|X_t|^2)

    The period is the *shortest* lag in ``[sr/fmax, sr/fmin]`` whose ρ is within 15 % of the
    best one there (a period's multiples score as high: taking the best alone halves f0), refined
    to the local maximum and by a parabola through its neighbours. A frame is voiced when that ρ
    exceeds ``threshold`` and its energy is within 30 dB of the loudest frame's.

    Args: ``audio [N]``; ``n_fft`` even, ``> 2·sr/fmin`` (two periods of the lowest pitch).
    Returns ``(f0 [T] in Hz, voiced [T] bool)``, ``T = 1 + N // hop_length``.
    """
    check_audio("audio", audio)
    check_tensor("audio", audio, ndim=1)
    check_int("sample_rate", sample_rate, minimum=1)
    check_int("n_fft", n_fft, minimum=4)
    check_int("hop_length", hop_length, minimum=1)
    check_positive("fmin", fmin)
    check_positive("fmax", fmax)
    check_range("threshold", threshold, 0.0, 1.0)
    if n_fft % 2:
        raise ValueError(f"n_fft: must be even, got {n_fft}")
    if fmax <= fmin or fmax >= sample_rate / 2:
        raise ValueError(f"fmax: must lie in (fmin={fmin}, sample_rate/2={sample_rate / 2}), got {fmax}")
    lo, hi = math.floor(sample_rate / fmax), math.ceil(sample_rate / fmin)
    if 2 * hi >= n_fft:
        raise ValueError(f"n_fft: {n_fft} is too short for fmin={fmin} Hz at {sample_rate} Hz "
                         f"(needs > {2 * hi})")
    x = audio.double()
    P = power_frames_first(x, n_fft, hop_length)                            # (T, F)
    r = torch.fft.irfft(P, n=n_fft, dim=-1)                                  # (T, n_fft)
    w = hann_window(n_fft, torch.float64)
    r_w = torch.fft.irfft(torch.fft.rfft(w).abs() ** 2, n=n_fft)             # (n_fft,)
    rho = (r / r_w) / (r[:, :1] / r_w[0]).clamp(min=1e-300)                 # (T, n_fft)
    seg = rho[:, lo:hi + 1]                                                  # lags lo … hi
    L = seg.shape[1]
    best = seg.max(-1).values
    first = (seg >= 0.85 * best[:, None]).double().argmax(-1)               # shortest good lag
    window = (first[:, None] + torch.arange(max(2, lo // 2 + 1))[None]).clamp(max=L - 1)
    k = torch.gather(window, 1, torch.gather(seg, 1, window).argmax(-1, keepdim=True))[:, 0]
    k = k.clamp(1, L - 2)                                                    # its local maximum
    y0, y1, y2 = (torch.gather(seg, 1, (k + j)[:, None])[:, 0] for j in (-1, 0, 1))
    curv = y0 - 2 * y1 + y2
    delta = torch.where(curv < 0, 0.5 * (y0 - y2) / curv.clamp(max=-1e-12),
                        torch.zeros_like(curv)).clamp(-0.5, 0.5)            # parabola's vertex
    f0 = sample_rate / (lo + k.double() + delta)
    energy = P.sum(-1)
    voiced = (y1 > threshold) & (energy > energy.max() * 1e-3)
    return f0.to(audio.dtype if audio.is_floating_point() else torch.float32), voiced


#: mel bands and MFCCs of the classifier's envelope features (the ASR's analysis at 8 kHz)
_N_MELS, _N_MFCC = 40, 20


def feature_names(n_mfcc: int = _N_MFCC) -> list[str]:
    """Names of :func:`speaker_features`' entries, in order."""
    return ([f"mfcc{j}_mean" for j in range(1, n_mfcc)] +
            ["log_f0_q25", "log_f0_q50", "log_f0_q75", "voiced_fraction"])


def speaker_features(audio: torch.Tensor, sample_rate: int, n_mfcc: int = _N_MFCC,
                     n_fft: int = 256, hop_length: int = 64) -> torch.Tensor:
    """Utterance-level features of a voice ``[n_mfcc + 3]`` (names: :func:`feature_names`):
    the mean of MFCCs c1 … c_{n−1} (eq. 2.30, 40 mel bands) over the voiced frames of
    :func:`frame_f0`, the quartiles of log f0 over them and the voiced fraction. c0 (loudness) is
    left out. An utterance with fewer than 3 voiced frames takes the MFCC mean of all frames,
    log f0 = log 60 Hz and a voiced fraction of 0."""
    check_audio("audio", audio)
    check_tensor("audio", audio, ndim=1)
    check_int("sample_rate", sample_rate, minimum=1)
    check_int("n_mfcc", n_mfcc, minimum=2)
    if n_mfcc > _N_MELS:
        raise ValueError(f"n_mfcc: at most {_N_MELS} (mel bands), got {n_mfcc}")
    x = audio.double()
    c = mfcc(x, sample_rate, n_mfcc=n_mfcc, n_fft=n_fft, hop_length=hop_length,
             n_mels=_N_MELS)[1:]                                            # (n_mfcc − 1, T)
    f0, voiced = frame_f0(x, sample_rate, hop_length=hop_length)            # (T,), frame-aligned
    n = min(c.shape[1], voiced.shape[0])
    voiced = voiced[:n]
    if int(voiced.sum()) >= 3:
        env = c[:, :n][:, voiced].mean(1)
        q = torch.quantile(f0[:n][voiced].double().log(),
                           torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
    else:
        env = c.mean(1)
        q = torch.full((3,), math.log(60.0), dtype=torch.float64)
    return torch.cat([env, q, voiced.double().mean()[None]]).float()


#: the entries of :func:`speaker_features` that describe the voice source alone (pitch, voicing)
PITCH_FEATURES = ("log_f0_q25", "log_f0_q50", "log_f0_q75", "voiced_fraction")


class SpeakerClassifier(nn.Module):
    """Speaker logits from :func:`speaker_features`: keep the ``columns`` (indices into the
    feature vector; default all), standardise (by the training features' mean and standard
    deviation, buffers set by :meth:`fit_scaler`) → Linear → ReLU → dropout → Linear.
    ``forward(features [B, n_features]) -> logits [B, n_speakers]``."""

    def __init__(self, n_features: int, n_speakers: int, hidden: int = 64, dropout: float = 0.1,
                 columns: Sequence[int] | None = None):
        super().__init__()
        check_int("n_features", n_features, minimum=1)
        check_int("n_speakers", n_speakers, minimum=2)
        check_int("hidden", hidden, minimum=1)
        check_range("dropout", dropout, 0.0, 1.0, high_open=True)
        cols = list(range(n_features)) if columns is None else list(columns)
        if not cols or any(isinstance(c, bool) or not isinstance(c, int) or not 0 <= c < n_features
                           for c in cols) or len(set(cols)) != len(cols):
            raise ValueError(f"columns: expected distinct indices in [0, {n_features}), got {columns!r}")
        self.n_features = n_features
        self.register_buffer("columns", torch.tensor(cols))
        self.register_buffer("mean", torch.zeros(len(cols)))
        self.register_buffer("std", torch.ones(len(cols)))
        self.net = nn.Sequential(nn.Linear(len(cols), hidden), nn.ReLU(), nn.Dropout(dropout),
                                 nn.Linear(hidden, n_speakers))

    def _check(self, features) -> torch.Tensor:
        check_tensor("features", features, ndim=2)
        if features.shape[1] != self.n_features:
            raise ValueError(f"features: expected {self.n_features} per row, got {features.shape[1]}")
        return features[:, self.columns]

    def fit_scaler(self, features: torch.Tensor) -> None:
        """Standardise by the mean and standard deviation of ``features [N >= 2, n_features]``."""
        x = self._check(features)
        if x.shape[0] < 2:
            raise ValueError(f"features: need at least 2 rows, got {x.shape[0]}")
        self.mean.copy_(x.mean(0))
        self.std.copy_(x.std(0).clamp(min=1e-6))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.net((self._check(features) - self.mean) / self.std)
