"""Fine-tuning on the target task (section 2.2.2): the task loss L_T and the update θ' = θ − α∇L_T.
"""

from __future__ import annotations

import collections.abc
from typing import Iterable

import torch
import torch.nn as nn

from genmodels._checks import (check_finite, check_positive, check_shape, check_tensor,
                               checks_enabled)


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """L_T: the cross-entropy of the target task, −(1/N) Σ_i Σ_c y_ic log p_ic, p_i = softmax(z_i).

    log p is computed with log_softmax (no overflow for large logits, no log 0).

    logits: ``[N, C]``. targets: class indices ``[N]`` (integer dtype, values in 0 … C−1), or
    one-hot / soft labels ``[N, C]`` (each row a probability vector; a float tensor of the
    logits' dtype, or an integer one-hot such as ``F.one_hot(y, C)``). Returns ``[]``.
    """
    check_tensor("logits", logits, ndim=2)
    N, C = logits.shape
    if N == 0:
        raise ValueError("logits: cannot average over an empty batch (N = 0)")
    check_tensor("targets", targets, ndim=(1, 2), floating=False)
    if targets.dim() == 1:  # class indices: y_ic = 1 only for c = targets[i]
        check_shape("targets", targets, (N,))
        if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
            raise ValueError(f"targets: class indices must be integers, got {targets.dtype}")
        if checks_enabled() and not bool(((targets >= 0) & (targets < C)).all()):
            raise ValueError(f"targets: class indices must lie in [0, {C - 1}]")
    else:
        check_shape("targets", targets, (N, C))
        y = _label_distribution(targets, logits.dtype)  # [N, C]
    # >>> exercise transfer.cross_entropy: eq. L_T
    # what: the cross-entropy −(1/N) Σ_i Σ_c y_ic log softmax(z_i)_c
    # hint: use log_softmax over the CLASS axis (dim=-1), pick / weight the target entries, average over N.
    # mistake: `torch.log_softmax(logits, dim=-1)` -> `torch.log_softmax(logits, dim=0)`
    log_p = torch.log_softmax(logits, dim=-1)  # [N, C]
    if targets.dim() == 1:
        log_p_target = log_p.gather(1, targets.long()[:, None]).squeeze(1)  # [N]
        L_T = -log_p_target.mean()
    else:
        L_T = -(y * log_p).sum(dim=1).mean()
    return L_T
    # <<< exercise transfer.cross_entropy


def _label_distribution(targets: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """Check that each row of ``targets [N, C]`` is a probability vector; return it in ``dtype``."""
    if targets.is_complex() or targets.dtype == torch.bool:
        raise ValueError(f"targets: expected float or integer labels, got dtype {targets.dtype}")
    if targets.is_floating_point():
        if targets.dtype != dtype:
            raise ValueError(f"targets: soft labels must have the logits' dtype {dtype}, "
                             f"got {targets.dtype}")
        check_finite("targets", targets)
        y = targets
    else:
        y = targets.to(dtype)
    y_det = y.detach()
    tol = 1e-6 if dtype == torch.float64 else 1e-3
    if checks_enabled() and bool((y_det < 0).any()):
        raise ValueError("targets: labels must be non-negative")
    if checks_enabled() and not bool(((y_det.sum(dim=1) - 1).abs() <= tol * y.shape[1]).all()):
        raise ValueError("targets: each row of one-hot / soft labels must sum to 1")
    return y


def sgd_update(params: Iterable[torch.Tensor] | nn.Module, lr: float) -> None:
    """θ' = θ − α ∇_θ L: one plain gradient-descent step, in place, from each parameter's ``.grad``.

    params: an iterable of tensors (e.g. ``model.parameters()``), a dict of them, or an
    ``nn.Module``; parameters whose ``.grad`` is None are skipped. lr: α > 0. Returns None.
    The update runs under ``torch.no_grad()`` so it is not recorded by autograd.
    """
    check_positive("lr", lr)
    if isinstance(params, nn.Module):
        params = params.parameters()
    elif isinstance(params, dict):
        params = params.values()
    elif isinstance(params, torch.Tensor):
        params = [params]
    elif not isinstance(params, collections.abc.Iterable):
        raise ValueError(f"params: expected tensors, a dict of them or an nn.Module, "
                         f"got {type(params).__name__}")
    params = list(params)
    for i, theta in enumerate(params):
        if not isinstance(theta, torch.Tensor):
            raise ValueError(f"params: entry {i} is a {type(theta).__name__}, not a tensor")
        if theta.grad is not None:
            check_finite(f"params[{i}].grad", theta.grad)
    # >>> exercise transfer.sgd_update: eq. θ'
    # what: one in-place gradient step θ ← θ − α ∇L
    # hint: update in place under torch.no_grad(), skip parameters whose .grad is None, DESCEND the
    #   gradient.
    # mistake: `theta.sub_(lr * theta.grad)` -> `theta.add_(lr * theta.grad)`
    with torch.no_grad():
        for theta in params:
            if theta.grad is None:
                continue
            theta.sub_(lr * theta.grad)  # θ ← θ − α g
    # <<< exercise transfer.sgd_update
