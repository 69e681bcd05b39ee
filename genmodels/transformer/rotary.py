r"""Rotary position embedding (RoPE; Su et al., "RoFormer", 2021), beyond the chapter.

Instead of adding a position vector to the token embedding (eq. 2.22), RoPE *rotates* each
query and key inside attention by an angle proportional to its position. Pair the features
``(x_{2i}, x_{2i+1})`` (RoFormer's interleaved pairs) and read each pair as a complex number
``z_i = x_{2i} + j·x_{2i+1}``; position ``p`` multiplies it by ``e^{j p θ_i}`` with
``θ_i = base^{−2i/d}``:

.. math::
    \begin{pmatrix} x'_{2i} \\ x'_{2i+1} \end{pmatrix} =
    \begin{pmatrix} \cos p\theta_i & -\sin p\theta_i \\ \sin p\theta_i & \cos p\theta_i \end{pmatrix}
    \begin{pmatrix} x_{2i} \\ x_{2i+1} \end{pmatrix}

Why it encodes *relative* position: for a query at position m and a key at n,
``Re Σ_i (q_i e^{jmθ_i}) · conj(k_i e^{jnθ_i}) = Re Σ_i q_i conj(k_i) e^{j(m−n)θ_i}``, so the
score ``q'·k'`` depends on m − n only (the tests check it). Rotations keep lengths, so
``‖x'‖ = ‖x‖``.
"""

from __future__ import annotations

import math

import torch

from genmodels._checks import check_range, check_tensor, checks_enabled

__all__ = ["rotary_embedding"]


def rotary_embedding(x: torch.Tensor, positions: torch.Tensor | None = None,
                     base: float = 10000.0) -> torch.Tensor:
    r"""Rotate each feature pair ``(x_{2i}, x_{2i+1})`` of ``x`` by the angle ``p·base^{−2i/d}``.

    Args:
        x: ``[..., L, d]`` (queries or keys of any number of heads), ``d`` even.
        positions: ``[L]`` position of each row (integers or floats); default ``0 … L−1``.
            A KV cache passes ``past … past+L−1`` for the new tokens.
        base: the wavelength base (RoFormer and LLaMA use 10000).

    Returns:
        ``[..., L, d]``, same dtype as ``x``. The angles are computed in float64 and cast once.
    """
    check_tensor("x", x, min_ndim=2)
    L, d = x.shape[-2], x.shape[-1]
    if d % 2:
        raise ValueError(f"x: the last dimension d must be even (RoPE rotates pairs), "
                         f"got shape {list(x.shape)}")
    check_range("base", base, 1.0, math.inf, low_open=True, high_open=True)
    if positions is None:
        positions = torch.arange(L, device=x.device)
    elif checks_enabled():
        if not isinstance(positions, torch.Tensor):
            raise ValueError(f"positions: expected a torch.Tensor, got {type(positions).__name__}")
        if positions.dtype == torch.bool or positions.is_complex():
            raise ValueError(f"positions: expected integer or float positions, got "
                             f"{positions.dtype}")
        if positions.shape != (L,):
            raise ValueError(f"positions: expected shape [{L}] (one per row of x), got "
                             f"{list(positions.shape)}")
        if positions.is_floating_point():
            check_tensor("positions", positions)
    # >>> exercise transformer.rotary_embedding: RoPE (RoFormer)
    # what: rotary position embedding: rotate each pair (x_{2i}, x_{2i+1}) by p·base^(−2i/d)
    # hint: θ_i = base^(−2i/d) for i = 0…d/2−1; the even feature of a pair becomes x_e cos − x_o sin
    #   and the odd one x_e sin + x_o cos (multiplying x_e + j·x_o by e^{j p θ_i}).
    # mistake: `x_even * cos - x_odd * sin` -> `x_even * cos + x_odd * sin`
    two_i = torch.arange(0, d, 2, dtype=torch.float64, device=x.device)          # (d/2,)
    theta = base ** (-two_i / d)                                                  # (d/2,)
    angle = positions.to(torch.float64).unsqueeze(-1) * theta                     # (L, d/2)
    cos, sin = torch.cos(angle).to(x.dtype), torch.sin(angle).to(x.dtype)        # (L, d/2)
    x_even, x_odd = x[..., 0::2], x[..., 1::2]                                    # (..., L, d/2)
    rotated = torch.stack((x_even * cos - x_odd * sin,                            # new x_{2i}
                           x_even * sin + x_odd * cos), dim=-1)                   # new x_{2i+1}
    return rotated.flatten(-2)                                  # (..., L, d/2, 2) -> (..., L, d)
    # <<< exercise transformer.rotary_embedding
