"""Mean ± spread of the speaker classifiers over seeds (the runs of ``run_seeds.sh``).

Run from the repository root: ``python experiments/finetune_shakespeare/summarize.py
[folder]`` (default ``outputs/finetune_shakespeare/seeds``, holding ``<arm>/s<k>/results.json``).
Prints a Markdown table per arm — test and val accuracy as mean ± sample standard deviation over
the seeds (each seed is its own split), the pooled test accuracy with its binomial standard error
over all test speeches, test loss, the majority-class rate and the CPU seconds — then the paired
differences (same seed, same split) pretrained minus scratch.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

ARMS = {"pretrained": "fine-tuned from the MLM encoder", "scratch": "trained from random init"}
PAIRS = (("pretrained", "scratch"),)
TEST_SIZE = 114   # speeches in each test split (10 % of 1,149)


def mean_sd(xs: list[float], scale: float = 100.0, digits: int = 1) -> str:
    sd = statistics.stdev(xs) if len(xs) > 1 else float("nan")
    return f"{scale * statistics.mean(xs):.{digits}f} ± {scale * sd:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("folder", nargs="?", type=Path,
                        default=Path("outputs/finetune_shakespeare/seeds"))
    args = parser.parse_args()

    runs: dict[str, dict[str, dict]] = {}
    for arm in ARMS:
        for res in sorted((args.folder / arm).glob("s*/results.json")):
            runs.setdefault(arm, {})[res.parent.name] = json.loads(res.read_text())

    print("| arm | seeds | test accuracy % (mean ± sd) | pooled test acc. ± s.e. | "
          "val accuracy % | test loss | majority class % (test) | train CPU s / run |")
    print("|---|---|---|---|---|---|---|---|")
    for arm, by_seed in runs.items():
        r = list(by_seed.values())
        acc = [x["test"]["accuracy"] for x in r]
        p, n = statistics.mean(acc), TEST_SIZE * len(acc)
        se = (p * (1 - p) / n) ** 0.5
        print(f"| {ARMS[arm]} | {len(r)} | {mean_sd(acc)} | {100 * p:.1f} ± {100 * se:.1f} "
              f"(n = {n}) | {mean_sd([x['val']['accuracy'] for x in r])} | "
              f"{mean_sd([x['test']['loss'] for x in r], 1.0, 3)} | "
              f"{100 * statistics.mean(x['test']['chance'] for x in r):.1f} | "
              f"{statistics.mean(x['train_cpu_s'] for x in r):.0f} |")
    print()
    for a, b in PAIRS:
        seeds = sorted(set(runs.get(a, {})) & set(runs.get(b, {})))
        if not seeds:
            continue
        d = [runs[a][s]["test"]["accuracy"] - runs[b][s]["test"]["accuracy"] for s in seeds]
        dv = [runs[a][s]["val"]["accuracy"] - runs[b][s]["val"]["accuracy"] for s in seeds]
        per = ", ".join(f"{s}: {100 * x:+.1f}" for s, x in zip(seeds, d))
        print(f"- {a} − {b}: test accuracy {mean_sd(d)} points (per seed {per}); "
              f"val {mean_sd(dv)} points")


if __name__ == "__main__":
    main()
