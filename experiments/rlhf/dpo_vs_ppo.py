"""DPO against PPO-RLHF on the same policy, comparisons and held-out prompts: the scripted human's
score against the KL to the reference at each evaluation of each run (val split).

    python experiments/rlhf/dpo_vs_ppo.py --run "PPO-RLHF=outputs/rlhf_ppo/refactor" \
        --run "DPO β=0.1=outputs/rlhf_dpo/main" --run "DPO β=1=outputs/rlhf_dpo/beta1" \
        --out experiments/rlhf/dpo/score_vs_kl.png --json experiments/rlhf/dpo/runs.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def evaluations(run: Path, split: str = "val") -> list[dict]:
    rows = [json.loads(line) for line in open(run / "metrics.jsonl")]
    return [r for r in rows if r["split"] == split]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", action="append", required=True, help="LABEL=RUN_DIR")
    ap.add_argument("--out", required=True)
    ap.add_argument("--json")
    args = ap.parse_args()
    from genmodels.plotting import plt, save_figure

    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    table = {}
    for spec in args.run:
        label, run = spec.rsplit("=", 1)
        evals = evaluations(Path(run))
        ref = evals[0]["ref_human_score"]
        kl = [0.0] + [e["kl_ref"] for e in evals]
        score = [ref] + [e["human_score"] for e in evals]
        ax.plot(kl, score, "o-", label=label)
        results = json.loads((Path(run) / "results.json").read_text())
        table[label] = {"val_steps": [e["step"] for e in evals], "val_kl": kl[1:],
                        "val_human_score": score[1:], "val": results["val"],
                        "test": results["test"],
                        "train_time_s": results["train_time_s"],
                        "train_cpu_s": results["train_cpu_s"]}
    ax.set_xlabel("KL(π ‖ π_ref) per completion (nats), held-out prompts")
    ax.set_ylabel("scripted human score, held-out prompts")
    ax.set_title("DPO vs PPO-RLHF: same policy, comparisons and prompts (val)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_figure(fig, Path(args.out))
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=1) + "\n")


if __name__ == "__main__":
    main()
