"""The synthetic parallel corpus and the WAV-folder loader (genmodels/audio/corpus.py)."""

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from genmodels.audio.corpus import (PHONES, SPEAKERS, formant_response, load_wav_folder,
                                    synthesize_corpus, wav_folder_clips)
from genmodels.data.images import DatasetNotFoundError

pytestmark = [pytest.mark.audio, pytest.mark.data]

SR = 8000
SMALL = dict(speakers=3, utterances=6, seconds=0.8, sample_rate=SR, val_utterances=1,
             test_utterances=1)


@pytest.fixture(scope="module")
def corpus():
    return synthesize_corpus(seed=3, **SMALL)


def test_shapes_splits_and_range(corpus):
    S, U, N = corpus.audio.shape
    assert (S, U, N) == (3, 6, int(0.8 * SR))
    assert corpus.f0.shape == corpus.audio.shape
    assert corpus.audio.abs().max() <= 0.95 + 1e-6 and torch.isfinite(corpus.audio).all()
    assert corpus.ids("train").tolist() == [0, 1, 2, 3]
    assert corpus.ids("val").tolist() == [4] and corpus.ids("test").tolist() == [5]
    assert corpus.clips("train").shape == (3 * 4, N)
    # speaker-major flattening: clip s·U_split + u is speaker s, utterance u
    assert torch.equal(corpus.clips("train")[4 + 2], corpus.audio[1, 2])


def test_deterministic_from_seed_and_cache(corpus, tmp_path):
    again = synthesize_corpus(seed=3, **SMALL)
    assert torch.equal(again.audio, corpus.audio) and again.scripts == corpus.scripts
    other = synthesize_corpus(seed=4, **SMALL)
    assert not torch.equal(other.audio, corpus.audio)
    cached = synthesize_corpus(seed=3, cache_dir=tmp_path, **SMALL)
    assert len(list(tmp_path.glob("*.npz"))) == 1
    loaded = synthesize_corpus(seed=3, cache_dir=tmp_path, **SMALL)
    assert torch.equal(loaded.audio, corpus.audio) and torch.equal(cached.audio, corpus.audio)
    assert loaded.scripts == corpus.scripts


def test_utterance_is_a_prefix_property_of_its_index():
    # utterance u depends only on (seed, u): a bigger corpus shares the first utterances
    a = synthesize_corpus(seed=3, **SMALL)
    b = synthesize_corpus(seed=3, **{**SMALL, "utterances": 7})
    assert torch.equal(a.audio[:, :5], b.audio[:, :5])


def _segments(script, kinds, min_len):
    return [(a, b) for p, a, b in script if PHONES[p][0] in kinds and b - a >= min_len]


def test_parallel_same_phones_same_timing_across_speakers(corpus):
    """Read back from the audio: silences are quiet, fricatives are noisy and high, vowels are
    periodic — at the same samples for every speaker."""
    for u in range(corpus.n_utterances):
        script = corpus.scripts[u]
        assert script[0][1] == 0 and script[-1][2] == corpus.audio.shape[-1]
        assert all(a[2] == b[1] for a, b in zip(script, script[1:]))      # contiguous
        for s in range(corpus.audio.shape[0]):
            x = corpus.audio[s, u].double()
            rms = lambda a, b: x[a + 40:b - 40].pow(2).mean().sqrt().item()
            loud = x.pow(2).mean().sqrt().item()
            for a, b in _segments(script, "S", 300):
                assert rms(a, b) < 0.05 * loud
            for a, b in _segments(script, "V", 400):
                assert rms(a, b) > 0.3 * loud
                assert (corpus.f0[s, u, a + 60:b - 60] > 0).all()
            for a, b in _segments(script, "F", 300):
                assert (corpus.f0[s, u, a + 60:b - 60] == 0).all()
                seg = x[a + 40:b - 40].numpy()
                spec = np.abs(np.fft.rfft(seg)) ** 2
                f = np.fft.rfftfreq(seg.size, 1 / SR)
                assert spec[f > 1500].sum() > spec[f < 1000].sum()        # hiss, not voice


def test_pitch_by_yin_matches_the_speakers(corpus):
    """librosa.yin (an independent pitch tracker) finds each voice's pitch; the ratios between
    speakers are those of their configured mean f0 (the intonation contour is shared)."""
    found = np.zeros((3,))
    count = 0
    for u in range(corpus.n_utterances):
        for a, b in _segments(corpus.scripts[u], "V", 800):
            for s in range(3):
                seg = corpus.audio[s, u, a + 100:b - 100].double().numpy()
                f0 = np.median(librosa.yin(seg, fmin=60, fmax=500, sr=SR, frame_length=400))
                truth = float(corpus.f0[s, u, a + 100:b - 100].median())
                assert abs(f0 / truth - 1) < 0.03
                found[s] += np.log(f0)
            count += 1
    assert count >= 3
    mean_f0 = np.exp(found / count)
    ratios = mean_f0[1:] / mean_f0[0]
    want = np.array([SPEAKERS[1].f0, SPEAKERS[2].f0]) / SPEAKERS[0].f0
    np.testing.assert_allclose(ratios, want, rtol=0.05)


def test_formant_response_is_a_two_pole_resonator():
    # unit gain at 0 Hz; peak near F (slightly below for finite bandwidth); a single resonance
    # equals F² / |F² − f² + i B f| computed with complex numbers
    f = np.linspace(0, 4000, 801)
    h = formant_response(f, np.array([1000.0, 2000, 3000]), np.array([80.0, 100, 120]))
    assert h[0] == pytest.approx(1.0)
    single = formant_response(f, np.array([700.0]), np.array([90.0]))
    ref = 700.0 ** 2 / np.abs(700.0 ** 2 - f ** 2 + 1j * 90.0 * f)
    np.testing.assert_allclose(single, ref, rtol=1e-12)
    assert abs(f[np.argmax(single)] - 700) <= 10


@pytest.mark.parametrize("kwargs, arg", [
    (dict(speakers=0), "speakers"), (dict(speakers=7), "speakers"),
    (dict(utterances=2, val_utterances=1, test_utterances=1), "utterances"),
    (dict(seconds=0.1), "seconds"), (dict(sample_rate=1000), "sample_rate"),
    (dict(seconds=-1.0), "seconds"),
])
def test_synthesize_rejects_bad_arguments(kwargs, arg):
    with pytest.raises(ValueError, match=arg):
        synthesize_corpus(**{**SMALL, **kwargs})


def test_speaker_index_names_unknown_speaker(corpus):
    assert corpus.speaker_index("B") == 1
    with pytest.raises(ValueError, match="speaker"):
        corpus.speaker_index("F")
    with pytest.raises(ValueError, match="split"):
        corpus.ids("dev")


# ------------------------------------------------------------------------------ WAV folders
def _tone(sr, seconds, freq):
    t = np.arange(int(sr * seconds)) / sr
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_load_wav_folder_mono_resampled_sorted(tmp_path):
    a = _tone(8000, 1.0, 200)
    sf.write(tmp_path / "b.wav", a, 8000)
    stereo = np.stack([_tone(16000, 0.5, 300), 0.5 * _tone(16000, 0.5, 300)], axis=1)
    (tmp_path / "sub").mkdir()
    sf.write(tmp_path / "sub" / "a.wav", stereo, 16000)
    (tmp_path / "notes.txt").write_text("not audio")
    items = load_wav_folder(tmp_path, sample_rate=8000)
    assert [name for name, _ in items] == ["b.wav", "sub/a.wav"]
    np.testing.assert_allclose(items[0][1].numpy(), a, atol=1e-4)       # 16-bit PCM rounding
    mono = 0.75 * _tone(16000, 0.5, 300)                                 # mean of the channels
    want = librosa.resample(mono, orig_sr=16000, target_sr=8000)
    assert items[1][1].shape == (4000,)
    np.testing.assert_allclose(items[1][1].numpy(), want, atol=1e-3)


def test_wav_folder_clips_split_by_file(tmp_path):
    for i in range(5):
        sf.write(tmp_path / f"f{i}.wav", _tone(8000, 2.3, 100 + 50 * i), 8000)
    clips = wav_folder_clips(tmp_path, sample_rate=8000, segment_seconds=0.5, val_fraction=0.2,
                             test_fraction=0.2, split_seed=0)
    assert clips.train.shape == (3 * 4, 4000) and clips.val.shape == (4, 4000)
    assert clips.test.shape == (4, 4000)
    names = clips.files
    assert len(set(names["train"]) | set(names["val"]) | set(names["test"])) == 5
    assert not set(names["train"]) & set(names["test"])
    assert clips.train.abs().max() <= 0.9 + 1e-6


def test_wav_folder_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="data.path"):
        load_wav_folder(tmp_path / "missing")
    with pytest.raises(DatasetNotFoundError, match="no .wav"):
        load_wav_folder(tmp_path)
    with pytest.raises(DatasetNotFoundError, match="data.path"):
        load_wav_folder(None)
    sf.write(tmp_path / "empty.wav", np.zeros(0, dtype=np.float32), 8000)
    with pytest.raises(ValueError, match="empty"):
        load_wav_folder(tmp_path)
