"""RLHF and PPO (eqs. 2.1–2.4): returns, advantages, the reward model and the clipped objective.

- ``returns``: eq. 2.1 (:func:`discounted_return`, :func:`rewards_to_go`) and :func:`gae`.
- ``rlhf``:    eq. 2.2 (:func:`preference_loss`) and eq. 2.3 (:func:`kl_shaped_rewards`).
- ``dpo``:     :func:`dpo_loss`, direct preference optimisation (beyond the chapter).
- ``ppo``:     eq. 2.4 (:func:`probability_ratio`, :func:`ppo_clip_objective`) and the usual
  diagnostics / companions (:func:`approx_kl`, :func:`clip_fraction`, :func:`value_loss`).

Built on them: :class:`ActorCritic` and the PPO task (``genmodels.rl.task_ppo``, experiment
``ppo_cartpole``), :func:`make_vec_env` / :func:`evaluate_policy` (gymnasium vector envs), and
RLHF in miniature (``genmodels.rl.task_rlhf``, experiments ``rlhf_reward_model`` and
``rlhf_ppo``; ``genmodels.rl.preferences``: the scripted human and the preference JSONL file,
``genmodels.rl.reward_model``: R_θ — not imported here, they need the transformer family).
"""

from genmodels.rl.dpo import dpo_loss
from genmodels.rl.ppo import (approx_kl, clip_fraction, ppo_clip_objective, probability_ratio,
                              value_loss)
from genmodels.rl.returns import discounted_return, gae, rewards_to_go
from genmodels.rl.rlhf import AdaptiveKLController, kl_shaped_rewards, preference_loss

# components (importing them does not import the tasks or the trainer)
from genmodels.rl.agent import ActorCritic
from genmodels.rl.envs import evaluate_policy, make_vec_env

__all__ = [
    "discounted_return",
    "rewards_to_go",
    "gae",
    "preference_loss",
    "kl_shaped_rewards",
    "dpo_loss",
    "AdaptiveKLController",
    "probability_ratio",
    "ppo_clip_objective",
    "approx_kl",
    "clip_fraction",
    "value_loss",
    "ActorCritic",
    "make_vec_env",
    "evaluate_policy",
]
