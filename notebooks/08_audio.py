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
# # 08 · Audio: MFCCs, μ-law, spectral subtraction and a denoising network (eqs. 2.30–2.38)
#
# | eq | what | function (`genmodels.audio`) |
# |---|---|---|
# | 2.30 | MFCC: frames → window → FFT → mel filterbank → log → DCT-II | `mfcc`, `mel_filterbank` |
# | 2.31–2.33 | voice conversion: encoder, per-frame conversion, decoder | `SpeechEncoder`, `VoiceConverter`, `SpeechDecoder` |
# | 2.34 | WaveNet's μ-law quantisation | `mu_law_encode`, `mu_law_decode`, `WaveNet` |
# | 2.35 | spectral subtraction $\lvert S\rvert=\lvert S_{noisy}\rvert-\lvert N\rvert$ | `spectral_subtraction` |
# | 2.36–2.38 | separation, restoration, enhancement networks | `MaskNet`, `WaveUNet` |
# | — | the measures | `si_sdr`, `mel_cepstral_distortion` |

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
# ## A test signal and its spectrogram
# A 440 Hz tone with white noise, 8 kHz, as in the course's small cases.

# %%
import math

import librosa
import numpy as np
from IPython.display import Audio, display

from genmodels.audio import (mel_filterbank, mfcc, mu_law_decode, mu_law_encode, power_to_db,
                             si_sdr, spectral_subtraction, stft_power)

sr = 8000
t = torch.arange(sr, dtype=torch.float64) / sr
clean = 0.5 * torch.sin(2 * math.pi * 440 * t) * (1 + 0.5 * torch.sin(2 * math.pi * 3 * t))
gen = torch.Generator().manual_seed(0)
noise = 0.2 * torch.randn(sr, generator=gen, dtype=torch.float64)
noisy = clean + noise
spec = power_to_db(stft_power(noisy, n_fft=512, hop_length=128))
plt.figure(figsize=(6, 3)); plt.imshow(spec, origin="lower", aspect="auto", extent=[0, 1, 0, sr / 2])
plt.xlabel("s"); plt.ylabel("Hz"); plt.colorbar(label="dB"); plt.title("noisy tone"); plt.show()
display(Audio(noisy.numpy(), rate=sr))

# %% [markdown]
# ## Eq. 2.30: MFCCs, and the mel filterbank
# Written from scratch, they agree with librosa on the same arguments.

# %%
fb = mel_filterbank(sr, n_fft=512, n_mels=40)
ours = mfcc(noisy, sr, n_mfcc=13, n_fft=512, hop_length=128, n_mels=40)
ref = librosa.feature.mfcc(y=noisy.numpy(), sr=sr, n_mfcc=13, n_fft=512, hop_length=128, n_mels=40)
print("MFCC shape", tuple(ours.shape), " max |ours − librosa| =", float(np.abs(ours.numpy() - ref).max()))
fig, ax = plt.subplots(1, 2, figsize=(11, 3))
ax[0].plot(np.linspace(0, sr / 2, fb.shape[1]), fb.T.numpy()); ax[0].set_xlabel("Hz"); ax[0].set_title("40 mel filters (Slaney)")
ax[1].imshow(ours.numpy(), origin="lower", aspect="auto"); ax[1].set_title("13 MFCCs per frame"); ax[1].set_xlabel("frame")
plt.show()

# %% [markdown]
# ## Eq. 2.34: μ-law
# $F(x)=\operatorname{sign}(x)\frac{\ln(1+\mu|x|)}{\ln(1+\mu)}$ with $\mu=255$, then 256 levels:
# fine steps near 0 where speech spends its time, coarse ones near ±1.

# %%
xs = torch.linspace(-1, 1, 9)
q = mu_law_encode(xs)
print("x      :", [round(v, 3) for v in xs.tolist()])
print("level  :", q.tolist())
print("decoded:", [round(v, 3) for v in mu_law_decode(q).tolist()])

# %% [markdown]
# ## Eq. 2.35: spectral subtraction, measured by SI-SDR
# Subtract a noise magnitude estimated from a noise-only recording; SI-SDR (dB) measures how
# close the result is to the clean signal.

# %%
noise_only = 0.2 * torch.randn(sr // 2, generator=gen, dtype=torch.float64)
enhanced = spectral_subtraction(noisy, noise_only, n_fft=512, hop_length=128)
print(f"SI-SDR noisy    : {si_sdr(noisy, clean).item():6.2f} dB")
print(f"SI-SDR enhanced : {si_sdr(enhanced, clean).item():6.2f} dB")
display(Audio(enhanced.numpy(), rate=sr))

# %% [markdown]
# ## Training: a mask network against spectral subtraction
# `denoise_synthetic`: synthetic speech (built-in voices, no download) in coloured noise at −5…5 dB;
# a network predicts an STFT mask. The run reports the SI-SDR improvement of the network and of
# spectral subtraction on the same test clips, and writes WAVs of an example.

# %%
overrides = (["data.speakers=2", "data.utterances=16", "data.val_utterances=4", "data.test_utterances=4",
              "data.seconds=0.5", "trainer.max_steps=30", "trainer.eval_every=30", "trainer.batch_size=4",
              "trainer.scheduler.warmup_steps=0", "model.hidden=16", "model.layers=1", "model.test_items=8",
              "model.n_examples=1"] if FAST
             else ["data.utterances=120", "trainer.max_steps=300", "trainer.eval_every=100", "model.n_examples=1"])
results, run = train("denoise_synthetic", overrides)
print({k: round(v, 2) for k, v in results["test"].items() if isinstance(v, float)})
show_figures(run, width=6)
for wav in sorted((run / "figures" / "audio").glob("*.wav")):
    print(wav.name)
    display(Audio(str(wav)))

# %% [markdown]
# **What to look at.** The full experiment (1,500 steps, experiments/denoise_synthetic) gains
# +14.1 dB SI-SDR against spectral subtraction's +4.9. The other audio experiments (voice
# conversion, the WaveNet vocoder, separation, restoration) train the same way: `train("vc_synthetic")`.
