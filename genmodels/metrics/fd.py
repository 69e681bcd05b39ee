r"""The Fréchet distance between two Gaussians, with a matrix square root written out.

For N(μ₁, Σ₁) and N(μ₂, Σ₂) (Fréchet, 1957; Dowson & Landau, 1982; the "FID" of Heusel et al.,
2017, uses it on Inception features):

    FD² = ‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁ Σ₂)^{1/2}).

Σ₁Σ₂ is not symmetric, but it is similar to the symmetric PSD matrix M = Σ₁^{1/2} Σ₂ Σ₁^{1/2}
(Σ₁Σ₂ = Σ₁^{1/2} M Σ₁^{−1/2}), so Tr((Σ₁Σ₂)^{1/2}) = Tr(M^{1/2}) = Σ_i √λ_i(M). Both square roots
are therefore of symmetric PSD matrices and come from an eigendecomposition (``torch.linalg.eigh``),
in float64, with the tiny negative eigenvalues that rounding produces clamped to 0. No call to
scipy: the tests compare against ``scipy.linalg.sqrtm`` and against the closed form.

As in the FID literature, the value reported is FD² (a squared distance); we call it "FD".
"""

from __future__ import annotations

import torch

from genmodels._checks import check_same_dtype, check_tensor

__all__ = ["sqrtm_psd", "gaussian_stats", "frechet_distance", "frechet_distance_from_features"]


def _check_square_symmetric(name: str, a: torch.Tensor, atol: float = 1e-6) -> torch.Tensor:
    check_tensor(name, a, ndim=2)
    if a.shape[0] != a.shape[1]:
        raise ValueError(f"{name}: expected a square matrix, got shape {list(a.shape)}")
    a64 = a.detach().to(torch.float64)
    scale = max(1.0, float(a64.abs().max())) if a64.numel() else 1.0
    if not torch.allclose(a64, a64.T, atol=atol * scale, rtol=0):
        raise ValueError(f"{name}: expected a symmetric matrix (max |A − Aᵀ| = "
                         f"{float((a64 - a64.T).abs().max()):.3g})")
    return a


def sqrtm_psd(a: torch.Tensor) -> torch.Tensor:
    r"""Square root of a symmetric positive semi-definite matrix: A^{1/2} = V diag(√λ) Vᵀ.

    Computed in float64 from ``torch.linalg.eigh``; eigenvalues below 0 (rounding) become 0.
    The result is symmetric PSD and satisfies A^{1/2} A^{1/2} = A for PSD A.

    Args:
        a: ``[d, d]`` symmetric PSD matrix.

    Returns:
        ``[d, d]`` float64 tensor.
    """
    _check_square_symmetric("a", a)
    a64 = a.to(torch.float64)
    a64 = 0.5 * (a64 + a64.T)                                   # exact symmetry for eigh
    lam, v = torch.linalg.eigh(a64)                             # A = V diag(λ) Vᵀ
    return (v * lam.clamp(min=0).sqrt()) @ v.T                  # V diag(√λ) Vᵀ


def gaussian_stats(features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean ``[d]`` and unbiased covariance ``[d, d]`` (float64) of ``features [N, d]``, N ≥ 2."""
    check_tensor("features", features, ndim=2)
    if features.shape[0] < 2:
        raise ValueError(f"features: need at least 2 samples for a covariance, got {features.shape[0]}")
    f = features.detach().to(torch.float64)
    mu = f.mean(dim=0)
    centred = f - mu
    sigma = centred.T @ centred / (f.shape[0] - 1)              # (d, d)
    return mu, sigma


def frechet_distance(mu1: torch.Tensor, sigma1: torch.Tensor, mu2: torch.Tensor,
                     sigma2: torch.Tensor) -> torch.Tensor:
    r"""FD² = ‖μ₁ − μ₂‖² + Tr Σ₁ + Tr Σ₂ − 2 Tr (Σ₁^{1/2} Σ₂ Σ₁^{1/2})^{1/2}, in float64.

    Args:
        mu1, mu2: ``[d]`` means.  sigma1, sigma2: ``[d, d]`` symmetric PSD covariances.

    Returns:
        0-dim float64 tensor, ≥ 0 (clamped at 0 against rounding).
    """
    for name, mu in (("mu1", mu1), ("mu2", mu2)):
        check_tensor(name, mu, ndim=1)
    _check_square_symmetric("sigma1", sigma1)
    _check_square_symmetric("sigma2", sigma2)
    check_same_dtype(("mu1", "sigma1", "mu2", "sigma2"), mu1, sigma1, mu2, sigma2)
    d = mu1.shape[0]
    for name, x in (("mu2", mu2), ("sigma1", sigma1), ("sigma2", sigma2)):
        if x.shape[0] != d:
            raise ValueError(f"{name}: dimension {x.shape[0]} does not match mu1's {d}")
    mu1, mu2 = mu1.to(torch.float64), mu2.to(torch.float64)
    s1, s2 = sigma1.to(torch.float64), sigma2.to(torch.float64)
    root1 = sqrtm_psd(s1)                                       # Σ₁^{1/2}
    m = root1 @ s2 @ root1                                      # Σ₁^{1/2} Σ₂ Σ₁^{1/2}, PSD
    m = 0.5 * (m + m.T)
    lam = torch.linalg.eigvalsh(m).clamp(min=0)
    tr_covmean = lam.sqrt().sum()                               # Tr (Σ₁Σ₂)^{1/2}
    diff = mu1 - mu2
    fd = diff @ diff + torch.trace(s1) + torch.trace(s2) - 2 * tr_covmean
    return fd.clamp(min=0)


def frechet_distance_from_features(f1: torch.Tensor, f2: torch.Tensor) -> torch.Tensor:
    """FD² between Gaussians fitted to two feature sets ``[N₁, d]`` and ``[N₂, d]``."""
    check_tensor("f1", f1, ndim=2)
    check_tensor("f2", f2, ndim=2)
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"f2: feature dimension {f2.shape[1]} does not match f1's {f1.shape[1]}")
    return frechet_distance(*gaussian_stats(f1), *gaussian_stats(f2))
