"""The speech corpus with text (genmodels/speech/g2p.py, genmodels/speech/corpus.py): the
grapheme-to-phone rules on hand-written words, the rendering and its alignment against the
signal (pauses are silent, vowels carry the voice's pitch as an independent tracker finds it),
determinism per seed, the split disjoint by sentence and by voice, your own recordings through
the same API, and bad arguments named."""

from __future__ import annotations

import dataclasses

import librosa
import numpy as np
import pytest
import torch

from genmodels.audio.plots import write_wav
from genmodels.errors import DatasetNotFoundError
from genmodels.speech import (CHARSET, SPEECH_PHONES, VOICES, embedded_sentences, g2p,
                              load_speech_folder, normalize_text, phonemize, plan_speech_text,
                              render_sentence, synthesize_speech_text)

pytestmark = pytest.mark.speech

SR = 8000
TINY = dict(voices=6, sentences=5, val_sentences=1, test_sentences=1, val_voices=1,
            test_voices=2, voices_per_sentence=1, seed=3)


# ------------------------------------------------------------------------------ text and g2p
@pytest.mark.parametrize("raw, want", [
    ("Hello, World!", "hello world"),
    ("It's 3 o'clock -- time\u2014to go.", "it's o'clock time to go"),
    ("  spaces\n\tand   tabs ", "spaces and tabs"),
    ("x = f(y) + 1", "x fy"),                   # symbols are dropped, not spaces
])
def test_normalize_text(raw, want):
    assert normalize_text(raw) == want
    assert set(normalize_text(raw)) <= set(CHARSET)


@pytest.mark.parametrize("text, phones", [
    ("the cat", "dh i sil k ae t"),
    ("ship", "sh ih p"),
    ("make", "m e ih k"),                       # silent e makes the vowel long
    ("these", "dh i z"),                        # dh word, s between vowels is z
    ("knight", "n a ih t"),                     # initial kn, igh
    ("city", "s ih t i"),                       # soft c, final y of a longer word
    ("my", "m a ih"),
    ("dogs", "d o g z"),
    ("nation", "n ae sh uh n"),
    ("go", "g o u"),                            # a word ending in its only vowel
    ("box", "b o k s"),
    ("sitting", "s ih t ih ng"),                # a doubled consonant says one phone
    ("it's", "ih t s"),                         # the apostrophe is silent
    ("queen", "k w i n"),
])
def test_g2p_hand_written_words(text, phones):
    assert " ".join(phonemize(text)) == phones


def test_g2p_spans_cover_the_text_in_order():
    text = "the quick brown fox's tail wagged"
    spans = g2p(text)
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    assert all(a < b for a, b, _ in spans)
    assert all(spans[k][1] == spans[k + 1][0] for k in range(len(spans) - 1))
    assert [ph for a, b, ph in spans if text[a:b] == " "] == [("sil",)] * 5
    assert ("ae",) in [ph for a, b, ph in spans if text[a:b] == "a"]     # "wagged": short a


def test_every_embedded_phrase_has_renderable_phones():
    pool = embedded_sentences()
    assert len(pool) > 3000 and len(set(pool)) == len(pool)
    assert all(12 <= len(t) <= 48 and set(t) <= set(CHARSET) for t in pool)
    used = {p for t in pool for p in phonemize(t)}
    assert used <= set(SPEECH_PHONES)
    assert len(used) >= 30                      # the rules reach (almost) the whole inventory


@pytest.mark.parametrize("text", ["Hello", "x1", "semi;colon", 3])
def test_g2p_refuses_unnormalised_text(text):
    with pytest.raises(ValueError, match="^text"):
        g2p(text)


# ------------------------------------------------------------------------------ rendering
@pytest.fixture(scope="module")
def utt():
    return render_sentence("this is the time to see the sun", VOICES[1], SR, seed=0)


def test_render_is_a_pure_function_of_its_arguments(utt):
    again = render_sentence("this is the time to see the sun", VOICES[1], SR, seed=0)
    assert torch.equal(utt.audio, again.audio) and utt.phones == again.phones
    other = render_sentence("this is the time to see the sun", VOICES[1], SR, seed=1)
    assert not torch.equal(utt.audio[:1000], other.audio[:1000])


def test_alignment_covers_the_signal(utt):
    n = utt.audio.shape[0]
    assert utt.phones[0][1] == 0 and utt.phones[-1][2] == n
    assert all(utt.phones[k][2] == utt.phones[k + 1][1] for k in range(len(utt.phones) - 1))
    assert [p for p, _, _ in utt.phones[1:-1]] == phonemize(utt.text)
    assert len(utt.chars) == len(utt.text)
    assert all(a <= b for a, b in utt.chars)
    assert all(utt.chars[k][1] == utt.chars[k + 1][0] for k in range(len(utt.chars) - 1))
    assert utt.chars[0][0] == utt.phones[1][1] and utt.chars[-1][1] == utt.phones[-1][1]
    # each space is exactly its pause
    pauses = [(a, b) for p, a, b in utt.phones[1:-1] if p == "sil"]
    assert [utt.chars[i] for i, c in enumerate(utt.text) if c == " "] == pauses


def _rms(x):
    return float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2)))


def test_pauses_are_silent_and_vowels_loud(utt):
    """Where the alignment says pause, the signal is > 40 dB below its vowels (the middle half of
    each segment, away from the 15 ms transitions)."""
    x = utt.audio.numpy()
    mid = lambda a, b: x[a + (b - a) // 4: b - (b - a) // 4]                     # noqa: E731
    pause = [_rms(mid(a, b)) for p, a, b in utt.phones if p == "sil"]
    vowel = [_rms(mid(a, b)) for p, a, b in utt.phones if SPEECH_PHONES[p][0] == "V"]
    assert len(pause) >= 9 and len(vowel) >= 8
    assert max(pause) < 0.01 * min(vowel)


def test_vowels_carry_the_voices_pitch():
    """librosa.yin (an independent pitch tracker) finds, in every long vowel the alignment marks,
    the pitch the voice was rendered with; a low and a high voice differ by their f0 ratio."""
    found = {}
    for voice in (VOICES[1], VOICES[4]):                          # 96.5 Hz and 242.6 Hz
        u = render_sentence("see me on a blue moon", voice, SR, seed=2)
        ratios = []
        for p, a, b in u.phones:
            if SPEECH_PHONES[p][0] == "V" and b - a > 640:
                seg = u.audio[a + 120:b - 120].double().numpy()
                f0 = np.median(librosa.yin(seg, fmin=60, fmax=500, sr=SR, frame_length=400))
                truth = float(u.f0[a + 120:b - 120].median())
                assert abs(f0 / truth - 1) < 0.04, (p, f0, truth)
                ratios.append(truth / voice.f0)
        assert len(ratios) >= 3
        assert 0.75 < np.median(ratios) < 1.25                    # the intonation moves ±~20 %
        found[voice.name] = np.median(u.f0[u.f0 > 0].numpy())
    assert found["v05"] / found["v02"] == pytest.approx(242.6 / 96.5, rel=0.1)


def test_speaking_rate_sets_the_length():
    text = "the rate of speech"
    slow = render_sentence(text, dataclasses.replace(VOICES[0], rate=0.8), SR)
    fast = render_sentence(text, dataclasses.replace(VOICES[0], rate=1.25), SR)
    speech = lambda u: u.phones[-1][1] - u.phones[0][2]                            # noqa: E731
    assert speech(slow) / speech(fast) == pytest.approx(1.25 / 0.8, rel=0.02)


# ------------------------------------------------------------------------------ split and corpus
def test_default_plan_is_disjoint_by_sentence_and_voice():
    plan = plan_speech_text()
    texts = {s: {t for _, t, _ in plan[s]} for s in plan}
    voices = {s: {v.name for _, _, v in plan[s]} for s in plan}
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not texts[a] & texts[b] and not voices[a] & voices[b]
    assert {s: len(plan[s]) for s in plan} == {"train": 1360, "val": 120, "test": 180}
    assert [len(texts[s]) for s in ("train", "val", "test")] == [680, 60, 60]
    assert [len(voices[s]) for s in ("train", "val", "test")] == [11, 2, 3]
    # the lowest and highest voices train; every training voice says the same share
    f0 = sorted(VOICES[:16], key=lambda v: v.f0)
    assert {f0[0].name, f0[-1].name} <= voices["train"]
    counts = np.unique([v.name for _, _, v in plan["train"]], return_counts=True)[1]
    assert counts.max() - counts.min() <= 1


@pytest.mark.parametrize("voices, val_voices, test_voices, per", [
    (3 + 0 + 1, 0, 1, 1), (6, 1, 2, 3), (16, 2, 3, 2), (24, 4, 4, 5), (24, 0, 21, 1)])
@pytest.mark.parametrize("seed", [0, 1, 7])
def test_plan_split_holds_for_any_sizes(voices, val_voices, test_voices, per, seed):
    val_sentences = 5 if val_voices else 0
    plan = plan_speech_text(voices, 40, val_sentences, 6, val_voices, test_voices, per, seed=seed)
    names = {s: [v.name for _, _, v in plan[s]] for s in plan}
    texts = {s: {t for _, t, _ in plan[s]} for s in plan}
    assert len(set(names["val"])) == val_voices and len(set(names["test"])) == test_voices
    assert len(set(names["train"])) == voices - val_voices - test_voices
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not set(names[a]) & set(names[b]) and not texts[a] & texts[b]
    f0 = sorted(VOICES[:voices], key=lambda v: v.f0)
    assert {f0[0].name, f0[-1].name} <= set(names["train"])
    assert len(plan["train"]) == (40 - 6 - val_sentences) * per
    assert len(plan["test"]) == 6 * test_voices and len(plan["val"]) == val_sentences * val_voices


def test_plan_is_a_function_of_the_seed():
    assert plan_speech_text(seed=5) == plan_speech_text(seed=5)
    assert plan_speech_text(seed=5)["test"] != plan_speech_text(seed=6)["test"]


def test_tiny_corpus_sizes_cache_and_determinism(tmp_path):
    c = synthesize_speech_text(**TINY, cache_dir=tmp_path)
    assert {s: len(c.utterances(s)) for s in ("train", "val", "test")} == \
        {"train": 3, "val": 1, "test": 2}
    assert c.sizes()["test"]["speakers"] == 2
    for s in ("train", "val", "test"):
        for u in c.utterances(s):
            assert u.speaker in c.speakers[s] and u.text in c.sentences[s]
            assert u.sample_rate == SR and u.audio.dtype == torch.float32
    cached = synthesize_speech_text(**TINY, cache_dir=tmp_path)          # read back, not rendered
    assert len(list(tmp_path.glob("speech_text_*.npz"))) == 1
    fresh = synthesize_speech_text(**TINY)
    for a, b, d in zip(c.utterances("test"), cached.utterances("test"), fresh.utterances("test")):
        assert torch.equal(a.audio, b.audio) and torch.equal(a.audio, d.audio)
        assert a.phones == b.phones and a.chars == b.chars and torch.equal(a.f0, b.f0)
    with pytest.raises(ValueError, match="^split"):
        c.utterances("dev")


@pytest.mark.parametrize("kwargs, arg", [
    (dict(voices=2), "voices"),
    (dict(voices=25), "voices"),
    (dict(voices=6, val_voices=2, test_voices=2), "voices"),
    (dict(test_voices=0), "test_voices"),
    (dict(sentences=10, val_sentences=5, test_sentences=5), "sentences"),
    (dict(sentences=100000), "sentences"),
    (dict(val_voices=0), "val_voices"),
    (dict(voices_per_sentence=12), "voices_per_sentence"),
    (dict(min_chars=30, max_chars=20), "max_chars"),
    (dict(seed=-1), "seed"),
    (dict(sample_rate=1000), "sample_rate"),
])
def test_corpus_rejects_bad_arguments(kwargs, arg):
    with pytest.raises(ValueError, match=f"^{arg}"):
        synthesize_speech_text(**kwargs)


@pytest.mark.parametrize("kwargs, arg", [
    (dict(text="Not normalised"), "text"),
    (dict(text=""), "text"),
    (dict(voice="v01"), "voice"),
    (dict(sample_rate=100), "sample_rate"),
    (dict(seed=-2), "seed"),
])
def test_render_rejects_bad_arguments(kwargs, arg):
    args = dict(text="a good text", voice=VOICES[0], sample_rate=SR, seed=0) | kwargs
    with pytest.raises(ValueError, match=f"^{arg}"):
        render_sentence(**args)


# ------------------------------------------------------------------------------ your recordings
def _tone(seconds, f):
    t = torch.arange(int(seconds * 16000)) / 16000
    return 0.3 * torch.sin(2 * np.pi * f * t)


def test_speech_folder_with_txt_files_and_speakers(tmp_path):
    for k, spk in enumerate(["ann", "bob", "cy"]):
        for j in range(2):
            write_wav(tmp_path / spk / f"u{j}.wav", _tone(0.5, 200 + 50 * k), 16000)
            (tmp_path / spk / f"u{j}.txt").write_text(f"Sentence {j}, said by {spk.upper()}!\n")
    c = load_speech_folder(tmp_path, sample_rate=SR, split_by="speaker", split_seed=1)
    assert [len(c.speakers[s]) for s in ("train", "val", "test")] == [1, 1, 1]
    u = c.utterances("test")[0]
    assert u.text == f"sentence said by {u.speaker}"
    assert u.phones is None and u.chars is None and u.f0 is None and u.sample_rate == SR
    assert u.audio.shape == (4000,)
    by_file = load_speech_folder(tmp_path, sample_rate=SR)
    assert sum(len(by_file.utterances(s)) for s in ("train", "val", "test")) == 6


def test_speech_folder_with_metadata_csv(tmp_path):
    for j in range(4):
        write_wav(tmp_path / "wavs" / f"LJ{j}.wav", _tone(0.25, 300), 16000)
    rows = [f"wavs/LJ{j}|Raw text {j}.|Normalised text number {j}." for j in range(4)]
    (tmp_path / "metadata.csv").write_text("\n".join(rows) + "\n")
    c = load_speech_folder(tmp_path, sample_rate=SR, val_fraction=0.25, test_fraction=0.25)
    texts = sorted(u.text for s in ("train", "val", "test") for u in c.utterances(s))
    assert texts == ["normalised text number"] * 4
    assert [len(c.utterances(s)) for s in ("train", "val", "test")] == [2, 1, 1]


def test_speech_folder_errors(tmp_path):
    write_wav(tmp_path / "a.wav", _tone(0.2, 200), 16000)
    with pytest.raises(DatasetNotFoundError, match="a.wav has no transcript"):
        load_speech_folder(tmp_path)
    (tmp_path / "a.txt").write_text("123 !!")
    with pytest.raises(ValueError, match="empty after normalisation"):
        load_speech_folder(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="^data.path"):
        load_speech_folder(tmp_path / "missing")
    for kwargs, arg in ((dict(split_by="voice"), "split_by"), (dict(val_fraction=1.0), "val_fraction"),
                        (dict(val_fraction=0.5, test_fraction=0.5), "test_fraction"),
                        (dict(split_seed=-1), "split_seed")):
        with pytest.raises(ValueError, match=f"^{arg}"):
            load_speech_folder(tmp_path, **kwargs)
    (tmp_path / "a.txt").write_text("fine text")
    one = load_speech_folder(tmp_path)                          # fewer than three files: all train
    assert [len(one.utterances(s)) for s in ("train", "val", "test")] == [1, 0, 0]
    with pytest.raises(ValueError, match="^split_by"):
        load_speech_folder(tmp_path, split_by="speaker")        # one speaker cannot be split


def test_data_config_loads_the_corpus():
    from genmodels.schema import DATASETS
    from genmodels.speech.config import SpeechTextConfig
    cfg = SpeechTextConfig(**TINY)
    assert not list(cfg.problems())
    loader = DATASETS["speech_text"]
    c = loader(cfg)
    assert c.sizes()["val"]["utterances"] == 1
    bad = SpeechTextConfig(voices=5, val_voices=2, test_voices=2)
    assert [k for k, _ in bad.problems()] == ["voices"]


# ------------------------------------------------------------------------------ docs and figure
def test_docs_page_example_prints_what_it_shows():
    import contextlib
    import io
    import re
    from pathlib import Path
    page = (Path(__file__).resolve().parents[1] / "docs" / "speech.md").read_text()
    (code, expected), = re.findall(r"```python\n(.*?)```\s*\n```text\n(.*?)```", page, re.S)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "docs/speech.md", "exec"), {"__name__": "__docs__"})
    assert out.getvalue().strip() == expected.strip()


def test_plot_alignment(utt, tmp_path):
    from genmodels.speech.plots import plot_alignment
    assert plot_alignment([utt], tmp_path / "a.png").stat().st_size > 10_000
    bare = dataclasses.replace(utt, phones=None, chars=None)
    with pytest.raises(ValueError, match="^utterances"):
        plot_alignment([bare], tmp_path / "b.png")


# ------------------------------------------------------------------------------ espeak-ng
def test_espeak_missing_says_how_to_install(monkeypatch):
    from genmodels.speech import espeak
    monkeypatch.setenv("PATH", "")
    with pytest.raises(DatasetNotFoundError, match="apt-get install espeak-ng"):
        espeak.espeak_speech_text(**TINY)


@pytest.mark.skipif(__import__("shutil").which("espeak-ng") is None,
                    reason="espeak-ng is not installed (sudo apt-get install espeak-ng)")
def test_espeak_corpus_same_split_and_cache(tmp_path):
    from genmodels.speech.espeak import ESPEAK_VOICES, espeak_speech_text, render_espeak
    c = espeak_speech_text(**TINY, cache_dir=tmp_path)
    plan = plan_speech_text(**TINY, voice_table=ESPEAK_VOICES)
    for s in ("train", "val", "test"):
        assert [u.text for u in c.utterances(s)] == [t for _, t, _ in plan[s]]
        assert [u.speaker for u in c.utterances(s)] == [v.name for _, _, v in plan[s]]
        # the same sentences as the synthetic corpus of the same arguments
        assert c.sentences[s] == sorted({t for _, t, _ in plan_speech_text(**TINY)[s]})
    u = c.utterances("test")[0]
    assert u.phones is None and u.f0 is None and u.sample_rate == SR
    assert 0.5 < u.seconds < 5 and 0.03 < _rms(u.audio) <= 0.1 + 1e-6     # RMS 0.1 unless the
    assert float(u.audio.abs().max()) <= 0.95 + 1e-6                       # peak limit lowers it
    back = espeak_speech_text(**TINY, cache_dir=tmp_path).utterances("test")[0]
    assert torch.equal(back.audio, u.audio) and back.f0 is None and back.phones is None
    again = render_espeak(u.text, ESPEAK_VOICES[[v.name for v in ESPEAK_VOICES].index(u.speaker)])
    assert torch.equal(again.audio, u.audio)                     # deterministic
    with pytest.raises(ValueError, match="^voice"):
        render_espeak("a text", VOICES[0])


def test_write_wav_tags_the_audio_synthetic_and_reads_back(tmp_path):
    """Every WAV the experiments write says in its RIFF INFO comment that it is synthetic; the
    samples read back through libsndfile (soundfile) to 16-bit precision."""
    import soundfile as sf
    from genmodels.audio.wavfile import SYNTHETIC_COMMENT, read_wav_info
    x = _tone(0.2, 200)
    path = write_wav(tmp_path / "a.wav", x, 16000)
    assert read_wav_info(path)["ICMT"] == SYNTHETIC_COMMENT
    y, sr = sf.read(str(path))
    assert sr == 16000 and abs(y - x.numpy()).max() < 1.5 / 32767
    assert read_wav_info(write_wav(tmp_path / "b.wav", x, 16000, comment="my own voice"))["ICMT"] == "my own voice"
