r"""Vector quantisation (VQ-VAE, van den Oord et al., 2017): a discrete latent with a codebook.

The encoder's output z_e(x) ∈ ℝ^d at each latent position is replaced by its nearest codebook
vector e_k, k = argmin_j ‖z_e − e_j‖². The argmin has no gradient, so the decoder's gradient is
copied straight through to the encoder (z_q = z_e + sg[e_k − z_e]: the value of e_k, the
gradient of z_e), and two terms train the codebook and keep the encoder near it:

    L_VQ = ‖sg[z_e] − e_k‖²  +  β ‖z_e − sg[e_k]‖²
           (codebook loss)      (commitment loss)

(sg = stop-gradient, each a mean over elements). The full VQ-VAE loss adds the reconstruction
term of the decoder. How well the codebook is used is read from the code histogram:
:func:`codebook_usage` gives its perplexity (exp of the entropy: K when every code is used
equally, 1 when one code takes everything) and the number of dead codes (never chosen).
"""

from __future__ import annotations

import torch

from genmodels._checks import check_int, check_positive, check_same_dtype, check_tensor

__all__ = ["vector_quantize", "codebook_usage"]


def vector_quantize(z_e: torch.Tensor, codebook: torch.Tensor, beta: float = 0.25
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""Nearest-code quantisation with the straight-through estimator and the VQ-VAE losses.

    Args:
        z_e: ``[..., d]`` encoder outputs (any leading shape: ``[B, d]``, ``[B, H, W, d]``).
        codebook: ``[K, d]`` code vectors e_1 … e_K.
        beta: weight of the commitment loss, ≥ 0 (0.25 in the paper).

    Returns:
        ``(z_q [..., d], indices [...] int64, loss [])``: z_q has the value of the nearest code
        e_k (squared Euclidean distance; ties go to the lowest index) and the gradient of z_e
        (``z_e + (e_k − z_e).detach()``); ``loss = ‖sg[z_e] − e_k‖² + β‖z_e − sg[e_k]‖²``, each
        a mean over every element of z_e. An empty batch (no vector) is refused naming ``z_e``:
        its loss would be a mean over nothing.
    """
    check_tensor("z_e", z_e, min_ndim=1)
    check_tensor("codebook", codebook, ndim=2)
    if codebook.shape[0] == 0 or codebook.shape[1] != z_e.shape[-1]:
        raise ValueError(f"codebook: expected [K >= 1, d={z_e.shape[-1]}] for z_e "
                         f"{list(z_e.shape)}, got {list(codebook.shape)}")
    if z_e.numel() == 0:
        raise ValueError(f"z_e: expected at least one vector, got shape {list(z_e.shape)}")
    check_same_dtype(("z_e", "codebook"), z_e, codebook)
    check_positive("beta", beta, allow_zero=True)
    # >>> exercise vae.vector_quantize: VQ-VAE
    # what: nearest code by squared distance, the straight-through z_q, codebook + β·commitment loss
    # hint: ‖z − e‖² = ‖z‖² − 2 z·e + ‖e‖² for every pair; z_q = z_e + (e_k − z_e).detach() passes
    #   the decoder's gradient to the encoder; detach z_e in the codebook term and e_k in the
    #   commitment term (weighted by β).
    # mistake: `z_e + (e_k - z_e).detach()` -> `e_k`
    flat = z_e.reshape(-1, z_e.shape[-1])                                     # [N, d]
    dist = ((flat ** 2).sum(1, keepdim=True) - 2 * flat @ codebook.T
            + (codebook ** 2).sum(1))                                         # [N, K]
    indices = dist.argmin(dim=1)                                              # first minimum
    e_k = codebook[indices].view_as(z_e)                                      # [..., d]
    codebook_loss = (z_e.detach() - e_k).pow(2).mean()
    commitment_loss = (z_e - e_k.detach()).pow(2).mean()
    z_q = z_e + (e_k - z_e).detach()                                          # straight through
    return z_q, indices.view(z_e.shape[:-1]), codebook_loss + beta * commitment_loss
    # <<< exercise vae.vector_quantize


def codebook_usage(indices: torch.Tensor, num_codes: int) -> tuple[float, int]:
    """``(perplexity, dead codes)`` of a set of chosen codes: exp(−Σ p_k log p_k) of their
    histogram p over the K = ``num_codes`` codes (K when all are used equally, 1 for one code),
    and how many codes were never chosen."""
    check_tensor("indices", indices, floating=False)
    check_int("num_codes", num_codes, minimum=1)
    if indices.dtype in (torch.bool,) or indices.is_floating_point() or indices.is_complex():
        raise ValueError(f"indices: expected integer code indices, got dtype {indices.dtype}")
    if indices.numel() == 0:
        raise ValueError("indices: expected at least one code index")
    if bool((indices < 0).any()) or bool((indices >= num_codes).any()):
        raise ValueError(f"indices: code indices must lie in [0, {num_codes - 1}]")
    counts = torch.bincount(indices.reshape(-1), minlength=num_codes).double()
    p = counts / counts.sum()
    nz = p[p > 0]
    return float(torch.exp(-(nz * nz.log()).sum())), int((counts == 0).sum())
