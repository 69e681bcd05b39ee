"""Eq. 2.30: mel filterbank, STFT and MFCC against librosa / scipy, computed independently."""

import librosa
import numpy as np
import pytest
import scipy.fft
import torch

from genmodels.audio import (dct_matrix, hann_window, istft, mel_filterbank, mfcc, power_to_db,
                             stft)

pytestmark = pytest.mark.audio

MEL_CASES = [  # (sr, n_fft, n_mels, fmin, fmax)
    (22050, 2048, 128, 0.0, None),
    (16000, 512, 40, 20.0, 7600.0),
    (8000, 256, 20, 300.0, 3000.0),
    (44100, 1024, 64, 0.0, 11025.0),
    (16000, 400, 80, 1000.0, 8000.0),   # odd-sized rfft, fmin exactly at the log break
]


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
