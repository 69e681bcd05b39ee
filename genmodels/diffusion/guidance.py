r"""Classifier-free guidance (Ho & Salimans, 2022).

One network ε_θ(x_t, t, y) is trained on labelled data with the label replaced by a "null" label
∅ at random (probability p_uncond ≈ 0.1), so it learns both the conditional noise ε_θ(x_t, t, y)
and the unconditional ε_θ(x_t, t, ∅). At sampling time the two are mixed,

    ε̃ = ε_θ(x_t, t, ∅) + s · (ε_θ(x_t, t, y) − ε_θ(x_t, t, ∅)),

which, since ε = −σ_t ∇ log p, samples (approximately) from p(x) p(y | x)^s: s = 0 is the
unconditional model, s = 1 the conditional one, s > 1 sharpens the class at some cost in diversity.
The guided ε̃ replaces ε_θ in any sampler (Algorithm 2, DDIM).
"""

from __future__ import annotations

from typing import Callable

import torch

from genmodels._checks import (check_callable, check_int, check_positive, check_same_dtype,
                               check_same_shape, check_tensor)

__all__ = ["classifier_free_guidance", "guided_eps_model"]


def classifier_free_guidance(eps_cond: torch.Tensor, eps_uncond: torch.Tensor,
                             guidance_scale: float) -> torch.Tensor:
    r"""The guided noise prediction ε̃ = ε_uncond + s · (ε_cond − ε_uncond).

    Args:
        eps_cond: ``[B, ...]`` ε_θ(x_t, t, y), the class-conditional prediction.
        eps_uncond: ``[B, ...]`` ε_θ(x_t, t, ∅), the unconditional one (same shape and dtype).
        guidance_scale: s ≥ 0 (0: unconditional, 1: conditional, > 1: guided).

    Returns:
        ε̃ shaped like ``eps_cond``.
    """
    check_tensor("eps_cond", eps_cond)
    check_tensor("eps_uncond", eps_uncond)
    check_same_shape(("eps_uncond", "eps_cond"), eps_uncond, eps_cond)
    check_same_dtype(("eps_uncond", "eps_cond"), eps_uncond, eps_cond)
    check_positive("guidance_scale", guidance_scale, allow_zero=True)
    # >>> exercise ddpm.cfg: classifier-free guidance
    # what: the guided noise ε̃ = ε_uncond + s·(ε_cond − ε_uncond)
    # hint: start from the unconditional prediction and move s times the difference towards the
    #   conditional one: s = 0 gives ε_uncond, s = 1 gives ε_cond.
    # mistake: `eps_uncond + guidance_scale * (eps_cond - eps_uncond)` -> `eps_cond + guidance_scale * (eps_cond - eps_uncond)`
    return eps_uncond + guidance_scale * (eps_cond - eps_uncond)
    # <<< exercise ddpm.cfg


def guided_eps_model(net: Callable[..., torch.Tensor], y: torch.Tensor, guidance_scale: float,
                     null_label: int) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """An ``eps_model(x_t, t)`` for the samplers that returns the guided ε̃ of
    :func:`classifier_free_guidance` for the labels ``y [B]``.

    ``net(x, t, y)`` is a class-conditional noise network (e.g. :class:`UNet` with
    ``num_classes``) in which the label ``null_label`` means "no label". Both predictions come
    from one call on the batch doubled, ``[x; x]`` with labels ``[y; ∅]``; at s = 0 only the
    unconditional one and at s = 1 only the conditional one is computed.
    """
    check_callable("net", net)
    check_tensor("y", y, ndim=1, floating=False)
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise ValueError(f"y: expected integer labels, got dtype {y.dtype}")
    check_positive("guidance_scale", guidance_scale, allow_zero=True)
    check_int("null_label", null_label, minimum=0)
    if y.numel() == 0:
        raise ValueError("y: expected at least one label")
    null = torch.full_like(y, null_label)

    def eps_model(x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if not isinstance(x_t, torch.Tensor) or x_t.dim() == 0 or x_t.shape[0] != len(y):
            raise ValueError(f"y: {len(y)} labels for a batch x_t of shape "
                             f"{list(getattr(x_t, 'shape', []))}")
        if guidance_scale == 0:
            return net(x_t, t, null)
        if guidance_scale == 1:
            return net(x_t, t, y)
        both = net(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([y, null]))   # (2B, ...)
        eps_cond, eps_uncond = both.chunk(2)
        return classifier_free_guidance(eps_cond, eps_uncond, guidance_scale)
    return eps_model
