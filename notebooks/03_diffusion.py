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
# # 03 · Diffusion: DDPM, the score SDE and flow matching (eqs. 2.12–2.13, Algorithms 1–2)
#
# The forward process adds Gaussian noise step by step (eq. 2.12),
# $q(x_t\mid x_{t-1})=\mathcal N(\sqrt{1-\beta_t}\,x_{t-1},\beta_t I)$, which has the closed form
# $x_t=\sqrt{\bar\alpha_t}\,x_0+\sqrt{1-\bar\alpha_t}\,\varepsilon$ with $\bar\alpha_t=\prod_{s\le t}(1-\beta_s)$.
# A network $\varepsilon_\theta(x_t,t)$ learns to predict the noise (Algorithm 1) and the reverse
# step (eq. 2.13) uses it, $\mu_\theta=\frac1{\sqrt{\alpha_t}}\big(x_t-\frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\varepsilon_\theta\big)$ (Algorithm 2).
#
# | eq | function (`genmodels.diffusion`) |
# |---|---|
# | schedules | `linear_beta_schedule`, `cosine_beta_schedule`, `NoiseSchedule` |
# | 2.12 | `q_step`, `q_sample` (closed form), `q_posterior` |
# | 2.13 | `p_mean_variance` |
# | Alg. 1 / 2 | `ddpm_loss`, `ddpm_sample` |
# | score SDE | `vp_sde_marginal`, `score_matching_loss`, `euler_maruyama_sample` |

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
# ## The noise schedule
# $\bar\alpha_t$ is the share of the signal's variance left at step $t$: the linear schedule
# destroys it faster than the cosine one.

# %%
from genmodels.diffusion import (NoiseSchedule, cosine_beta_schedule, ddpm_loss, ddpm_sample,
                                 linear_beta_schedule, p_mean_variance, q_posterior, q_sample, q_step)

T = 200
lin, cos = NoiseSchedule(linear_beta_schedule(T, beta_end=0.05)), NoiseSchedule(cosine_beta_schedule(T))  # ddpm_toy2d: T = 200, β_T = 0.05
print("linear: beta_1 =", round(lin.betas[0].item(), 5), " beta_T =", round(lin.betas[-1].item(), 4),
      " alpha_bar_T =", f"{lin.alpha_bars[-1].item():.3g}")
plt.figure(figsize=(5, 3))
plt.plot(lin.alpha_bars, label="linear"); plt.plot(cos.alpha_bars, label="cosine")
plt.xlabel("t"); plt.ylabel("ᾱ_t"); plt.legend(); plt.title("signal left after t steps"); plt.show()

# %% [markdown]
# ## Eq. 2.12 and its closed form agree
# Running `q_step` $t$ times and `q_sample` once give the same distribution: check the mean and
# the standard deviation of $x_t$ for $x_0=1$.

# %%
g = torch.Generator().manual_seed(0)
x0 = torch.ones(20000, 1)
x = x0.clone()
t_end = 50
for s in range(t_end):
    x = q_step(x, torch.full((x.shape[0],), s), lin)
xt = q_sample(x0, torch.full((x0.shape[0],), t_end - 1), lin)
ab = lin.alpha_bars[t_end - 1]
print(f"{t_end} q_steps : mean {x.mean():.4f} std {x.std():.4f}")
print(f"q_sample    : mean {xt.mean():.4f} std {xt.std():.4f}")
print(f"theory      : mean {ab.sqrt():.4f} std {(1 - ab).sqrt():.4f}")

# %% [markdown]
# ## Noising 2-D data
# The toy data of `ddpm_toy2d`: a mixture of 8 Gaussians on a circle. By $t=T$ it is (nearly) a standard normal.

# %%
from genmodels.data.toy2d import gaussian_mixture_2d

toy = gaussian_mixture_2d(n_train=20000, n_val=10, n_test=10, seed=0)
pts = toy.train[:2000]
fig, axes = plt.subplots(1, 5, figsize=(15, 3))
for ax, t in zip(axes, [0, 20, 50, 100, T - 1]):
    xt = pts if t == 0 else q_sample(pts, torch.full((len(pts),), t), lin)
    ax.scatter(xt[:, 0], xt[:, 1], s=1); ax.set_title(f"t = {t}"); ax.set_xlim(-4, 4); ax.set_ylim(-4, 4)
plt.show()

# %% [markdown]
# ## Eq. 2.13 with the perfect noise predictor
# If $\varepsilon_\theta$ returned the true noise, the reverse mean $\mu_\theta(x_t,t)$ would equal
# the true posterior mean of $q(x_{t-1}\mid x_t,x_0)$. Check it with an oracle "network":

# %%
x0 = torch.randn(5, 2, dtype=torch.float64)
eps = torch.randn(5, 2, dtype=torch.float64)
t = torch.full((5,), 30)
sched64 = NoiseSchedule(linear_beta_schedule(T, beta_end=0.05).double())
xt = q_sample(x0, t, sched64, noise=eps)
mean_model, var_model = p_mean_variance(lambda x, tt: eps, xt, t, sched64)
mean_true, var_true = q_posterior(x0, xt, t, sched64)
print("max |mu_theta - posterior mean| =", (mean_model - mean_true).abs().max().item())
print("variances:", var_model.flatten()[:1].tolist(), var_true.flatten()[:1].tolist())
print("Algorithm 1's loss of the oracle:", ddpm_loss(lambda x, tt: (x - sched64.alpha_bars[tt].sqrt()[:, None] * x0) /
                                                   (1 - sched64.alpha_bars[tt]).sqrt()[:, None], x0, sched64).item())

# %% [markdown]
# ## Training a DDPM on the 2-D mixture (Algorithms 1 and 2)
# `ddpm_toy2d`: an MLP $\varepsilon_\theta$, T = 200 steps. The run's figure shows the data, the
# noising and reverse trajectories; FD compares samples with held-out points.

# %%
toy_fast = ["trainer.max_steps=300", "trainer.eval_every=300", "model.timesteps=50", "model.sample_steps=50",
            "model.hidden=64", "model.fd_samples=500"]
results, run = train("ddpm_toy2d", toy_fast if FAST else [])
print("DDPM test:", {k: round(v, 4) if isinstance(v, float) else v for k, v in results["test"].items()})
show_figures(run, width=5)

# %% [markdown]
# ## The score SDE (VP): the continuous-time view
# With $\beta(t)=\beta_{min}+t(\beta_{max}-\beta_{min})$, $x_t$ given $x_0$ is Gaussian with
# mean $e^{-\frac12\int_0^t\beta}x_0$; a network learns the score $\nabla\log p_t$ by denoising
# score matching and Euler–Maruyama integrates the reverse SDE.

# %%
from genmodels.diffusion import vp_sde_marginal

x0 = torch.ones(4, 1)
for tt in (0.01, 0.1, 0.5, 1.0):
    _, std = vp_sde_marginal(x0, torch.full((4,), tt), noise=torch.zeros(4, 1))
    mean, _ = vp_sde_marginal(x0, torch.full((4,), tt), noise=torch.zeros(4, 1))
    print(f"t = {tt:4}: mean factor {mean[0, 0].item():.4f}  std {std.flatten()[0].item():.4f}")
results_sde, run_sde = train("ddpm_toy2d", (toy_fast if FAST else []) + ["model.process=sde"], name="sde_toy2d")
print("SDE test:", {k: round(v, 4) if isinstance(v, float) else v for k, v in results_sde["test"].items()})

# %% [markdown]
# ## Flow matching (`genmodels.flow`)
# Flow matching draws the straight path $x_t=(1-t)x_0+t\,x_1$ from noise $x_0$ to data $x_1$ and
# regresses a velocity $v_\theta(x_t,t)$ on $x_1-x_0$; sampling integrates $\dot x=v_\theta$ with
# a few Euler steps. Here a small MLP learns the 2-D mixture in a plain training loop.

# %%
from genmodels.diffusion import MLPDenoiser
from genmodels.flow import euler_flow_sample, flow_interpolant, flow_matching_loss

x0, x1 = torch.zeros(1, 2), torch.ones(1, 2)
print("interpolant at t = 0.25:", [v.tolist() for v in flow_interpolant(x0, x1, torch.tensor([0.25]))],
      "(x_t, target velocity)")
torch.manual_seed(0)
vel = MLPDenoiser(data_dim=2, hidden=128, n_layers=3, time_scale=1000.0)   # t ∈ [0, 1] spread over the embedding
opt = torch.optim.Adam(vel.parameters(), lr=1e-3)
gen = torch.Generator().manual_seed(1)
losses = []
for step in range(150 if FAST else 3000):
    batch = toy.train[torch.randint(len(toy.train), (256,), generator=gen)]
    loss = flow_matching_loss(vel, batch, generator=gen)
    opt.zero_grad(); loss.backward(); opt.step()
    losses.append(loss.item())
samples = euler_flow_sample(vel, (1000, 2), steps=20, generator=gen)
fig, ax = plt.subplots(1, 2, figsize=(9, 3.5))
ax[0].plot(losses); ax[0].set_title("flow-matching loss"); ax[0].set_xlabel("step")
ax[1].scatter(pts[:, 0], pts[:, 1], s=1, label="data"); ax[1].scatter(samples[:, 0], samples[:, 1], s=1, label="20 Euler steps")
ax[1].legend(); ax[1].set_xlim(-4, 4); ax[1].set_ylim(-4, 4); plt.show()

# %% [markdown]
# **What to look at.** The reference `ddpm_toy2d` run reaches FD ≈ 0.005 (the milestone
# `genmodels-exercise train ddpm` asks your functions for ≤ 0.05). The image experiments
# (`ddpm_digits`, `sde_digits`, `flow_digits`, `cfg_digits`) take minutes to an hour: see `experiments/`.
