"""A converged linear probe: logistic regression on frozen, standardised encoder features.

Run from the repository root: ``python experiments/finetune_shakespeare/probe.py
[MLM run folder]`` (default ``outputs/mlm_shakespeare/sin64_b32_3000``). For splits 0, 1, 2
(``labelled_splits`` with ``split_seed`` = 0, 1, 2, as ``run_seeds.sh``) it mean-pools the
encoder's final hidden states over each speech's real characters, standardises every feature
with the train split's mean and standard deviation, fits scikit-learn's L2 logistic regression
(C chosen on the val split from 0.01 … 10) and reports test accuracy, for

* the MLM encoder (the run's ``last.pt``),
* the same architecture with random weights (``build_encoder`` under seeds 0, 1, 2),
* a character 1–4-gram TF-IDF logistic regression on the same 64 characters (no encoder):
  how much speaker signal the text itself carries for a classical model.

Why a second probe: ``model.freeze_encoder=true`` trains the head with AdamW from a small
initialisation, and mean-pooled features vary little between speeches compared with their
common offset, so a few hundred steps do not converge; standardising and solving the convex
problem to the end answers "is the information linearly there" without that confound.
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import torch
from omegaconf import OmegaConf
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from genmodels.data.text import labelled_splits, load_shakespeare
from genmodels.train.checkpoint import load_checkpoint
from genmodels.charlm.task import build_encoder
from genmodels.train.checkpoint import resolve_checkpoint

C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0)


@torch.no_grad()
def pooled(model, part) -> np.ndarray:
    """Mean over real characters of the final hidden states: ``[N, d]``."""
    ids, mask, _ = part
    model.eval()
    return torch.cat([model.pool(model(i, m), m) for i, m in zip(ids.split(256), mask.split(256))]
                     ).double().numpy()


def fit(train, val, test, y) -> float:
    """Logistic regression with C picked on val; returns the test accuracy."""
    best = max(C_GRID, key=lambda c: LogisticRegression(C=c, max_iter=5000)
               .fit(train, y[0]).score(val, y[1]))
    return LogisticRegression(C=best, max_iter=5000).fit(train, y[0]).score(test, y[2])


def standardise(train, *others):
    mu, sd = train.mean(0), train.std(0) + 1e-8
    return [(x - mu) / sd for x in (train, *others)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("mlm", nargs="?", default="outputs/mlm_shakespeare/sin64_b32_3000")
    parser.add_argument("--num-classes", type=int, default=8)
    args = parser.parse_args()
    torch.set_num_threads(1)

    ckpt = load_checkpoint(resolve_checkpoint(args.mlm))
    m = OmegaConf.create(ckpt["config"]["model"])
    corpus = load_shakespeare(None, None, False, 0.1)
    V = corpus.vocab_size
    mlm = build_encoder(m, V)
    mlm.load_state_dict(ckpt["model"])

    scores: dict[str, list[float]] = {"MLM encoder": [], "random encoder": [], "char TF-IDF": []}
    for k in (0, 1, 2):
        sp = labelled_splits(corpus, args.num_classes, m.max_len, pad_id=V + 1, split_seed=k)
        parts = (sp.train, sp.val, sp.test)
        y = [p[2].numpy() for p in parts]
        torch.manual_seed(k)
        rand = build_encoder(m, V)
        for name, enc in (("MLM encoder", mlm), ("random encoder", rand)):
            scores[name].append(fit(*standardise(*(pooled(enc, p) for p in parts)), y))
        texts = [["".join(corpus.chars[i] for i in row[msk].tolist())
                  for row, msk in zip(p[0], p[1])] for p in parts]
        vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True)
        tf = [vec.fit_transform(texts[0]), vec.transform(texts[1]), vec.transform(texts[2])]
        scores["char TF-IDF"].append(fit(*tf, y))
        majority = np.bincount(y[2]).max() / len(y[2])
        print(f"split {k}: " + ", ".join(f"{n} {100 * s[-1]:.1f} %" for n, s in scores.items())
              + f", majority class {100 * majority:.1f} % (test, {len(y[2])} speeches)")
    for name, s in scores.items():
        print(f"{name}: test accuracy {100 * statistics.mean(s):.1f} ± "
              f"{100 * statistics.stdev(s):.1f} % (mean ± sd over the 3 splits)")


if __name__ == "__main__":
    main()
