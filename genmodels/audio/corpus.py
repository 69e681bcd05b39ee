r"""Speech without a download: a synthetic parallel corpus, and a loader for your own WAV files.

**The synthetic corpus** is a source–filter voice model (Fant, 1960). Every speaker says the same
utterances — the same phones with the same durations — so speaker A's frame t and speaker B's
frame t carry the same phone, which gives voice conversion (2.31–2.33) exact ground truth.

A speaker is a glottal source and a vocal tract:

- **source** — a pulse train at the speaker's pitch f0(t) = f0 · intonation(t) · (1 + vibrato)
  · (1 + jitter), written as its harmonics Σ_k k^{−tilt} sin(k φ(t)), φ(t) = 2π Σ f0/sr, kept
  below Nyquist (no aliasing); plus breath noise;
- **filter** — formant resonators |H_i(f)| = F_i² / √((F_i² − f²)² + (B_i f)²) at the phone's
  formants F_1…F_3, scaled by the speaker's vocal-tract factor (a shorter tract, higher formants).

Voiced phones (vowels, nasals) sample the filter at each harmonic: v(t) = Σ_k a_k |H(k f0(t), t)|
sin(k φ(t)). Unvoiced phones (fricatives) and breath are white noise shaped frame by frame in the
STFT domain. Formant tracks and gains move smoothly between phones (15 ms moving average).
Everything is vectorised numpy (all speakers of an utterance at once) and a pure function of
``seed``; the result can be cached as one ``.npz`` file.

**Your own WAV files**: :func:`load_wav_folder` reads every ``*.wav``/``*.flac`` of a folder
(soundfile, resampled to one rate by librosa, mixed to mono) and :class:`AudioClips` cuts them into
fixed-length segments split by file into train/val/test.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from genmodels._checks import check_int, check_positive
from genmodels.errors import DatasetNotFoundError

__all__ = ["Speaker", "SPEAKERS", "PHONES", "SyntheticSpeechCorpus", "synthesize_corpus",
           "formant_response", "AudioClips", "load_wav_folder", "wav_folder_clips"]


# ------------------------------------------------------------------------------ the inventory
@dataclass(frozen=True)
class Speaker:
    """One synthetic voice."""
    name: str
    f0: float                 # mean pitch, Hz
    tract: float              # vocal-tract factor: formant frequencies are multiplied by it
    tilt: float = 1.0         # source spectral tilt: harmonic k has amplitude k^(−tilt)
    vibrato_hz: float = 5.0   # vibrato rate
    vibrato: float = 0.01     # vibrato depth (relative)
    jitter: float = 0.01      # slow random pitch wander (relative std)
    breath: float = 0.05      # breath noise level relative to the voiced part
    bandwidth: float = 1.0    # formant bandwidth factor


#: the built-in voices; ``speakers=n`` takes the first n. Two low and two high voices first.
SPEAKERS = (
    Speaker("A", f0=110.0, tract=1.00, tilt=1.0, vibrato_hz=5.0, jitter=0.010, breath=0.04),
    Speaker("B", f0=210.0, tract=1.18, tilt=1.3, vibrato_hz=5.5, jitter=0.012, breath=0.08,
            bandwidth=1.2),
    Speaker("C", f0=150.0, tract=1.08, tilt=1.15, vibrato_hz=4.5, jitter=0.008, breath=0.06),
    Speaker("D", f0=95.0, tract=0.92, tilt=0.9, vibrato_hz=6.0, jitter=0.015, breath=0.03,
            bandwidth=0.9),
    Speaker("E", f0=250.0, tract=1.25, tilt=1.4, vibrato_hz=5.2, jitter=0.010, breath=0.10,
            bandwidth=1.3),
    Speaker("F", f0=180.0, tract=1.12, tilt=1.2, vibrato_hz=4.8, jitter=0.011, breath=0.07),
)

#: phone → (kind, formants Hz (F1, F2, F3), bandwidths Hz, gain). Kinds: "V" vowel, "N" nasal or
#: liquid (voiced, weak), "F" fricative (noise through its resonances), "S" silence.
PHONES = {
    "a": ("V", (730, 1090, 2440), (90, 110, 170), 1.0),
    "e": ("V", (530, 1840, 2480), (70, 100, 160), 0.9),
    "i": ("V", (270, 2290, 3010), (60, 100, 170), 0.8),
    "o": ("V", (570, 840, 2410), (80, 90, 160), 0.95),
    "u": ("V", (300, 870, 2240), (60, 90, 150), 0.8),
    "ae": ("V", (660, 1720, 2410), (90, 110, 170), 1.0),
    "m": ("N", (250, 1100, 2300), (60, 200, 300), 0.35),
    "n": ("N", (250, 1700, 2600), (60, 200, 300), 0.35),
    "l": ("N", (360, 1300, 2700), (80, 150, 250), 0.5),
    "s": ("F", (2600, 3400, 3800), (600, 700, 800), 0.35),
    "sh": ("F", (1900, 2600, 3300), (400, 600, 700), 0.35),
    "f": ("F", (1500, 2800, 3600), (1500, 1800, 2000), 0.18),
    "sil": ("S", (500, 1500, 2500), (100, 100, 100), 0.0),
}
_VOICED = ("V", "N")
_NEUTRAL = np.array([500.0, 1500.0, 2500.0])      # schwa: where voiced formants rest in consonants
_VOICE_BAR = 0.2                                   # voicing gain under voiced fricatives and stops


def formant_response(freq: np.ndarray, formants: np.ndarray, bandwidths: np.ndarray) -> np.ndarray:
    r"""Cascade of two-pole resonators, unit gain at 0 Hz:

        |H(f)| = Π_i F_i² / √((F_i² − f²)² + (B_i f)²)

    ``freq [..., K]`` and ``formants, bandwidths [..., 3]`` broadcast as ``[..., K, 3]`` → ``[..., K]``.
    """
    f = freq[..., None]
    num = formants[..., None, :] ** 2
    den = np.sqrt((num - f ** 2) ** 2 + (bandwidths[..., None, :] * f) ** 2)
    return np.prod(num / np.maximum(den, 1e-9), axis=-1)


# ------------------------------------------------------------------------------ utterances
def _utterance_script(rng: np.random.Generator, n_samples: int, sample_rate: int):
    """Phones with start/end samples, filling ``n_samples``: silence, (C)V(C)V…, silence."""
    vowels = [p for p, v in PHONES.items() if v[0] == "V"]
    consonants = [p for p, v in PHONES.items() if v[0] in ("N", "F")]
    script, pos = [], 0
    lead = int(rng.uniform(0.04, 0.10) * sample_rate)
    script.append(("sil", 0, lead))
    pos = lead
    tail = int(0.06 * sample_rate)
    while pos < n_samples - tail:
        if rng.random() < 0.8:
            c = consonants[rng.integers(len(consonants))]
            d = int(rng.uniform(0.05, 0.12) * sample_rate)
            script.append((c, pos, min(pos + d, n_samples - tail)))
            pos = script[-1][2]
        if pos >= n_samples - tail:
            break
        v = vowels[rng.integers(len(vowels))]
        d = int(rng.uniform(0.09, 0.22) * sample_rate)
        script.append((v, pos, min(pos + d, n_samples - tail)))
        pos = script[-1][2]
    script.append(("sil", pos, n_samples))
    return [s for s in script if s[2] > s[1]]


def _smooth(track: np.ndarray, width: int) -> np.ndarray:
    """Moving average over the last axis (edge-padded), for smooth phone transitions."""
    if width <= 1:
        return track
    pad = width // 2
    padded = np.concatenate([np.repeat(track[..., :1], pad, -1), track,
                             np.repeat(track[..., -1:], width - 1 - pad, -1)], axis=-1)
    c = np.cumsum(padded, axis=-1, dtype=np.float64)
    c = np.concatenate([np.zeros(c.shape[:-1] + (1,)), c], axis=-1)
    return (c[..., width:] - c[..., :-width]) / width


def _slow_noise(rng: np.random.Generator, shape, n_samples: int, sample_rate: int,
                rate_hz: float = 8.0) -> np.ndarray:
    """Unit-std noise that changes at about ``rate_hz`` (linear interpolation of knots)."""
    n_knots = max(2, int(n_samples / sample_rate * rate_hz) + 2)
    knots = rng.standard_normal(tuple(shape) + (n_knots,))
    x = np.linspace(0, n_knots - 1, n_samples)
    i = np.minimum(x.astype(int), n_knots - 2)
    w = x - i
    return knots[..., i] * (1 - w) + knots[..., i + 1] * w


def _shaped_noise(noise: np.ndarray, envelope_fn, n_fft: int, hop: int) -> np.ndarray:
    """Multiply the STFT of ``noise [S, N]`` by ``envelope_fn(bin_freqs, frame_samples) → [S, F, T]``
    and overlap-add back (genmodels.audio.stft)."""
    from genmodels.audio.stft import istft, stft
    x = torch.from_numpy(noise)
    spec = stft(x, n_fft, hop)                                     # [S, F, T] complex
    frames = np.minimum(np.arange(spec.shape[-1]) * hop, noise.shape[-1] - 1)
    env = torch.from_numpy(envelope_fn(frames))                    # [S, F, T]
    return istft(spec * env, n_fft, hop, noise.shape[-1]).numpy()


def _synthesize_utterance(script, speakers, n_samples: int, sample_rate: int,
                          rng: np.random.Generator, phones: dict | None = None):
    """All speakers of one utterance: returns audio ``[S, N]`` and f0 ``[S, N]`` (0 = unvoiced).

    ``phones`` (default :data:`PHONES`) maps each phone of ``script`` to ``(kind, formants,
    bandwidths, gain)``. Besides the kinds of :data:`PHONES` it may use "Z" (voiced fricative:
    a weak voice bar under the noise), "P" (voiceless stop: closure silence for the first 60 %,
    then a burst through its resonances) and "B" (voiced stop: a voice-bar closure, then a weaker
    burst); genmodels.speech's text-driven corpus does."""
    S, sr, N = len(speakers), sample_rate, n_samples
    nyq = sr / 2.0
    t = np.arange(N) / sr
    # --- phone-level targets → per-sample tracks (shared by all speakers: the parallel part)
    formants = np.empty((N, 3))
    bands = np.empty((N, 3))
    voiced_gain = np.zeros(N)
    noise_gain = np.zeros(N)
    fric_formants = np.tile(PHONES["s"][1], (N, 1)).astype(float)
    fric_bands = np.tile(PHONES["s"][2], (N, 1)).astype(float)
    table = PHONES if phones is None else phones
    for phone, a, b in script:
        kind, fm, bw, gain = table[phone]
        formants[a:b] = fm if kind in _VOICED else _NEUTRAL
        bands[a:b] = bw if kind in _VOICED else 100.0
        if kind in _VOICED:
            voiced_gain[a:b] = gain
        elif kind == "F":
            noise_gain[a:b] = gain
            fric_formants[a:b] = fm
            fric_bands[a:b] = bw
        elif kind in ("Z", "P", "B"):                              # the text-driven kinds
            c = a if kind == "Z" else a + int(0.6 * (b - a))       # burst (or frication) from c
            if kind != "P":
                voiced_gain[a:c if kind == "B" else b] = _VOICE_BAR
            noise_gain[c:b] = gain
            fric_formants[c:b] = fm
            fric_bands[c:b] = bw
    w = int(0.015 * sr)                                            # 15 ms transitions
    formants = _smooth(formants.T, w)                              # [3, N]
    bands = _smooth(bands.T, w)
    voiced_gain = _smooth(voiced_gain, w)                          # [N]
    noise_gain = _smooth(noise_gain, w)
    fric_formants = _smooth(fric_formants.T, w)
    fric_bands = _smooth(fric_bands.T, w)
    # intonation: declination from +8% to −8% plus two random accents; same for every speaker
    accents = np.zeros(N)
    for _ in range(2):
        centre, width, height = rng.uniform(0.2, 0.8) * t[-1], rng.uniform(0.08, 0.2), rng.uniform(0.03, 0.1)
        accents += height * np.exp(-0.5 * ((t - centre) / width) ** 2)
    intonation = 1.08 - 0.16 * t / max(t[-1], 1e-9) + accents       # [N]

    # --- per-speaker parameters, [S, 1] each
    sp = {k: np.array([getattr(s, k) for s in speakers], dtype=np.float64)[:, None]
          for k in ("f0", "tract", "tilt", "vibrato_hz", "vibrato", "jitter", "breath", "bandwidth")}
    vib_phase = rng.uniform(0, 2 * math.pi, (S, 1))
    wander = _slow_noise(rng, (S,), N, sr)                          # [S, N]
    f0 = sp["f0"] * intonation * (1 + sp["vibrato"] * np.sin(2 * math.pi * sp["vibrato_hz"] * t + vib_phase)) \
        * (1 + sp["jitter"] * wander)                               # [S, N]
    phase = 2 * math.pi * np.cumsum(f0, axis=-1) / sr               # φ(t)
    fm = formants[None] * sp["tract"][:, :, None]                   # [S, 3, N]
    bw = bands[None] * sp["bandwidth"][:, :, None]
    fm = np.minimum(fm, 0.95 * nyq)

    # --- voiced part: harmonics below Nyquist, each weighted by the vocal-tract response
    K = int(nyq / (0.8 * float(sp["f0"].min()))) + 1
    k = np.arange(1, K + 1, dtype=np.float64)                        # [K]
    # The tract response moves slowly: evaluate it every 4 ms and interpolate linearly.
    ctrl = np.unique(np.append(np.arange(0, N, max(1, int(0.004 * sr))), N - 1))    # [M]
    harm_c = f0[:, None, ctrl] * k[None, :, None]                                   # [S, K, M]
    H = formant_response(harm_c.transpose(0, 2, 1), fm[:, :, ctrl].transpose(0, 2, 1),
                         bw[:, :, ctrl].transpose(0, 2, 1)).transpose(0, 2, 1)      # [S, K, M]
    amp_c = k[None, :, None] ** (-sp["tilt"][:, :, None]) * H * (harm_c < 0.95 * nyq)  # [S, K, M]
    pos = np.minimum(np.searchsorted(ctrl, np.arange(N), side="right") - 1, len(ctrl) - 2)
    frac = ((np.arange(N) - ctrl[pos]) / (ctrl[pos + 1] - ctrl[pos])).astype(np.float32)
    amp_c = amp_c.astype(np.float32)
    amp = amp_c[..., pos] * (1 - frac) + amp_c[..., pos + 1] * frac                 # [S, K, N]
    harm_phase = (k[None, :, None] * phase[:, None, :]) % (2 * math.pi)              # [S, K, N]
    voiced = (amp * np.sin(harm_phase.astype(np.float32))).sum(axis=1, dtype=np.float64)
    voiced_rms = np.sqrt(np.mean(voiced[:, voiced_gain > 0.5] ** 2, axis=-1, keepdims=True) + 1e-12) \
        if (voiced_gain > 0.5).any() else np.ones((S, 1))
    voiced = voiced / voiced_rms * voiced_gain

    # --- noise part: fricatives and breath, shaped frame by frame in the STFT domain
    n_fft = 256 if sr <= 16000 else 512
    hop = n_fft // 4
    bins = np.arange(n_fft // 2 + 1) * sr / n_fft

    def envelope(frames):
        ff = np.minimum(fric_formants[:, frames].T[None] * sp["tract"][:, :, None].transpose(0, 2, 1),
                        0.95 * nyq)                                                 # [S, T, 3]
        fb = np.broadcast_to(fric_bands[:, frames].T[None], ff.shape)
        fric = formant_response(np.broadcast_to(bins, (S, len(frames), len(bins))), ff, fb)
        fric = fric / fric.max(axis=-1, keepdims=True)                              # peak 1
        vf = fm[:, :, frames].transpose(0, 2, 1)                                    # [S, T, 3]
        vb = bw[:, :, frames].transpose(0, 2, 1)
        breath = formant_response(np.broadcast_to(bins, (S, len(frames), len(bins))), vf, vb)
        breath = breath / breath.max(axis=-1, keepdims=True)
        env = noise_gain[frames][None, :, None] * fric \
            + sp["breath"][:, :, None] * voiced_gain[frames][None, :, None] * breath
        return env.transpose(0, 2, 1)                                               # [S, F, T]

    white = rng.standard_normal((S, N))
    noise = _shaped_noise(white, envelope, n_fft, hop) * 2.5
    audio = voiced + noise
    # a recording-room noise floor 60 dB below the speech (no digital silence)
    floor = 1e-3 * np.sqrt(np.mean(audio ** 2, axis=-1, keepdims=True))
    audio = audio + floor * rng.standard_normal((S, N))
    # loudness: RMS 0.1 over the utterance, peak kept below 0.95
    audio = audio * (0.1 / np.sqrt(np.mean(audio ** 2, axis=-1, keepdims=True) + 1e-12))
    audio = audio * np.minimum(1.0, 0.95 / np.abs(audio).max(axis=-1, keepdims=True))
    f0_track = np.where(voiced_gain[None] > 0.1, f0, 0.0)
    return audio.astype(np.float32), f0_track.astype(np.float32)


# ------------------------------------------------------------------------------ the corpus
@dataclass
class SyntheticSpeechCorpus:
    """``audio [S, U, N]``: speaker s saying utterance u; ``f0 [S, U, N]`` the pitch it was
    synthesised with (0 where unvoiced); ``scripts[u]`` the phones ``(name, start, end)`` in
    samples, the same for every speaker. Utterances ``train_ids`` / ``val_ids`` / ``test_ids``
    do not overlap (held-out utterances are different phone sequences)."""
    audio: torch.Tensor
    f0: torch.Tensor
    scripts: list
    speakers: tuple
    sample_rate: int
    val_utterances: int
    test_utterances: int
    config: dict = field(default_factory=dict)

    @property
    def n_utterances(self) -> int:
        return self.audio.shape[1]

    def ids(self, split: str) -> torch.Tensor:
        U, nv, nt = self.n_utterances, self.val_utterances, self.test_utterances
        ranges = {"train": (0, U - nv - nt), "val": (U - nv - nt, U - nt), "test": (U - nt, U)}
        if split not in ranges:
            raise ValueError(f"split: must be train, val or test, got {split!r}")
        return torch.arange(*ranges[split])

    def parallel(self, split: str) -> torch.Tensor:
        """``[S, U_split, N]``: every speaker's audio of the split's utterances."""
        return self.audio[:, self.ids(split)]

    def clips(self, split: str) -> torch.Tensor:
        """``[S·U_split, N]``: all speakers' utterances of the split, flattened (speaker-major)."""
        a = self.parallel(split)
        return a.reshape(-1, a.shape[-1])

    def speaker_index(self, name: str) -> int:
        names = [s.name for s in self.speakers]
        if name not in names:
            raise ValueError(f"speaker: {name!r} is not in this corpus (speakers {names})")
        return names.index(name)


def synthesize_corpus(speakers: int = 4, utterances: int = 200, seconds: float = 1.0,
                      sample_rate: int = 8000, seed: int = 0, val_utterances: int = 20,
                      test_utterances: int = 20,
                      cache_dir: str | Path | None = None) -> SyntheticSpeechCorpus:
    """Synthesise (or load from ``cache_dir``) the parallel corpus; a pure function of its args.

    ``speakers``: how many of :data:`SPEAKERS` (in order); ``utterances``: how many scripts, of
    which the last ``test_utterances`` are the test split and the ``val_utterances`` before them
    validation; ``seconds``: the length of every utterance.
    """
    check_int("speakers", speakers, minimum=1)
    if speakers > len(SPEAKERS):
        raise ValueError(f"speakers: at most {len(SPEAKERS)} built-in voices, got {speakers}")
    check_int("utterances", utterances, minimum=1)
    check_int("val_utterances", val_utterances, minimum=0)
    check_int("test_utterances", test_utterances, minimum=0)
    if val_utterances + test_utterances >= utterances:
        raise ValueError(f"utterances: {utterances} leave no training utterance after "
                         f"{val_utterances} val + {test_utterances} test")
    check_positive("seconds", seconds)
    check_int("sample_rate", sample_rate, minimum=4000)
    check_int("seed", seed, minimum=0)
    n_samples = int(round(seconds * sample_rate))
    if n_samples < int(0.3 * sample_rate):
        raise ValueError(f"seconds: utterances need at least 0.3 s, got {seconds}")
    voices = SPEAKERS[:speakers]
    config = dict(speakers=speakers, utterances=utterances, seconds=seconds,
                  sample_rate=sample_rate, seed=seed, version=1)
    cache = None
    if cache_dir is not None:
        key = hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
        cache = Path(cache_dir) / f"synthetic_speech_{key}.npz"
        if cache.exists():
            z = np.load(cache, allow_pickle=False)
            scripts = json.loads(str(z["scripts"]))
            return SyntheticSpeechCorpus(torch.from_numpy(z["audio"]), torch.from_numpy(z["f0"]),
                                         [[tuple(p) for p in s] for s in scripts], voices,
                                         sample_rate, val_utterances, test_utterances, config)
    audio = np.empty((speakers, utterances, n_samples), dtype=np.float32)
    f0 = np.empty_like(audio)
    scripts = []
    for u in range(utterances):
        rng = np.random.default_rng([seed, u])                      # utterance u: its own stream
        script = _utterance_script(rng, n_samples, sample_rate)
        audio[:, u], f0[:, u] = _synthesize_utterance(script, voices, n_samples, sample_rate, rng)
        scripts.append(script)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, audio=audio, f0=f0, scripts=json.dumps(scripts))
        tmp.replace(cache)
    return SyntheticSpeechCorpus(torch.from_numpy(audio), torch.from_numpy(f0), scripts, voices,
                                 sample_rate, val_utterances, test_utterances, config)


# ------------------------------------------------------------------------------ WAV folders
@dataclass
class AudioClips:
    """Fixed-length mono segments ``[n, N]`` per split, at ``sample_rate`` (from WAV files)."""
    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    sample_rate: int
    files: dict = field(default_factory=dict)

    def clips(self, split: str) -> torch.Tensor:
        if split not in ("train", "val", "test"):
            raise ValueError(f"split: must be train, val or test, got {split!r}")
        return getattr(self, split)


_AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")


def load_wav_folder(path: str | Path | None, sample_rate: int = 8000) -> list[tuple[str, torch.Tensor]]:
    """Every audio file of ``path`` (recursively; .wav/.flac/.ogg), mono, resampled to
    ``sample_rate``: a sorted list of ``(relative path, float32 tensor [N])``.

    Raises :class:`~genmodels.errors.DatasetNotFoundError` when the folder is missing or
    holds no audio file, and ``ValueError`` naming the file when one is empty or unreadable.
    """
    check_int("sample_rate", sample_rate, minimum=1)
    if path is None:
        raise DatasetNotFoundError("data.path: no folder given; pass data.path=/folder/of/wavs "
                                   "(mono or stereo .wav/.flac/.ogg files, any sample rate)")
    root = Path(path).expanduser()
    if not root.is_dir():
        raise DatasetNotFoundError(f"data.path: {root} is not a folder; pass "
                                   f"data.path=/folder/of/wavs")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in _AUDIO_SUFFIXES)
    if not files:
        raise DatasetNotFoundError(f"data.path: {root} holds no .wav/.flac/.ogg file")
    return [(str(p.relative_to(root)), read_audio_file(p, sample_rate)) for p in files]


def read_audio_file(p: Path, sample_rate: int, name: str = "data.path") -> torch.Tensor:
    """One audio file, mono, resampled to ``sample_rate``: a float32 tensor ``[N]``. A file that
    is unreadable, cut short, empty or holds NaN/inf samples is a ``ValueError`` naming ``name``
    (the option or key the path came from) and the file."""
    import librosa
    import soundfile as sf

    try:
        data, sr = sf.read(str(p), dtype="float32", always_2d=True)   # [N, channels]
        _check_not_truncated(p, sf.info(str(p)).extra_info, name)
    except ValueError:
        raise
    except Exception as e:  # soundfile raises its own error types
        raise ValueError(f"{name}: cannot read {p}: {e}") from None
    if data.shape[0] == 0:
        raise ValueError(f"{name}: {p} is empty (0 samples)")
    mono = data.mean(axis=1)
    if sr != sample_rate:
        mono = librosa.resample(mono, orig_sr=sr, target_sr=sample_rate)
    if not np.isfinite(mono).all():
        raise ValueError(f"{name}: {p} contains NaN/inf samples")
    return torch.from_numpy(np.ascontiguousarray(mono, dtype=np.float32))


_DATA_CHUNK = re.compile(r"^data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.M)


def _check_not_truncated(p: Path, extra_info: str, name: str = "data.path") -> None:
    """libsndfile reads what there is of a WAV file cut short (a partial copy or download) and
    notes ``data : <header's size> (should be <bytes present>)`` in its log; refuse such a file
    rather than train on part of it. Streaming writers leave 0 or 0xFFFFFFFF there: not refused."""
    m = _DATA_CHUNK.search(extra_info)
    if m:
        declared, present = int(m.group(1)), int(m.group(2))
        if present < declared and declared not in (0, 0xFFFFFFFF, 0x7FFFFFFF):
            raise ValueError(f"{name}: {p} is truncated: its header announces {declared} "
                             f"bytes of samples, the file holds {present}")


def wav_folder_clips(path, sample_rate: int = 8000, segment_seconds: float = 1.0,
                     val_fraction: float = 0.1, test_fraction: float = 0.1,
                     split_seed: int = 0) -> AudioClips:
    """Files of ``path`` split by file (shuffled with ``split_seed``) into train/val/test, each
    cut into non-overlapping ``segment_seconds`` segments (a shorter file is zero-padded to one
    segment) and peak-normalised to 0.9 per file. Every split gets at least one file when there
    are three or more; with fewer, val and test reuse the training files (said in ``files``)."""
    check_positive("segment_seconds", segment_seconds)
    seg = int(round(segment_seconds * sample_rate))
    items = load_wav_folder(path, sample_rate)
    order = np.random.default_rng(split_seed).permutation(len(items))
    n = len(items)
    n_test = max(1, int(round(test_fraction * n))) if n >= 3 else 0
    n_val = max(1, int(round(val_fraction * n))) if n >= 3 else 0
    test_i, val_i, train_i = order[:n_test], order[n_test:n_test + n_val], order[n_test + n_val:]
    if n < 3:
        val_i = test_i = train_i

    def segments(idx):
        segs = []
        for i in idx:
            x = items[i][1]
            x = x / max(float(x.abs().max()), 1e-8) * 0.9
            if x.shape[0] < seg:
                x = torch.nn.functional.pad(x, (0, seg - x.shape[0]))
            m = x.shape[0] // seg
            segs.append(x[:m * seg].reshape(m, seg))
        return torch.cat(segs)

    files = {name: [items[i][0] for i in idx]
             for name, idx in (("train", train_i), ("val", val_i), ("test", test_i))}
    return AudioClips(segments(train_i), segments(val_i), segments(test_i), sample_rate, files)
