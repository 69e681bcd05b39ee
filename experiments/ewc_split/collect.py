"""Table of a λ sweep of ewc_split / ewc_permuted (Hydra multirun folders) as Markdown.

    python experiments/ewc_split/collect.py multirun/ewc_split/lambda_sweep
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml


def rows(sweep_dir: Path):
    for job in sorted(sweep_dir.iterdir(), key=lambda p: int(p.name) if p.name.isdigit() else -1):
        res = job / "results.json"
        if not res.exists():
            continue
        cfg = yaml.safe_load((job / ".hydra" / "config.yaml").read_text())
        yield cfg, json.loads(res.read_text())


def main(sweep_dir: str) -> None:
    print("| seed | λ_EWC | λ_L2 | split | A before B | fine-tune A / B | L2 A / B | EWC A / B |")
    print("|---|---|---|---|---|---|---|---|")
    for cfg, r in rows(Path(sweep_dir)):
        m = cfg["model"]
        for split in ("val", "test"):
            t = r[split]
            f = lambda k: f"{100 * t[k + '_acc_A']:.1f} / {100 * t[k + '_acc_B']:.1f}"
            print(f"| {cfg['seed']} | {m['ewc_lambda']:g} | {m['l2_lambda']:g} | {split} | "
                  f"{100 * t['acc_A_before_B']:.1f} | {f('finetune')} | {f('l2')} | {f('ewc')} |")


if __name__ == "__main__":
    main(sys.argv[1])
