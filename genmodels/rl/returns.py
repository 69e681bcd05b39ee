"""Returns and advantages: eq. 2.1 and generalized advantage estimation (GAE).

Time is the LAST axis of ``rewards`` for :func:`discounted_return` and :func:`rewards_to_go`
(``[..., T]``, t = 0 … T−1), and the FIRST axis for :func:`gae` (``[T, N]``, as a rollout buffer
stores it, N parallel environments). ``dones[t]`` means the episode ended *after* step t, so the
value of step t+1 belongs to a different episode and is never bootstrapped into step t.
"""

from __future__ import annotations

import torch

from genmodels._checks import (check_range, check_same_dtype, check_same_shape, check_tensor,
                               checks_enabled)


def _discounts(gamma: float, T: int, like: torch.Tensor) -> torch.Tensor:
    """γ^t for t = 0 … T−1, computed in float64 and cast once (γ^0 = 1 also for γ = 0)."""
    t = torch.arange(T, dtype=torch.float64, device=like.device)
    return torch.pow(torch.tensor(float(gamma), dtype=torch.float64), t).to(like.dtype)


def discounted_return(rewards: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """Eq. 2.1: the discounted return of a trajectory, R(τ) = Σ_{t=0}^{T−1} γ^t r_t.

    rewards: ``[..., T]`` (time last); gamma in [0, 1]. Returns ``[...]``.
    """
    check_tensor("rewards", rewards, min_ndim=1)
    check_range("gamma", gamma, 0.0, 1.0)
    # >>> exercise rl.discounted_return: eq. 2.1
    # what: the discounted return R(τ) = Σ_t γ^t r_t over the last axis
    # hint: time is the LAST axis; γ^t starts at γ^0 = 1 for the first reward.
    # mistake: `(rewards * gamma_t).sum(dim=-1)` -> `(rewards * gamma_t).sum(dim=0)`
    gamma_t = _discounts(gamma, rewards.shape[-1], rewards)  # [T]
    R_tau = (rewards * gamma_t).sum(dim=-1)  # [...]
    return R_tau
    # <<< exercise rl.discounted_return


def rewards_to_go(rewards: torch.Tensor, gamma: float = 1.0) -> torch.Tensor:
    """Eq. 2.1 from step t on: G_t = Σ_{k=t}^{T−1} γ^{k−t} r_k, so G_0 = R(τ).

    Computed by the backward recursion G_t = r_t + γ G_{t+1}, G_T = 0.
    rewards: ``[..., T]`` (time last); gamma in [0, 1]. Returns ``[..., T]``.
    """
    check_tensor("rewards", rewards, min_ndim=1)
    check_range("gamma", gamma, 0.0, 1.0)
    T = rewards.shape[-1]
    if T == 0:
        return rewards.clone()  # nothing to sum: an empty [..., 0]
    # >>> exercise rl.rewards_to_go: eq. 2.1
    # what: the rewards-to-go G_t = Σ_{k≥t} γ^{k−t} r_k
    # hint: run backwards: G_t = r_t + γ G_{t+1} with G_T = 0; the discount applies to the FUTURE sum.
    # mistake: `rewards[..., t] + gamma * G_next` -> `gamma * rewards[..., t] + G_next`
    G_next = torch.zeros_like(rewards[..., 0])  # G_T = 0, [...]
    G = [None] * T
    for t in reversed(range(T)):
        G_next = rewards[..., t] + gamma * G_next
        G[t] = G_next
    return torch.stack(G, dim=-1)  # [..., T]
    # <<< exercise rl.rewards_to_go


def gae(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor,
        last_value: torch.Tensor, gamma: float, lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation (Schulman et al., 2016) for Â_t of eq. 2.4.

        δ_t = r_t + γ (1 − d_t) V(s_{t+1}) − V(s_t)
        Â_t = δ_t + γ λ (1 − d_t) Â_{t+1},      Â_T = 0
        returns_t = Â_t + V(s_t)              (the value-function targets)

    with V(s_T) = ``last_value`` (the value of the state after the last stored step) and
    d_t = ``dones[t]`` = 1 when the episode ended after step t (no bootstrapping across it).
    λ = 1 gives the discounted Monte-Carlo return minus V, λ = 0 the one-step TD error.

    rewards, values, dones: ``[T, N]`` (time first; any trailing batch shape ``[T, ...]`` works);
    dones may be bool or 0/1 numbers. last_value: ``[N]``. gamma, lam in [0, 1].
    Returns ``(advantages [T, N], returns [T, N])``.
    """
    check_tensor("rewards", rewards, min_ndim=1)
    check_tensor("values", values, min_ndim=1)
    check_tensor("last_value", last_value)
    check_same_shape(("values", "rewards"), values, rewards)
    check_same_dtype(("values", "rewards", "last_value"), values, rewards, last_value)
    if tuple(last_value.shape) != tuple(values.shape[1:]):
        raise ValueError(f"last_value: expected shape {list(values.shape[1:])} (values without "
                         f"its time axis), got {list(last_value.shape)}")
    not_done = _not_done(dones, rewards)  # 1 − d_t, [T, N]
    check_range("gamma", gamma, 0.0, 1.0)
    check_range("lam", lam, 0.0, 1.0)

    T = rewards.shape[0]
    if T == 0:
        raise ValueError("rewards: expected at least one time step, got shape "
                         f"{list(rewards.shape)}")
    # >>> exercise rl.gae: eq. 2.4 (Â_t)
    # what: generalized advantage estimation Â_t and the returns Â_t + V(s_t)
    # hint: δ_t = r_t + γ(1−d_t)V(s_{t+1}) − V(s_t); Â_t = δ_t + γλ(1−d_t)Â_{t+1}, run backwards in time.
    # mistake: `delta_t + gamma * lam * not_done[t] * A_next` -> `delta_t + gamma * not_done[t] * A_next`
    advantages = [None] * T
    A_next = torch.zeros_like(last_value)  # Â_T = 0
    V_next = last_value  # V(s_T)
    for t in reversed(range(T)):
        delta_t = rewards[t] + gamma * not_done[t] * V_next - values[t]
        A_next = delta_t + gamma * lam * not_done[t] * A_next
        advantages[t] = A_next
        V_next = values[t]
    A_hat = torch.stack(advantages, dim=0)  # [T, N]
    returns = A_hat + values
    return A_hat, returns
    # <<< exercise rl.gae


def _not_done(dones: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """1 − d as a tensor of ``like``'s dtype; ``dones`` must be bool or hold only 0s and 1s."""
    check_tensor("dones", dones, floating=False)
    check_same_shape(("dones", "rewards"), dones, like)
    if dones.dtype != torch.bool:
        if dones.is_complex() or (checks_enabled()
                                  and not bool(((dones == 0) | (dones == 1)).all())):
            raise ValueError("dones: expected bool or 0/1 values")
    return 1.0 - dones.to(like.dtype)
