"""nanoGPT's CPU recipe for shakespeare_char vs `gpt_shakespeare` vs `lstm_shakespeare`, in one
process, one after the other, with the same thread count.

    python experiments/gpt_shakespeare/benchmark.py --threads 1

1. the nanoGPT reference (nanogpt_reference.py: its model, AdamW groups, schedule and loop;
   2,001 iterations of batch 12, evaluations every 250 iterations on 20 batches per split);
2. ``genmodels-train experiment=gpt_shakespeare`` through the real trainer;
3. ``genmodels-train experiment=lstm_shakespeare`` with its step count set so that its training
   time matches nanoGPT's (from a timing probe of 20 steps taken right before).

All three final models are scored on the SAME 2,400 fixed val windows of 64 characters
(``genmodels.data.text.fixed_windows``, seed 12345): mean next-character loss in nats over every
position, nanoGPT's estimator with 10x more windows and no sampling noise between models.
Times: training time (evaluations excluded) as wall seconds and as process CPU seconds. The
machine is shared, so only ratios measured in the same run are meaningful.
Writes results_threads<N>.json next to this file.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

import nanogpt_reference as ng  # noqa: E402
from genmodels.data.text import fixed_windows, load_shakespeare  # noqa: E402


def fixed_val_loss(model, val: torch.Tensor, block_size: int = 64, n: int = 2400) -> float:
    x, y = (t.contiguous() for t in fixed_windows(val, block_size, n))
    model.eval()
    total = 0.0
    with torch.no_grad():
        for xb, yb in zip(x.split(400), y.split(400)):
            total += model(xb, yb)[1].item() * yb.numel()
    model.train()
    return total / y.numel()


def run_ours(experiment: str, overrides: list[str], out_dir: Path) -> dict:
    from hydra import compose, initialize_config_dir

    from genmodels.train.config import register_all, to_object
    from genmodels.train.trainer import Trainer

    register_all()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        cfg = to_object(compose("config", [f"experiment={experiment}", "trainer.progress=false",
                                           "trainer.resume=false", *overrides]))
    trainer = Trainer(cfg, out_dir)
    w0, c0 = time.perf_counter(), time.process_time()
    res = trainer.fit()
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    rows = [json.loads(line) for line in open(out_dir / "metrics.jsonl")]
    train_rows = [r for r in rows if r["split"] == "train"]
    return {"experiment": experiment, "overrides": overrides, "steps": res["step"],
            "train_s": res["train_time_s"], "fit_wall_s": wall, "fit_cpu_s": cpu,
            "val_loss_fixed": res["val"]["loss"], "last_train_loss": train_rows[-1]["loss"],
            "val_curve": [(r["step"], r["loss"]) for r in rows if r["split"] == "val"],
            "run_dir": str(out_dir)}


def probe_step_time(experiment: str, overrides: list[str], out_dir: Path, steps: int = 20
                    ) -> float:
    r = run_ours(experiment, overrides + [f"trainer.max_steps={steps}", "trainer.eval_every=0",
                                          "trainer.figures=false", "model.eval_windows=40",
                                          "trainer.scheduler.warmup_steps=0"], out_dir)
    return r["train_s"] / steps


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ours", nargs="*", default=[], help="extra overrides for gpt_shakespeare")
    p.add_argument("--lstm", nargs="*", default=[], help="extra overrides for lstm_shakespeare")
    p.add_argument("--skip-lstm", action="store_true")
    p.add_argument("--nano-iters", type=int, default=2000, help="nanoGPT's max_iters (smoke tests)")
    p.add_argument("--out", default=str(ROOT / "outputs" / "benchmark_gpt_shakespeare"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    threads = [f"trainer.threads={a.threads}"]
    out = Path(a.out)
    corpus = load_shakespeare()
    result = {"threads": a.threads, "corpus": corpus.source,
              "command": "python " + " ".join(sys.argv)}
    try:
        import os
        result["load_avg_at_start"] = os.getloadavg()
    except OSError:
        pass

    # 1. nanoGPT's recipe
    c = ng.NanoConfig(vocab_size=corpus.vocab_size, max_iters=a.nano_iters,
                      lr_decay_iters=a.nano_iters)
    w0, c0 = time.perf_counter(), time.process_time()
    nano = ng.train(corpus.train, corpus.val, c, log=lambda s: print(s, flush=True))
    nano_cpu = time.process_time() - c0
    nano_fixed = fixed_val_loss(nano["model"], corpus.val)
    result["nanogpt"] = {"config": {k: v for k, v in vars(c).items()},
                         "iterations": c.max_iters + 1, "train_s": nano["train_s"],
                         "wall_s_with_evals": nano["wall_s"], "cpu_s_with_evals": nano_cpu,
                         "own_estimate_val": nano["last_estimate"]["val"],
                         "own_estimate_train": nano["last_estimate"]["train"],
                         "val_loss_fixed": nano_fixed, "history": nano["history"]}
    print(f"nanoGPT: {nano['train_s']:.1f} s training ({nano['wall_s']:.1f} s with evals), "
          f"val {nano_fixed:.4f} on the fixed windows (its own estimate "
          f"{nano['last_estimate']['val']:.4f})", flush=True)
    budget = nano["train_s"]

    # 2. ours
    ours = run_ours("gpt_shakespeare", threads + a.ours, out / "gpt_shakespeare")
    result["gpt_shakespeare"] = ours
    print(f"gpt_shakespeare: {ours['train_s']:.1f} s training, val {ours['val_loss_fixed']:.4f}",
          flush=True)

    # 3. the LSTM at the same training-time budget
    if not a.skip_lstm:
        per_step = probe_step_time("lstm_shakespeare", threads + a.lstm, out / "lstm_probe")
        steps = max(50, int(budget / per_step))
        warm = min(50, steps // 10)
        lstm = run_ours("lstm_shakespeare", threads + a.lstm +
                        [f"trainer.max_steps={steps}", f"trainer.scheduler.warmup_steps={warm}",
                         f"trainer.eval_every={max(1, steps // 4)}"], out / "lstm_shakespeare")
        lstm["probe_s_per_step"] = per_step
        result["lstm_shakespeare"] = lstm
        print(f"lstm_shakespeare: {steps} steps, {lstm['train_s']:.1f} s training, "
              f"val {lstm['val_loss_fixed']:.4f}", flush=True)

    result["ratios"] = {
        "gpt_train_time_over_nanogpt": ours["train_s"] / budget,
        "gpt_val_minus_nanogpt": ours["val_loss_fixed"] - nano_fixed,
    }
    if "lstm_shakespeare" in result:
        result["ratios"]["lstm_train_time_over_nanogpt"] = (
            result["lstm_shakespeare"]["train_s"] / budget)
    result["bits_per_char"] = {k: result[k]["val_loss_fixed"] / math.log(2)
                               for k in ("nanogpt", "gpt_shakespeare", "lstm_shakespeare")
                               if k in result}
    path = HERE / f"results_threads{a.threads}.json"
    path.write_text(json.dumps(result, indent=1))
    print(json.dumps(result["ratios"], indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
