r"""Dynamic time warping, and the mel cepstral distortion of two recordings of unequal timing.

**DTW** (:func:`dtw`): given a cost matrix ``C [N, M]`` (frame i of one sequence against frame j
of the other), the accumulated cost

.. math::
    D[i, j] = C[i, j] + \min(D[i-1, j-1],\ D[i, j-1],\ D[i-1, j]),\qquad D[0, 0] = C[0, 0]

(out-of-range neighbours are +∞) is the cheapest monotonic, continuous path from (0, 0) to
(i, j); ``D[N−1, M−1]`` is the DTW distance, and the path is found by walking back from the end
along the neighbour that gave each minimum (ties: diagonal, then left, then up — librosa's order
of ``step_sizes_sigma = [[1, 1], [0, 1], [1, 0]]``). Cells on one anti-diagonal ``i + j = k``
depend only on the two previous anti-diagonals, so each anti-diagonal is one vector operation.

**MCD after DTW** (:func:`dtw_mel_cepstral_distortion`): a synthesised sentence and a recording
of it differ in timing, so their MFCC frames are first aligned by DTW on the Euclidean distance
between frames (c0, the energy, left out), then the mel cepstral distortion
(:func:`~genmodels.audio.measures.mel_cepstral_distortion`, through
:func:`~genmodels.audio.voice_conversion.mcd_db` for dB-scaled MFCCs) is averaged over the
path's frame pairs.
"""

from __future__ import annotations

import torch

from genmodels._checks import check_tensor
from genmodels.audio.voice_conversion import mcd_db

__all__ = ["dtw", "dtw_mel_cepstral_distortion"]


def dtw(cost: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """DTW of a cost matrix ``cost [N, M]`` (finite, float32/float64).

    Returns ``(distance, path, accumulated)``: ``distance = accumulated[N−1, M−1]`` (a 0-d
    tensor), ``path [L, 2]`` the (i, j) index pairs from (0, 0) to (N−1, M−1) in order, and the
    accumulated-cost matrix ``D [N, M]``.
    """
    check_tensor("cost", cost, ndim=2)
    N, M = cost.shape
    if N == 0 or M == 0:
        raise ValueError(f"cost: needs at least one row and one column, got shape {list(cost.shape)}")
    D = torch.full((N + 1, M + 1), float("inf"), dtype=cost.dtype, device=cost.device)
    D[0, 0] = 0.0                                           # D is padded: D[i+1, j+1] is cell (i, j)
    step = torch.zeros(N, M, dtype=torch.long, device=cost.device)   # 0 diag, 1 left, 2 up
    for k in range(N + M - 1):                              # anti-diagonal i + j = k
        i = torch.arange(max(0, k - M + 1), min(N, k + 1), device=cost.device)
        j = k - i
        cand = torch.stack([D[i, j], D[i + 1, j], D[i, j + 1]])     # diag, left, up
        best, arg = cand.min(0)                             # first minimum on ties
        D[i + 1, j + 1] = cost[i, j] + best
        step[i, j] = arg
    acc = D[1:, 1:]
    path = [(N - 1, M - 1)]
    i, j = N - 1, M - 1
    steps = step.cpu().numpy()
    while (i, j) != (0, 0):
        s = steps[i, j]
        i, j = (i - 1, j - 1) if s == 0 else (i, j - 1) if s == 1 else (i - 1, j)
        path.append((i, j))
    path.reverse()
    return acc[N - 1, M - 1], torch.tensor(path, dtype=torch.long, device=cost.device), acc


def dtw_mel_cepstral_distortion(c_est: torch.Tensor, c_ref: torch.Tensor) -> torch.Tensor:
    """MCD (dB) between dB-scaled MFCC frames ``c_est [D, T1]`` and ``c_ref [D, T2]`` (the output
    of :func:`~genmodels.audio.mfcc`) after aligning their frames by :func:`dtw` on the Euclidean
    distance of c1…c_{D−1}; averaged over the path. Returns a 0-d tensor."""
    check_tensor("c_est", c_est, ndim=2)
    check_tensor("c_ref", c_ref, ndim=2)
    if c_est.shape[0] != c_ref.shape[0] or c_est.shape[0] < 2:
        raise ValueError(f"c_ref: expected [D={c_est.shape[0]} >= 2, frames] like c_est, got "
                         f"{list(c_ref.shape)}")
    if c_est.dtype != c_ref.dtype:
        raise ValueError(f"c_ref: expected c_est's dtype {c_est.dtype}, got {c_ref.dtype}")
    for name, c in (("c_est", c_est), ("c_ref", c_ref)):
        if c.shape[1] == 0:
            raise ValueError(f"{name}: needs at least one frame to align, got shape {list(c.shape)}")
    cost = torch.cdist(c_est[1:].T[None].double(), c_ref[1:].T[None].double())[0]   # [T1, T2]
    _, path, _ = dtw(cost)
    return mcd_db(c_est[:, path[:, 0]], c_ref[:, path[:, 1]])
