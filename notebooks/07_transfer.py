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
# # 07 · Transfer learning and elastic weight consolidation (section 2.2.2)
#
# Fine-tuning moves the weights $\theta$ learnt on task A to minimise the loss of task B and
# forgets A. EWC adds a penalty that keeps the weights that mattered for A near their values
# $\theta^*_A$, each weighted by its Fisher information $\Omega_i$:
#
# $$L(\theta)=L_B(\theta)+\lambda\sum_i\tfrac12\,\Omega_i(\theta_i-\theta^*_{A,i})^2 .$$
#
# | what | function (`genmodels.transfer`) |
# |---|---|
# | $L_T$, cross-entropy | `cross_entropy(logits, targets)` |
# | $\theta'=\theta-\alpha\nabla L$ | `sgd_update(params, lr)` |
# | $\Omega$, diagonal empirical Fisher | `fisher_diagonal(model, batches, nll_fn)` |
# | $R(\theta)$, the EWC penalty | `ewc_penalty(model, anchor_params, fisher)` |

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
# ## The pieces on a one-parameter model
# For a logistic model $p=\sigma(wx)$ the per-sample gradient of the NLL is $(p-y)x$, so the
# Fisher is the mean of $((p-y)x)^2$.

# %%
from genmodels.transfer import cross_entropy, ewc_penalty, fisher_diagonal, sgd_update

logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
print("cross-entropy:", round(cross_entropy(logits, torch.tensor([0, 1])).item(), 4),
      " by hand:", round(-(torch.log_softmax(logits, 1)[[0, 1], [0, 1]]).mean().item(), 4))
model = torch.nn.Linear(1, 1, bias=False)
with torch.no_grad():
    model.weight.fill_(0.5)
xs, ys = torch.tensor([[1.0], [2.0], [-1.0]]), torch.tensor([1.0, 0.0, 1.0])
nll = lambda m, x, y: torch.nn.functional.binary_cross_entropy_with_logits(m(x)[:, 0], y, reduction="none")
F = fisher_diagonal(model, [(xs, ys)], nll)
p = torch.sigmoid(0.5 * xs[:, 0])
print("Fisher Ω:", F["weight"].item(), " by hand:", (((p - ys) * xs[:, 0]) ** 2).mean().item())
anchor = {n: q.detach().clone() for n, q in model.named_parameters()}
with torch.no_grad():
    model.weight.fill_(1.5)
print("EWC penalty at w = 1.5 (anchor 0.5):", ewc_penalty(model, anchor, F).item(), " = ½ Ω (1.0)² =", 0.5 * F["weight"].item())
model.weight.grad = torch.tensor([[2.0]])
sgd_update(model, lr=0.1)
print("after sgd_update(lr = 0.1) with grad 2:", model.weight.item())

# %% [markdown]
# ## The penalty's landscape
# Two weights, one important for task A (large $\Omega$), one not: EWC lets the unimportant one move freely.

# %%
w1, w2 = torch.meshgrid(torch.linspace(-2, 2, 81), torch.linspace(-2, 2, 81), indexing="ij")
pen = 0.5 * (5.0 * w1 ** 2 + 0.2 * w2 ** 2)
plt.figure(figsize=(4.5, 3.5)); plt.contourf(w1, w2, pen, levels=20); plt.colorbar(label="penalty")
plt.xlabel("θ₁ − θ*₁ (Ω = 5)"); plt.ylabel("θ₂ − θ*₂ (Ω = 0.2)"); plt.title("EWC keeps θ₁, frees θ₂"); plt.show()

# %% [markdown]
# ## Training: permuted digits, fine-tuning vs L2 vs EWC
# `ewc_permuted`: an MLP learns the 8×8 digits (task A), then the same digits with a fixed pixel
# permutation (task B), three ways from the same task-A weights: plain fine-tuning, an L2 pull to
# $\theta^*_A$ ($\Omega=1$), and EWC. The figure follows the accuracy on A while B is learnt.

# %%
overrides = (["model.hidden=32", "model.steps_a=40", "model.curve_every=10", "trainer.max_steps=80"] if FAST
             else ["trainer.max_steps=1500", "model.steps_a=500"])
results, run = train("ewc_permuted", overrides)
t = results["test"]
for method in ("finetune", "l2", "ewc"):
    print(f"{method:9s} accuracy on A {t[f'{method}_acc_A']:.3f}   on B {t[f'{method}_acc_B']:.3f}")
print("accuracy on A before B:", round(t["acc_A_before_B"], 3))
show_figures(run, ["forgetting"], width=6)

# %% [markdown]
# **What to look at.** Fine-tuning forgets A; EWC keeps most of it at a small cost on B
# (experiments/ewc_split: A kept 90–96 % with EWC vs 70–76 % with fine-tuning on the permuted task).
