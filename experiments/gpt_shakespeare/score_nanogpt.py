"""Score a checkpoint of nanoGPT's own ``train.py`` on genmodels' fixed val windows.

Runs with the interpreter of nanoGPT's virtualenv (it needs no genmodels): ``benchmark.py`` writes
the windows (``genmodels.data.text.fixed_windows`` of the val split, in genmodels' character ids,
with genmodels' character list) to an ``.npz`` file and calls

    NANOGPT_PYTHON experiments/gpt_shakespeare/score_nanogpt.py --nanogpt NANOGPT_CHECKOUT \\
        --ckpt OUT_DIR/ckpt.pt --windows fixed_windows.npz

The model is built with the checkout's own ``model.py`` and loaded the way its ``sample.py``
does; the ids are mapped to nanoGPT's through the characters (``meta.pkl`` of
``data/shakespeare_char``). The loss is the model's own (mean cross-entropy over every position
of every window), in nats per character. Prints one JSON line.
"""

import argparse
import json
import pickle
import sys
from pathlib import Path

import numpy as np
import torch


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--nanogpt", required=True, help="the nanoGPT checkout (its model.py)")
    p.add_argument("--ckpt", required=True, help="ckpt.pt written by nanoGPT's train.py")
    p.add_argument("--windows", required=True, help=".npz with x, y (genmodels ids) and chars")
    p.add_argument("--batch", type=int, default=400)
    a = p.parse_args()
    root = Path(a.nanogpt).resolve()
    sys.path.insert(0, str(root))
    from model import GPT, GPTConfig  # nanoGPT's model.py

    ck = torch.load(a.ckpt, map_location="cpu")
    model = GPT(GPTConfig(**ck["model_args"]))
    state = ck["model"]
    for k in list(state):  # as nanoGPT's sample.py
        if k.startswith("_orig_mod."):
            state[k[len("_orig_mod."):]] = state.pop(k)
    model.load_state_dict(state)
    model.eval()

    with open(root / "data" / "shakespeare_char" / "meta.pkl", "rb") as f:
        stoi = pickle.load(f)["stoi"]
    w = np.load(a.windows)
    chars = [str(c) for c in w["chars"]]
    missing = [c for c in chars if c not in stoi]
    if missing:
        raise SystemExit(f"characters {missing!r} are not in nanoGPT's vocabulary")
    lut = np.array([stoi[c] for c in chars], dtype=np.int64)
    x = torch.from_numpy(lut[w["x"]])
    y = torch.from_numpy(lut[w["y"]])
    total = 0.0
    with torch.no_grad():
        for xb, yb in zip(x.split(a.batch), y.split(a.batch)):
            total += model(xb, yb)[1].item() * yb.numel()
    print(json.dumps({"val_loss_fixed": total / y.numel(), "windows": int(x.shape[0]),
                      "block_size": int(x.shape[1]), "ckpt_iter_num": int(ck["iter_num"]),
                      "ckpt_best_val_loss": float(ck["best_val_loss"]),
                      "model_args": ck["model_args"], "torch": torch.__version__}))


if __name__ == "__main__":
    main()
