r"""The kernel distance (the "KID" of Bińkowski et al., 2018): an unbiased squared MMD.

FD fits a Gaussian to each feature set, and its estimate is biased upwards by an amount that
shrinks with the number of images: with 270 held-out digits, two real sets already sit at FD ≈ 4,
so good generators all land on that floor and cannot be told apart. The squared maximum mean
discrepancy with the cubic polynomial kernel k(x, y) = (xᵀy / d + 1)³ has an *unbiased* estimator,
so its expected value for two sets from the same distribution is exactly 0 at any size:

    MMD²_u = 1/(m(m−1)) Σ_{i≠j} k(x_i, x_j) + 1/(n(n−1)) Σ_{i≠j} k(y_i, y_j) − 2/(mn) Σ_{i,j} k(x_i, y_j)

It can come out slightly negative for two sets of the same distribution; that is the price of
unbiasedness. Values are small, so tables usually print KID × 1000.
"""

from __future__ import annotations

import torch

from genmodels._checks import check_finite, check_tensor

__all__ = ["polynomial_kernel", "kernel_distance"]


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor, degree: int = 3) -> torch.Tensor:
    """k(x, y) = (xᵀy / d + 1)^degree for every pair: ``x [m, d]``, ``y [n, d]`` → ``[m, n]``."""
    return (x @ y.T / x.shape[1] + 1.0) ** degree


def kernel_distance(features_x: torch.Tensor, features_y: torch.Tensor, degree: int = 3) -> torch.Tensor:
    """Unbiased MMD² between two feature sets ``[m, d]`` and ``[n, d]`` (m, n ≥ 2), in float64.

    Returns a 0-dim float64 tensor (may be slightly negative when the two sets match).
    """
    check_tensor("features_x", features_x, ndim=2)
    check_tensor("features_y", features_y, ndim=2)
    for name, f in (("features_x", features_x), ("features_y", features_y)):
        if f.shape[0] < 2:
            raise ValueError(f"{name}: need at least 2 samples, got {f.shape[0]}")
        check_finite(name, f)
    if features_x.shape[1] != features_y.shape[1]:
        raise ValueError(f"features_y: expected {features_x.shape[1]} features like features_x, "
                         f"got {features_y.shape[1]}")
    x, y = features_x.detach().to(torch.float64), features_y.detach().to(torch.float64)
    m, n = x.shape[0], y.shape[0]
    k_xx, k_yy, k_xy = polynomial_kernel(x, x, degree), polynomial_kernel(y, y, degree), polynomial_kernel(x, y, degree)
    within_x = (k_xx.sum() - k_xx.diagonal().sum()) / (m * (m - 1))      # Σ_{i≠j}: drop the diagonal
    within_y = (k_yy.sum() - k_yy.diagonal().sum()) / (n * (n - 1))
    return within_x + within_y - 2.0 * k_xy.mean()
