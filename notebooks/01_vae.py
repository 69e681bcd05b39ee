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
# # 01 · Variational autoencoders (eqs. 2.5–2.8)
#
# A VAE has an encoder $q_\phi(z\mid x)=\mathcal N(\mu,\operatorname{diag}\sigma^2)$, a decoder
# $p_\theta(x\mid z)$ and a prior $p(z)=\mathcal N(0,I)$. It is trained by maximising the evidence
# lower bound
#
# $$\mathcal L(x)=\mathbb E_{q_\phi(z\mid x)}[\log p_\theta(x\mid z)]-D_{KL}(q_\phi(z\mid x)\,\|\,p(z)) \le \log p_\theta(x).$$
#
# Each piece is one function of `genmodels.vae` (the exercise `vae.*` of the course):
#
# | eq | function |
# |---|---|
# | 2.5 | `gaussian_log_density(z, mu, logvar)` |
# | 2.6 | `reparameterize(mu, logvar, eps)` |
# | 2.7 | `elbo(x, logits, mu, logvar)` |
# | 2.8 | `kl_to_standard_normal(mu, logvar)` |

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
# ## Eq. 2.5: the Gaussian log density
# $\log\mathcal N(z;\mu,\sigma^2 I)=-\tfrac12\sum_j\big(\log 2\pi+\log\sigma_j^2+(z_j-\mu_j)^2/\sigma_j^2\big)$.
# At $z=\mu=0$, $\sigma=1$ in one dimension it is $-\tfrac12\log 2\pi\approx-0.9189$.

# %%
import math

from genmodels.vae import elbo, gaussian_log_density, kl_to_standard_normal, reparameterize

z = torch.tensor([[0.0], [1.0], [2.0]], dtype=torch.float64)
zeros = torch.zeros_like(z)
print("log N(z; 0, 1) at z = 0, 1, 2:", gaussian_log_density(z, zeros, zeros).tolist())
print("by hand                       :", [-0.5 * (math.log(2 * math.pi) + v ** 2) for v in (0, 1, 2)])

# %% [markdown]
# ## Eq. 2.6: the reparameterisation trick
# $z=\mu+\sigma\odot\varepsilon$, $\varepsilon\sim\mathcal N(0,I)$: the randomness moves into
# $\varepsilon$, so $z$ is a differentiable function of $\mu$ and $\log\sigma^2$.

# %%
mu = torch.tensor([[1.0, -2.0]], requires_grad=True)
logvar = torch.tensor([[0.0, 2 * torch.log(torch.tensor(0.5)).item()]], requires_grad=True)
eps = torch.tensor([[0.5, 0.5]])
zz = reparameterize(mu, logvar, eps)
zz.sum().backward()
print("z =", zz.tolist(), "(mu + 0.5 * sigma with sigma = 1, 0.5)")
print("dz/dmu =", mu.grad.tolist(), " dz/dlogvar =", logvar.grad.tolist(), "(= eps * sigma / 2)")

samples = reparameterize(torch.full((5000, 1), 1.0), torch.full((5000, 1), 2 * torch.log(torch.tensor(0.5))))
plt.figure(figsize=(5, 3))
plt.hist(samples[:, 0].numpy(), bins=60, density=True, alpha=0.6, label="reparameterised samples")
grid = torch.linspace(-1, 3, 200)[:, None]
plt.plot(grid, gaussian_log_density(grid, torch.ones_like(grid), torch.full_like(grid, 2 * torch.log(torch.tensor(0.5)))).exp(),
         label="N(1, 0.5²) (eq. 2.5)")
plt.legend(); plt.title("eq. 2.6 samples follow eq. 2.5's density"); plt.show()

# %% [markdown]
# ## Eq. 2.8: the KL term in closed form
# $D_{KL}(\mathcal N(\mu,\sigma^2)\,\|\,\mathcal N(0,1))=\tfrac12\sum_j(\mu_j^2+\sigma_j^2-\log\sigma_j^2-1)\ge0$,
# zero only at $\mu=0,\sigma=1$: the term that pulls every code towards the prior.

# %%
print("KL(N(0,1) || N(0,1))   =", kl_to_standard_normal(torch.zeros(1, 1), torch.zeros(1, 1)).item())
print("KL(N(1,1) || N(0,1))   =", kl_to_standard_normal(torch.ones(1, 1), torch.zeros(1, 1)).item(), "(= 1/2)")
print("KL(N(0,4) || N(0,1))   =", kl_to_standard_normal(torch.zeros(1, 1), torch.log(torch.full((1, 1), 4.0))).item(),
      "(= (4 - log 4 - 1)/2 =", (4 - torch.log(torch.tensor(4.0)).item() - 1) / 2, ")")
m, s = torch.meshgrid(torch.linspace(-2, 2, 81), torch.linspace(0.2, 2.5, 81), indexing="ij")
kl = kl_to_standard_normal(m.reshape(-1, 1), (2 * torch.log(s)).reshape(-1, 1)).reshape(m.shape)
plt.figure(figsize=(5, 3.5))
plt.contourf(m, s, kl, levels=20); plt.colorbar(label="KL (nats)")
plt.xlabel("μ"); plt.ylabel("σ"); plt.title("eq. 2.8: zero only at μ = 0, σ = 1"); plt.show()

# %% [markdown]
# ## Eq. 2.7: the ELBO with a Bernoulli decoder
# With pixels $x\in[0,1]$ and decoder logits $\ell$, $\log p(x\mid z)=\sum_i x_i\log\sigma(\ell_i)+(1-x_i)\log(1-\sigma(\ell_i))$.
# A decoder that is sure of the right pixels gets an ELBO near $-$KL; a clueless one (logits 0) pays $\log 2$ per pixel.

# %%
x = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
mu0, lv0 = torch.zeros(1, 2), torch.zeros(1, 2)
for name, logits in [("confident, right", 8 * (2 * x - 1)), ("clueless (logits 0)", torch.zeros_like(x)),
                     ("confident, wrong", -8 * (2 * x - 1))]:
    print(f"{name:22s} ELBO = {elbo(x, logits, mu0, lv0).item():8.4f}")
print("4 log 2 =", 4 * torch.log(torch.tensor(2.0)).item())

# %% [markdown]
# ## Training: an MLP VAE on the embedded 8×8 digits
# The experiment `vae_digits` (the library's default): scikit-learn's 1,797 digits, no download.
# Its loss is `-elbo(...)`; the test negative log-likelihood is the IWAE bound with k samples.
# The full setting is the experiment's own config (10,000 steps); the fast one a few hundred steps
# of a smaller network.

# %%
overrides = (["trainer.max_steps=150", "trainer.eval_every=150", "model.hidden=32", "model.latent_dim=4",
              "model.iwae_k=10", "model.eval_chunk=10", "model.n_figure_samples=16",
              "trainer.scheduler.warmup_steps=5"] if FAST else [])
results, run = train("vae_digits", overrides)
print({k: round(v, 3) if isinstance(v, float) else v for k, v in results["test"].items()})

# %%
steps, loss = curve(run, "loss")
plt.figure(figsize=(5, 3)); plt.plot(steps, loss); plt.xlabel("step"); plt.ylabel("−ELBO (nats)")
plt.title("training loss"); plt.show()
show_figures(run, ["reconstructions", "samples", "latent_traversal"], width=4)

# %% [markdown]
# **What to look at.** The reference run reaches a test NLL of about 23.2 nats (IWAE, k = 500);
# the milestone `genmodels-exercise train vae --workspace DIR` asks your own functions for ≤ 24.
# Try `model.latent_dim=2` in `overrides` and look at the latent traversal.
