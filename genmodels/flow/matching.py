r"""Flow matching on the straight (rectified-flow / conditional-OT) path, σ_min = 0.

Lipman et al. (2023), "Flow Matching for Generative Modeling"; Liu et al. (2023), "Flow Straight
and Fast" (rectified flow). Time runs from noise to data, the opposite of DDPM's index:

    x_0 ~ N(0, I) at t = 0,   x_1 ~ data at t = 1,
    x_t = (1 − t) x_0 + t x_1,      d x_t / dt = x_1 − x_0   (the conditional velocity).

A network v_θ(x, t) regressed onto x_1 − x_0 at random (t, x_0, x_1) learns the *marginal*
velocity v*(x, t) = E[x_1 − x_0 | x_t = x], whose ODE dx/dt = v*(x, t) carries N(0, I) at t = 0
to the data distribution at t = 1; sampling integrates it with Euler steps.

Shapes: ``x0``, ``x1``, ``x_t`` are ``[B, ...]`` (``[B, D]`` toy data, ``[B, C, H, W]`` images);
``t`` is ``[B]`` float in [0, 1], reshaped to ``[B, 1, …, 1]`` to broadcast against x. Results
keep the dtype of x. ``velocity_model(x_t, t)`` is any callable returning a tensor shaped like
``x_t``.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch

from genmodels._checks import (check_callable, check_int, check_same_dtype, check_same_shape,
                               check_shape_arg, check_tensor)

__all__ = ["flow_interpolant", "flow_matching_draw", "flow_matching_loss", "euler_flow_sample"]

VelocityModel = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _check_x(name: str, x) -> torch.Tensor:
    check_tensor(name, x, min_ndim=1)
    if x.numel() == 0:
        raise ValueError(f"{name}: expected a non-empty tensor, got shape {list(x.shape)}")
    return x


def _check_time(name: str, t, x: torch.Tensor) -> torch.Tensor:
    """Float ``t`` of shape ``[B]`` in [0, 1], returned in x's dtype and device."""
    check_tensor(name, t, ndim=1)
    if t.shape[0] != x.shape[0]:
        raise ValueError(f"{name}: expected shape [{x.shape[0]}] (one time per sample), got {list(t.shape)}")
    t_min, t_max = float(t.detach().min()), float(t.detach().max())
    if t_min < 0 or t_max > 1:
        raise ValueError(f"{name}: times must lie in [0, 1], got min {t_min}, max {t_max}")
    return t.to(dtype=x.dtype, device=x.device)


def _bcast(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return t.view(x.shape[0], *([1] * (x.dim() - 1)))                   # (B,) -> (B, 1, ..., 1)


def _call_velocity_model(velocity_model: VelocityModel, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    v_theta = velocity_model(x_t, t)
    check_tensor("velocity_model output", v_theta)
    check_same_shape(("velocity_model output", "x_t"), v_theta, x_t)
    return v_theta


# ---------------------------------------------------------------------------------------------
# the path, the loss, the sampler
# ---------------------------------------------------------------------------------------------
def flow_interpolant(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The straight path from noise to data and its velocity:

        x_t = (1 − t) · x_0 + t · x_1,      u_t = d x_t / dt = x_1 − x_0.

    Args:
        x0: ``[B, ...]`` the noise end (t = 0).
        x1: ``[B, ...]`` the data end (t = 1), the shape and dtype of ``x0``.
        t: ``[B]`` float times in [0, 1], one per sample.

    Returns:
        ``(x_t [B, ...], velocity [B, ...])``.
    """
    _check_x("x0", x0)
    _check_x("x1", x1)
    check_same_shape(("x1", "x0"), x1, x0)
    check_same_dtype(("x1", "x0"), x1, x0)
    t = _check_time("t", t, x0)
    # >>> exercise flow.interpolant: flow matching path
    # what: the straight path x_t = (1 − t) x_0 + t x_1 and its velocity x_1 − x_0
    # hint: t = 0 is the noise x_0 and t = 1 the data x_1; reshape t [B] to [B, 1, …, 1] (_bcast)
    #   so it broadcasts; the velocity is the time derivative of x_t.
    # mistake: `velocity = x1 - x0` -> `velocity = x0 - x1`
    tb = _bcast(t, x0)                                                  # (B, 1, ..., 1)
    x_t = (1 - tb) * x0 + tb * x1
    velocity = x1 - x0
    return x_t, velocity
    # <<< exercise flow.interpolant


def flow_matching_draw(x1: torch.Tensor, generator: torch.Generator | None = None, *,
                       t: torch.Tensor | None = None,
                       x0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The random draws of :func:`flow_matching_loss` for a batch ``x1 [B, ...]``: first
    t ~ U[0, 1] ``[B]``, then x_0 ~ N(0, I) shaped like ``x1``, each only when not given.

    The loss draws through it, so a caller that draws first and passes ``t=`` and ``x0=`` (the
    trainer draws the global batch's, then splits them) gets the numbers of the loss drawing
    them itself.
    """
    _check_x("x1", x1)
    if t is None:
        t = torch.rand(x1.shape[0], generator=generator, dtype=x1.dtype, device=x1.device)
    if x0 is None:
        x0 = torch.randn(x1.shape, generator=generator, dtype=x1.dtype, device=x1.device)
    return t, x0


def flow_matching_loss(velocity_model: VelocityModel, x1: torch.Tensor,
                       generator: torch.Generator | None = None, *, t: torch.Tensor | None = None,
                       x0: torch.Tensor | None = None) -> torch.Tensor:
    r"""Conditional flow matching (Lipman et al., 2023, eq. 23 with σ_min = 0):

        L_CFM = E_{t, x_0, x_1} ‖v_θ(x_t, t) − (x_1 − x_0)‖²,
        t ~ U[0, 1],  x_0 ~ N(0, I),  x_t = (1 − t) x_0 + t x_1,

    the squared error averaged over every element (‖·‖²/D per sample, averaged over the batch).
    Its gradient equals that of the regression onto the marginal velocity
    v*(x, t) = E[x_1 − x_0 | x_t = x], which is therefore its minimiser.

    Args:
        velocity_model: callable ``(x_t [B, ...], t [B] float) -> v_θ`` shaped like ``x_t``.
        x1: ``[B, ...]`` a data batch.
        generator: draws t and x_0 when they are not given (:func:`flow_matching_draw`).
        t: optional ``[B]`` times in [0, 1] (fixes the draw).
        x0: optional noise shaped like ``x1`` (fixes the draw).

    Returns:
        0-dim loss.
    """
    check_callable("velocity_model", velocity_model)
    _check_x("x1", x1)
    if x0 is not None:
        check_tensor("x0", x0)
        check_same_shape(("x0", "x1"), x0, x1)
        check_same_dtype(("x0", "x1"), x0, x1)
    if t is not None:
        _check_time("t", t, x1)
    # >>> exercise flow.loss: conditional flow matching
    # what: the loss mean ‖v_θ(x_t, t) − (x_1 − x_0)‖² with t ~ U[0, 1], x_0 ~ N(0, I)
    # hint: draw (t, x_0) with flow_matching_draw, build x_t and the target with flow_interpolant,
    #   and average the squared error over every element.
    # mistake: `(v_theta - velocity).pow(2)` -> `(v_theta - x1).pow(2)`
    # uses: flow.interpolant
    t, x0 = flow_matching_draw(x1, generator, t=t, x0=x0)              # t ~ U[0, 1], x_0 ~ N(0, I)
    x_t, velocity = flow_interpolant(x0, x1, t)
    v_theta = _call_velocity_model(velocity_model, x_t, t.to(x1.dtype))
    return (v_theta - velocity).pow(2).mean()
    # <<< exercise flow.loss


def euler_flow_sample(velocity_model: VelocityModel, shape: Sequence[int], steps: int,
                      generator: torch.Generator | None = None, *, x0: torch.Tensor | None = None,
                      dtype: torch.dtype | None = None, device=None,
                      enable_grad: bool = False) -> torch.Tensor:
    r"""Integrate the flow ODE dx/dt = v_θ(x, t) from t = 0 to t = 1 with ``steps`` Euler steps:

        x ← x_0 ~ N(0, I);   for i = 0, …, steps − 1:  x ← x + v_θ(x, t_i) Δ,
        Δ = 1/steps,  t_i = i Δ,

    so the network is evaluated ``steps`` times, at t = 0, Δ, …, 1 − Δ (never at t = 1).

    Args:
        velocity_model: callable ``(x [B, ...], t [B] float) -> v_θ``.
        shape: ``(B, ...)`` of the samples.
        steps: number of Euler steps (= network evaluations), ≥ 1.
        generator: draws x_0 when it is not given.
        x0: optional starting noise of ``shape`` (then ``dtype``/``device`` follow it).
        dtype, device: of x_0 when it is drawn (default dtype: ``torch.get_default_dtype()``).
        enable_grad: runs under ``torch.no_grad()`` unless True.

    Returns:
        x_1 samples of ``shape``.
    """
    check_callable("velocity_model", velocity_model)
    check_int("steps", steps, minimum=1)
    shape = check_shape_arg("shape", shape)
    if x0 is None:
        x = torch.randn(shape, generator=generator, dtype=dtype or torch.get_default_dtype(),
                        device=device)
    else:
        check_tensor("x0", x0)
        if tuple(x0.shape) != shape:
            raise ValueError(f"x0: expected shape {list(shape)}, got {list(x0.shape)}")
        x = x0
    # >>> exercise flow.euler: flow ODE, Euler
    # what: Euler integration x ← x + v_θ(x, t_i)·Δ of the flow ODE from t = 0 to t = 1
    # hint: Δ = 1/steps and t_i = i·Δ for i = 0 … steps − 1 (the first call is at t = 0, the last
    #   at 1 − Δ); time runs forwards, from noise to data.
    # mistake: `x = x + v_theta * dt` -> `x = x - v_theta * dt`
    dt = 1.0 / steps
    with torch.set_grad_enabled(enable_grad and torch.is_grad_enabled()):
        for i in range(steps):
            t = torch.full((x.shape[0],), i * dt, dtype=x.dtype, device=x.device)
            v_theta = _call_velocity_model(velocity_model, x, t)
            x = x + v_theta * dt
    return x
    # <<< exercise flow.euler
