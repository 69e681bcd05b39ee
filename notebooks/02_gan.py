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
# # 02 · Generative adversarial networks (eqs. 2.9–2.11)
#
# A generator $G(z)$ and a discriminator $D(x)=\sigma(\text{logit})$ play the minimax game
#
# $$\min_G\max_D V(D,G)=\mathbb E_{x\sim p_{data}}[\log D(x)]+\mathbb E_{z\sim p(z)}[\log(1-D(G(z)))].$$
#
# | eq | function (`genmodels.gan`) |
# |---|---|
# | 2.9 | `gan_value(real_logits, fake_logits)` |
# | 2.10 | `discriminator_loss(real_logits, fake_logits)` $=-V$ |
# | 2.11 | `generator_loss(fake_logits, saturating=True)`; `saturating=False` is the non-saturating $-\log D(G(z))$ |

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
# ## Eqs. 2.9–2.10 on numbers
# A discriminator that cannot tell (all logits 0, $D=\tfrac12$) gives $V=2\log\tfrac12=-\log 4\approx-1.386$:
# the value of the game at its equilibrium, $p_g=p_{data}$.

# %%
import math

from genmodels.gan import discriminator_loss, gan_value, generator_loss

zero = torch.zeros(4)
print("V at D = 1/2 everywhere:", gan_value(zero, zero).item(), " -log 4 =", -math.log(4))
real, fake = torch.tensor([3.0, 2.0, 4.0]), torch.tensor([-3.0, -2.5, -1.0])
print("a good discriminator: V =", round(gan_value(real, fake).item(), 4),
      " its loss (eq. 2.10, = -V) =", round(discriminator_loss(real, fake).item(), 4))

# %% [markdown]
# ## Eq. 2.11: why the printed generator loss saturates
# Early in training $D(G(z))\approx0$. The printed loss $\log(1-D(G(z)))$ is then flat: its
# gradient with respect to the logit is $-D$, close to 0. The non-saturating loss
# $-\log D(G(z))$ has gradient $-(1-D)$, close to $-1$: the generator still learns.

# %%
logits = torch.linspace(-6, 6, 121, requires_grad=True)
sat = [generator_loss(l.view(1), saturating=True) for l in logits.detach()]
grads = {}
for sat_flag in (True, False):
    l = logits.detach().clone().requires_grad_(True)
    generator_loss(l, saturating=sat_flag).backward()
    grads[sat_flag] = l.grad * l.numel()            # per-sample gradient (the loss is a mean)
fig, ax = plt.subplots(1, 2, figsize=(10, 3.2))
ax[0].plot(torch.sigmoid(logits.detach()), [s.item() for s in sat], label="log(1 − D) (eq. 2.11)")
ax[0].plot(torch.sigmoid(logits.detach()), [generator_loss(l.view(1), saturating=False).item() for l in logits.detach()],
           label="−log D (non-saturating)")
ax[0].set_xlabel("D(G(z))"); ax[0].set_ylabel("generator loss"); ax[0].legend()
ax[1].plot(torch.sigmoid(logits.detach()), grads[True], label="saturating")
ax[1].plot(torch.sigmoid(logits.detach()), grads[False], label="non-saturating")
ax[1].set_xlabel("D(G(z))"); ax[1].set_ylabel("d loss / d logit"); ax[1].legend()
plt.suptitle("at D(G(z)) ≈ 0 (a fresh generator) only the non-saturating loss has a gradient"); plt.show()
print("gradient at D = 0.0025: saturating", round(grads[True][0].item(), 4), " non-saturating", round(grads[False][0].item(), 4))

# %% [markdown]
# ## Training: a DCGAN on the embedded 8×8 digits
# `gan_digits` alternates one discriminator step (descending eq. 2.10) and one generator step
# (the non-saturating loss by default; `model.generator_loss=saturating` trains eq. 2.11 as printed).
# It reports the Fréchet distance (FD) of its samples in a small classifier's feature space.

# %%
overrides = (["trainer.max_steps=60", "model.z_dim=8", "model.width=8", "model.hidden=32", "model.fd_samples=100",
              "model.n_figure_samples=16", "trainer.eval_every=0", "trainer.batch_size=32"] if FAST
             else [])                         # the full setting: the experiment's own config, 5,000 steps
results, run = train("gan_digits", overrides)
print({k: round(v, 3) if isinstance(v, float) else v for k, v in results["test"].items()})

# %%
fig, ax = plt.subplots(1, 1, figsize=(6, 3))
for key in ("d_loss", "g_loss"):
    steps, vals = curve(run, key)
    if steps:
        ax.plot(steps, vals, label=key)
ax.set_xlabel("step"); ax.legend(); ax.set_title("the two players' losses"); plt.show()
show_figures(run, width=4)

# %% [markdown]
# **What to look at.** The losses do not go down together: each player's loss is the other's
# gain. Compare the samples with the VAE's (notebook 01) and the DDPM's (notebook 03); the
# experiment's README (`experiments/gan_digits`) has the numbers of the full 5,000-step run.
