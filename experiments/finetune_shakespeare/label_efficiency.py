"""Label efficiency of MLM pre-training: is this line of Shakespeare misspelt? (eqs. 2.28–2.29)

Run from the repository root (one process, one thread)::

    python experiments/finetune_shakespeare/label_efficiency.py run [--mlm RUN] [--seeds 0 1 2 3 4]
    python experiments/finetune_shakespeare/label_efficiency.py summary

**Task.** Lines of verse or prose (>= 20 characters, speaker-name lines left out) from the
*held-out 10 %* of tiny Shakespeare — the tail that ``mlm_shakespeare`` never trained on (it
pre-trains on the first 90 %; see ``make_corpus``). Label 1: every word of >= 4 letters has its
interior letters shuffled ("Cmabrigde" text: first and last letter kept, the letters themselves
unchanged, so the line's character counts equal the clean line's: a bag of characters cannot
tell them apart); label 0: the line as written. ``--frac f`` scrambles only a share f of
the eligible words (at least one; the pilot with f = 0.5 is in the README).
Deciding which needs knowledge of English/Early-Modern spelling — exactly what a masked-character
model learns — and not of speakers, plays or topics.

**Splits** (contiguous blocks of the held-out tail, so no line is shared): the first 60 % of
its lines are the labelled pool (each line appears once, clean or corrupted by a fixed draw),
the next 10 % val and the last 30 % test; val and test lines appear twice, clean and corrupted
(balanced, and a line's own wording cannot decide). A budget of n labels is a balanced draw of n
pool lines under the run's seed; the pretrained and scratch runs of one (n, seed) see the same n.

**Arms**, all on the same labelled subset:

* ``pretrained``: the MLM encoder (``build_encoder``, weights from the MLM checkpoint) + mean
  pooling + a new linear head, every weight fine-tuned with eq. 2.29
  (``MaskedEncoder.classification_loss`` → ``task_loss``);
* ``scratch``: the same model and recipe from random weights;
* ``probe``: the frozen MLM encoder's mean-pooled features, standardised with the statistics of
  the (unlabelled) pool, L2 logistic regression with C picked on val;
* ``random_probe``: the same probe on a randomly initialised encoder (what architecture alone gives);
* ``tfidf``: character 1–4-gram TF-IDF + L2 logistic regression, C picked on val (no network);
* ``mlm_score`` (``--arms mlm_score``): the MLM head's own surprise — each character masked once
  and scored with eq. 2.28 (``masked_lm_loss``, reduction ``none``); the line's mean and max
  per-character loss + logistic regression on the n labels.

Fine-tuning recipe (both neural arms): AdamW (weight decay 0.01), linear warm-up over 10 % of
the steps then cosine decay, batch ``min(32, n)``, ``steps(n)`` steps, val accuracy every
``eval_every`` steps; the reported test accuracy is the one of the best val checkpoint. Dropout
0.1 in both. The learning rate of each arm was picked on val in a pilot (README).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import re
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from omegaconf import OmegaConf

from genmodels.charlm.task import build_encoder
from genmodels.data.text import load_shakespeare
from genmodels.train.checkpoint import load_checkpoint, resolve_checkpoint

HERE = Path(__file__).resolve().parent
OUT = Path("outputs/finetune_shakespeare/label_efficiency")
BUDGETS = (16, 32, 64, 128, 256, 0)      # 0 = the whole pool
ARMS = ("pretrained", "scratch", "probe", "random_probe", "tfidf", "mlm_score")
C_GRID = (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0, 30.0)
WORD = re.compile(r"[A-Za-z]{4,}")


# ------------------------------------------------------------------------------ the task
FRAC = 1.0   # share of a corrupted line's eligible words that are scrambled (at least one)


def corrupt(line: str, rng: random.Random, frac: float | None = None) -> str | None:
    """The line with the interior letters of some of its words (>= 4 letters) shuffled —
    ``frac`` of them, at least one, each into a different spelling — or None if it has none."""
    words = [m for m in WORD.finditer(line) if len(set(m.group()[1:-1])) > 1]
    if not words:
        return None
    k = max(1, round((FRAC if frac is None else frac) * len(words)))
    chosen = sorted(rng.sample(words, k), key=lambda m: m.start())
    out, last = [], 0
    for m in chosen:
        w = m.group()
        inner = list(w[1:-1])
        while True:
            rng.shuffle(inner)
            if "".join(inner) != w[1:-1]:
                break
        out += [line[last:m.start()], w[0], "".join(inner), w[-1]]
        last = m.end()
    return "".join(out) + line[last:]


def build_task(corpus, max_len: int = 64) -> dict:
    """``{"pool": (texts, labels), "val": ..., "test": ...}`` from the held-out tail."""
    tail = corpus.decode(corpus.val.tolist())
    lines = [s for s in tail.split("\n")
             if 20 <= len(s) <= max_len and not s.endswith(":") and corrupt(s, random.Random(0))]
    n = len(lines)
    a, b = int(0.6 * n), int(0.7 * n)
    rng = random.Random(1234)
    pool_t, pool_y = [], []
    for s in lines[:a]:
        y = rng.random() < 0.5
        pool_t.append(corrupt(s, rng) if y else s)
        pool_y.append(int(y))
    out = {"pool": (pool_t, pool_y)}
    for name, part in (("val", lines[a:b]), ("test", lines[b:])):
        texts, ys = [], []
        for s in part:
            texts += [s, corrupt(s, rng)]
            ys += [0, 1]
        out[name] = (texts, ys)
    return out


def subset(labels: list[int], n: int, seed: int) -> list[int]:
    """A balanced draw of n pool indices (n = 0: all of them), fixed by seed."""
    if n == 0 or n >= len(labels):
        return list(range(len(labels)))
    rng = random.Random(10_000 + seed)
    pos = [i for i, y in enumerate(labels) if y == 1]
    neg = [i for i, y in enumerate(labels) if y == 0]
    return sorted(rng.sample(pos, n // 2) + rng.sample(neg, n - n // 2))


def encode(corpus, texts: list[str], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    L = max(len(t) for t in texts)
    ids = torch.full((len(texts), L), pad_id, dtype=torch.long)
    for i, t in enumerate(texts):
        ids[i, :len(t)] = corpus.encode(t)
    return ids, ids != pad_id


# ------------------------------------------------------------------------------ neural arms
STEPS = None   # --steps: the same number of steps at every budget (a check, not the sweep)


def steps_for(n: int) -> int:
    """Fine-tuning steps for n labels: ~40 epochs for small n, capped (CPU budget)."""
    if STEPS:
        return STEPS
    return int(min(300, max(100, 40 * n / min(32, n))))


@torch.no_grad()
def accuracy(model, ids, mask, y, batch: int = 512) -> float:
    model.eval()
    pred = torch.cat([model.classify(i, m).argmax(-1) for i, m in
                      zip(ids.split(batch), mask.split(batch))])
    return (pred == y).float().mean().item()


def finetune(arm: str, data: dict, n: int, seed: int, ckpt: dict, corpus, lr: float,
             eval_every: int = 20, dropout: float = 0.1) -> dict:
    V = corpus.vocab_size
    m = OmegaConf.create(ckpt["config"]["model"])
    m.dropout = dropout
    torch.manual_seed(seed)
    model = build_encoder(m, V, num_classes=2)
    if arm == "pretrained":
        missing, unexpected = model.load_state_dict(ckpt["model"], strict=False)
        assert not unexpected and all(k.startswith("classifier.") for k in missing)
    texts, labels = data["pool"]
    idx = subset(labels, n, seed)
    tr_ids, tr_mask = encode(corpus, [texts[i] for i in idx], V + 1)
    tr_y = torch.tensor([labels[i] for i in idx])
    va = (*encode(corpus, data["val"][0], V + 1), torch.tensor(data["val"][1]))
    te = (*encode(corpus, data["test"][0], V + 1), torch.tensor(data["test"][1]))
    steps, bs = steps_for(len(idx)), min(32, len(idx))
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    warm = max(1, steps // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / warm) * 0.5 * (
        1 + math.cos(math.pi * min(1.0, max(0, s - warm) / max(1, steps - warm)))))
    g = torch.Generator().manual_seed(seed)
    best = (-1.0, None, 0)
    perm, pos = torch.randperm(len(idx), generator=g), 0
    for step in range(1, steps + 1):
        if pos + bs > len(idx):
            perm, pos = torch.randperm(len(idx), generator=g), 0
        b = perm[pos:pos + bs]
        pos += bs
        L = int(tr_mask[b].sum(1).max())
        model.train()
        loss = model.classification_loss(tr_ids[b, :L], tr_y[b], tr_mask[b, :L])  # eq. 2.29
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % eval_every == 0 or step == steps:
            v = accuracy(model, *va)
            if v > best[0]:
                best = (v, {k: t.clone() for k, t in model.state_dict().items()}, step)
    model.load_state_dict(best[1])
    return {"val": best[0], "test": accuracy(model, *te), "best_step": best[2], "steps": steps,
            "n": len(idx)}


# ------------------------------------------------------------------------------ convex arms
def logreg(train, ytr, val, yva, test, yte) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression
    fits = [(LogisticRegression(C=c, max_iter=5000).fit(train, ytr), c) for c in C_GRID]
    scored = [(f.score(val, yva), -c, f) for f, c in fits]   # ties: the smaller C
    v, _, f = max(scored, key=lambda t: t[:2])
    return v, f.score(test, yte)


@torch.no_grad()
def features(model, corpus, texts, pad_id) -> np.ndarray:
    model.eval()
    ids, mask = encode(corpus, texts, pad_id)
    return torch.cat([model.pool(model(i, k), k) for i, k in
                      zip(ids.split(512), mask.split(512))]).double().numpy()


@torch.no_grad()
def mlm_surprise(model, corpus, texts, pad_id, stride: int = 6) -> np.ndarray:
    """``[N, 2]``: the mean and the max over a line's characters of eq. 2.28's per-character
    loss −log P(x_i | rest), each character masked once: offsets r = 0 … stride−1 mask the
    positions i ≡ r (mod stride) together (≈ 1/stride of them, near the 15 % of pre-training),
    so a line costs ``stride`` forward passes. No labels: the MLM head as pre-trained."""
    from genmodels.transformer.losses import masked_lm_loss
    model.eval()
    ids, real = encode(corpus, texts, pad_id)
    mask_id = corpus.vocab_size
    nll = torch.zeros(ids.shape)
    pos = torch.arange(ids.shape[1])
    for r in range(stride):
        M = real & (pos % stride == r)                       # (N, L)
        x = ids.masked_fill(M, mask_id)
        for xb, tb, mb, kb, rows in zip(x.split(512), ids.split(512), M.split(512),
                                        real.split(512), torch.arange(len(ids)).split(512)):
            nll[rows] += masked_lm_loss(model.mlm_logits(xb, kb), tb, mb, reduction="none")
    n = real.sum(1).clamp_min(1)
    mean = nll.sum(1) / n
    mx = nll.masked_fill(~real, -1.0).max(1).values
    return torch.stack([mean, mx], 1).double().numpy()


class Probe:
    """Frozen-encoder features of pool, val and test, computed once per encoder."""

    def __init__(self, model, corpus, data, feature=None):
        V = corpus.vocab_size
        feature = feature or features
        self.f = {k: feature(model, corpus, data[k][0], V + 1) for k in ("pool", "val", "test")}
        mu, sd = self.f["pool"].mean(0), self.f["pool"].std(0) + 1e-8   # unlabelled statistics
        self.f = {k: (x - mu) / sd for k, x in self.f.items()}

    def run(self, data, n, seed):
        labels = data["pool"][1]
        idx = subset(labels, n, seed)
        v, t = logreg(self.f["pool"][idx], np.array(labels)[idx], self.f["val"], data["val"][1],
                      self.f["test"], data["test"][1])
        return {"val": v, "test": t, "n": len(idx)}


def tfidf(data, n, seed):
    from sklearn.feature_extraction.text import TfidfVectorizer
    texts, labels = data["pool"]
    idx = subset(labels, n, seed)
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), sublinear_tf=True)
    tr = vec.fit_transform([texts[i] for i in idx])
    v, t = logreg(tr, np.array(labels)[idx], vec.transform(data["val"][0]), data["val"][1],
                  vec.transform(data["test"][0]), data["test"][1])
    return {"val": v, "test": t, "n": len(idx)}


# ------------------------------------------------------------------------------ driver
def run(args) -> None:
    torch.set_num_threads(1)
    corpus = load_shakespeare(None, None, False, 0.1)
    data = build_task(corpus)
    ckpt = load_checkpoint(resolve_checkpoint(args.mlm))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res_path = out / "results.jsonl"
    done = set()
    if res_path.exists():
        for line in res_path.read_text().splitlines():
            r = json.loads(line)
            done.add((r["arm"], r["budget"], r["seed"], r.get("lr")))
    print({k: (len(v[0]), sum(v[1])) for k, v in data.items()}, flush=True)
    probes = {}
    for budget in args.budgets:
        for seed in args.seeds:
            for arm in args.arms:
                lr = args.lr_pretrained if arm == "pretrained" else (
                    args.lr_scratch if arm == "scratch" else None)
                if (arm, budget, seed, lr) in done:
                    continue
                c0, w0 = time.process_time(), time.time()
                if arm in ("pretrained", "scratch"):
                    r = finetune(arm, data, budget, seed, ckpt, corpus, lr)
                elif arm in ("probe", "random_probe", "mlm_score"):
                    if arm not in probes:
                        V = corpus.vocab_size
                        m = OmegaConf.create(ckpt["config"]["model"])
                        torch.manual_seed(0)
                        enc = build_encoder(m, V)
                        if arm != "random_probe":
                            enc.load_state_dict(ckpt["model"])
                        probes[arm] = Probe(enc, corpus, data,
                                            mlm_surprise if arm == "mlm_score" else None)
                    r = probes[arm].run(data, budget, seed)
                else:
                    r = tfidf(data, budget, seed)
                r.update(arm=arm, budget=budget, seed=seed, lr=lr,
                         cpu_s=round(time.process_time() - c0, 2),
                         wall_s=round(time.time() - w0, 2), load1=round(os.getloadavg()[0], 2))
                print(json.dumps(r), flush=True)
                with res_path.open("a") as f:
                    f.write(json.dumps(r) + "\n")


def t_interval(xs: list[float]) -> tuple[float, float]:
    """Mean and the half-width of its 95 % t-interval."""
    from scipy import stats
    m = statistics.mean(xs)
    if len(xs) < 2:
        return m, float("nan")
    return m, stats.t.ppf(0.975, len(xs) - 1) * statistics.stdev(xs) / math.sqrt(len(xs))


def summary(args) -> None:
    rows = [json.loads(s) for s in (Path(args.out) / "results.jsonl").read_text().splitlines()]
    lrs = {"pretrained": args.lr_pretrained, "scratch": args.lr_scratch}
    rows = [r for r in rows if r["arm"] not in lrs or r["lr"] == lrs[r["arm"]]]
    acc = {}
    for r in rows:
        acc.setdefault((r["arm"], r["budget"]), {})[r["seed"]] = r
    budgets = sorted({b for _, b in acc}, key=lambda b: b or 10**9)
    pool_n = max(r["n"] for r in rows)
    lab = {b: (str(b) if b else f"all ({pool_n})") for b in budgets}
    lines = ["| labels | " + " | ".join(ARMS) + " | pretrained − scratch (paired) | seeds |",
             "|---" * (len(ARMS) + 3) + "|"]
    table = {}
    for b in budgets:
        cells = []
        for arm in ARMS:
            runs = acc.get((arm, b), {})
            xs = [100 * r["test"] for r in runs.values()]
            if xs:
                m, h = t_interval(xs)
                table[(arm, b)] = (m, h, len(xs))
                cells.append(f"{m:.1f} ± {h:.1f}")
            else:
                cells.append("—")
        p, s = acc.get(("pretrained", b), {}), acc.get(("scratch", b), {})
        common = sorted(set(p) & set(s))
        d = [100 * (p[k]["test"] - s[k]["test"]) for k in common]
        if len(d) >= 2:
            m, h = t_interval(d)
            cells.append(f"**{m:+.1f}** [{m - h:+.1f}, {m + h:+.1f}] (min {min(d):+.1f})")
        else:
            cells.append("—")
        lines.append(f"| {lab[b]} | " + " | ".join(cells) + f" | {len(common)} |")
    cpu = ["| arm | CPU s per run: mean (max) | wall s mean | best step / steps (mean) |",
           "|---|---|---|---|"]
    for arm in ARMS:
        rs = [r for r in rows if r["arm"] == arm]
        if rs:
            extra = ""
            if "steps" in rs[0]:
                extra = " / ".join(f"{lab[b]}: {statistics.mean(r['best_step'] for r in rs if r['budget'] == b):.0f}/{rs[[r['budget'] for r in rs].index(b)]['steps']}"
                                   for b in budgets if any(r["budget"] == b for r in rs))
            cpu.append(f"| {arm} | {statistics.mean(r['cpu_s'] for r in rs):.1f} "
                       f"({max(r['cpu_s'] for r in rs):.1f}) | "
                       f"{statistics.mean(r['wall_s'] for r in rs):.1f} | {extra} |")
    loads = [r["load1"] for r in rows if "load1" in r]
    text = ("Test accuracy % (mean ± 95 % t half-width over seeds); paired difference in points "
            "with its 95 % t-interval\n\n" + "\n".join(lines) + "\n\n" + "\n".join(cpu)
            + f"\n\n1-minute load average at the end of the runs: median "
              f"{statistics.median(loads):.2f}, max {max(loads):.2f}\n")
    print(text)
    (HERE / "label_efficiency.md").write_text(text)
    (HERE / "label_efficiency_results.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows))

    from genmodels.plotting import plt, save_figure
    fig, ax = plt.subplots(figsize=(7, 4.5))
    xs_pos = {b: (b if b else pool_n) for b in budgets}
    names = {"pretrained": "fine-tuned from MLM encoder", "scratch": "from scratch",
             "probe": "frozen MLM encoder, linear probe",
             "random_probe": "frozen random encoder, linear probe",
             "tfidf": "char 1–4-gram TF-IDF + logistic reg.",
             "mlm_score": "MLM's own surprise (2 features) + logistic reg."}
    for arm in ARMS:
        pts = [(xs_pos[b], *table[(arm, b)][:2]) for b in budgets if (arm, b) in table]
        if not pts:
            continue
        x, m, h = (np.array(v) for v in zip(*pts))
        ax.plot(x, m, marker="o", label=names[arm], ls="--" if "probe" in arm or arm == "tfidf" else "-")
        ax.fill_between(x, m - h, m + h, alpha=0.2)
    ax.axhline(50, color="grey", lw=0.8, ls=":")
    ax.set_xscale("log", base=2)
    ax.set_xticks([xs_pos[b] for b in budgets], [lab[b] for b in budgets])
    ax.set_xlabel("labelled examples")
    ax.set_ylabel("test accuracy % (bands: 95 % t-interval over seeds)")
    ax.set_title("Are this line's words scrambled? (held-out tail of tiny Shakespeare, "
                 f"{len(next(iter(acc.values())))} seeds per point)", fontsize=10)
    ax.legend(fontsize=7.5, loc="center right", bbox_to_anchor=(1.0, 0.42))
    save_figure(fig, HERE / "label_efficiency.png", dpi=110)


def main() -> None:
    global FRAC, STEPS
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("run", "summary", "show"))
    parser.add_argument("--mlm", default="outputs/mlm_shakespeare/sin64_b32_3000")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--budgets", type=int, nargs="+", default=list(BUDGETS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--arms", nargs="+", default=list(ARMS[:5]), choices=ARMS)
    parser.add_argument("--lr-pretrained", type=float, default=3e-4)
    parser.add_argument("--lr-scratch", type=float, default=1e-3)
    parser.add_argument("--frac", type=float, default=FRAC)
    parser.add_argument("--steps", type=int, default=None,
                        help="fine-tuning steps at every budget (use with another --out)")
    args = parser.parse_args()
    FRAC, STEPS = args.frac, args.steps
    if args.what == "run":
        run(args)
    elif args.what == "summary":
        summary(args)
    else:
        data = build_task(load_shakespeare(None, None, False, 0.1))
        for k, (t, y) in data.items():
            print(k, len(t), sum(y), *[f"{yy} {tt!r}" for tt, yy in zip(t[:6], y[:6])], sep="\n  ")


if __name__ == "__main__":
    main()
