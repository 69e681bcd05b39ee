"""Transformer training objectives, eqs. 2.28–2.29.

Both take unnormalised ``logits`` (the softmax of eq. 2.27 is folded into a ``log_softmax``,
which is exact and never takes the log of an underflowed 0) and integer class ``targets``.
"""

from __future__ import annotations

import torch

from genmodels._checks import check_choice, check_tensor, checks_enabled

__all__ = ["masked_lm_loss", "task_loss"]


def _check_targets(targets, logits: torch.Tensor, select: torch.Tensor | None) -> None:
    """``targets`` is an integer tensor shaped like ``logits[..., 0]`` with ids in [0, V)
    wherever ``select`` is True (everywhere when ``select`` is None)."""
    if not isinstance(targets, torch.Tensor):
        raise ValueError(f"targets: expected a torch.Tensor, got {type(targets).__name__}")
    if targets.is_floating_point() or targets.is_complex() or targets.dtype == torch.bool:
        raise ValueError(f"targets: expected an integer tensor of class ids, got {targets.dtype}")
    if targets.shape != logits.shape[:-1]:
        raise ValueError(f"targets: expected shape {list(logits.shape[:-1])} (logits without "
                         f"the vocabulary dimension), got {list(targets.shape)}")
    V = logits.shape[-1]
    chosen = targets if select is None else targets[select]
    if checks_enabled() and chosen.numel() and (bool((chosen < 0).any())
                                                or bool((chosen >= V).any())):
        raise ValueError(f"targets: class ids must lie in [0, {V}), got values in "
                         f"[{int(chosen.min())}, {int(chosen.max())}]")


def _token_nll(logits: torch.Tensor, targets: torch.Tensor, select: torch.Tensor) -> torch.Tensor:
    """−log softmax(logits)[target] at every position, 0 where ``select`` is False."""
    log_p = torch.log_softmax(logits, dim=-1)                       # (..., V)
    safe = torch.where(select, targets, torch.zeros_like(targets))  # ignored ids may be junk
    nll = -log_p.gather(-1, safe.long().unsqueeze(-1)).squeeze(-1)  # (...,)
    return torch.where(select, nll, torch.zeros_like(nll))


def masked_lm_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor,
                   reduction: str = "mean") -> torch.Tensor:
    r"""Eq. 2.28, the masked-language-modelling loss (BERT).

    .. math:: \mathcal{L}_{MLM} = -\sum_{i \in M} \log P(w_i \mid w_{\setminus i})

    ``M`` is the set of masked positions (``mask`` True); the model saw a corrupted input there
    and must predict the original token ``targets[b, i]``. ``targets`` outside ``M`` are ignored
    (they may hold anything, e.g. −100).

    Args:
        logits: ``[B, L, V]``. targets: ``[B, L]`` integer. mask: ``[B, L]`` bool.
        reduction: ``"sum"`` is the equation as printed; ``"mean"`` divides it by ``|M|`` (the
            usual training loss; raises if ``M`` is empty); ``"none"`` returns the per-token
            losses ``[B, L]``, 0 outside ``M``.

    Returns:
        ``[]`` (``[B, L]`` for ``"none"``).
    """
    check_tensor("logits", logits, ndim=3)
    check_choice("reduction", reduction, ("mean", "sum", "none"))
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise ValueError(f"mask: expected a bool tensor (True = masked position in M), got "
                         f"{getattr(mask, 'dtype', type(mask).__name__)}")
    if mask.shape != logits.shape[:-1]:
        raise ValueError(f"mask: expected shape {list(logits.shape[:-1])}, got {list(mask.shape)}")
    _check_targets(targets, logits, mask)
    if checks_enabled() and reduction == "mean" and not bool(mask.any()):
        raise ValueError("mask: no masked position, so the mean over M is undefined")

    # >>> exercise transformer.masked_lm_loss: eq. 2.28
    # what: the masked-LM loss −Σ_{i∈M} log P(w_i | w_\i), mean over |M|
    # hint: only masked positions count; 'mean' divides the sum by the number of MASKED positions, not B·L.
    # mistake: `total / mask.sum().to(total.dtype)` -> `total / mask.numel()`
    nll = _token_nll(logits, targets, mask)  # (B, L), 0 outside M
    if reduction == "none":
        return nll
    total = nll.sum()                        # eq. 2.28 as printed
    if reduction == "sum":
        return total
    return total / mask.sum().to(total.dtype)
    # <<< exercise transformer.masked_lm_loss


def task_loss(logits: torch.Tensor, targets: torch.Tensor, reduction: str = "mean", *,
              ignore_index: int | None = None) -> torch.Tensor:
    r"""Eq. 2.29, the supervised (fine-tuning / next-token) loss.

    .. math:: \mathcal{L}_{task} = -\sum_{(x, y)} \log P(y \mid x)

    the negative of eq. 2.29's log-likelihood, so that it is minimised.

    Args:
        logits: ``[..., V]``. targets: ``[...]`` integer class ids.
        reduction: ``"mean"`` (over every leading position), ``"sum"``, or ``"none"`` (``[...]``).
        ignore_index: optional target id that contributes nothing (and is not counted in the
            mean), e.g. padding.

    Returns:
        ``[]`` (``[...]`` for ``"none"``).
    """
    check_tensor("logits", logits, min_ndim=1)
    check_choice("reduction", reduction, ("mean", "sum", "none"))
    if ignore_index is not None and (isinstance(ignore_index, bool)
                                     or not isinstance(ignore_index, int)):
        raise ValueError(f"ignore_index: expected an int or None, "
                         f"got {type(ignore_index).__name__}")
    if isinstance(targets, torch.Tensor) and ignore_index is not None:
        select = targets != ignore_index
    else:
        select = None
    _check_targets(targets, logits, select)
    if select is None:
        select = torch.ones_like(targets, dtype=torch.bool)
    if checks_enabled() and reduction == "mean" and not bool(select.any()):
        raise ValueError("targets: every target equals ignore_index, so the mean is undefined")

    # >>> exercise transformer.task_loss: eq. 2.29
    # what: the task loss −Σ log P(y|x) (the negative of 2.29 as printed)
    # hint: sum the per-position negative log-likelihoods; the mean counts only non-ignored targets.
    # mistake: `total / select.sum().to(total.dtype)` -> `total / select.numel()`
    nll = _token_nll(logits, targets, select)  # (...,)
    if reduction == "none":
        return nll
    total = nll.sum()
    if reduction == "sum":
        return total
    return total / select.sum().to(total.dtype)
    # <<< exercise transformer.task_loss
