"""PPO's clipped surrogate objective: eq. 2.4, with the diagnostics PPO implementations log.

All inputs are per-sample (per action, or per token in RLHF) tensors of one shape ``[...]``;
``logp_*`` are log π(a_t | s_t) of the action actually taken, ``logp_old`` from the policy that
collected the data (a constant: detach it). Means are over every element, or over the elements
where an optional boolean ``mask`` is True (padding tokens excluded).
"""

from __future__ import annotations

import torch

from genmodels._checks import check_positive, check_same_dtype, check_same_shape, check_tensor


def probability_ratio(logp_new: torch.Tensor, logp_old: torch.Tensor) -> torch.Tensor:
    """Eq. 2.4: r_t(φ) = π_φ(a_t|s_t) / π_φold(a_t|s_t) = exp(log π_φ − log π_φold).

    Taking the exponential of the difference of log-probabilities avoids dividing two tiny
    probabilities. logp_new, logp_old: ``[...]`` (same shape). Returns ``[...]``.
    """
    _check_logps(logp_new, logp_old)
    # >>> exercise rl.probability_ratio: eq. 2.4
    # what: the PPO ratio r_t = π_new / π_old from log-probabilities
    # hint: exp of the DIFFERENCE of the log-probabilities (new minus old).
    # mistake: `torch.exp(logp_new - logp_old)` -> `torch.exp(logp_old - logp_new)`
    r_t = torch.exp(logp_new - logp_old)
    return r_t
    # <<< exercise rl.probability_ratio


def ppo_clip_objective(logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor,
                       clip_eps: float, *, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 2.4: L^CLIP(φ) = mean_t min(r_t Â_t, clip(r_t, 1−ε, 1+ε) Â_t), the value to MAXIMISE.

    (Minimise ``-ppo_clip_objective(...)``.) When the clipped term is the smaller one — r_t > 1+ε
    with Â_t > 0, or r_t < 1−ε with Â_t < 0 — the sample's gradient is exactly zero: the update
    gets no incentive to move the ratio further from 1.

    logp_new, logp_old, advantages: ``[...]`` (same shape); clip_eps ε > 0;
    mask: optional bool ``[...]``, True for the elements to average over. Returns ``[]``.
    """
    _check_logps(logp_new, logp_old)
    check_tensor("advantages", advantages)
    check_same_shape(("advantages", "logp_new"), advantages, logp_new)
    check_same_dtype(("advantages", "logp_new"), advantages, logp_new)
    check_positive("clip_eps", clip_eps)
    # >>> exercise rl.ppo_clip: eq. 2.4
    # what: the clipped surrogate mean min(r Â, clip(r, 1−ε, 1+ε) Â)
    # hint: take the MINIMUM of the unclipped and the clipped term (a pessimistic bound), then average.
    # mistake: `torch.minimum(unclipped, clipped)` -> `torch.maximum(unclipped, clipped)`
    r_t = torch.exp(logp_new - logp_old)
    unclipped = r_t * advantages
    clipped = torch.clamp(r_t, 1.0 - clip_eps, 1.0 + clip_eps) * advantages
    L_clip = _mean(torch.minimum(unclipped, clipped), mask, like=logp_new)
    return L_clip
    # <<< exercise rl.ppo_clip


def approx_kl(logp_new: torch.Tensor, logp_old: torch.Tensor, *,
              mask: torch.Tensor | None = None) -> torch.Tensor:
    """Estimate of KL(π_old ‖ π_new) from samples a ~ π_old: mean((r − 1) − log r).

    Each term is ≥ 0 (since log r ≤ r − 1) and the estimator is unbiased with low variance
    (Schulman's "k3"). logp_new, logp_old: ``[...]``; mask as in :func:`ppo_clip_objective`.
    Returns ``[]``.
    """
    _check_logps(logp_new, logp_old)
    log_r = logp_new - logp_old
    kl = _mean(torch.expm1(log_r) - log_r, mask, like=logp_new)
    return kl


def clip_fraction(logp_new: torch.Tensor, logp_old: torch.Tensor, clip_eps: float, *,
                  mask: torch.Tensor | None = None) -> torch.Tensor:
    """Fraction of samples whose ratio lies outside [1−ε, 1+ε], i.e. |r_t − 1| > ε.

    A diagnostic (not differentiable); shapes as in :func:`ppo_clip_objective`. Returns ``[]``
    in the dtype of ``logp_new``.
    """
    _check_logps(logp_new, logp_old)
    check_positive("clip_eps", clip_eps)
    r_t = torch.exp((logp_new - logp_old).detach())
    outside = ((r_t - 1.0).abs() > clip_eps).to(logp_new.dtype)
    return _mean(outside, mask, like=logp_new)


def value_loss(values: torch.Tensor, returns: torch.Tensor, *,
               old_values: torch.Tensor | None = None, clip_eps: float | None = None,
               mask: torch.Tensor | None = None) -> torch.Tensor:
    """PPO's value-function loss, to MINIMISE: ½ mean (V(s_t) − R_t)².

    With ``old_values`` and ``clip_eps`` both given, the clipped form of PPO implementations:
    V_clip = V_old + clip(V − V_old, −ε, ε), loss = ½ mean max((V − R)², (V_clip − R)²).

    values, returns, old_values: ``[...]`` (same shape). Returns ``[]``.
    """
    check_tensor("values", values)
    check_tensor("returns", returns)
    check_same_shape(("returns", "values"), returns, values)
    check_same_dtype(("returns", "values"), returns, values)
    if (old_values is None) != (clip_eps is None):
        raise ValueError("old_values: give both old_values and clip_eps for the clipped loss, "
                         "or neither")
    sq_err = (values - returns) ** 2
    if old_values is not None:
        check_tensor("old_values", old_values)
        check_same_shape(("old_values", "values"), old_values, values)
        check_same_dtype(("old_values", "values"), old_values, values)
        check_positive("clip_eps", clip_eps)
        V_clip = old_values + torch.clamp(values - old_values, -clip_eps, clip_eps)
        sq_err = torch.maximum(sq_err, (V_clip - returns) ** 2)
    return 0.5 * _mean(sq_err, mask, like=values, like_name="values")


def _check_logps(logp_new: torch.Tensor, logp_old: torch.Tensor) -> None:
    check_tensor("logp_new", logp_new)
    check_tensor("logp_old", logp_old)
    check_same_shape(("logp_old", "logp_new"), logp_old, logp_new)
    check_same_dtype(("logp_old", "logp_new"), logp_old, logp_new)


def _mean(x: torch.Tensor, mask: torch.Tensor | None, like: torch.Tensor,
          like_name: str = "logp_new") -> torch.Tensor:
    """Mean of every element of ``x``, or of those where the bool ``mask`` is True."""
    if x.numel() == 0:
        raise ValueError(f"{like_name}: cannot average over an empty tensor of shape "
                         f"{list(like.shape)}")
    if mask is None:
        return x.mean()
    check_tensor("mask", mask, floating=False)
    if mask.dtype != torch.bool:
        raise ValueError(f"mask: expected a bool tensor, got dtype {mask.dtype}")
    check_same_shape(("mask", like_name), mask, like)
    n = mask.sum()
    if not bool(n > 0):
        raise ValueError("mask: selects no element to average over")
    return torch.where(mask, x, torch.zeros_like(x)).sum() / n.to(x.dtype)
