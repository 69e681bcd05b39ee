"""RLHF and PPO (eqs. 2.1–2.4): returns, advantages, the reward model and the clipped objective.

- ``returns``: eq. 2.1 (:func:`discounted_return`, :func:`rewards_to_go`) and :func:`gae`.
- ``rlhf``:    eq. 2.2 (:func:`preference_loss`) and eq. 2.3 (:func:`kl_shaped_rewards`).
- ``ppo``:     eq. 2.4 (:func:`probability_ratio`, :func:`ppo_clip_objective`) and the usual
  diagnostics / companions (:func:`approx_kl`, :func:`clip_fraction`, :func:`value_loss`).
"""

from genmodels.rl.ppo import (approx_kl, clip_fraction, ppo_clip_objective, probability_ratio,
                              value_loss)
from genmodels.rl.returns import discounted_return, gae, rewards_to_go
from genmodels.rl.rlhf import kl_shaped_rewards, preference_loss

__all__ = [
    "discounted_return",
    "rewards_to_go",
    "gae",
    "preference_loss",
    "kl_shaped_rewards",
    "probability_ratio",
    "ppo_clip_objective",
    "approx_kl",
    "clip_fraction",
    "value_loss",
]
