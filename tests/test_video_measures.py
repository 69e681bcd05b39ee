"""PSNR and SSIM (genmodels.video) against independent references: the closed form of PSNR,
scikit-image's structural_similarity for SSIM, and hand cases."""

import math

import numpy as np
import pytest
import torch

from genmodels.video import gaussian_window, psnr, ssim

pytestmark = pytest.mark.video
F64 = torch.float64


def _pair(seed=0, shape=(3, 2, 16, 19), noise=0.1):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(*shape, generator=g, dtype=F64)
    y = (x + noise * torch.randn(*shape, generator=g, dtype=F64)).clamp(0, 1)
    return x, y


@pytest.mark.exercise("video.psnr")
def test_psnr_closed_form_and_hand_case():
    # a constant error of 0.1 on a [0, 1] image: MSE 0.01, PSNR 20 dB; data range 2 adds 20·log10 2
    x = torch.zeros(2, 1, 4, 4, dtype=F64)
    y = torch.full_like(x, 0.1)
    assert psnr(x, y).tolist() == pytest.approx([20.0, 20.0], abs=1e-12)
    assert psnr(x, y, data_range=2.0)[0].item() == pytest.approx(20 + 20 * math.log10(2), abs=1e-12)
    a, b = _pair()
    mse = ((a - b) ** 2).reshape(len(a), -1).numpy().mean(1)
    np.testing.assert_allclose(psnr(a, b).numpy(), 10 * np.log10(1.0 / mse), rtol=1e-13)
    assert math.isinf(psnr(a, a)[0].item())              # identical: MSE 0, +inf as documented


@pytest.mark.parametrize("shape, data_range", [((3, 2, 16, 19), 1.0), ((2, 1, 11, 11), 1.0),
                                               ((1, 3, 28, 28), 255.0)])
@pytest.mark.exercise("video.ssim")
def test_ssim_matches_scikit_image(shape, data_range):
    skimage = pytest.importorskip("skimage.metrics")
    x, y = _pair(shape=shape)
    x, y = x * data_range, y * data_range
    ours = ssim(x, y, data_range=data_range)
    ref = [skimage.structural_similarity(x[i].numpy(), y[i].numpy(), channel_axis=0,
                                         gaussian_weights=True, sigma=1.5,
                                         use_sample_covariance=False, data_range=data_range)
           for i in range(shape[0])]
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-12)


@pytest.mark.exercise("video.ssim")
def test_ssim_hand_cases_and_float32():
    x, y = _pair()
    assert ssim(x, x).tolist() == pytest.approx([1.0] * len(x), abs=1e-12)   # identical: 1
    # a constant image against another constant: means differ, no structure:
    # (2ab + C1)/(a² + b² + C1) with a = 0.2, b = 0.6
    a, b = torch.full((1, 1, 12, 12), 0.2, dtype=F64), torch.full((1, 1, 12, 12), 0.6, dtype=F64)
    c1 = 0.01 ** 2
    assert ssim(a, b).item() == pytest.approx((2 * 0.12 + c1) / (0.04 + 0.36 + c1), rel=1e-10)
    assert ssim(x.float(), y.float()).double().numpy() == pytest.approx(ssim(x, y).numpy(), abs=2e-6)
    w = gaussian_window()
    assert w.shape == (11, 11) and w.sum().item() == pytest.approx(1.0, abs=1e-15)
    assert w[5, 5] / w[5, 6] == pytest.approx(math.exp(0.5 / 1.5 ** 2), rel=1e-12)


def test_ssim_is_differentiable():
    x, y = _pair(shape=(1, 1, 12, 12))
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda z: ssim(z, y), (x,), eps=1e-6, atol=1e-8)


@pytest.mark.exercise("video.psnr")
def test_psnr_small_case(small_case):
    x = torch.tensor([[[0.0, 0.5], [1.0, 0.25]], [[0.2, 0.2], [0.2, 0.2]]], dtype=F64)
    y = torch.tensor([[[0.1, 0.5], [0.8, 0.25]], [[0.2, 0.4], [0.2, 0.2]]], dtype=F64)
    # by hand: item 0 MSE (0.01 + 0.04) / 4 = 0.0125, item 1 MSE 0.04 / 4 = 0.01; range 2 → L² = 4
    small_case(("two 2×2 items, data_range 1", [10 * math.log10(1 / 0.0125), 20.0], lambda: psnr(x, y)),
               ("the same, data_range 2", [10 * math.log10(4 / 0.0125), 10 * math.log10(4 / 0.01)],
                lambda: psnr(x, y, data_range=2.0)))


@pytest.mark.exercise("video.ssim")
def test_ssim_small_case(small_case):
    skimage = pytest.importorskip("skimage.metrics")
    x, y = _pair(seed=3, shape=(2, 1, 11, 12))
    ref = [skimage.structural_similarity(x[i, 0].numpy(), y[i, 0].numpy(), gaussian_weights=True,
                                         sigma=1.5, use_sample_covariance=False, data_range=1.0)
           for i in range(2)]
    small_case(("two 1×11×12 items vs scikit-image's structural_similarity", ref, lambda: ssim(x, y)))


@pytest.mark.parametrize("fn", [psnr, ssim])
@pytest.mark.parametrize("args, name", [
    ((torch.zeros(2, 1, 12, 12), torch.zeros(2, 1, 12, 13)), "x"),
    ((torch.zeros(2, 1, 12, 12), torch.zeros(2, 1, 12, 12, dtype=F64)), "x"),
    ((torch.zeros(0, 1, 12, 12), torch.zeros(0, 1, 12, 12)), "x"),
    ((torch.full((2, 1, 12, 12), float("nan")), torch.zeros(2, 1, 12, 12)), "x"),
    ((torch.zeros(2, 1, 12, 12), torch.zeros(2, 1, 12, 12), -1.0), "data_range"),
])
def test_bad_inputs_name_the_argument(fn, args, name):
    with pytest.raises(ValueError, match=f"^{name}:"):
        fn(*args)


def test_ssim_refuses_images_smaller_than_its_window():
    with pytest.raises(ValueError, match="^x: .*11"):
        ssim(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 8, 8))


# ------------------------------------------------------------------ the ConvLSTM cell
def _conv_lstm_case(seed=0, B=2, C=3, K=4, H=5, W=6, k=3):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, C, H, W, generator=g, dtype=F64)
    h = torch.randn(B, K, H, W, generator=g, dtype=F64)
    c = torch.randn(B, K, H, W, generator=g, dtype=F64)
    params = []
    for _ in range(4):
        params += [0.3 * torch.randn(K, K + C, k, k, generator=g, dtype=F64),
                   0.1 * torch.randn(K, generator=g, dtype=F64)]
    return x, h, c, params


def _conv_same_by_loops(z, w, b):
    """A 'same' zero-padded 2-D convolution (cross-correlation) written as explicit sums."""
    B, Cin, H, W = z.shape
    K, _, k, _ = w.shape
    r = k // 2
    zp = np.zeros((B, Cin, H + 2 * r, W + 2 * r))
    zp[:, :, r:r + H, r:r + W] = z.numpy()
    out = np.zeros((B, K, H, W))
    for i in range(H):
        for j in range(W):
            patch = zp[:, :, i:i + k, j:j + k]                       # (B, Cin, k, k)
            out[:, :, i, j] = np.einsum("bcuv,kcuv->bk", patch, w.numpy()) + b.numpy()
    return out


def test_conv_lstm_cell_against_the_equations_with_explicit_convolutions():
    from genmodels.video import conv_lstm_cell
    x, h, c, p = _conv_lstm_case()
    hx = torch.cat([h, x], dim=1)                                    # h first, then x
    sig = lambda a: 1 / (1 + np.exp(-a))                             # noqa: E731
    f = sig(_conv_same_by_loops(hx, p[0], p[1]))
    i = sig(_conv_same_by_loops(hx, p[2], p[3]))
    c_tilde = np.tanh(_conv_same_by_loops(hx, p[4], p[5]))
    o = sig(_conv_same_by_loops(hx, p[6], p[7]))
    c_want = f * c.numpy() + i * c_tilde
    h_want = o * np.tanh(c_want)
    h_t, c_t = conv_lstm_cell(x, h, c, *p)
    np.testing.assert_allclose(c_t.numpy(), c_want, rtol=0, atol=1e-12)
    np.testing.assert_allclose(h_t.numpy(), h_want, rtol=0, atol=1e-12)


def test_conv_lstm_with_1x1_kernels_is_an_lstm_at_every_pixel():
    """k = 1: each pixel is an independent LSTM step (torch.nn.LSTMCell with copied weights)."""
    from genmodels.video import conv_lstm_cell
    x, h, c, p = _conv_lstm_case(k=1)
    K, C = h.shape[1], x.shape[1]
    cell = torch.nn.LSTMCell(C, K).double()
    with torch.no_grad():       # torch's gate order i, f, g, o; weights split into input / hidden
        for gate, (w, b) in zip((1, 0, 2, 3), ((p[0], p[1]), (p[2], p[3]), (p[4], p[5]), (p[6], p[7]))):
            rows = slice(gate * K, (gate + 1) * K)
            cell.weight_hh[rows] = w[:, :K, 0, 0]
            cell.weight_ih[rows] = w[:, K:, 0, 0]
            cell.bias_ih[rows] = b
            cell.bias_hh[rows] = 0
    h_t, c_t = conv_lstm_cell(x, h, c, *p)
    flat = lambda z: z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])   # noqa: E731
    h_ref, c_ref = cell(flat(x), (flat(h), flat(c)))
    torch.testing.assert_close(flat(h_t), h_ref, rtol=0, atol=1e-12)
    torch.testing.assert_close(flat(c_t), c_ref, rtol=0, atol=1e-12)


def test_conv_lstm_gradcheck_and_bad_inputs():
    from genmodels.video import conv_lstm_cell
    x, h, c, p = _conv_lstm_case(B=1, C=1, K=2, H=3, W=3)
    x.requires_grad_(True)
    p[0].requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, w: conv_lstm_cell(a, h, c, w, *p[1:])[0], (x, p[0]))
    x = x.detach()
    for bad, name in (((x[:, :, :2], h, c, *p), "h_prev"), ((x, h, c, p[0][..., :2, :2], *p[1:]), "W_f"),
                      ((x, h, c, p[0][:, :-1], *p[1:]), "W_f"), ((x.float(), h, c, *p), "x_t"),
                      ((x, h, c[:, :1], *p), "c_prev")):
        with pytest.raises(ValueError, match=f"^{name}:"):
            conv_lstm_cell(*bad)
