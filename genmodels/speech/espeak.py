r"""A second, more natural corpus: the same sentences and split said by Debian's ``espeak-ng``.

espeak-ng (formant synthesis with its own English pronunciation rules and dictionary) is not a
Python package: ``sudo apt-get install espeak-ng`` (Debian/Ubuntu; ``brew install espeak-ng`` on
macOS). Without the binary, :func:`espeak_speech_text` stops with that instruction.

:data:`ESPEAK_VOICES`: 24 voices, each an English accent (en-us, en-gb, en-gb-scotland, en-029,
en-gb-x-rp, en-gb-x-gbcwmd) with one of espeak-ng's voice variants (m1–m7, f1–f5), a pitch
(``-p`` 0–99) and a speed (``-s``, words per minute) spread by the same low-discrepancy sequences
as the synthetic voices. The sentences and the split by sentence and voice are those of
:func:`~genmodels.speech.corpus.plan_speech_text` (voices ordered by ``pitch``). espeak-ng
renders at 22,050 Hz; the audio is resampled to ``sample_rate`` and scaled to RMS 0.1. Its
timing is espeak-ng's own, so ``phones``, ``chars`` and ``f0`` are None.
"""

from __future__ import annotations

import io
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genmodels._checks import check_int
from genmodels.errors import DatasetNotFoundError
from genmodels.speech.corpus import (SpeechTextCorpus, Utterance, corpus_config, corpus_from_plan,
                                     plan_speech_text)
from genmodels.speech.g2p import normalize_text

__all__ = ["EspeakVoice", "ESPEAK_VOICES", "espeak_binary", "render_espeak", "espeak_speech_text"]


@dataclass(frozen=True)
class EspeakVoice:
    """One espeak-ng voice: ``espeak-ng -v {voice} -p {pitch} -s {speed}``."""
    name: str
    voice: str                # language+variant, e.g. "en-us+f3"
    pitch: int                # 0–99 (espeak-ng's default 50)
    speed: int                # words per minute (default 175)


def _make_voices(n: int) -> tuple[EspeakVoice, ...]:
    accents = ("en-us", "en-gb", "en-gb-scotland", "en-029", "en-gb-x-rp", "en-gb-x-gbcwmd")
    variants = ("m1", "f1", "m2", "f2", "m3", "f3", "m4", "f4", "m5", "f5", "m6", "m7")
    out = []
    for i in range(n):
        u = (0.5 + i * 0.6180339887) % 1.0
        r = (0.5 + i * 0.3247179572) % 1.0
        out.append(EspeakVoice(f"e{i + 1:02d}", f"{accents[i % len(accents)]}+{variants[i % len(variants)]}",
                               pitch=int(round(20 + 60 * u)), speed=int(round(140 + 50 * r))))
    return tuple(out)


#: the espeak-ng voices of the second corpus; ``voices=n`` takes the first n
ESPEAK_VOICES = _make_voices(24)


def espeak_binary() -> str:
    """The path of ``espeak-ng``, or :class:`~genmodels.errors.DatasetNotFoundError` saying how
    to install it."""
    path = shutil.which("espeak-ng")
    if path is None:
        raise DatasetNotFoundError(
            "data.source: espeak-ng not found on PATH. Get it with\n"
            "  sudo apt-get install espeak-ng     # Debian/Ubuntu\n"
            "  brew install espeak-ng             # macOS\n"
            "or use data.source=synthetic (the library's own voices, nothing to install)")
    return path


def _version(binary: str) -> str:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
    return out.stdout.strip().split("  Data at")[0]


def render_espeak(text: str, voice: EspeakVoice, sample_rate: int = 8000,
                  sentence: int = -1) -> Utterance:
    """``text`` (normalised) said by espeak-ng with ``voice``, at ``sample_rate``, RMS 0.1; no
    alignment."""
    import librosa
    import soundfile as sf

    if not isinstance(voice, EspeakVoice):
        raise ValueError(f"voice: must be an EspeakVoice, got {type(voice).__name__}")
    check_int("sample_rate", sample_rate, minimum=4000)
    if not isinstance(text, str) or not text or normalize_text(text) != text:
        raise ValueError(f"text: must be non-empty and normalised, got {text!r}")
    binary = espeak_binary()
    proc = subprocess.run([binary, "-v", voice.voice, "-p", str(voice.pitch), "-s", str(voice.speed),
                           "--stdout", text], capture_output=True, timeout=60)
    if proc.returncode != 0 or not proc.stdout:
        raise RuntimeError(f"espeak-ng failed on {text!r} with voice {voice.voice}: "
                           f"{proc.stderr.decode(errors='replace').strip()}")
    x, sr = sf.read(io.BytesIO(proc.stdout), dtype="float32")
    x = x.mean(axis=1) if x.ndim == 2 else x
    if sr != sample_rate:
        x = librosa.resample(x, orig_sr=sr, target_sr=sample_rate)
    x = x * (0.1 / max(float(np.sqrt(np.mean(x.astype(np.float64) ** 2))), 1e-9))
    x = x * min(1.0, 0.95 / max(float(np.abs(x).max()), 1e-9))
    return Utterance(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)), text, voice.name,
                     sample_rate, None, None, None, sentence)


def espeak_speech_text(voices: int = 16, sentences: int = 800, val_sentences: int = 60,
                       test_sentences: int = 60, val_voices: int = 2, test_voices: int = 3,
                       voices_per_sentence: int = 2, min_chars: int = 12, max_chars: int = 40,
                       sample_rate: int = 8000, seed: int = 0,
                       cache_dir: str | Path | None = None) -> SpeechTextCorpus:
    """The text corpus said by :data:`ESPEAK_VOICES` (arguments and split as in
    :func:`~genmodels.speech.corpus.synthesize_speech_text`), or its copy in ``cache_dir``."""
    check_int("sample_rate", sample_rate, minimum=4000)
    plan = plan_speech_text(voices, sentences, val_sentences, test_sentences, val_voices,
                            test_voices, voices_per_sentence, min_chars, max_chars, seed,
                            voice_table=ESPEAK_VOICES)
    binary = espeak_binary()
    config = corpus_config(source="espeak", voices=voices, sentences=sentences,
                           val_sentences=val_sentences, test_sentences=test_sentences,
                           val_voices=val_voices, test_voices=test_voices,
                           voices_per_sentence=voices_per_sentence, min_chars=min_chars,
                           max_chars=max_chars, sample_rate=sample_rate, seed=seed,
                           espeak=_version(binary))
    return corpus_from_plan(plan, ESPEAK_VOICES[:voices], config, cache_dir, "speech_espeak",
                            lambda j, t, v: render_espeak(t, v, sample_rate, j))
