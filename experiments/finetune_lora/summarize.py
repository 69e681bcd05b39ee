"""Mean ± sd over seeds of full fine-tuning and each LoRA setting (the runs of run_seeds.sh),
the paired differences LoRA − full (same seed, same split), and results.json.

    python experiments/finetune_lora/summarize.py [outputs/finetune_lora/seeds]
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def ms(xs, scale=100.0, digits=1):
    sd = statistics.stdev(xs) if len(xs) > 1 else float("nan")
    return f"{scale * statistics.mean(xs):.{digits}f} ± {scale * sd:.{digits}f}"


def main() -> None:
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "outputs/finetune_lora/seeds")
    arms = {}
    for arm_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        runs = {}
        for res in sorted(arm_dir.glob("s*/results.json")):
            r = json.loads(res.read_text())
            rows = [json.loads(x) for x in open(res.parent / "metrics.jsonl")]
            frac = [x["trained_fraction"] for x in rows if "trained_fraction" in x]
            runs[res.parent.name] = {"test_accuracy": r["test"]["accuracy"],
                                     "val_accuracy": r["val"]["accuracy"],
                                     "test_loss": r["test"]["loss"],
                                     "chance_test": r["test"]["chance"],
                                     "trained_fraction": frac[-1] if frac else None,
                                     "train_cpu_s": r.get("train_cpu_s"),
                                     "train_time_s": r.get("train_time_s")}
        if runs:
            arms[arm_dir.name] = runs
    print("| arm | seeds | test accuracy % (mean ± sd) | per seed | val accuracy % | test loss | "
          "trained fraction | train CPU s / run |")
    print("|---|---|---|---|---|---|---|---|")
    for arm, runs in arms.items():
        r = list(runs.values())
        per_seed = " / ".join(f"{100 * x['test_accuracy']:.1f}" for x in r)
        print(f"| {arm} | {len(r)} | {ms([x['test_accuracy'] for x in r])} | {per_seed} | "
              f"{ms([x['val_accuracy'] for x in r])} | {ms([x['test_loss'] for x in r], 1, 3)} | "
              f"{100 * r[0]['trained_fraction']:.2f} % | "
              f"{statistics.mean(x['train_cpu_s'] for x in r):.0f} |")
    paired = {}
    for arm, runs in arms.items():
        if arm == "full":
            continue
        seeds = sorted(set(runs) & set(arms.get("full", {})))
        d = [runs[s]["test_accuracy"] - arms["full"][s]["test_accuracy"] for s in seeds]
        if d:
            paired[arm] = {"seeds": seeds, "test_accuracy_diff": d,
                           "mean": statistics.mean(d),
                           "sd": statistics.stdev(d) if len(d) > 1 else None}
            print(f"- {arm} − full: test accuracy {ms(d)} points "
                  f"(per seed {', '.join(f'{100 * x:+.1f}' for x in d)})")
    from genmodels.plotting import plt, save_figure
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.8))
    for i, (arm, runs) in enumerate(arms.items()):
        accs = [100 * x["test_accuracy"] for x in runs.values()]
        ax1.plot([i] * len(accs), accs, "o", alpha=0.6)
        ax1.plot([i - 0.2, i + 0.2], [statistics.mean(accs)] * 2, "k-")
        chance = [100 * x["chance_test"] for x in runs.values()]
        ax1.plot([i - 0.3, i + 0.3], [statistics.mean(chance)] * 2, ":", color="gray")
        rows = [json.loads(x) for x in open(root / arm / "s0" / "metrics.jsonl")]
        val = [(r["step"], 100 * r["accuracy"]) for r in rows if r.get("split") == "val"]
        ax2.plot(*zip(*val), "o-", ms=3, label=arm)
    ax1.set_xticks(range(len(arms)), list(arms), fontsize=8)
    ax1.set_ylabel("test accuracy %")
    ax1.set_title("dots: seeds; bar: mean; dotted: majority class", fontsize=8)
    ax2.set_xlabel("step")
    ax2.set_ylabel("val accuracy % (seed 0)")
    ax2.legend(fontsize=8)
    fig.suptitle("finetune_shakespeare speaker task: full fine-tuning vs LoRA", fontsize=10)
    save_figure(fig, HERE / "accuracy.png", dpi=110)
    (HERE / "results.json").write_text(json.dumps({"arms": arms, "paired_vs_full": paired},
                                                  indent=2))


if __name__ == "__main__":
    main()
