"""Eq. 2.30: mel filterbank, STFT and MFCC against librosa / scipy, computed independently."""

import librosa
import numpy as np
import pytest
import scipy.fft
import torch

from genmodels.audio import (dct_matrix, fft_frequencies, hann_window, hz_to_mel, istft,
                             mel_filterbank, mel_to_hz, mfcc, power_to_db, stft, stft_power)
from genmodels.audio.stft import num_frames
from conftest import noisy_tone

pytestmark = pytest.mark.audio

MEL_CASES = [  # (sr, n_fft, n_mels, fmin, fmax)
    (22050, 2048, 128, 0.0, None),
    (16000, 512, 40, 20.0, 7600.0),
    (8000, 256, 20, 300.0, 3000.0),
    (44100, 1024, 64, 0.0, 11025.0),
    (16000, 400, 80, 1000.0, 8000.0),   # odd-sized rfft, fmin exactly at the log break
]


@pytest.mark.exercise("audio.mel_filterbank")
@pytest.mark.parametrize("sr,n_fft,n_mels,fmin,fmax", MEL_CASES)
def test_mel_filterbank_matches_librosa(sr, n_fft, n_mels, fmin, fmax):
    ours = mel_filterbank(sr, n_fft, n_mels, fmin, fmax, dtype=torch.float64)
    ref = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax,
                              dtype=np.float64)
    assert ours.shape == (n_mels, 1 + n_fft // 2) and ours.dtype == torch.float64
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-10)
    assert mel_filterbank(sr, n_fft, n_mels, fmin, fmax).dtype == torch.get_default_dtype()


def test_hann_window_is_scipy_periodic_hann():
    for n in (16, 400, 2048, 63):
        ref = librosa.filters.get_window("hann", n, fftbins=True)
        np.testing.assert_allclose(hann_window(n, torch.float64).numpy(), ref, atol=1e-14)


@pytest.mark.parametrize("n_fft,hop", [(512, 128), (64, 32), (63, 16)])
def test_stft_and_istft_match_librosa(n_fft, hop):
    x = np.random.default_rng(0).standard_normal((2, 1001))
    spec = stft(torch.from_numpy(x), n_fft, hop)
    ref = librosa.stft(x, n_fft=n_fft, hop_length=hop)
    np.testing.assert_allclose(spec.numpy(), ref, atol=1e-10)
    back = istft(spec, n_fft, hop, 1001)
    np.testing.assert_allclose(back.numpy(), librosa.istft(ref, hop_length=hop, n_fft=n_fft,
                                                           length=1001), atol=1e-10)
    np.testing.assert_allclose(back.numpy(), x, atol=1e-10)     # perfect reconstruction


def test_dct_matrix_is_scipy_orthonormal_dct2():
    ref = scipy.fft.dct(np.eye(12), type=2, norm="ortho", axis=0)[:5]   # columns = basis images
    np.testing.assert_allclose(dct_matrix(5, 12).numpy(), ref, atol=1e-14)
    full = dct_matrix(12, 12)
    torch.testing.assert_close(full @ full.T, torch.eye(12, dtype=torch.float64))


def test_power_to_db_matches_librosa():
    s = np.abs(np.random.default_rng(1).standard_normal((7, 9))) ** 4 * 1e3
    s[0, :3] = 0.0                                               # hits amin and the top_db floor
    np.testing.assert_allclose(power_to_db(torch.from_numpy(s)).numpy(), librosa.power_to_db(s),
                               atol=1e-10)


def _signals(sr, n):
    t = np.arange(n) / sr
    rng = np.random.default_rng(42)
    chirp = np.sin(2 * np.pi * (100 * t + 0.5 * (sr / 2 - 200) * t ** 2 / t[-1]))
    silent_tail = chirp.copy()
    silent_tail[n // 2:] = 0.0                                   # makes top_db clip
    return {"noise": 0.3 * rng.standard_normal(n), "chirp": chirp, "chirp+silence": silent_tail}


MFCC_CASES = [  # (n_mfcc, n_fft, hop, n_mels, fmin, fmax)
    (20, 2048, 512, 128, 0.0, None),
    (13, 512, 160, 40, 50.0, 7000.0),
    (13, 256, 100, 20, 0.0, 4000.0),
    (24, 400, 128, 64, 300.0, None),
]


@pytest.mark.exercise("audio.mfcc")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("n_mfcc,n_fft,hop,n_mels,fmin,fmax", MFCC_CASES)
def test_mfcc_matches_librosa(n_mfcc, n_fft, hop, n_mels, fmin, fmax, dtype):
    sr, n = 16000, 6000
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    for name, y in _signals(sr, n).items():
        y = y.astype(np_dtype)
        ref = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=n_mfcc, n_fft=n_fft, hop_length=hop,
                                   n_mels=n_mels, fmin=fmin, fmax=fmax, dtype=np_dtype)
        ours = mfcc(torch.from_numpy(y), sr, n_mfcc, n_fft, hop, n_mels, fmin, fmax)
        assert ours.dtype == dtype and ours.shape == ref.shape == (n_mfcc, 1 + n // hop)
        # error relative to the largest coefficient (c0 dominates; others are tens of dB)
        rel = np.abs(ours.numpy() - ref).max() / np.abs(ref).max()
        assert rel < (1e-10 if dtype == torch.float64 else 1e-4), (name, rel)


@pytest.mark.exercise("audio.mfcc")
def test_mfcc_batched_equals_per_item():
    sr, n = 8000, 3000
    sig = _signals(sr, n)
    batch = torch.tensor(np.stack([np.stack([sig["noise"], 1e-3 * sig["chirp"]]),
                                   np.stack([sig["chirp+silence"], 1e2 * sig["noise"]])]))
    out = mfcc(batch, sr, 13, 256, 64, 32)                       # [2, 2, 13, frames]
    assert out.shape == (2, 2, 13, 1 + n // 64)
    for i in range(2):
        for j in range(2):
            torch.testing.assert_close(out[i, j], mfcc(batch[i, j], sr, 13, 256, 64, 32),
                                       rtol=0, atol=1e-10)
            # each item is clipped at its own max − 80 dB, like librosa on that item alone
            ref = librosa.feature.mfcc(y=batch[i, j].numpy(), sr=sr, n_mfcc=13, n_fft=256,
                                       hop_length=64, n_mels=32, dtype=np.float64)
            np.testing.assert_allclose(out[i, j].numpy(), ref, atol=1e-8)


@pytest.mark.exercise("audio.mfcc")
def test_mfcc_gradcheck():
    x = torch.randn(1, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0),
                    requires_grad=True)
    f = lambda s: mfcc(s, 8000, n_mfcc=4, n_fft=16, hop_length=8, n_mels=6)  # noqa: E731
    assert torch.autograd.gradcheck(f, (x,), eps=1e-6, atol=1e-5)


@pytest.mark.parametrize("kwargs,arg", [
    (dict(signal=torch.zeros(0)), "signal"),
    (dict(signal=torch.tensor([0.1, float("nan"), 0.2] * 100)), "signal"),
    (dict(signal=torch.zeros(400, dtype=torch.int64)), "signal"),
    (dict(signal=torch.zeros(400, dtype=torch.float16)), "signal"),
    (dict(n_mfcc=50, n_mels=40), "n_mfcc"),
    (dict(fmax=9000.0), "fmax"),
    (dict(fmin=3000.0, fmax=2000.0), "fmax"),
    (dict(fmin=-1.0), "fmin"),
    (dict(hop_length=0), "hop_length"),
    (dict(n_fft=256, hop_length=300), "hop_length"),
    (dict(sample_rate=0), "sample_rate"),
])
def test_mfcc_rejects_bad_input(kwargs, arg):
    args = dict(signal=torch.randn(400), sample_rate=16000, n_fft=256, hop_length=64, n_mels=40)
    args.update(kwargs)
    with pytest.raises(ValueError, match=arg):
        mfcc(**args)


# ------------------------------------------------------------ STFT options, against librosa
_RNG = np.random.default_rng(3)
_X = _RNG.standard_normal((2, 3000))
_X[:, 1000:1600] = 0.0  # digital silence: |X| = 0 in some bins, where |X|^p must be 0 (not NaN)


@pytest.mark.parametrize("power", [1.0, 0.5, 2.0])
def test_stft_power_matches_librosa_for_any_power_and_the_defaults(power):
    ours = stft_power(torch.from_numpy(_X), power=power)          # n_fft=2048, hop=512, centred
    ref = np.abs(librosa.stft(_X, n_fft=2048, hop_length=512)) ** power
    assert ours.dtype == torch.float64
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-9, atol=1e-9)


def test_stft_power_and_stft_without_centering_or_with_another_window():
    ours = stft_power(torch.from_numpy(_X), 256, 64, power=1.0, center=False)
    ref = np.abs(librosa.stft(_X, n_fft=256, hop_length=64, center=False))
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-9, atol=1e-9)
    box = stft(torch.from_numpy(_X), 128, 32, window=torch.ones(128, dtype=torch.float64))
    np.testing.assert_allclose(box.numpy(), librosa.stft(_X, n_fft=128, hop_length=32, window=np.ones(128)),
                               atol=1e-9)


def test_istft_pads_to_the_requested_length_and_supports_uncentred_frames():
    spec = librosa.stft(_X, n_fft=128, hop_length=32)
    ours = istft(torch.from_numpy(spec), 128, 32, 3300)  # longer than the frames cover
    np.testing.assert_allclose(ours.numpy(), librosa.istft(spec, n_fft=128, hop_length=32, length=3300),
                               atol=1e-10)
    spec_nc = librosa.stft(_X, n_fft=128, hop_length=32, center=False)
    ours_nc = istft(torch.from_numpy(spec_nc), 128, 32, 2900, center=False)
    # where the squared window sum is non-zero, overlap-add inverts the uncentred STFT exactly
    np.testing.assert_allclose(ours_nc.numpy()[:, 1:2900], _X[:, 1:2900], atol=1e-9)


def test_num_frames_counts_the_stft_frames():
    for n, n_fft, hop in [(1000, 256, 64), (1001, 63, 16), (300, 512, 128), (64, 64, 1)]:
        assert num_frames(n, n_fft, hop) == stft(torch.zeros(n), n_fft, hop).shape[-1]
        if n >= n_fft:
            assert num_frames(n, n_fft, hop, center=False) == \
                stft(torch.zeros(n), n_fft, hop, center=False).shape[-1]
    assert num_frames(100, 256, 64, center=False) == 0
    assert num_frames(100, 256, 64) == 1 + 100 // 64


def test_mel_scale_helpers_match_librosa():
    f = np.array([0.0, 200.0, 999.0, 1000.0, 1001.0, 4000.0, 11025.0])
    np.testing.assert_allclose(hz_to_mel(torch.from_numpy(f)).numpy(), librosa.hz_to_mel(f), rtol=1e-12)
    m = np.array([0.0, 3.0, 14.9, 15.0, 15.1, 40.0])
    np.testing.assert_allclose(mel_to_hz(torch.from_numpy(m)).numpy(), librosa.mel_to_hz(m), rtol=1e-12)
    np.testing.assert_allclose(fft_frequencies(22050, 512).numpy(),
                               librosa.fft_frequencies(sr=22050, n_fft=512), rtol=1e-12)


def test_power_to_db_options_match_librosa():
    s = np.abs(np.random.default_rng(4).standard_normal((2, 5, 6))) ** 4
    s[0, 0, :2] = 0.0
    t = torch.from_numpy(s)
    for kw in (dict(top_db=None), dict(ref=2.0, amin=1e-5), dict(top_db=0.0), dict(top_db=10.0)):
        for i in range(2):  # item_dims=2: each [5, 6] item floored against its own peak
            np.testing.assert_allclose(power_to_db(t, **kw)[i].numpy(), librosa.power_to_db(s[i], **kw),
                                       atol=1e-10)
    rows = power_to_db(t, top_db=10.0, item_dims=1)  # one floor per row
    for i in range(2):
        for r in range(5):
            np.testing.assert_allclose(rows[i, r].numpy(), librosa.power_to_db(s[i, r], top_db=10.0), atol=1e-10)


def test_mfcc_without_top_db_matches_librosa():
    x = np.random.default_rng(5).standard_normal(4000)
    x[1000:2500] = 0.0   # digital silence: far more than 80 dB below the peak, so top_db matters
    ours = mfcc(torch.from_numpy(x), 16000, n_mfcc=13, n_fft=512, hop_length=128, n_mels=40, top_db=None)
    mel = librosa.feature.melspectrogram(y=x, sr=16000, n_fft=512, hop_length=128, n_mels=40)
    ref = scipy.fft.dct(librosa.power_to_db(mel, top_db=None), type=2, norm="ortho", axis=0)[:13]
    np.testing.assert_allclose(ours.numpy(), ref, rtol=1e-6, atol=1e-6)


_S = torch.zeros(400)


@pytest.mark.parametrize("call, message", [
    (lambda: stft(torch.zeros(400, dtype=torch.int64), 64, 16),
     r"^signal: expected a float32 or float64 tensor, got dtype torch.int64$"),
    (lambda: stft(torch.zeros(400, dtype=torch.float16), 64, 16),
     r"^signal: expected a float32 or float64 tensor, got dtype torch.float16$"),
    (lambda: stft(torch.zeros(2, 0), 64, 16), r"^signal: empty audio \(a dimension of size 0\), shape \(2, 0\)$"),
    (lambda: stft(torch.tensor([0.0, float("inf")] * 100), 64, 16), r"^signal: contains 100 NaN/inf"),
    (lambda: stft(_S, 1, 1), r"^n_fft: must be >= 2, got 1$"),
    (lambda: stft(_S, 64, 0), r"^hop_length: must be >= 1, got 0$"),
    (lambda: stft(_S, 64, 65), r"^hop_length: must be <= n_fft=64 \(frames would leave gaps\), got 65$"),
    (lambda: stft(_S, 64, 16, window=torch.ones(1, 64)), r"^window: expected 1 dimensions"),
    (lambda: stft(_S, 64, 16, window=torch.ones(32)), r"^window: expected length n_fft=64, got 32$"),
    (lambda: stft(torch.zeros(10), 64, 16, center=False),
     r"^signal: 10 samples are fewer than n_fft=64 \(use center=True or a shorter n_fft\)$"),
    (lambda: stft_power(_S, 64, 16, power=0), r"^power: must be a number > 0, got 0$"),
    (lambda: stft_power(_S, 64, 16, power=True), r"^power: must be a number > 0, got True$"),
    (lambda: stft_power(_S, 64, 16, power="2"), r"^power: must be a number > 0, got '2'$"),
    (lambda: stft_power(torch.full((400,), float("nan")), 64, 16), r"^signal: contains 400 NaN/inf"),
    (lambda: istft(torch.zeros(33, 5), 64, 16, 100), r"^spec: expected a complex tensor \[\.\.\., 1 \+ n_fft//2, frames\]$"),
    (lambda: istft(torch.zeros(5, dtype=torch.complex64), 64, 16, 100),
     r"^spec: expected shape \[\.\.\., 33, frames\], got \[5\]$"),
    (lambda: istft(torch.zeros(32, 5, dtype=torch.complex64), 64, 16, 100),
     r"^spec: expected shape \[\.\.\., 33, frames\], got \[32, 5\]$"),
    (lambda: istft(torch.zeros(33, 5, dtype=torch.complex64), 64, 16, 0), r"^length: must be >= 1, got 0$"),
    (lambda: mel_filterbank(0, 512), r"^sample_rate: must be > 0, got 0$"),
    (lambda: mel_filterbank(16000, 1), r"^n_fft: must be >= 2, got 1$"),
    (lambda: mel_filterbank(16000, 512, 0), r"^n_mels: must be >= 1, got 0$"),
    (lambda: mel_filterbank(16000, 512, 40, 8000.0), r"^fmin: must lie in \[0.0, 8000.0\), got 8000.0$"),
    (lambda: mel_filterbank(16000, 512, 40, 100.0, 100.0), r"^fmax: must lie in \(100.0, 8000.0\], got 100.0$"),
    (lambda: mfcc(_S, 16000, n_mfcc=0, n_fft=64, hop_length=16, n_mels=10), r"^n_mfcc: must be >= 1, got 0$"),
    (lambda: mfcc(_S, 16000, n_mfcc=11, n_fft=64, hop_length=16, n_mels=10), r"^n_mfcc: must be <= n_mels=10, got 11$"),
    (lambda: power_to_db(torch.ones(2, 2), amin=0.0), r"^amin: must be > 0, got 0.0$"),
    (lambda: power_to_db(torch.ones(2, 2), ref=0.0), r"^ref: must be > 0, got 0.0$"),
    (lambda: power_to_db(torch.ones(2, 2), top_db=-1.0), r"^top_db: must be >= 0, got -1.0$"),
])
def test_stft_and_feature_messages(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_stft_defaults_dtype_and_power_gradient_at_silence():
    x = torch.from_numpy(_X[0])
    np.testing.assert_allclose(stft(x).numpy(), librosa.stft(_X[0]), atol=1e-9)   # 2048, 512
    x32 = x.float()
    assert stft(x32).dtype == torch.complex64 and stft_power(x32, 256, 64).dtype == torch.float32
    from genmodels.audio.stft import power_frames_first
    torch.testing.assert_close(power_frames_first(x, 256, 64), stft_power(x, 256, 64).transpose(-1, -2))
    xg = x.clone().requires_grad_()
    stft_power(xg, 256, 64, power=1.0).sum().backward()      # |X| at X = 0: a finite (zero) slope
    assert bool(torch.isfinite(xg.grad).all())


def test_num_frames_with_odd_n_fft_on_a_hop_boundary():
    assert num_frames(1008, 63, 16) == stft(torch.zeros(1008), 63, 16).shape[-1] == 1 + 1007 // 16


def test_feature_defaults_odd_sizes_and_edge_values():
    np.testing.assert_allclose(mel_filterbank(22050, 2048, dtype=torch.float64).numpy(),
                               librosa.filters.mel(sr=22050, n_fft=2048, dtype=np.float64), atol=1e-10)
    np.testing.assert_allclose(fft_frequencies(16000, 401).numpy(), librosa.fft_frequencies(sr=16000, n_fft=401),
                               rtol=1e-12)
    x = torch.from_numpy(np.random.default_rng(6).standard_normal(2000))
    ref = librosa.feature.mfcc(y=x.numpy(), sr=16000, n_mfcc=40, n_fft=512, hop_length=128, n_mels=40)
    np.testing.assert_allclose(mfcc(x, 16000, n_mfcc=40, n_fft=512, hop_length=128, n_mels=40).numpy(), ref,
                               rtol=1e-6, atol=1e-6)                      # n_mfcc = n_mels is allowed
    np.testing.assert_allclose(stft(x, 64, 64).numpy(), librosa.stft(x.numpy(), n_fft=64, hop_length=64),
                               atol=1e-9)                                 # hop = n_fft is allowed


@pytest.mark.parametrize("call, message", [
    (lambda: stft(torch.tensor(1.0), 64, 16), r"^signal: expected at least 1 dimensions"),
    (lambda: mfcc(torch.full((400,), float("nan")), 16000, n_fft=64, hop_length=16, n_mels=10, n_mfcc=5),
     r"^signal: contains 400 NaN/inf"),
])
def test_more_feature_messages(call, message):
    with pytest.raises(ValueError, match=message):
        call()


# --- small cases: one float64 case per exercise, the expected value computed independently;
# `genmodels-exercise check` shows each as expected vs got ----------------------------------
@pytest.mark.exercise("audio.mel_filterbank")
def test_mel_filterbank_small_case(small_case):
    small_case(("sample_rate=8000, n_fft=64, n_mels=6 (vs librosa.filters.mel)",
                librosa.filters.mel(sr=8000, n_fft=64, n_mels=6, dtype=np.float64),
                lambda: mel_filterbank(8000, 64, 6, dtype=torch.float64)))


@pytest.mark.exercise("audio.mfcc")
def test_mfcc_small_case(small_case):
    y = noisy_tone()
    small_case(("a 440 Hz tone + noise, 512 samples at 8 kHz, n_mfcc=4, n_fft=128, hop=64, n_mels=16 "
                "(vs librosa.feature.mfcc)",
                librosa.feature.mfcc(y=y, sr=8000, n_mfcc=4, n_fft=128, hop_length=64, n_mels=16)[:, :4],
                lambda: mfcc(torch.from_numpy(y), 8000, 4, 128, 64, 16)[:, :4]), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("sr, n_fft, n_mels, fmin, fmax", [
    (22050, 512, 128, 0.0, None), (16000, 256, 128, 0.0, None), (8000, 512, 64, 0.0, None),
    (22050, 2048, 128, 0.0, None), (16000, 400, 80, 0.0, None), (8000, 256, 40, 300.0, 3400.0),
    (44100, 1024, 256, 20.0, 8000.0),
])
def test_mel_filterbank_warns_about_empty_filters_as_librosa_does(sr, n_fft, n_mels, fmin, fmax):
    """More mel bands than the FFT resolves leave filters with no weight; librosa warns, so do
    we, naming n_mels and the count of empty filters (librosa's own basis, counted here)."""
    import warnings as _w
    import librosa
    import numpy as np

    with _w.catch_warnings(record=True) as theirs:
        _w.simplefilter("always")
        basis = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    librosa_warns = any("Empty filters" in str(w.message) for w in theirs)
    mel_f = librosa.mel_frequencies(n_mels + 2, fmin=fmin, fmax=fmax or sr / 2)
    n_empty = int(np.sum((mel_f[:-2] != 0) & (basis.max(axis=1) <= 0)))
    with _w.catch_warnings(record=True) as ours:
        _w.simplefilter("always")
        fb = mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    messages = [str(w.message) for w in ours if issubclass(w.category, UserWarning)]
    assert bool(messages) == librosa_warns == (n_empty > 0)
    if n_empty:
        assert messages[0].startswith(f"n_mels: {n_empty} of {n_mels} mel filters hold no FFT bin")
        assert int((fb.abs().amax(dim=1) == 0).sum()) >= n_empty
