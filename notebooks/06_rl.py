# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Reinforcement learning: PPO and RLHF (eqs. 2.1–2.4)
#
# | eq | what | function (`genmodels.rl`) |
# |---|---|---|
# | 2.1 | return $R(\tau)=\sum_t\gamma^t r_t$ | `discounted_return`, `rewards_to_go` |
# | 2.2 | reward model from comparisons, $-\log\sigma(r_c-r_r)$ | `preference_loss` |
# | 2.3 | per-token KL penalty, $r_t=-\beta(\log\pi-\log\pi_{ref})$ (+ the score at the end) | `kl_shaped_rewards` |
# | 2.4 | PPO's clipped objective $\min(\rho_t\hat A_t,\operatorname{clip}(\rho_t,1\pm\epsilon)\hat A_t)$ | `probability_ratio`, `ppo_clip_objective` |
# | — | advantages $\hat A_t$ by GAE | `gae` |

# %%
# Setup. Colab (no genmodels installed): installs the package. Offline or installed: does nothing.
# In a student workspace (`genmodels-exercise make ... --out DIR`, this notebook in DIR/notebooks/)
# it puts DIR first on sys.path, so the notebook runs YOUR genmodels, the one you edit.
import os
import sys
from pathlib import Path

for _root in (Path.cwd(), Path.cwd().parent):
    if (_root / "genmodels" / "__init__.py").is_file() and (_root / ".genmodels-exercise.json").is_file():
        sys.path.insert(0, str(_root))
        break
try:
    import genmodels
except ImportError:  # Colab or a fresh machine (torch pinned: the CPU wheel the library is tested with)
    # %pip install -q torch==2.13.0 genmodels
    import genmodels
print("genmodels from", Path(genmodels.__file__).parent)

# %%
# The two settings: GENMODELS_FAST=1 (what CI executes: tiny runs, every cell still runs) or the
# full one (each notebook ≤ 10 minutes on a 2-core CPU). Runs write into a temporary folder;
# train(experiment, overrides) runs genmodels-train's experiments from here (genmodels.train.notebook).
# %matplotlib inline
import json

import matplotlib.pyplot as plt
import torch

from genmodels.train.notebook import FAST, OUT, curve, show_figures, train

print("fast setting" if FAST else "full setting", "| runs go to", OUT)

# %% [markdown]
# ## Eq. 2.1: returns

# %%
import math

from genmodels.rl import (discounted_return, gae, kl_shaped_rewards, ppo_clip_objective,
                          preference_loss, probability_ratio, rewards_to_go)

r = torch.tensor([1.0, 0.0, 2.0])
print("R(τ) with γ = 0.9:", discounted_return(r, gamma=0.9).item(), " by hand 1 + 0.81·2 =", 1 + 0.81 * 2)
print("rewards-to-go    :", rewards_to_go(r, gamma=0.9).tolist())

# %% [markdown]
# ## GAE: advantages from a value function
# With $\lambda=1$ GAE is the discounted return minus the value; with $\lambda=0$ it is the
# one-step TD error $r_t+\gamma V(s_{t+1})-V(s_t)$.

# %%
rewards = torch.tensor([[1.0], [1.0], [1.0]])
values = torch.tensor([[0.5], [0.5], [0.5]])
dones = torch.zeros(3, 1)
for lam in (0.0, 0.95, 1.0):
    adv, ret = gae(rewards, values, dones, last_value=torch.tensor([0.5]), gamma=0.9, lam=lam)
    print(f"λ = {lam}: advantages {[round(a, 4) for a in adv[:, 0].tolist()]}")

# %% [markdown]
# ## Eq. 2.4: the clipped objective
# For a positive advantage the objective stops growing once the ratio passes $1+\epsilon$; for a
# negative one it stops once the ratio is below $1-\epsilon$: the update has no reason to move the
# policy further than that.

# %%
ratios = torch.linspace(0.5, 1.5, 201)
logp_old = torch.zeros_like(ratios)
fig, ax = plt.subplots(1, 2, figsize=(10, 3))
for a, A in zip(ax, (1.0, -1.0)):
    obj = [ppo_clip_objective(torch.log(rr).view(1), torch.zeros(1), torch.tensor([A]), clip_eps=0.2).item() for rr in ratios]
    a.plot(ratios, obj, label="clipped (eq. 2.4)"); a.plot(ratios, ratios * A, "--", label="ρ·Â")
    a.set_xlabel("ratio ρ = π/π_old"); a.set_title(f"Â = {A:+}"); a.legend()
plt.show()
print("ratio exp(0.1) =", probability_ratio(torch.tensor(0.1), torch.tensor(0.0)).item())

# %% [markdown]
# ## Eqs. 2.2–2.3: the pieces of RLHF
# The reward model learns from comparisons: a margin of 0 costs $\log 2$, a large right margin
# costs nearly nothing. The PPO reward of each token is the KL penalty, plus the reward model's
# score at the last token.

# %%
print("preference loss at margin 0, 2, -2:",
      [round(preference_loss(torch.tensor([m]), torch.tensor([0.0])).item(), 4) for m in (0.0, 2.0, -2.0)], " log 2 =", round(math.log(2), 4))
shaped = kl_shaped_rewards(torch.tensor([1.0]), torch.tensor([[-1.0, -2.0, -0.5]]), torch.tensor([[-1.5, -2.0, -1.0]]), beta=0.1)
print("KL-shaped rewards:", [round(v, 4) for v in shaped[0].tolist()], "(-0.1·(logπ − logπ_ref), + 1.0 at the end)")

# %% [markdown]
# ## Training 1: PPO on CartPole
# `ppo_cartpole`: an actor-critic MLP, 32 vectorised environments, eq. 2.4 with GAE advantages.
# The full run solves CartPole (mean return ≥ 475) in seconds.

# %%
overrides = (["trainer.max_steps=8", "model.num_envs=8", "model.num_steps=32", "model.eval_episodes=3", "trainer.ckpt_every=8"]
             if FAST else [])
results, run = train("ppo_cartpole", overrides)
print({k: round(v, 3) if isinstance(v, float) else v for k, v in results["test"].items()})
steps, ret = curve(run, "return_mean")
if steps:
    plt.figure(figsize=(5, 3)); plt.plot(steps, ret); plt.axhline(475, ls="--", c="k", lw=0.8)
    plt.xlabel("PPO iteration"); plt.ylabel("episode return"); plt.show()
show_figures(run, width=5)

# %% [markdown]
# ## Training 2: RLHF on a character GPT
# The pipeline of `rlhf_reward_model` and `rlhf_ppo`, on the offline text: a small char GPT is the
# policy; a scripted "human" prefers completions with certain keywords and labels pairs of
# completions; the reward model learns eq. 2.2 from those pairs; PPO then trains the policy on the
# reward model's score minus the KL penalty of eq. 2.3.

# %%
work = OUT / "rlhf_assets"
tiny = ["data=embedded_text", f"model.workdir={work}", "trainer.eval_every=0"]
if FAST:
    tiny += ["model.lm_steps=20", "model.lm_layers=1", "model.lm_embd=32", "model.block_size=24", "model.prompt_len=8",
             "model.completion_len=10", "model.n_pairs=40", "model.min_gap=0.1"]
    rm_over, ppo_over = ["trainer.max_steps=10", "trainer.batch_size=8", "trainer.scheduler.warmup_steps=2"], \
        ["trainer.max_steps=3", "model.ppo_batch=8", "model.eval_prompts=8"]
else:
    tiny += ["model.lm_steps=300", "model.n_pairs=2000", "model.samples_per_prompt=4"]
    rm_over, ppo_over = ["trainer.max_steps=300"], ["trainer.max_steps=20", "model.eval_prompts=32", "model.ppo_batch=32"]
res_rm, run_rm = train("rlhf_reward_model", tiny + rm_over)
print("reward model, held-out pairwise accuracy:", round(res_rm["test"]["pairwise_accuracy"], 3))
res_ppo, run_ppo = train("rlhf_ppo", tiny + ppo_over + [f"model.reward_ckpt={run_rm / 'checkpoints' / 'last.pt'}"])
print({k: round(v, 3) for k, v in res_ppo["test"].items() if isinstance(v, float)})
show_figures(run_rm, ["reward_margins"], width=5)

# %% [markdown]
# **What to look at.** PPO (top) solves CartPole: greedy test return 500. In RLHF compare
# `rm_score` with `ref_rm_score` (the reward model's score of the policy after and before PPO),
# `kl_ref` (the KL to the reference policy, within its budget) and `human_score` with
# `ref_human_score` (the scripted human's own score). In one full-setting run here the reward model
# reached 63 % held-out pairwise accuracy, PPO raised its score from 0.58 to 0.92 at KL 2.0 nats,
# and the human's score did not move (0.34 → 0.31): the policy learnt what a weak reward model
# likes, not what the human likes. A better reward model is the cure: on tiny Shakespeare
# (experiments/rlhf, 90 % pairwise accuracy) the human's score rises 0.78 → 1.43.
