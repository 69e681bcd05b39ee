"""RLHF: fitting the reward model to comparisons (eq. 2.2) and the KL-shaped reward (eq. 2.3).

Sequences are ``[B, T]`` over generated tokens t = 0 … T−1; ``logp_*[b, t]`` is the
log-probability of token t of response b under the policy π_φ or the frozen reference π_ref.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from genmodels._checks import (check_positive, check_same_dtype, check_same_shape, check_shape,
                               check_tensor, checks_enabled)


def preference_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """Eq. 2.2: the Bradley–Terry loss of the reward model, mean −log σ(r_θ(x, y_c) − r_θ(x, y_r)).

    P(y_c ≻ y_r) = σ(r_c − r_r), and fitting R_θ to human comparisons maximises its log.
    −log σ(Δ) is computed as −logsigmoid(Δ), finite for any gap (Δ = −200 gives 200, not inf).

    r_chosen, r_rejected: ``[B]`` scalar rewards of the preferred / the other response (any
    common shape works; the mean is over every element). Returns ``[]``.
    """
    check_tensor("r_chosen", r_chosen)
    check_tensor("r_rejected", r_rejected)
    check_same_shape(("r_chosen", "r_rejected"), r_chosen, r_rejected)
    check_same_dtype(("r_chosen", "r_rejected"), r_chosen, r_rejected)
    if r_chosen.numel() == 0:
        raise ValueError("r_chosen: cannot average over an empty batch")
    # >>> exercise rl.preference_loss: eq. 2.2
    # what: the Bradley–Terry loss mean −log σ(r_chosen − r_rejected)
    # hint: P(chosen ≻ rejected) = σ(r_c − r_r); use logsigmoid so a gap of −200 gives 200, not inf.
    # mistake: `delta = r_chosen - r_rejected` -> `delta = r_rejected - r_chosen`
    delta = r_chosen - r_rejected
    loss = -F.logsigmoid(delta).mean()
    return loss
    # <<< exercise rl.preference_loss


def kl_shaped_rewards(scores: torch.Tensor, logp_policy: torch.Tensor, logp_ref: torch.Tensor,
                      beta: float, *, mask: torch.Tensor | None = None,
                      lengths: torch.Tensor | None = None) -> torch.Tensor:
    """Eq. 2.3: per-token reward R(x, y)_t = −β (log π_φ(y_t|…) − log π_ref(y_t|…)),
    plus the reward-model score r_θ(x, y) at the last (valid) token.

    Summed over t this is r_θ(x, y) − β log(π_φ(y|x) / π_ref(y|x)): the score minus β times the
    sample estimate of KL(π_φ ‖ π_ref), which keeps the policy close to the reference model.

    scores: ``[B]``; logp_policy, logp_ref: ``[B, T]``; beta ≥ 0.
    For padded batches give ONE of
      mask: ``[B, T]`` bool (or 0/1), True at real tokens — the score lands on the last True
            position of each row and padded positions get reward 0;
      lengths: ``[B]`` integers in 1 … T, the number of real tokens of right-padded rows.
    Returns ``[B, T]``.
    """
    check_tensor("scores", scores, ndim=1)
    check_tensor("logp_policy", logp_policy, ndim=2)
    check_tensor("logp_ref", logp_ref, ndim=2)
    check_same_shape(("logp_ref", "logp_policy"), logp_ref, logp_policy)
    check_same_dtype(("logp_ref", "logp_policy", "scores"), logp_ref, logp_policy, scores)
    B, T = logp_policy.shape
    check_shape("scores", scores, (B,))
    check_positive("beta", beta, allow_zero=True)
    if T == 0:
        raise ValueError("logp_policy: expected at least one token, got shape [B, 0]")
    valid = _valid_tokens(mask, lengths, B, T, logp_policy.device)  # [B, T] bool

    # >>> exercise rl.kl_shaped_rewards: eq. 2.3
    # what: per-token reward −β(log π − log π_ref), plus the score at the last valid token
    # hint: every valid token gets −β·(logp_policy − logp_ref); the reward-model score is added only
    #   at the LAST valid token of each row; padded tokens get 0.
    # mistake: `-beta * kl_t` -> `beta * kl_t`
    kl_t = logp_policy - logp_ref  # per-token log-ratio, [B, T]
    kl_reward = torch.where(valid, -beta * kl_t, torch.zeros_like(kl_t))  # [B, T]
    # index of the last valid token of each row: the largest t with valid[b, t]
    t_idx = torch.arange(T, device=valid.device)
    last = torch.where(valid, t_idx, torch.full_like(t_idx, -1)).amax(dim=1)  # [B]
    at_last = F.one_hot(last, T).to(logp_policy.dtype)  # [B, T]
    rewards = kl_reward + scores[:, None] * at_last
    return rewards
    # <<< exercise rl.kl_shaped_rewards


def _valid_tokens(mask, lengths, B: int, T: int, device) -> torch.Tensor:
    """The ``[B, T]`` bool tensor of real tokens from ``mask`` or ``lengths`` (all True if none)."""
    if mask is not None and lengths is not None:
        raise ValueError("mask: give either mask or lengths, not both")
    if mask is not None:
        check_tensor("mask", mask, floating=False)
        check_shape("mask", mask, (B, T))
        if mask.dtype != torch.bool:
            if mask.is_floating_point() or mask.is_complex() or \
                    not bool(((mask == 0) | (mask == 1)).all()):
                raise ValueError(f"mask: expected bool or 0/1 integer values, got {mask.dtype}")
            mask = mask.bool()
        if checks_enabled() and not bool(mask.any(dim=1).all()):
            raise ValueError("mask: every row needs at least one True (valid) token")
        return mask
    if lengths is not None:
        check_tensor("lengths", lengths, ndim=1, floating=False)
        check_shape("lengths", lengths, (B,))
        if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
            raise ValueError(f"lengths: expected an integer tensor, got dtype {lengths.dtype}")
        if checks_enabled() and not bool(((lengths >= 1) & (lengths <= T)).all()):
            raise ValueError(f"lengths: every length must lie in [1, {T}], got {lengths.tolist()}")
        return torch.arange(T, device=lengths.device)[None, :] < lengths[:, None]  # [B, T]
    return torch.ones(B, T, dtype=torch.bool, device=device)


class AdaptiveKLController:
    """The adaptive KL coefficient of Ziegler et al. (2019, "Fine-tuning language models from
    human preferences", sec. 2.2): after each PPO iteration with measured KL(π‖π_ref) = KL_t,

        e_t = clip(KL_t / KL_target − 1, −0.2, 0.2),      β_{t+1} = β_t (1 + K_β e_t),

    so β grows while the policy drifts past the target and shrinks while it stays below. A fixed
    β (eq. 2.3 as printed) lets KL grow without bound as the reward model is over-optimised;
    this keeps it near ``target`` instead.

    beta: the initial β > 0; target: KL_target > 0 (nats per completion); k_beta: K_β > 0, the
    gain per iteration (Ziegler et al. use 0.1).
    """

    def __init__(self, beta: float, target: float, k_beta: float = 0.1):
        check_positive("beta", beta)
        check_positive("target", target)
        check_positive("k_beta", k_beta)
        self.beta, self.target, self.k_beta = float(beta), float(target), float(k_beta)

    def update(self, kl: float) -> float:
        """Feed this iteration's KL (a finite float, nats); returns the new β."""
        kl = float(kl)
        if not math.isfinite(kl):
            raise ValueError(f"kl: expected a finite number, got {kl}")
        error = min(max(kl / self.target - 1.0, -0.2), 0.2)
        self.beta *= 1.0 + self.k_beta * error
        return self.beta

    def state_dict(self) -> dict:
        return {"beta": self.beta, "target": self.target, "k_beta": self.k_beta}

    def load_state_dict(self, state: dict) -> None:
        self.beta, self.target, self.k_beta = (float(state["beta"]), float(state["target"]),
                                               float(state["k_beta"]))
