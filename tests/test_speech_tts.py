"""Text-to-speech (genmodels/speech/tts.py, task_tts.py) and its tools: the length regulator
against ``torch.repeat_interleave``, Griffin-Lim against ``librosa.griffinlim``, DTW against
``librosa.sequence.dtw``, the tagged WAV writer read back by the standard library and by
libsndfile, the durations against the corpus's script, the model's masks and speakers, and the
experiment trained a few steps through the trainer."""

from __future__ import annotations

import json
import math
import wave

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import compose, randn64, t64
from genmodels.audio.features import mfcc
from genmodels.audio.griffinlim import griffin_lim
from genmodels.audio.stft import stft
from genmodels.audio.voice_conversion import mcd_db
from genmodels.audio.wavfile import SYNTHETIC_COMMENT, read_wav_info, write_tagged_wav
from genmodels.speech import VOICES, render_sentence
from genmodels.speech.alignment import dtw, dtw_mel_cepstral_distortion
from genmodels.speech.tts import FastSpeechTTS, PhoneVocab, frame_durations, length_regulator
from genmodels.train.config import ConfigError, to_object
from genmodels.train.trainer import Trainer

pytestmark = [pytest.mark.speech]

#: a corpus of 6 voices and 20 phrases and a tiny model (as tests/test_speech_asr.py)
TINY_DATA = ["data.voices=6", "data.val_voices=1", "data.test_voices=1", "data.sentences=20",
             "data.val_sentences=2", "data.test_sentences=2", "data.voices_per_sentence=1"]
TINY = [*TINY_DATA, "trainer.max_steps=2", "trainer.batch_size=4", "trainer.eval_every=1",
        "trainer.log_every=1", "trainer.scheduler.warmup_steps=1", "trainer.progress=false",
        "trainer.threads=1", "trainer.ckpt_every=100", "model.d_model=16", "model.d_ff=32",
        "model.enc_layers=1", "model.dec_layers=1", "model.griffin_lim_iters=2",
        "model.eval_voices=1", "model.samples=1"]


# ------------------------------------------------------------------------------ length regulator
def _expand_by_repeat(h, durations):
    """The reference: torch.repeat_interleave per sequence, zero-padded to the longest."""
    rows = [hb.repeat_interleave(db, dim=0) for hb, db in zip(h, durations)]
    T = max(r.shape[0] for r in rows)
    y = torch.zeros(h.shape[0], T, h.shape[2], dtype=h.dtype)
    mask = torch.zeros(h.shape[0], T, dtype=torch.bool)
    for b, r in enumerate(rows):
        y[b, :r.shape[0]], mask[b, :r.shape[0]] = r, True
    return y, mask


@pytest.mark.exercise("speech.length_regulator")
def test_length_regulator_matches_repeat_interleave():
    g = torch.Generator().manual_seed(0)
    for B, K, d in ((1, 1, 1), (3, 5, 4), (4, 9, 2)):
        h = randn64(B, K, d, seed=B + K)
        durations = torch.randint(0, 4, (B, K), generator=g)
        durations[0, 0] = 0                                    # a state that owns no frame
        durations[-1, -1] = max(1, int(durations[-1, -1]))
        y, mask = length_regulator(h, durations)
        want_y, want_mask = _expand_by_repeat(h, durations)
        assert torch.equal(mask, want_mask)
        torch.testing.assert_close(y, want_y, rtol=0, atol=0)
        y2, mask2 = length_regulator(h, durations, max_frames=y.shape[1] + 3)   # longer: padded
        assert torch.equal(y2[:, :y.shape[1]], y) and not mask2[:, y.shape[1]:].any()


@pytest.mark.exercise("speech.length_regulator")
def test_length_regulator_small_case(small_case):
    h = t64([[[1.0], [2.0], [3.0]]])
    small_case(("states [1, 2, 3], durations [2, 0, 3]: [1, 1, 3, 3, 3]",
                [1.0, 1.0, 3.0, 3.0, 3.0],
                lambda: length_regulator(h, torch.tensor([[2, 0, 3]]))[0][0, :, 0]),
               ("states [1, 2], durations [1, 2] and [3, 0]: row 2 is [1, 1, 1]",
                [[1.0, 2.0, 2.0], [1.0, 1.0, 1.0]],
                lambda: length_regulator(t64([[[1.0], [2.0]], [[1.0], [2.0]]]),
                                         torch.tensor([[1, 2], [3, 0]]))[0][..., 0]))


@pytest.mark.parametrize("bad, name", [
    (dict(durations=torch.tensor([[1.0, 2.0]])), "durations"),
    (dict(durations=torch.tensor([[1, -1]])), "durations"),
    (dict(durations=torch.tensor([[1, 2, 3]])), "durations"),
    (dict(h=torch.ones(1, 2)), "h"),
    (dict(max_frames=-1), "max_frames"),
])
def test_length_regulator_names_a_bad_argument(bad, name):
    kw = {"h": torch.ones(1, 2, 3), "durations": torch.tensor([[1, 2]]), **bad}
    with pytest.raises(ValueError, match=f"^{name}"):
        length_regulator(**kw)


# ------------------------------------------------------------------------------ Griffin-Lim
@pytest.mark.parametrize("momentum", [0.0, 0.99])
def test_griffin_lim_matches_librosa(momentum):
    x = randn64(1200, seed=1)
    mag = stft(x, 256, 64).abs()
    got = griffin_lim(mag, 256, 64, n_iter=6, momentum=momentum)
    want = librosa.griffinlim(mag.numpy(), n_iter=6, hop_length=64, n_fft=256,
                              momentum=momentum, init=None)            # init None: zero phase
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-9)
    got = griffin_lim(mag, 256, 64, n_iter=3, momentum=momentum, length=1180)
    want = librosa.griffinlim(mag.numpy(), n_iter=3, hop_length=64, n_fft=256,
                              momentum=momentum, init=None, length=1180)
    np.testing.assert_allclose(got.numpy(), want, rtol=0, atol=1e-9)


def test_griffin_lim_never_increases_the_inconsistency():
    """Griffin & Lim's theorem: without momentum, ‖|STFT(x_n)| − S‖ does not increase."""
    t = torch.arange(2000, dtype=torch.float64) / 8000
    x = torch.sin(2 * math.pi * 220 * t) * torch.linspace(0, 1, 2000, dtype=torch.float64)
    S = stft(x, 256, 64).abs()
    errs = [float((stft(griffin_lim(S, 256, 64, n_iter=n, momentum=0.0, length=2000), 256, 64)
                   .abs() - S).norm()) for n in (1, 2, 4, 8, 16)]
    assert all(b <= a + 1e-9 for a, b in zip(errs, errs[1:])), errs
    assert errs[-1] < 0.5 * errs[0], errs


def test_griffin_lim_names_a_bad_argument():
    S = torch.ones(129, 5, dtype=torch.float64)
    for kw, name in ((dict(magnitude=torch.ones(128, 5)), "magnitude"),
                     (dict(magnitude=-S), "magnitude"), (dict(n_iter=0), "n_iter"),
                     (dict(momentum=-0.1), "momentum"), (dict(init="noise"), "init")):
        with pytest.raises(ValueError, match=f"^{name}"):
            griffin_lim(**{"magnitude": S, "n_fft": 256, "hop_length": 64, **kw})


# ------------------------------------------------------------------------------ DTW and MCD
@pytest.mark.parametrize("shape", [(1, 1), (1, 6), (5, 1), (7, 7), (12, 30), (30, 12)])
def test_dtw_matches_librosa(shape):
    rng = np.random.default_rng(sum(shape))
    cost = rng.random(shape)
    D, wp = librosa.sequence.dtw(C=cost)
    dist, path, acc = dtw(torch.from_numpy(cost))
    np.testing.assert_allclose(acc.numpy(), D, rtol=1e-12, atol=1e-12)
    assert float(dist) == pytest.approx(D[-1, -1], rel=1e-12)
    np.testing.assert_array_equal(path.numpy(), wp[::-1])


def test_dtw_mcd_is_zero_for_a_time_warped_copy_and_plain_mcd_for_equal_timing():
    x = randn64(3000, seed=2)
    c = mfcc(x, 8000, n_mfcc=13, n_fft=256, hop_length=64, n_mels=40)     # (13, T)
    warp = torch.tensor([0, 0, 1, 2, 2, 2, *range(3, c.shape[1])])         # frames repeated
    assert float(dtw_mel_cepstral_distortion(c[:, warp], c)) == pytest.approx(0.0, abs=1e-12)
    # two different signals of equal length whose best path is the diagonal: the plain MCD
    y = c + 0.01 * randn64(*c.shape, seed=3)
    assert float(dtw_mel_cepstral_distortion(y, c)) <= float(mcd_db(y, c)) + 1e-12
    with pytest.raises(ValueError, match="^c_ref"):
        dtw_mel_cepstral_distortion(c, c[:5])


# ------------------------------------------------------------------------------ WAV files
def test_tagged_wav_reads_back_with_its_comment(tmp_path):
    audio = 0.5 * torch.sin(torch.arange(800) / 5.0)
    path = write_tagged_wav(tmp_path / "a.wav", audio, 8000, title="a test tone")
    tags = read_wav_info(path)
    assert tags == {"ICMT": SYNTHETIC_COMMENT, "ISFT": "genmodels", "INAM": "a test tone"}
    with wave.open(str(path), "rb") as w:                  # the standard library's reader
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    np.testing.assert_array_equal(pcm, np.round(audio.double().numpy() * 32767).astype(np.int16))
    data, sr = sf.read(str(path))                           # libsndfile: audio and comment
    assert sr == 8000 and np.abs(data - audio.numpy()).max() < 1 / 32767
    with sf.SoundFile(str(path)) as f:
        assert f.comment == SYNTHETIC_COMMENT
    riff = path.read_bytes()
    assert int.from_bytes(riff[4:8], "little") == len(riff) - 8
    with pytest.raises(ValueError, match="^audio"):
        write_tagged_wav(tmp_path / "b.wav", torch.zeros(2, 3), 8000)


# ------------------------------------------------------------------------------ model and data
def test_durations_follow_the_script_and_text_gives_the_scripts_phones():
    u = render_sentence("the quick brown fox", VOICES[3], 8000, seed=1, sentence=4)
    d = frame_durations(u.phones, u.audio.shape[0], 64)
    assert sum(d) == 1 + u.audio.shape[0] // 64 and min(d) >= 1
    for (_, a, _), start in zip(u.phones, np.cumsum([0] + d[:-1])):
        assert abs(a / 64 - start) <= 0.5 + 1e-9                          # nearest frame
    vocab = PhoneVocab()
    assert vocab.text_to_ids(u.text) == vocab.encode([p for p, _, _ in u.phones])


def test_padding_is_ignored_and_the_speaker_changes_the_frames():
    torch.manual_seed(0)
    model = FastSpeechTTS(n_phones=10, n_speakers=3, n_bins=5, d_model=16, num_heads=2,
                          enc_layers=1, dec_layers=1, d_ff=32, dropout=0.0).eval()
    phones, dur = torch.tensor([[3, 4, 5]]), torch.tensor([[2, 1, 3]])
    a, mask, _ = model(phones, torch.tensor([1]), dur)
    b, _, _ = model(torch.tensor([[3, 4, 5, 0, 0]]), torch.tensor([1]),
                    torch.tensor([[2, 1, 3, 0, 0]]))
    torch.testing.assert_close(a, b)                                      # padded phones: no effect
    c, _, _ = model(phones, torch.tensor([2]), dur)
    assert mask.all() and not torch.allclose(a, c)                        # another voice
    frames, fmask, d = model.synthesize(phones, torch.tensor([0]))
    assert frames.shape[1] == int(d.sum()) and (d >= 1).all()


# ------------------------------------------------------------------------------ the experiment
def test_experiment_trains_a_few_steps(tmp_path):
    res = Trainer(to_object(compose(["experiment=tts_speech", *TINY])), tmp_path).fit()
    assert set(res["val"]) == {"loss", "frame_l1", "duration_mse"}
    assert set(res["test"]) == {"loss", "frame_l1", "duration_mse", "mcd_tts",
                                "mcd_tts_true_durations", "mcd_ceiling", "length_ratio"}
    assert all(math.isfinite(v) and v >= 0 for v in res["test"].values())
    assert json.loads((tmp_path / "results.json").read_text())["test"] == res["test"]
    fig = tmp_path / "figures"
    for name in ("tts_alignment.png", "tts_spectrograms.png", "loss_curves.png"):
        assert (fig / name).stat().st_size > 0, name
    wavs = sorted(fig.glob("*.wav"))
    assert len(wavs) == 3 and all(read_wav_info(w)["ICMT"].startswith(SYNTHETIC_COMMENT)
                                  for w in wavs)


def test_length_buckets_cover_every_item_once_per_epoch_in_sorted_groups():
    from genmodels.train.trainer import build_task
    task = build_task(to_object(compose(["experiment=tts_speech", *TINY,
                                         "model.length_buckets=true"])), torch.device("cpu"))
    n, B = len(task.items["train"]), 4
    lengths = [it["frames"].shape[0] for it in task.items["train"]]
    batches = [task.draw(step)["idx"].tolist() for step in range(n // B)]
    assert sorted(i for b in batches for i in b) == list(range(n))           # one epoch
    ranks = {i: r for r, i in enumerate(sorted(range(n), key=lambda i: (lengths[i], i)))}
    for b in batches:                                                         # neighbours in length
        assert max(ranks[i] for i in b) - min(ranks[i] for i in b) == B - 1
    assert batches != [task.draw(step)["idx"].tolist() for step in range(n // B, 2 * n // B)]
    assert task.draw(5)["idx"].tolist() == task.draw(5)["idx"].tolist()       # a function of the step


@pytest.mark.parametrize("override, key", [
    ("model.num_heads=3", "model.num_heads"), ("model.kernel_size=4", "model.kernel_size"),
    ("model.asr_mode=fast", "model.asr_mode"), ("model.hop_length=512", "model.hop_length"),
    ("model.mcd_mfcc=41", "model.mcd_mfcc"), ("model.arch=tacotron", "model.arch"),
])
def test_bad_configs_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        to_object(compose(["experiment=tts_speech", override]))


def test_a_missing_asr_run_and_too_many_voices_are_refused_before_training(tmp_path):
    from genmodels.train.trainer import build_task
    for override, key in ((f"model.asr_run={tmp_path / 'none'}", "model.asr_run"),
                          ("model.eval_voices=9", "model.eval_voices")):
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            build_task(to_object(compose(["experiment=tts_speech", *TINY, override])),
                       torch.device("cpu"))


@pytest.mark.slow
def test_the_asr_reads_real_tts_and_ceiling_audio(tmp_path):
    """A (two-step) ASR run, then the TTS with model.asr_run: the CERs and their ratio."""
    from test_speech_asr import TINY as ASR_TINY
    asr = tmp_path / "asr"
    Trainer(to_object(compose(["experiment=asr_lstm_ctc", *ASR_TINY, "data.val_sentences=2",
                               "data.test_sentences=2"])), asr).fit()      # TINY_DATA's corpus
    res = Trainer(to_object(compose(["experiment=tts_speech", *TINY, f"model.asr_run={asr}"])),
                  tmp_path / "tts").fit()
    assert {"cer_real", "cer_tts", "cer_ceiling"} <= set(res["test"])
    assert all(0 <= res["test"][k] for k in ("cer_real", "cer_tts", "cer_ceiling"))
