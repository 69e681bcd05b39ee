"""The actor-critic network of PPO: two MLPs over the observation, as in CleanRL's ``Agent``.

The actor gives the logits of π_φ(a|s) over a discrete action set, the critic V(s). Hidden
layers use orthogonal initialisation with gain √2, the actor's output gain 0.01 (a near-uniform
first policy) and the critic's 1 (Andrychowicz et al., 2021, "What matters in on-policy RL").
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from genmodels._checks import check_choice, check_int

__all__ = ["ActorCritic", "mlp"]


def _layer(n_in: int, n_out: int, gain: float) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def mlp(n_in: int, n_out: int, hidden: int, layers: int, activation: str, out_gain: float
        ) -> nn.Sequential:
    """``layers`` hidden layers of width ``hidden``, orthogonally initialised."""
    act = {"tanh": nn.Tanh, "relu": nn.ReLU}[activation]
    mods, width = [], n_in
    for _ in range(layers):
        mods += [_layer(width, hidden, math.sqrt(2)), act()]
        width = hidden
    mods.append(_layer(width, n_out, out_gain))
    return nn.Sequential(*mods)


class ActorCritic(nn.Module):
    """``actor(obs[B, D]) -> logits[B, A]``, ``critic(obs[B, D]) -> V[B, 1]``."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: int = 64, layers: int = 2,
                 activation: str = "tanh"):
        super().__init__()
        for name, v in (("obs_dim", obs_dim), ("n_actions", n_actions), ("hidden", hidden),
                        ("layers", layers)):
            check_int(name, v, minimum=1)
        check_choice("activation", activation, ("tanh", "relu"))
        self.actor = mlp(obs_dim, n_actions, hidden, layers, activation, out_gain=0.01)
        self.critic = mlp(obs_dim, 1, hidden, layers, activation, out_gain=1.0)

    def value(self, obs: torch.Tensor) -> torch.Tensor:
        """V(s): ``[B]``."""
        return self.critic(obs).squeeze(-1)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, greedy: bool = False
            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Sample a ~ π(·|s) (or take the argmax): returns ``(action[B], log π(a|s)[B], V(s)[B])``.

        The rollout's hot path: one ``log_softmax`` and one ``multinomial`` instead of a
        ``torch.distributions.Categorical`` (whose argument validation costs more than the MLP).
        """
        log_pi = F.log_softmax(self.actor(obs), dim=-1)  # (B, A)
        if greedy:
            action = log_pi.argmax(dim=-1)
        else:
            action = torch.multinomial(log_pi.exp(), 1).squeeze(-1)  # (B,)
        logp = log_pi.gather(-1, action[:, None]).squeeze(-1)
        return action, logp, self.value(obs)

    def evaluate_actions(self, obs: torch.Tensor, actions: torch.Tensor
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """For the update: ``(log π(a|s)[B], entropy[B], V(s)[B])`` with gradients."""
        log_pi = F.log_softmax(self.actor(obs), dim=-1)  # (B, A)
        logp = log_pi.gather(-1, actions[:, None]).squeeze(-1)
        entropy = -(log_pi.exp() * log_pi).sum(-1)
        return logp, entropy, self.value(obs)
