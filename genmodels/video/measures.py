r"""Image and frame quality measures of the video family: PSNR and SSIM.

PSNR (peak signal-to-noise ratio) of an item x against a reference y, with pixel values spanning
``data_range`` (1 for images in [0, 1]):

    PSNR = 10 · log10(data_range² / MSE),   MSE = mean over all non-batch elements of (x − y)².

SSIM (Wang, Bovik, Sheikh & Simoncelli, 2004) compares local means, variances and the covariance
in an 11 × 11 Gaussian window (σ = 1.5):

    SSIM = (2 μ_x μ_y + C₁)(2 σ_xy + C₂) / ((μ_x² + μ_y² + C₁)(σ_x² + σ_y² + C₂)),
    C₁ = (K₁ L)², C₂ = (K₂ L)², K₁ = 0.01, K₂ = 0.03, L = data_range,

evaluated at every position where the window fits inside the image (no padded border), then
averaged over positions and channels — the definition of scikit-image's ``structural_similarity``
with ``gaussian_weights=True, sigma=1.5, use_sample_covariance=False``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from genmodels._checks import check_positive, check_same_dtype, check_same_shape, check_tensor

__all__ = ["psnr", "ssim", "gaussian_window"]

_WIN, _SIGMA, _K1, _K2 = 11, 1.5, 0.01, 0.03


def _check_pair(x, y, data_range, ndim=None):
    check_tensor("x", x, ndim=ndim, min_ndim=None if ndim else 2)
    check_tensor("y", y, ndim=ndim, min_ndim=None if ndim else 2)
    check_same_shape(("x", "y"), x, y)
    check_same_dtype(("x", "y"), x, y)
    check_positive("data_range", data_range)
    if x.shape[0] == 0:
        raise ValueError(f"x: expected at least one item, got shape {list(x.shape)}")
    if x[0].numel() == 0:
        raise ValueError(f"x: expected non-empty items, got shape {list(x.shape)}")


def psnr(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """PSNR in dB of each item of ``x [B, ...]`` against ``y [B, ...]``, ``[B]``.

    MSE is the mean over every non-batch element; an item equal to its reference has MSE 0 and
    PSNR +inf. An empty batch is refused naming ``x``.
    """
    _check_pair(x, y, data_range)
    # >>> exercise video.psnr: PSNR
    # what: PSNR = 10·log10(L² / MSE) per item, the MSE over every non-batch element
    # hint: (x − y)², flattened from dim 1 and averaged per item ([B]); then 10·log10 of the
    #   *squared* data range over it: a constant error of 0.1 on [0, 1] images is 20 dB.
    # mistake: `data_range ** 2 / mse` -> `data_range / mse`
    mse = (x - y).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(data_range ** 2 / mse)
    # <<< exercise video.psnr


def gaussian_window(size: int = _WIN, sigma: float = _SIGMA, dtype=torch.float64) -> torch.Tensor:
    """The normalised ``size × size`` Gaussian window (outer product of a 1-D Gaussian)."""
    r = torch.arange(size, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-0.5 * (r / sigma) ** 2)
    g = g / g.sum()
    return g[:, None] * g[None, :]


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Mean SSIM of each item of ``x [B, C, H, W]`` against ``y``, ``[B]``; H and W must be at
    least 11 (the window). Differentiable in both."""
    _check_pair(x, y, data_range, ndim=4)
    B, C, H, W = x.shape
    if H < _WIN or W < _WIN:
        raise ValueError(f"x: SSIM's {_WIN}×{_WIN} window needs H, W >= {_WIN}, got {H}×{W}")
    win = gaussian_window(_WIN, _SIGMA, x.dtype).to(x.device).expand(C, 1, _WIN, _WIN)

    def local_mean(z):                      # per channel, valid positions only
        return F.conv2d(z, win, groups=C)

    # >>> exercise video.ssim: SSIM
    # what: the SSIM map from Gaussian-weighted local means, variances and the covariance, averaged per item
    # hint: with E[·] = local_mean(·): μ = E[x], σ_x² = E[x²] − μ_x², σ_xy = E[xy] − μ_x μ_y;
    #   C₁ = (K₁ L)², C₂ = (K₂ L)²; SSIM = (2μ_xμ_y + C₁)(2σ_xy + C₂) / ((μ_x² + μ_y² + C₁)(σ_x² +
    #   σ_y² + C₂)), then the mean over channels and positions of each item.
    # mistake: `cov = local_mean(x * y) - mu_x * mu_y` -> `cov = local_mean(x * y)`
    mu_x, mu_y = local_mean(x), local_mean(y)
    var_x = local_mean(x * x) - mu_x ** 2
    var_y = local_mean(y * y) - mu_y ** 2
    cov = local_mean(x * y) - mu_x * mu_y
    c1, c2 = (_K1 * data_range) ** 2, (_K2 * data_range) ** 2
    s = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return s.flatten(1).mean(dim=1)
    # <<< exercise video.ssim
