r"""A speech corpus with text: sentences spoken by many voices, with the phone and character alignment.

**Sentences** (:func:`embedded_sentences`): phrases of the embedded text the library ships
(``pydoc_data.topics``, the Python Language Reference; genmodels.data.text), cut at sentence and
clause punctuation and at words that hold code or markup, normalised to
:data:`~genmodels.speech.g2p.CHARSET` and kept when ``min_chars``–``max_chars`` long with at
least three words (longer phrases are cut at word boundaries). About 3,800 distinct phrases.

**Rendering** (:func:`render_sentence`): the text goes through the rule-based grapheme-to-phone
step (:func:`~genmodels.speech.g2p.g2p`); each phone gets a duration — its class's mean (vowels
110/80 ms long/short, two-vowel diphthongs 70 % each, nasals and glides 65 ms, fricatives 95,
voiced fricatives 75, stops 85/70, word pauses 60 ms) divided by the voice's speaking rate, times
a random factor in [0.85, 1.15], the last word 25 % longer — and the voice's source–filter model
(genmodels.audio.corpus) renders the phone sequence, with 120 ms of silence either side. The
alignment is exact because it is the script the synthesiser rendered: ``phones`` holds
``(phone, start, end)`` in samples, ``chars`` a ``(start, end)`` per character of the
transcript (a span of letters that says its phones together shares their time evenly; a silent
letter or apostrophe has ``start == end``).

**Voices** (:data:`VOICES`): 24 synthetic speakers spread over f0 85–250 Hz (log-uniform), with
vocal-tract factor rising with f0 (0.92–1.26, ± 0.04), spectral tilt, breath, formant bandwidth,
jitter, vibrato and speaking rate 0.8–1.25 spread independently (low-discrepancy sequences: no
random draw, the same on every machine).

**Split** (:func:`synthesize_speech_text`): by sentence *and* by voice. Sentences are drawn with
the seed, the first ``test_sentences`` are test, the next ``val_sentences`` validation, the rest
training. The voices, sorted by f0, keep the lowest and the highest in training (held-out voices
are interpolated, not extrapolated); ``val_voices + test_voices`` others, evenly spaced with a
seeded offset, are held out. Training utterances: each training sentence said by
``voices_per_sentence`` training voices (round robin, so every voice gets the same share);
validation and test: every held-out sentence of the split said by every voice of the split. No
test sentence or test voice occurs in training or validation.

**Your own recordings** (:func:`load_speech_folder`): WAV/FLAC/OGG files with transcripts
(``name.txt`` beside ``name.wav``, or a ``metadata.csv`` of ``name|transcript`` rows as in
LJSpeech) load into the same :class:`SpeechTextCorpus`, with ``phones``/``chars``/``f0`` None.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from genmodels._checks import check_int
from genmodels.audio.corpus import Speaker, _synthesize_utterance, load_wav_folder
from genmodels.errors import DatasetNotFoundError
from genmodels.speech.g2p import CHARSET, SPEECH_PHONES, g2p, normalize_text

__all__ = ["Voice", "VOICES", "Utterance", "SpeechTextCorpus", "embedded_sentences", "text_only_phrases",
           "render_sentence", "plan_speech_text", "synthesize_speech_text", "load_speech_folder", "SPLITS"]

SPLITS = ("train", "val", "test")


# ------------------------------------------------------------------------------ voices
@dataclass(frozen=True)
class Voice(Speaker):
    """A synthetic speaker (:class:`~genmodels.audio.corpus.Speaker`) with a speaking rate:
    phone durations are divided by ``rate``."""
    rate: float = 1.0


def _make_voices(n: int) -> tuple[Voice, ...]:
    """``n`` voices from additive-recurrence (golden-ratio–like) sequences: evenly spread, no RNG."""
    out = []
    for i in range(n):
        u = (0.5 + i * 0.6180339887) % 1.0        # pitch position
        w = (0.5 + i * 0.4142135624) % 1.0
        z = (0.5 + i * 0.7548776662) % 1.0
        q = (0.5 + i * 0.5698402910) % 1.0
        f0 = 85.0 * (250.0 / 85.0) ** u
        out.append(Voice(
            name=f"v{i + 1:02d}", f0=round(f0, 1),
            tract=round(0.92 + 0.30 * u + 0.08 * (w - 0.5), 3),      # higher voice, shorter tract
            tilt=round(0.9 + 0.5 * z, 3),
            vibrato_hz=round(4.5 + 1.5 * q, 2),
            vibrato=round(0.005 + 0.01 * w, 4),
            jitter=round(0.008 + 0.007 * q, 4),
            breath=round(0.03 + 0.08 * w, 3),
            bandwidth=round(0.9 + 0.4 * z, 3),
            rate=round(0.8 + 0.45 * ((0.5 + i * 0.3247179572) % 1.0), 3)))
    return tuple(out)


#: the built-in voices of the text corpus; ``voices=n`` takes the first n
VOICES = _make_voices(24)


# ------------------------------------------------------------------------------ sentences
_CODE = re.compile(r"[()\[\]{}=<>_*`@#$%^&|\\~\"0-9+.]")


def embedded_sentences(min_chars: int = 12, max_chars: int = 48) -> list[str]:
    """Distinct normalised phrases of the embedded text (see the module docstring), sorted."""
    check_int("min_chars", min_chars, minimum=1)
    check_int("max_chars", max_chars, minimum=min_chars)
    return list(_phrases(min_chars, max_chars))


@functools.lru_cache(maxsize=8)
def _phrases(min_chars: int, max_chars: int) -> tuple[str, ...]:
    from genmodels.data.text import embedded_documents

    found = set()
    for _, text in embedded_documents():
        for para in re.split(r"\n\s*\n", text):
            lines = para.split("\n")
            if any(ln.startswith("   ") or ln.lstrip().startswith(">>>") for ln in lines):
                continue                                        # code blocks and examples
            para = " ".join(ln.strip() for ln in lines)
            for sent in re.split(r"(?<=[.!?;:])\s+", para):
                for phrase in re.split(r"[,;:!?]\s+|[.!?;:]$", sent):
                    runs, cur = [], []
                    for w in phrase.split():                     # a code word breaks the phrase
                        if _CODE.search(w.rstrip(".")):
                            runs, cur = runs + [cur] * bool(cur), []
                        else:
                            cur.append(w)
                    for run in runs + [cur] * bool(cur):
                        found.update(_chunks(normalize_text(" ".join(run)), min_chars, max_chars))
    return tuple(sorted(found))


def text_only_phrases(held_out, min_chars: int = 12, max_chars: int = 40,
                      ngram: int = 3) -> list[str]:
    """Text for a language model of the recogniser (shallow fusion, issue 21): the phrases of
    :func:`embedded_sentences` that are none of ``held_out`` (the val and test transcripts) and
    share no run of ``ngram`` words with any of them, so that no held-out sentence, nor a piece
    of one, is ever read. (Training sentences that share three words with a held-out one are
    dropped too; the recogniser's task adds its training transcripts back.)"""
    check_int("ngram", ngram, minimum=1)
    if isinstance(held_out, str) or not all(isinstance(t, str) for t in held_out):
        raise ValueError("held_out: expected a list of transcripts (strings)")
    held = set(held_out)

    def grams(t: str) -> set:
        w = t.split()
        return {tuple(w[i:i + ngram]) for i in range(len(w) - ngram + 1)}

    banned = set().union(*(grams(t) for t in held)) if held else set()
    return [t for t in embedded_sentences(min_chars, max_chars)
            if t not in held and not grams(t) & banned]


def _chunks(text: str, min_chars: int, max_chars: int) -> list[str]:
    """``text`` cut at word boundaries into pieces of at most ``max_chars``; pieces of at least
    ``min_chars`` characters and three words are kept."""
    out, cur = [], []
    for w in text.split():
        if cur and len(" ".join(cur + [w])) > max_chars:
            out.append(" ".join(cur))
            cur = [w]
        else:
            cur.append(w)
    if cur:
        out.append(" ".join(cur))
    return [t for t in out if min_chars <= len(t) <= max_chars and len(t.split()) >= 3]


# ------------------------------------------------------------------------------ rendering
@dataclass
class Utterance:
    """One recording and its transcript. ``phones``: ``(phone, start, end)`` in samples and
    ``chars``: ``(start, end)`` per character of ``text`` (None for recordings of unknown
    alignment); ``f0 [N]`` the pitch it was synthesised with (0 where unvoiced; None if unknown)."""
    audio: torch.Tensor
    text: str
    speaker: str
    sample_rate: int
    phones: list | None = None
    chars: list | None = None
    f0: torch.Tensor | None = None
    sentence: int = -1                      # index into the corpus's sentence list (-1: none)

    @property
    def seconds(self) -> float:
        return self.audio.shape[-1] / self.sample_rate


#: mean phone durations in seconds at rate 1, by phone class
_DURATION = {"long": 0.11, "short": 0.08, "N": 0.065, "F": 0.095, "Z": 0.075, "P": 0.085,
             "B": 0.07, "sil": 0.06}
_SHORT_VOWELS = {"ih", "e", "ae", "uh", "oo"}
_EDGE = 0.12                                # seconds of silence before and after the sentence


def _phone_seconds(phone: str) -> float:
    kind = SPEECH_PHONES[phone][0]
    if kind == "V":
        return _DURATION["short" if phone in _SHORT_VOWELS else "long"]
    return _DURATION["sil" if kind == "S" else kind]


def render_sentence(text: str, voice: Voice, sample_rate: int = 8000, seed: int = 0,
                    sentence: int = -1) -> Utterance:
    """``text`` (on :data:`~genmodels.speech.g2p.CHARSET`) said by ``voice``: the audio, its f0
    and the phone and character alignment; a pure function of its arguments."""
    if not isinstance(voice, Speaker):
        raise ValueError(f"voice: must be a Voice, got {type(voice).__name__}")
    check_int("sample_rate", sample_rate, minimum=4000)
    check_int("seed", seed, minimum=0)
    text_ok = normalize_text(text) if isinstance(text, str) else text
    if text_ok != text or not text:
        raise ValueError(f"text: must be non-empty and normalised (normalize_text gives "
                         f"{text_ok!r}), got {text!r}")
    groups = g2p(text)
    rate = float(getattr(voice, "rate", 1.0))
    rng = np.random.default_rng([seed, max(sentence, 0), _crc(voice.name), _crc(text)])
    last_word = text.rfind(" ") + 1
    sr = sample_rate
    script = [("sil", 0, int(_EDGE * sr))]
    pos = script[0][2]
    chars: list[tuple[int, int]] = [(0, 0)] * len(text)
    for a, b, phones in groups:
        start = pos
        vowels = sum(SPEECH_PHONES[p][0] == "V" for p in phones)
        for p in phones:
            d = _phone_seconds(p) / rate * rng.uniform(0.85, 1.15)
            if vowels > 1 and SPEECH_PHONES[p][0] == "V":
                d *= 0.7                                            # a diphthong's two targets
            if a >= last_word:
                d *= 1.25                                           # phrase-final lengthening
            n = max(1, int(round(d * sr)))
            script.append((p, pos, pos + n))
            pos += n
        # the span's letters share its time evenly (silent letters: start == end)
        edges = np.linspace(start, pos, b - a + 1).round().astype(int)
        for k in range(b - a):
            chars[a + k] = (int(edges[k]), int(edges[k + 1]))
    tail = int(_EDGE * sr)
    script.append(("sil", pos, pos + tail))
    n_samples = pos + tail
    audio, f0 = _synthesize_utterance(script, [voice], n_samples, sr, rng, phones=SPEECH_PHONES)
    return Utterance(torch.from_numpy(audio[0]), text, voice.name, sr,
                     [(p, int(s), int(e)) for p, s, e in script], chars,
                     torch.from_numpy(f0[0]), sentence)


def _crc(s: str) -> int:
    """A stable 32-bit number for a string (``hash`` changes between Python processes)."""
    import zlib
    return zlib.crc32(s.encode())


# ------------------------------------------------------------------------------ the corpus
@dataclass
class SpeechTextCorpus:
    """Utterances with transcripts per split (``train``/``val``/``test``); ``sentences[split]``
    and ``speakers[split]`` say which texts and voices each split holds (disjoint across splits
    for the synthetic corpus)."""
    splits: dict
    sample_rate: int
    sentences: dict
    speakers: dict
    voices: tuple = ()
    charset: str = CHARSET
    config: dict = field(default_factory=dict)

    def utterances(self, split: str) -> list:
        if split not in SPLITS:
            raise ValueError(f"split: must be train, val or test, got {split!r}")
        return self.splits[split]

    def sizes(self) -> dict:
        """``{split: {utterances, sentences, speakers, hours}}``."""
        return {s: dict(utterances=len(self.splits[s]), sentences=len(self.sentences[s]),
                        speakers=len(self.speakers[s]),
                        hours=round(sum(u.seconds for u in self.splits[s]) / 3600, 3))
                for s in SPLITS}


def _pitch(voice) -> float:
    """What orders voices from low to high: f0 (Hz) of a synthetic voice, ``pitch`` otherwise."""
    return float(voice.f0 if hasattr(voice, "f0") else voice.pitch)


def _held_out_voices(voices, n_val: int, n_test: int, rng) -> tuple[list[int], list[int]]:
    """Indices of the validation and test voices: evenly spaced over the f0 order, never the
    lowest or highest voice, with a seeded offset; val and test alternate in a seeded order."""
    order = sorted(range(len(voices)), key=lambda i: (_pitch(voices[i]), voices[i].name))
    inner = order[1:-1]
    k = n_val + n_test
    if k == 0:
        return [], []
    step = len(inner) / k
    offset = rng.uniform(0, step)
    picks = [inner[min(len(inner) - 1, int(offset + j * step))] for j in range(k)]
    picks = [picks[j] for j in rng.permutation(k)]
    return sorted(picks[:n_val]), sorted(picks[n_val:])


def plan_speech_text(voices: int = 16, sentences: int = 800, val_sentences: int = 60,
                     test_sentences: int = 60, val_voices: int = 2, test_voices: int = 3,
                     voices_per_sentence: int = 2, min_chars: int = 12, max_chars: int = 40,
                     seed: int = 0, voice_table: tuple | None = None) -> dict:
    """Who says what, without rendering: ``{split: [(sentence index, text, voice), …]}`` (the
    sentence index numbers the drawn sentences: test first, then val, then train). The split
    rules are in the module docstring; arguments as in :func:`synthesize_speech_text`;
    ``voice_table`` (default :data:`VOICES`) is the list the first ``voices`` are taken from."""
    table = VOICES if voice_table is None else tuple(voice_table)
    check_int("voices", voices, minimum=3)
    if voices > len(table):
        raise ValueError(f"voices: at most {len(table)} built-in voices, got {voices}")
    check_int("val_voices", val_voices, minimum=0)
    check_int("test_voices", test_voices, minimum=1)
    if val_voices + test_voices > voices - 3:
        raise ValueError(f"voices: {voices} leave fewer than 3 training voices after "
                         f"{val_voices} val + {test_voices} test voices")
    check_int("sentences", sentences, minimum=2)
    check_int("val_sentences", val_sentences, minimum=0)
    check_int("test_sentences", test_sentences, minimum=1)
    if val_sentences + test_sentences >= sentences:
        raise ValueError(f"sentences: {sentences} leave no training sentence after "
                         f"{val_sentences} val + {test_sentences} test")
    if (val_voices == 0) != (val_sentences == 0):
        raise ValueError(f"val_voices: a validation split needs voices and sentences, got "
                         f"val_voices={val_voices}, val_sentences={val_sentences}")
    check_int("voices_per_sentence", voices_per_sentence, minimum=1)
    n_train_voices = voices - val_voices - test_voices
    if voices_per_sentence > n_train_voices:
        raise ValueError(f"voices_per_sentence: at most the {n_train_voices} training voices, "
                         f"got {voices_per_sentence}")
    check_int("min_chars", min_chars, minimum=1)
    check_int("max_chars", max_chars, minimum=min_chars)
    check_int("seed", seed, minimum=0)
    pool = embedded_sentences(min_chars, max_chars)
    if sentences > len(pool):
        raise ValueError(f"sentences: the embedded text has {len(pool)} phrases of "
                         f"{min_chars}-{max_chars} characters, got {sentences}")
    rng = np.random.default_rng([seed, 21])
    chosen = [pool[i] for i in rng.permutation(len(pool))[:sentences]]
    vs = table[:voices]
    val_v, test_v = _held_out_voices(vs, val_voices, test_voices, rng)
    train_v = [i for i in range(voices) if i not in val_v + test_v]
    train_v = [train_v[j] for j in rng.permutation(len(train_v))]
    first_train = test_sentences + val_sentences
    return {
        "train": [(j, chosen[j], vs[train_v[((j - first_train) * voices_per_sentence + r)
                                            % len(train_v)]])
                  for j in range(first_train, sentences) for r in range(voices_per_sentence)],
        "val": [(j, chosen[j], vs[v]) for j in range(test_sentences, first_train) for v in val_v],
        "test": [(j, chosen[j], vs[v]) for j in range(test_sentences) for v in test_v],
    }


def synthesize_speech_text(voices: int = 16, sentences: int = 800, val_sentences: int = 60,
                           test_sentences: int = 60, val_voices: int = 2, test_voices: int = 3,
                           voices_per_sentence: int = 2, min_chars: int = 12,
                           max_chars: int = 40, sample_rate: int = 8000, seed: int = 0,
                           cache_dir: str | Path | None = None) -> SpeechTextCorpus:
    """The text corpus (see the module docstring), or its copy in ``cache_dir``; a pure function
    of its arguments (and of the Python version, whose embedded text it reads).

    ``voices``: how many of :data:`VOICES`; ``val_voices``/``test_voices`` of them are held out;
    ``sentences`` phrases of ``min_chars``–``max_chars`` characters are drawn, of which
    ``test_sentences`` and ``val_sentences`` are held out; each training sentence is said by
    ``voices_per_sentence`` training voices, each held-out one by every voice of its split."""
    check_int("sample_rate", sample_rate, minimum=4000)
    plan = plan_speech_text(voices, sentences, val_sentences, test_sentences, val_voices,
                            test_voices, voices_per_sentence, min_chars, max_chars, seed)
    config = corpus_config(voices=voices, sentences=sentences, val_sentences=val_sentences,
                           test_sentences=test_sentences, val_voices=val_voices,
                           test_voices=test_voices, voices_per_sentence=voices_per_sentence,
                           min_chars=min_chars, max_chars=max_chars, sample_rate=sample_rate,
                           seed=seed)
    return corpus_from_plan(plan, VOICES[:voices], config, cache_dir, "speech_text",
                            lambda j, t, v: render_sentence(t, v, sample_rate, seed, j))


def corpus_config(**settings) -> dict:
    """The settings that fix a corpus (its cache key), with a hash of the embedded phrase pool."""
    pool = "\n".join(embedded_sentences(settings["min_chars"], settings["max_chars"]))
    return {**settings, "version": 1, "text": hashlib.sha1(pool.encode()).hexdigest()[:12]}


def corpus_from_plan(plan: dict, voices: list, config: dict, cache_dir, prefix: str,
                     render) -> SpeechTextCorpus:
    """The corpus of ``plan`` (:func:`plan_speech_text`), each ``(j, text, voice)`` rendered by
    ``render(j, text, voice)``, or read from ``cache_dir/<prefix>_<hash of config>.npz``."""
    texts = {s: sorted({t for _, t, _ in plan[s]}) for s in SPLITS}
    speakers = {s: sorted({v.name for _, _, v in plan[s]}) for s in SPLITS}
    sample_rate = config["sample_rate"]
    cache = None
    if cache_dir is not None:
        key = hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()[:12]
        cache = Path(cache_dir) / f"{prefix}_{key}.npz"
        if cache.exists():
            return SpeechTextCorpus(_load_cache(cache, sample_rate), sample_rate, texts, speakers,
                                    voices, CHARSET, config)
    splits = {s: [render(j, t, v) for j, t, v in plan[s]] for s in SPLITS}
    if cache is not None:
        _save_cache(cache, splits)
    return SpeechTextCorpus(splits, sample_rate, texts, speakers, voices, CHARSET, config)


def _save_cache(path: Path, splits: dict) -> None:
    items = [u for s in SPLITS for u in splits[s]]
    lengths = np.array([u.audio.shape[0] for u in items], dtype=np.int64)
    meta = {s: [dict(text=u.text, speaker=u.speaker, sentence=u.sentence, phones=u.phones,
                     chars=u.chars) for u in splits[s]] for s in SPLITS}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    f0 = [u.f0 if u.f0 is not None else torch.full_like(u.audio, -1.0) for u in items]  # -1: unknown
    np.savez(tmp, audio=torch.cat([u.audio for u in items]).numpy(),
             f0=torch.cat(f0).numpy(), lengths=lengths, meta=json.dumps(meta))
    tmp.replace(path)


def _load_cache(path: Path, sample_rate: int) -> dict:
    z = np.load(path, allow_pickle=False)
    meta = json.loads(str(z["meta"]))
    ends = np.cumsum(z["lengths"])
    starts = ends - z["lengths"]
    audio, f0 = torch.from_numpy(z["audio"]), torch.from_numpy(z["f0"])
    splits, k = {}, 0
    for s in SPLITS:
        splits[s] = []
        for m in meta[s]:
            a, b = int(starts[k]), int(ends[k])
            known = b == a or bool(f0[a] >= 0)
            splits[s].append(Utterance(
                audio[a:b], m["text"], m["speaker"], sample_rate,
                None if m["phones"] is None else [tuple(p) for p in m["phones"]],
                None if m["chars"] is None else [tuple(c) for c in m["chars"]],
                f0[a:b] if known else None, m["sentence"]))
            k += 1
    return splits


# ------------------------------------------------------------------------------ your recordings
def _transcripts(root: Path) -> dict[str, str]:
    """``relative path without suffix → transcript`` from ``metadata.csv`` (``name|text`` or
    ``name|text|normalised text`` rows; the last field is used) or from ``*.txt`` files."""
    out = {}
    meta = root / "metadata.csv"
    if meta.is_file():
        for n, line in enumerate(meta.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            fields = line.split("|")
            if len(fields) < 2:
                raise ValueError(f"data.path: {meta} line {n}: expected name|transcript, got {line!r}")
            name = fields[0].strip()
            out[str(Path(name).with_suffix("")) if Path(name).suffix.lower() in
                (".wav", ".flac", ".ogg") else name] = fields[-1].strip()
    for txt in root.rglob("*.txt"):
        out.setdefault(str(txt.relative_to(root).with_suffix("")), txt.read_text(encoding="utf-8").strip())
    return out


def load_speech_folder(path, sample_rate: int = 8000, val_fraction: float = 0.1,
                       test_fraction: float = 0.1, split_by: str = "file",
                       split_seed: int = 0) -> SpeechTextCorpus:
    """Your recordings with transcripts (``name.wav`` + ``name.txt``, or ``metadata.csv``) as a
    :class:`SpeechTextCorpus` without alignment. Transcripts are normalised
    (:func:`~genmodels.speech.g2p.normalize_text`). A file in a sub-folder belongs to the speaker
    named by its first folder (else to ``"speaker"``). ``split_by="file"`` splits the files,
    ``"speaker"`` the speakers (held-out voices; needs three or more), with ``split_seed``;
    each split gets at least one unit when there are three or more files (speakers) and its
    fraction is positive; with fewer files, all of them train and val/test are empty."""
    check_int("sample_rate", sample_rate, minimum=1)
    for name, v in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not isinstance(v, (int, float)) or not 0 <= v < 1:
            raise ValueError(f"{name}: must be in [0, 1), got {v!r}")
    if val_fraction + test_fraction >= 1:
        raise ValueError(f"test_fraction: val_fraction + test_fraction must be < 1, got "
                         f"{val_fraction} + {test_fraction}")
    if split_by not in ("file", "speaker"):
        raise ValueError(f"split_by: must be 'file' or 'speaker', got {split_by!r}")
    check_int("split_seed", split_seed, minimum=0)
    items = load_wav_folder(path, sample_rate)
    root = Path(path).expanduser()
    texts = _transcripts(root)
    utts = []
    for rel, audio in items:
        key = str(Path(rel).with_suffix(""))
        if key not in texts:
            raise DatasetNotFoundError(f"data.path: {rel} has no transcript: put its text in "
                                       f"{key}.txt or a metadata.csv row '{key}|text'")
        text = normalize_text(texts[key])
        if not text:
            raise ValueError(f"data.path: the transcript of {rel} is empty after normalisation "
                             f"to {CHARSET!r}")
        parts = Path(rel).parts
        utts.append(Utterance(audio, text, parts[0] if len(parts) > 1 else "speaker", sample_rate))
    rng = np.random.default_rng(split_seed)
    units = sorted({u.speaker for u in utts}) if split_by == "speaker" else list(range(len(utts)))
    if split_by == "speaker" and len(units) < 3:
        raise ValueError(f"split_by: 'speaker' needs three or more speaker folders, found {units}")
    order = [units[i] for i in rng.permutation(len(units))]
    n = len(order)
    n_test = max(1, int(round(test_fraction * n))) if n >= 3 and test_fraction > 0 else 0
    n_val = max(1, int(round(val_fraction * n))) if n >= 3 and val_fraction > 0 else 0
    which = {u: ("test" if k < n_test else "val" if k < n_test + n_val else "train")
             for k, u in enumerate(order)}
    splits = {s: [] for s in SPLITS}
    for k, u in enumerate(utts):
        splits[which[u.speaker if split_by == "speaker" else k]].append(u)
    return SpeechTextCorpus(
        splits, sample_rate, {s: sorted({u.text for u in splits[s]}) for s in SPLITS},
        {s: sorted({u.speaker for u in splits[s]}) for s in SPLITS}, (), CHARSET,
        dict(path=str(path), sample_rate=sample_rate, val_fraction=val_fraction,
             test_fraction=test_fraction, split_by=split_by, split_seed=split_seed))
