"""Linear prediction from MFCC frames (genmodels/audio/lpc.py) and the LPC WaveNet vocoder, against
scipy (Toeplitz solver, lfilter), closed forms (an AR(2) spectrum) and plain loops."""

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.signal
import torch

from genmodels.audio.lpc import (frame_of_sample, levinson_durbin, lpc_analysis, lpc_from_mfcc,
                                 lpc_from_power_spectrum, lpc_synthesis, mel_to_linear_power)


def _autocorr(x: np.ndarray, lags: int) -> np.ndarray:
    return np.array([np.dot(x[: len(x) - k], x[k:]) for k in range(lags)])


def test_levinson_durbin_solves_the_toeplitz_normal_equations():
    rng = np.random.default_rng(0)
    rs = [_autocorr(scipy.signal.lfilter([1.0], [1.0, -1.2, 0.6], rng.standard_normal(500)), 9)
          for _ in range(3)]
    r = torch.tensor(np.stack(rs))                                             # [3, 9]
    a, err = levinson_durbin(r, 8)
    for i in range(3):
        expected = scipy.linalg.solve_toeplitz(rs[i][:8], -rs[i][1:9])
        np.testing.assert_allclose(a[i].numpy(), expected, rtol=1e-9, atol=1e-12)
        # prediction-error power: r_0 + Σ a_k r_k
        assert err[i].item() == pytest.approx(rs[i][0] + np.dot(expected, rs[i][1:9]), rel=1e-9)


def test_lpc_recovers_an_ar2_process_from_its_exact_power_spectrum():
    """P(ω) = 1/|A(e^{iω})|² with A(z) = 1 − 1.6 z⁻¹ + 0.8 z⁻²: order-2 LPC returns (−1.6, 0.8)
    and higher orders add zeros (up to the tiny aliasing of a 4096-point grid)."""
    a_true = np.array([-1.6, 0.8])
    w = np.linspace(0, np.pi, 2049)
    A = 1 + a_true[0] * np.exp(-1j * w) + a_true[1] * np.exp(-2j * w)
    power = torch.tensor(1.0 / np.abs(A) ** 2)
    a2 = lpc_from_power_spectrum(power, 2, noise_floor=0.0)
    np.testing.assert_allclose(a2.numpy(), a_true, atol=1e-9)
    a6 = lpc_from_power_spectrum(power, 6, noise_floor=0.0)
    np.testing.assert_allclose(a6.numpy(), np.r_[a_true, 0, 0, 0, 0], atol=1e-9)


def test_lag_window_and_noise_floor_flatten_the_predictor():
    w = np.linspace(0, np.pi, 257)
    A = 1 - 2 * 0.9 * np.cos(0.3) * np.exp(-1j * w) + 0.81 * np.exp(-2j * w)  # poles 0.9 e^{±0.3i}
    power = torch.tensor(1.0 / np.abs(A) ** 2)
    plain = lpc_from_power_spectrum(power, 2, noise_floor=0.0)
    damped = lpc_from_power_spectrum(power, 2, noise_floor=0.1, lag_window=0.01)
    poles = lambda a: np.abs(np.roots(np.r_[1.0, a.numpy()]))                 # noqa: E731
    assert poles(damped).max() < poles(plain).max() < 1.0      # a broader, still stable resonance


def test_mel_to_linear_power_of_a_flat_spectrum_is_flat():
    """A white spectrum (power 1 in every bin) gives band powers Σ_k M[m, k]; back to bins: all 1."""
    from genmodels.audio.features import mel_filterbank
    fb = mel_filterbank(8000, 256, 40, dtype=torch.float64)
    mel_db = 10 * torch.log10(fb.sum(-1))
    out = mel_to_linear_power(mel_db[None], 8000, 256)
    torch.testing.assert_close(out, torch.ones(1, 129, dtype=torch.float64))


def test_lpc_from_mfcc_finds_the_resonance_and_whitens():
    """A resonance at 1 kHz (AR(2), pole radius 0.97) in white noise: the order-16 LPC from 25 of 40
    MFCCs puts its strongest pole within 60 Hz of 1 kHz and its residual is at least 8 dB weaker
    than the signal."""
    from genmodels.audio.features import mfcc
    sr, n_fft, hop = 8000, 256, 64
    theta = 2 * math.pi * 1000 / sr
    rng = np.random.default_rng(1)
    x = scipy.signal.lfilter([1.0], [1.0, -2 * 0.97 * math.cos(theta), 0.97 ** 2], rng.standard_normal(8000))
    x = torch.tensor(0.05 * x / np.abs(x).max())[None]
    feats = mfcc(x, sr, n_mfcc=25, n_fft=n_fft, hop_length=hop, n_mels=40)
    a = lpc_from_mfcc(feats, sr, n_fft, 40, 16)                                # [1, T, 16]
    assert a.shape == (1, feats.shape[-1], 16)
    roots = np.roots(np.r_[1.0, a[0, 60].numpy()])
    strongest = roots[np.argmax(np.abs(roots))]
    assert abs(abs(np.angle(strongest)) * sr / (2 * math.pi) - 1000) < 60
    e = lpc_analysis(x, a, hop)
    assert 10 * math.log10(x.pow(2).mean() / e.pow(2).mean()) > 8.0


def test_frame_of_sample_is_the_nearest_frame_centre():
    # hop 4: centres 0, 4, 8; samples 0,1 → 0; 2..5 → 1; 6..9 → 2; the rest capped at frame 2
    assert frame_of_sample(12, 4, 3).tolist() == [0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2]


def test_analysis_and_synthesis_with_fixed_coefficients_are_scipy_filters():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 100, generator=g, dtype=torch.float64)
    a_np = np.array([-0.9, 0.4, -0.1])
    a = torch.tensor(a_np).expand(2, 26, 3)                                    # 26 frames, hop 4
    e = lpc_analysis(x, a, 4)
    np.testing.assert_allclose(e.numpy(), scipy.signal.lfilter(np.r_[1.0, a_np], [1.0], x.numpy(), axis=-1),
                               atol=1e-12)
    y = lpc_synthesis(e, a, 4)
    np.testing.assert_allclose(y.numpy(), scipy.signal.lfilter([1.0], np.r_[1.0, a_np], e.numpy(), axis=-1),
                               atol=1e-10)


def test_time_varying_analysis_is_the_loop_and_synthesis_inverts_it():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 30, generator=g, dtype=torch.float64)
    a = 0.3 * torch.randn(2, 4, 2, generator=g, dtype=torch.float64)           # hop 8 → 4 frames
    frames = [min((n + 4) // 8, 3) for n in range(30)]
    loop = torch.zeros_like(x)
    for b in range(2):
        for n in range(30):
            past = [x[b, n - k].item() if n - k >= 0 else 0.0 for k in (1, 2)]
            loop[b, n] = x[b, n] + a[b, frames[n], 0] * past[0] + a[b, frames[n], 1] * past[1]
    e = lpc_analysis(x, a, 8)
    torch.testing.assert_close(e, loop, rtol=0, atol=1e-12)
    torch.testing.assert_close(lpc_synthesis(e, a, 8), x, rtol=0, atol=1e-10)


@pytest.mark.parametrize("call,arg", [
    (lambda: levinson_durbin(torch.tensor([0.0, 0.1, 0.2]), 2), "r"),
    (lambda: levinson_durbin(torch.tensor([1.0, 0.5]), 2), "r"),
    (lambda: levinson_durbin(torch.tensor([1.0, 0.5, 0.1]), 0), "order"),
    (lambda: lpc_from_power_spectrum(-torch.ones(9), 2), "power"),
    (lambda: lpc_from_power_spectrum(torch.ones(3), 8), "power"),
    (lambda: lpc_from_mfcc(torch.zeros(4, 5), 8000, 256, 40, 8, preemphasis=1.0), "preemphasis"),
    (lambda: lpc_from_mfcc(torch.zeros(50, 5), 8000, 256, 40, 8), "coeffs"),
    (lambda: frame_of_sample(10, 0, 3), "hop_length"),
])
def test_lpc_rejects_bad_arguments(call, arg):
    with pytest.raises(ValueError, match=arg):
        call()


# ------------------------------------------------------------------ the LPC vocoder
def _lpc_vocoder():
    from genmodels.audio.vocoder import WaveNetVocoder
    torch.manual_seed(0)
    return WaveNetVocoder(6, 8, cond_hidden=4, preemphasis=0.85, lpc_order=4, sample_rate=8000,
                          n_fft=32, n_mels=8, residual_channels=4, dilation_channels=4,
                          skip_channels=8, n_layers=3, n_stacks=1, upsample="linear").double()


def test_lpc_vocoder_models_the_residual_and_synthesises_through_one_over_a():
    """targets(): μ-law levels of the residual of the pre-emphasised audio under the LPC of the
    frames (scipy filters per frame); synthesize() at temperature 0: the argmax levels through
    1/A(z) (plain loop) and the de-emphasis (scipy)."""
    from genmodels.audio.features import mfcc
    from genmodels.audio.measures import mu_law_decode, mu_law_encode
    voc = _lpc_vocoder()
    g = torch.Generator().manual_seed(1)
    audio = 0.2 * torch.randn(2, 40, generator=g, dtype=torch.float64)
    feats = mfcc(audio, 8000, n_mfcc=6, n_fft=32, hop_length=8, n_mels=8)      # [2, 6, 6]
    a = lpc_from_mfcc(feats, 8000, 32, 8, 4, preemphasis=0.85)                 # [2, 6, 4]
    e = scipy.signal.lfilter([1.0, -0.85], [1.0], audio.numpy(), axis=-1)
    r = np.zeros_like(e)
    for b in range(2):
        for n in range(40):
            t = min((n + 4) // 8, 5)
            past = [e[b, n - k] if n - k >= 0 else 0.0 for k in range(1, 5)]
            r[b, n] = e[b, n] + np.dot(a[b, t].numpy(), past)
    assert torch.equal(voc.targets(audio, feats), mu_law_encode(torch.tensor(r).clamp(-1, 1)))
    out = voc.synthesize(feats, 40, temperature=0.0)
    levels = voc.wavenet.generate(voc.condition(feats), 40, temperature=0.0)
    res = mu_law_decode(levels, dtype=torch.float64).numpy()
    x = np.zeros_like(res)
    for b in range(2):
        for n in range(40):
            t = min((n + 4) // 8, 5)
            past = [x[b, n - k] if n - k >= 0 else 0.0 for k in range(1, 5)]
            x[b, n] = res[b, n] - np.dot(a[b, t].numpy(), past)
    expected = scipy.signal.lfilter([1.0], [1.0, -0.85], x, axis=-1).clip(-1, 1)
    np.testing.assert_allclose(out.numpy(), expected, atol=1e-9)


def test_lpc_vocoder_needs_the_frames():
    from genmodels.audio.vocoder import WaveNetVocoder
    voc = _lpc_vocoder()
    audio = torch.zeros(1, 40, dtype=torch.float64)
    with pytest.raises(ValueError, match="features"):
        voc.targets(audio)
    with pytest.raises(ValueError, match="features"):
        voc.targets(audio, torch.zeros(1, 6, 3, dtype=torch.float64))          # 3 frames, not 6
    with pytest.raises(ValueError, match="n_fft"):
        WaveNetVocoder(6, 8, lpc_order=4, sample_rate=8000, n_mels=8)
