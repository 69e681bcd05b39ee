"""Loss curves and results.json of experiments/gpt_rope (the runs of run.sh).

    python experiments/gpt_rope/plot.py [outputs/gpt_rope]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from genmodels.plotting import plt, save_figure

HERE = Path(__file__).resolve().parent
ARMS = {"learned": "learned positions (GPT), 1,600 steps", "rope": "RoPE, 1,600 steps",
        "rope_1260": "RoPE, 1,260 steps (~equal CPU)"}


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "outputs/gpt_rope")
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    out = {}
    for arm, label in ARMS.items():
        if not (root / arm / "results.json").exists():
            continue
        rows = [json.loads(line) for line in open(root / arm / "metrics.jsonl")]
        res = json.loads((root / arm / "results.json").read_text())
        val = [(r["step"], r["loss"]) for r in rows if r.get("split") == "val"]
        train = [(r["step"], r["loss"]) for r in rows if r.get("split") == "train"]
        ax1.plot(*zip(*val), "o-", ms=3, label=label)
        ax2.plot(*zip(*train), lw=0.8, alpha=0.8, label=label)
        out[arm] = {"final_val_loss_nats_per_char": val[-1][1],
                    "final_val_bits_per_char": val[-1][1] / 0.6931471805599453,
                    "val_curve": val, "train_cpu_s": res.get("train_cpu_s"),
                    "train_time_s": res.get("train_time_s"), "results": res}
    ax1.set_xlabel("step")
    ax1.set_ylabel("val loss (nats/char, 2,400 fixed windows)")
    ax1.set_ylim(top=2.6)
    ax1.legend()
    ax2.set_xlabel("step")
    ax2.set_ylabel("train loss (nats/char)")
    ax2.set_ylim(top=3.0)
    ax2.legend()
    fig.suptitle("gpt_shakespeare: learned positions vs RoPE (same seed and batches)",
                 fontsize=10)
    save_figure(fig, HERE / "loss_curves.png", dpi=110)
    (HERE / "results.json").write_text(json.dumps(out, indent=2))
    for arm in out:
        print(f"{arm:8s} val {out[arm]['final_val_loss_nats_per_char']:.4f} nats/char "
              f"({out[arm]['final_val_bits_per_char']:.4f} bits), train CPU "
              f"{out[arm]['train_cpu_s']} s, wall {out[arm]['train_time_s']} s")


if __name__ == "__main__":
    main()
