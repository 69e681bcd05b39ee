"""Voice conversion modules (2.31–2.33), separation/restoration models (2.36–2.38), the
permutation-invariant SI-SDR, degradations and the log-spectral distance."""

import itertools
import math

import librosa
import numpy as np
import pytest
import torch

from genmodels.audio import (MaskNet, SpeechDecoder, SpeechEncoder, VoiceConverter, WaveUNet,
                             colored_noise, drop_gaps, hard_clip, log_spectral_distance,
                             mix_at_snr, permutation_invariant_si_sdr, si_sdr)
from genmodels.audio.vocoder import WaveNetVocoder
from genmodels.audio.voice_conversion import DB_TO_NEPER, mcd_db
from conftest import noisy_tone, randn64, t64

pytestmark = pytest.mark.audio


# ------------------------------------------------------------------------------ 2.31–2.33
@pytest.mark.exercise("audio.voice_conversion")
def test_encoder_decoder_converter_shapes():
    torch.manual_seed(0)
    f = torch.randn(3, 20, 37)
    h = SpeechEncoder(20, hidden=16, layers=2, kernel_size=3)(f)
    assert h.shape == (3, 16, 37)
    assert SpeechDecoder(20, hidden=16, layers=2, kernel_size=3)(h).shape == (3, 20, 37)
    vc = VoiceConverter(20, hidden=16, layers=1, kernel_size=3)
    assert vc(f).shape == (3, 20, 37)
    assert vc.reconstruct_normalized(f).shape == (3, 20, 37)


@pytest.mark.exercise("audio.voice_conversion")
def test_conversion_acts_frame_by_frame():
    """2.33: V_t = Conversion(H_t): changing H at one frame changes V only at that frame."""
    torch.manual_seed(0)
    vc = VoiceConverter(8, hidden=12, layers=1, kernel_size=3)
    h = torch.randn(2, 12, 10)
    v = vc.conversion(h)
    h2 = h.clone()
    h2[:, :, 4] += 1.0
    changed = (vc.conversion(h2) - v).abs().sum(dim=(0, 1)) > 0
    assert changed.tolist() == [t == 4 for t in range(10)]


@pytest.mark.exercise("audio.voice_conversion")
def test_converter_statistics_map_into_target_units():
    """With the decoder's output layer zeroed the standardised output is 0, so the converter
    returns exactly the target mean; the statistics are the per-coefficient mean/std."""
    torch.manual_seed(0)
    vc = VoiceConverter(5, hidden=8, layers=1, kernel_size=3)
    src, tgt = torch.randn(4, 5, 30) * 3 + 1, torch.randn(4, 5, 30) * 0.5 - 2
    vc.set_statistics(src, tgt)
    np.testing.assert_allclose(vc.target_mean.flatten(), tgt.mean(dim=(0, 2)), rtol=1e-5)
    np.testing.assert_allclose(vc.source_std.flatten(), src.std(dim=(0, 2)), rtol=1e-5)
    with torch.no_grad():
        vc.decoder.out.weight.zero_()
        vc.decoder.out.bias.zero_()
    out = vc(src)
    torch.testing.assert_close(out, vc.target_mean.expand_as(out))


@pytest.mark.parametrize("bad, arg", [
    (torch.randn(2, 7, 10), "features"), (torch.randn(5, 10), "features"),
    (torch.full((1, 6, 4), float("nan")), "features"), (torch.randn(1, 6, 0), "features"),
])
def test_encoder_rejects_bad_input(bad, arg):
    with pytest.raises(ValueError, match=arg):
        SpeechEncoder(6, hidden=4, layers=1, kernel_size=3)(bad)


def test_vc_constructor_checks():
    with pytest.raises(ValueError, match="kernel_size"):
        SpeechEncoder(6, kernel_size=4)
    with pytest.raises(ValueError, match="hidden"):
        SpeechDecoder(6, hidden=0)
    with pytest.raises(ValueError, match="hidden"):
        SpeechDecoder(6, hidden=4)(torch.randn(1, 5, 3))


def test_mcd_db_is_mcd_of_natural_log_amplitude_cepstra():
    c1, c2 = torch.randn(2, 6, 9, dtype=torch.float64)
    d = (c1[1:] - c2[1:]) * math.log(10) / 20
    want = (10 / math.log(10)) * torch.sqrt(2 * (d ** 2).sum(0)).mean()
    torch.testing.assert_close(mcd_db(c1, c2), want)
    assert DB_TO_NEPER == pytest.approx(0.1151292546)


# ------------------------------------------------------------------------------ 2.36 separation
def _brute_force_pit(est, ref):
    best, perm = [], []
    for b in range(est.shape[0]):
        scores = {p: np.mean([float(si_sdr(est[b, p[i]], ref[b, i])) for i in range(est.shape[1])])
                  for p in itertools.permutations(range(est.shape[1]))}
        p = max(scores, key=scores.get)
        best.append(scores[p])
        perm.append(p)
    return torch.tensor(best, dtype=torch.float64), torch.tensor(perm)


@pytest.mark.exercise("audio.pit")
@pytest.mark.parametrize("S", [1, 2, 3])
def test_pit_matches_brute_force_and_is_permutation_invariant(S, gen):
    ref = torch.randn(4, S, 200, generator=gen, dtype=torch.float64)
    est = ref[:, torch.randperm(S, generator=gen)] + 0.5 * torch.randn(4, S, 200, generator=gen,
                                                                        dtype=torch.float64)
    best, perm = permutation_invariant_si_sdr(est, ref)
    want_best, want_perm = _brute_force_pit(est, ref)
    torch.testing.assert_close(best, want_best)
    assert torch.equal(perm, want_perm)
    shuffle = torch.randperm(S, generator=gen)
    best2, perm2 = permutation_invariant_si_sdr(est[:, shuffle], ref)
    torch.testing.assert_close(best2, best)
    assert torch.equal(shuffle[perm2], perm)        # the same estimates are matched


@pytest.mark.exercise("audio.pit")
def test_pit_gradient_and_errors():
    est = torch.randn(2, 2, 64, dtype=torch.float64, requires_grad=True)
    ref = torch.randn(2, 2, 64, dtype=torch.float64)
    permutation_invariant_si_sdr(est, ref)[0].sum().backward()
    assert torch.isfinite(est.grad).all() and est.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="estimates"):
        permutation_invariant_si_sdr(est.detach()[:, :1], ref)
    with pytest.raises(ValueError, match="estimates"):
        permutation_invariant_si_sdr(torch.randn(2, 64), torch.randn(2, 64))
    with pytest.raises(ValueError, match="6 sources"):
        permutation_invariant_si_sdr(torch.randn(1, 7, 16), torch.randn(1, 7, 16))


@pytest.mark.exercise("audio.masking")
def test_masknet_shape_and_all_pass_masks_return_the_mixture():
    torch.manual_seed(0)
    net = MaskNet(n_fft=64, hop_length=16, n_sources=2, hidden=16, layers=2).double()
    x = torch.randn(3, 500, dtype=torch.float64)
    assert net(x).shape == (3, 2, 500)
    with torch.no_grad():                  # σ(60) = 1 to double precision: masks of ones
        net.head.weight.zero_()
        net.head.bias.fill_(60.0)
    out = net(x)
    torch.testing.assert_close(out[:, 0], x, atol=1e-10, rtol=0)
    torch.testing.assert_close(out[:, 1], x, atol=1e-10, rtol=0)


def test_masknet_errors():
    with pytest.raises(ValueError, match="hop_length"):
        MaskNet(n_fft=64, hop_length=48)
    with pytest.raises(ValueError, match="kernel_size"):
        MaskNet(kernel_size=2)
    net = MaskNet(n_fft=64, hop_length=16, hidden=8, layers=1)
    with pytest.raises(ValueError, match="mixture"):
        net(torch.randn(2, 2, 100))                          # multi-channel: one mixture per row
    with pytest.raises(ValueError, match="mixture"):
        net(torch.full((1, 100), float("nan")))
    with pytest.raises(ValueError, match="mixture"):
        net(torch.zeros(1, 0))


# ------------------------------------------------------------------------------ 2.37–2.38
@pytest.mark.exercise("audio.waveunet")
def test_waveunet_starts_as_identity_for_any_length():
    torch.manual_seed(0)
    net = WaveUNet(channels=8, depth=2, kernel_size=3, stride=4)
    for n in (64, 101, 333):
        x = torch.randn(2, n)
        torch.testing.assert_close(net(x), x)
    x = torch.randn(2, 101)
    (net(x) ** 2).sum().backward()
    assert net.decoder.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="x"):
        net(torch.randn(2, 3, 100))
    with pytest.raises(ValueError, match="kernel_size"):
        WaveUNet(kernel_size=4)


# ------------------------------------------------------------------------------ degradations
def test_mix_at_snr_gives_the_requested_snr(gen):
    s = torch.randn(3, 1000, generator=gen, dtype=torch.float64)
    n = torch.randn(3, 1000, generator=gen, dtype=torch.float64)
    snr = torch.tensor([-5.0, 0.0, 7.5], dtype=torch.float64)
    mix = mix_at_snr(s, n, snr)
    got = 10 * torch.log10(s.pow(2).sum(-1) / (mix - s).pow(2).sum(-1))
    torch.testing.assert_close(got, snr)
    with pytest.raises(ValueError, match="noise"):
        mix_at_snr(s, n[:, :10], 0.0)


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_colored_noise_spectral_slope(beta):
    g = torch.Generator().manual_seed(0)
    x = colored_noise((64, 2048), beta, generator=g, dtype=torch.float64)
    torch.testing.assert_close(x.pow(2).mean(-1), torch.ones(64, dtype=torch.float64))
    power = (torch.fft.rfft(x, dim=-1).abs() ** 2).mean(0)[4:900].numpy()     # periodogram
    f = np.arange(4, 900)
    slope = np.polyfit(np.log(f), np.log(power), 1)[0]
    assert slope == pytest.approx(-beta, abs=0.1)


def test_hard_clip_and_drop_gaps(gen):
    x = torch.randn(4, 300, generator=gen)
    y = hard_clip(x, 0.3)
    c = 0.3 * x.abs().amax(-1, keepdim=True).numpy()
    np.testing.assert_allclose(y.numpy(), np.clip(x.numpy(), -c, c))
    with pytest.raises(ValueError, match="level"):
        hard_clip(x, 0.0)
    g = torch.Generator().manual_seed(1)
    d, kept = drop_gaps(x, n_gaps=2, gap_length=25, generator=g)
    assert torch.equal(d, x * kept)
    dropped = (~kept).sum(-1)
    assert ((dropped >= 25) & (dropped <= 50)).all()
    with pytest.raises(ValueError, match="gap_length"):
        drop_gaps(x, 1, 301)


# ------------------------------------------------------------------------------ measures
def _lsd_numpy(est, ref, n_fft, hop, eps=1e-10, floor_db=None):
    p_est = np.abs(librosa.stft(est, n_fft=n_fft, hop_length=hop, pad_mode="constant")) ** 2
    p_ref = np.abs(librosa.stft(ref, n_fft=n_fft, hop_length=hop, pad_mode="constant")) ** 2
    a, b = 10 * np.log10(p_ref + eps), 10 * np.log10(p_est + eps)
    if floor_db is not None:
        a, b = np.maximum(a, a.max() - floor_db), np.maximum(b, a.max() - floor_db)
    return np.mean(np.sqrt(np.mean((a - b) ** 2, axis=0)))


@pytest.mark.parametrize("floor_db", [None, 80.0, 30.0])
def test_log_spectral_distance_matches_librosa_reference(floor_db, gen):
    ref = torch.randn(900, generator=gen, dtype=torch.float64)
    ref[300:500] = 0.0                                         # digital silence in the middle
    est = ref + 0.3 * torch.randn(900, generator=gen, dtype=torch.float64)
    got = log_spectral_distance(est, ref, 128, 32, floor_db=floor_db)
    want = _lsd_numpy(est.numpy(), ref.numpy(), 128, 32, floor_db=floor_db)
    assert float(got) == pytest.approx(want, rel=1e-9)
    assert float(log_spectral_distance(ref, ref, 128, 32)) == 0.0
    batch = log_spectral_distance(torch.stack([est, ref]), torch.stack([ref, ref]), 128, 32,
                                  floor_db=floor_db)
    assert batch.shape == (2,) and float(batch[0]) == pytest.approx(want, rel=1e-9)


def test_log_spectral_distance_errors():
    x = torch.randn(100)
    with pytest.raises(ValueError, match="reference"):
        log_spectral_distance(x, torch.randn(99))
    with pytest.raises(ValueError, match="floor_db"):
        log_spectral_distance(x, x, 64, 16, floor_db=0.0)
    with pytest.raises(ValueError, match="estimate"):
        log_spectral_distance(torch.full((100,), float("nan")), x, 64, 16)


# ------------------------------------------------------------------------------ 2.34 vocoder
def test_vocoder_conditioning_and_synthesis_shapes():
    torch.manual_seed(0)
    voc = WaveNetVocoder(6, hop_length=4, cond_hidden=5, residual_channels=4,
                         dilation_channels=4, skip_channels=8, n_layers=3, n_stacks=1)
    feats = torch.randn(2, 6, 10)
    cond = voc.condition(feats)
    assert cond.shape == (2, 5, 10)
    levels = torch.randint(0, 256, (2, 40))
    loss = voc.loss(levels, cond)
    assert loss.dim() == 0 and abs(loss.item() - math.log(256)) < 1.0
    audio = voc.synthesize(feats, 37, generator=torch.Generator().manual_seed(0))
    assert audio.shape == (2, 37) and audio.abs().max() <= 1
    with pytest.raises(ValueError, match="features"):
        voc.condition(torch.randn(2, 5, 10))


# ------------------------------------------------------------------------------ 2.30 blocked path
def test_mfcc_blocked_path_matches_librosa_on_long_batched_signals(gen):
    """Signals longer than one cache block (here 130 frames of n_fft 2048, blocks of 32) take the
    blocked path of ``mfcc``; it must agree with librosa item by item and keep gradients."""
    from genmodels.audio import mfcc

    x = 0.3 * torch.randn(2, 3, 66150, generator=gen, dtype=torch.float64)
    got = mfcc(x, 22050)                                            # [2, 3, 20, 130]
    assert got.shape == (2, 3, 20, 130)
    for i in range(2):
        for j in range(3):
            want = librosa.feature.mfcc(y=x[i, j].numpy(), sr=22050)
            np.testing.assert_allclose(got[i, j].numpy(), want, rtol=1e-7, atol=1e-7 * np.abs(want).max())
    y = x[0, :1].clone().requires_grad_(True)
    mfcc(y, 22050).sum().backward()
    assert torch.isfinite(y.grad).all() and y.grad.abs().sum() > 0


# --- small cases: one float64 case per exercise, the expected value computed independently;
# `genmodels-exercise check` shows each as expected vs got ----------------------------------
@pytest.mark.exercise("audio.voice_conversion")
def test_voice_conversion_small_case(small_case):
    torch.manual_seed(0)
    model = VoiceConverter(3, hidden=4, layers=1, kernel_size=3).double()
    src = randn64(1, 3, 5, seed=1)
    model.set_statistics(randn64(2, 3, 5, seed=2), randn64(2, 3, 5, seed=3) * 2 + 1)
    with torch.no_grad():
        h = model.encoder((src - model.source_mean) / model.source_std)
        exp = model.decoder(h + model.conversion(h))
    small_case(("VoiceConverter(3 features, hidden=4), random weights and statistics, source [1,3,5]",
                exp, lambda: model.convert_normalized(src).detach()))


@pytest.mark.exercise("audio.masking")
def test_masking_small_case(small_case):
    torch.manual_seed(0)
    net = MaskNet(n_fft=16, hop_length=4, n_sources=2, hidden=4, layers=1).double()
    x = torch.from_numpy(noisy_tone(64))[None]
    win = torch.hann_window(16, periodic=True, dtype=torch.float64)
    with torch.no_grad():
        spec = torch.stft(x, 16, 4, window=win, center=True, pad_mode="constant", return_complex=True)
        masked = net.masks(spec) * spec[:, None]
        exp = torch.istft(masked.reshape(2, 9, -1), 16, 4, window=win, length=64).reshape(1, 2, 64)
    small_case(("MaskNet(n_fft=16, hop=4, 2 sources), random weights, a 64-sample tone "
                "(vs torch.stft / torch.istft)", exp[..., :6], lambda: net(x).detach()[..., :6]))


def _np_si_sdr(est, ref):
    est, ref = est - est.mean(), ref - ref.mean()
    target = (est @ ref) / (ref @ ref) * ref
    return 10 * np.log10((target @ target) / ((est - target) @ (est - target)))


@pytest.mark.exercise("audio.pit")
def test_pit_small_case(small_case):
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((2, 32))
    est = ref[::-1] + 0.3 * rng.standard_normal((2, 32))          # outputs in swapped order
    best = max(np.mean([_np_si_sdr(est[p[i]], ref[i]) for i in range(2)])
               for p in itertools.permutations(range(2)))
    small_case(("2 references, 2 noisy estimates in swapped order (brute force over permutations)",
                [best], lambda: permutation_invariant_si_sdr(t64(est[None].copy()), t64(ref[None]))[0]),
               rtol=1e-9, atol=1e-9)
