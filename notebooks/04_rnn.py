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
# # 04 · Recurrent networks: the RNN and the LSTM (eqs. 2.14–2.21)
#
# An RNN carries a hidden state: $h_t=\tanh(W_{ih}x_t+W_{hh}h_{t-1}+b_h)$ (2.14), $y_t=W_{ho}h_t+b_o$ (2.15).
# The LSTM adds a cell state $C_t$ and three gates on $[h_{t-1},x_t]$:
#
# $$f_t=\sigma(W_f[h_{t-1},x_t]+b_f),\quad i_t=\sigma(W_i[\cdot]+b_i),\quad \tilde C_t=\tanh(W_C[\cdot]+b_C),$$
# $$C_t=f_t\odot C_{t-1}+i_t\odot\tilde C_t,\quad o_t=\sigma(W_o[\cdot]+b_o),\quad h_t=o_t\odot\tanh(C_t)\qquad(2.16\text{–}2.21)$$
#
# | eq | function (`genmodels.rnn`) |
# |---|---|
# | 2.14, 2.15 | `rnn_cell`, `rnn_output` |
# | 2.16–2.21 | `lstm_cell` (weights `[H, H+I]` acting on `[h, x]` in that order) |
# | — | modules `RNN`, `LSTM` built from the cells |

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
# ## One step of each cell, by hand
# With all weights zero, $h_t=\tanh(b_h)$; the LSTM with zero weights has every gate at
# $\sigma(b)$: with $b_f$ large the cell keeps its memory, $C_t\approx C_{t-1}$.

# %%
from genmodels.rnn import LSTM, RNN, lstm_cell, rnn_cell, rnn_output

B, I, H = 1, 3, 2
x = torch.tensor([[1.0, -1.0, 0.5]])
h0, c0 = torch.zeros(B, H), torch.tensor([[2.0, -1.0]])
W_ih, W_hh, b_h = torch.full((H, I), 0.1), torch.eye(H), torch.tensor([0.0, 1.0])
h1 = rnn_cell(x, h0, W_ih, W_hh, b_h)
print("RNN h_1 =", h1.tolist(), " by hand tanh(0.1·0.5 + b) =", torch.tanh(0.05 + b_h).tolist())
print("RNN y_1 =", rnn_output(h1, torch.ones(1, H), torch.zeros(1)).tolist())
Z = torch.zeros(H, H + I)
for bf in (-5.0, 0.0, 5.0):
    h, c = lstm_cell(x, h0, c0, Z, torch.full((H,), bf), Z, torch.full((H,), -5.0), Z, torch.zeros(H), Z, torch.zeros(H))
    print(f"LSTM with b_f = {bf:+}: C_t = {[round(v, 4) for v in c[0].tolist()]}  (C_(t-1) = {c0[0].tolist()}, σ(b_f) = {torch.sigmoid(torch.tensor(bf)).item():.4f})")

# %% [markdown]
# ## Why the LSTM: gradients through time
# How much does $h_T$ still depend on $x_1$? The norm of $\partial h_T/\partial x_1$ for a random
# RNN and a random LSTM (the library's modules) as $T$ grows: the RNN's gradient vanishes
# geometrically; the LSTM's additive cell path, $C_t=f_t\odot C_{t-1}+\dots$ with the forget gate
# near 1, carries it across the whole sequence.

# %%
torch.manual_seed(0)
rnn, lstm = RNN(8, 32), LSTM(8, 32)
with torch.no_grad():                 # b_f = 3: σ(3) ≈ 0.95, the cell remembers unless told to forget
    lstm.bias_l0[:32].fill_(3.0)      # bias_l0 holds b_f, b_i, b_C, b_o (lstm_cell's order), H = 32 each
lengths = [1, 5, 10, 20, 40, 60]
norms = {"RNN": [], "LSTM": []}
for T in lengths:
    for name, net in (("RNN", rnn), ("LSTM", lstm)):
        xs = torch.randn(1, T, 8, requires_grad=True)
        out, _ = net(xs)
        out[0, -1].sum().backward()
        norms[name].append(xs.grad[0, 0].norm().item())
plt.figure(figsize=(5, 3.2))
for name, v in norms.items():
    plt.semilogy(lengths, v, "o-", label=name)
plt.xlabel("T"); plt.ylabel("‖∂h_T / ∂x_1‖"); plt.legend(); plt.title("gradient reaching the first input"); plt.show()
print({k: [f"{x:.1e}" for x in v] for k, v in norms.items()})

# %% [markdown]
# ## Training: a character-level LSTM language model
# `lstm_embedded` steps the library's `lstm_cell` over characters of the Python Language Reference
# text that ships with CPython (offline). The loss is the cross-entropy in nats per character;
# the run writes sampled text.

# %%
lm = ["model.block_size=32", "model.eval_windows=16", "model.eval_batch=8", "model.sample_chars=200",
      "trainer.scheduler.warmup_steps=5"]
overrides = ["trainer.max_steps=40", "trainer.eval_every=40", *lm] if FAST else []
results, run = train("lstm_embedded", overrides)
print("val:", results["val"], "\ntest:", results["test"])

# %%
steps, loss = curve(run, "loss")
vsteps, vloss = curve(run, "loss", split="val")
plt.figure(figsize=(5, 3)); plt.plot(steps, loss, label="train"); plt.plot(vsteps, vloss, "o-", label="val")
plt.xlabel("step"); plt.ylabel("nats / char"); plt.legend(); plt.show()
print((run / "samples.txt").read_text()[:600])

# %% [markdown]
# **What to look at.** A unigram model scores about 3.3 nats/char on this text; the full run
# (623 steps, the nanoGPT budget) reaches about 1.48 (experiments/gpt_embedded). Notebook 05 trains
# the GPT on the same text.
