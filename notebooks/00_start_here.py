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
# # 00 · Start here
#
# **genmodels** writes the equations of generative and sequence models as plain PyTorch
# functions, one function per equation, each checked against an independent reference, and trains
# real models through exactly those functions. These notebooks walk through each family:
#
# | notebook | family | equations |
# |---|---|---|
# | [01_vae](01_vae.ipynb) | variational autoencoders | 2.5–2.8 |
# | [02_gan](02_gan.ipynb) | generative adversarial networks | 2.9–2.11 |
# | [03_diffusion](03_diffusion.ipynb) | DDPM, the score SDE, flow matching | 2.12–2.13, Alg. 1–2 |
# | [04_rnn](04_rnn.ipynb) | RNN and LSTM | 2.14–2.21 |
# | [05_transformer](05_transformer.ipynb) | GPT, masked LM, fine-tuning | 2.22–2.29 |
# | [06_rl](06_rl.ipynb) | PPO and RLHF | 2.1–2.4 |
# | [07_transfer](07_transfer.ipynb) | transfer learning and EWC | 2.2.2 |
# | [08_audio](08_audio.ipynb) | MFCC, μ-law, spectral subtraction, denoising | 2.30–2.38 |
#
# **Where they run.** On a laptop CPU (each ≤ 10 minutes on 2 cores), offline: every data set is
# embedded or synthetic. In Colab the first code cell installs the package. With the environment
# variable `GENMODELS_FAST=1` every training run shrinks so that a notebook runs in seconds (what CI
# executes); the numbers are then only a smoke test.
#
# **As a course.** `genmodels-exercise make vae --out my-vae` writes a workspace: a copy of the
# library with the exercise functions' bodies removed, and these notebooks in `my-vae/notebooks/`.
# Opened from there, a notebook imports *your* `genmodels`: it stops at the first function you
# have not written yet (a `NotImplementedError` naming the equation) and trains the model with the
# ones you have. `genmodels-exercise check --all --workspace my-vae` grades them.

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
# ## One function per equation
# Every formula is a function with the equation number in its docstring. Here is eq. 2.8, the KL
# divergence of a diagonal Gaussian from the standard normal, on numbers you can check by hand:
# $\tfrac12(\mu^2+\sigma^2-\log\sigma^2-1)$ with $\mu=1,\sigma=1$ is $0.5$.

# %%
from genmodels.vae import kl_to_standard_normal

print(kl_to_standard_normal.__doc__.strip().splitlines()[0])
print("KL =", kl_to_standard_normal(torch.tensor([[1.0]]), torch.tensor([[0.0]])).item())

# %% [markdown]
# ## The exercises
# Each function body is an exercise of the course (the grader is not part of a student workspace).

# %%
try:
    from genmodels.exercise.registry import EXERCISES
except ImportError:                       # a student workspace holds no grader
    EXERCISES = []
from collections import Counter

print(len(EXERCISES), "exercises:", dict(Counter(e.name.split(".")[0] for e in EXERCISES)))
for e in EXERCISES[:5]:
    print(f"  {e.name:24s} {e.eq:10s} {e.what[:60]}")

# %% [markdown]
# ## Experiments are configs
# `genmodels-train experiment=NAME key=value ...` on the command line; in a notebook, the `train`
# helper of the cell above composes the same Hydra config and runs the same trainer. Every key is
# typed: a wrong one stops before any training.

# %%
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from genmodels.train.cli import CONFIG_DIR
from genmodels.train.config import register_all

register_all()
with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
    cfg = compose(config_name="config", overrides=["experiment=vae_digits"])
print(OmegaConf.to_yaml(cfg.model), OmegaConf.to_yaml(cfg.trainer)[:400], "...")
print("experiments:", sorted(p.stem for p in (Path(CONFIG_DIR) / "experiment").glob("*.yaml")))

# %% [markdown]
# ## A first run
# The default experiment, `vae_digits`, for a few hundred steps. A run folder holds
# `metrics.jsonl` (one JSON object per logged step), `results.json` (the final validation and test
# metrics), a checkpoint and figures.

# %%
steps = 100 if FAST else 1500
results, run = train("vae_digits", [f"trainer.max_steps={steps}", f"trainer.eval_every={steps}",
                                    "trainer.scheduler.warmup_steps=5", "model.iwae_k=20", "model.n_figure_samples=16"])
print("files:", sorted(p.name for p in run.iterdir()))
print("test:", {k: round(v, 3) for k, v in results["test"].items()})
s, loss = curve(run, "loss")
plt.figure(figsize=(5, 3)); plt.plot(s, loss); plt.xlabel("step"); plt.ylabel("−ELBO (nats)"); plt.show()
show_figures(run, ["samples"], width=4)

# %% [markdown]
# Next: [01_vae](01_vae.ipynb), or any family above. Every notebook stands alone.
