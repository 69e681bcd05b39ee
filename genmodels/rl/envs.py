"""gymnasium vector environments for PPO, and the fixed-seed evaluation of a policy.

All vector environments here use gymnasium ≥ 1.0's default *next-step* autoreset: the step that
ends an episode returns the episode's final observation; the NEXT call of ``step`` ignores the
action, resets that sub-environment and returns the first observation of the new episode with
reward 0. The PPO rollout marks such "reset steps" invalid (they are not transitions of the
policy) and leaves them out of the loss.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import torch

from genmodels._checks import check_choice, check_int

__all__ = ["make_vec_env", "evaluate_policy"]


def make_vec_env(env_id: str, num_envs: int, vectorization: str = "vector_entry_point"
                 ) -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``env_id`` stepped together.

    vectorization: ``"sync"`` — gymnasium's ``SyncVectorEnv`` (one Python env per copy, stepped
    in a loop); ``"async"`` — gymnasium's ``AsyncVectorEnv`` (one process per copy);
    ``"vector_entry_point"`` — the environment's own batched implementation when it has one
    (CartPole-v1: ``CartPoleVectorEnv``, all copies in one set of numpy arrays, 3-4x faster
    than ``sync`` at 16+ copies), else ``sync``.
    """
    check_int("num_envs", num_envs, minimum=1)
    check_choice("vectorization", vectorization, ("sync", "async", "vector_entry_point"))
    spec = gym.spec(env_id)
    if vectorization == "vector_entry_point" and spec.vector_entry_point is None:
        vectorization = "sync"
    envs = gym.make_vec(env_id, num_envs=num_envs, vectorization_mode=vectorization)
    if not isinstance(envs.single_action_space, gym.spaces.Discrete):
        raise ValueError(f"env_id: PPO here needs a discrete action space, {env_id} has "
                         f"{envs.single_action_space}")
    return envs


@torch.no_grad()
def evaluate_policy(policy, env_id: str, episodes: int, seed: int,
                    vectorization: str = "vector_entry_point", greedy: bool = True
                    ) -> np.ndarray:
    """Returns of ``episodes`` episodes (one per sub-environment, all run together), seeded with
    ``seed`` so every evaluation sees the same starting states.

    policy: an :class:`~genmodels.rl.agent.ActorCritic` (its ``act``). Returns ``[episodes]``.
    """
    envs = make_vec_env(env_id, episodes, vectorization)
    obs, _ = envs.reset(seed=seed)
    returns = np.zeros(episodes)
    running = np.ones(episodes, dtype=bool)
    device = next(policy.parameters()).device
    while running.any():
        action, _, _ = policy.act(torch.as_tensor(obs, device=device), greedy=greedy)
        obs, reward, term, trunc, _ = envs.step(action.cpu().numpy())
        returns += reward * running
        running &= ~(term | trunc)
    envs.close()
    return returns
