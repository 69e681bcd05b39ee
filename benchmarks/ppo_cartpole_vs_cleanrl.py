"""Time to solve CartPole-v1: CleanRL's ppo.py (re-typed reference) vs genmodels' ppo_cartpole.

For each seed, runs the reference (benchmarks/ppo_cleanrl_reference.py, CleanRL defaults) and
then ``genmodels-train experiment=ppo_cartpole seed=S`` back to back, so both see the same
machine load. "Solved" = the mean of the last 100 episodic returns of training first reaches
475; the time is wall-clock from the start of the first rollout (both programs measure it the
same way), and the whole command's wall time is reported too.

    python benchmarks/ppo_cartpole_vs_cleanrl.py --seeds 1 2 3 4 5 --out experiments/ppo_cartpole/benchmark.json
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def run_reference(seed: int, threads: int) -> dict:
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, str(HERE / "ppo_cleanrl_reference.py"), "--seed",
                          str(seed), "--threads", str(threads)],
                         capture_output=True, text=True, check=True)
    res = json.loads(out.stdout.strip().splitlines()[-1])
    res["command_wall_s"] = round(time.perf_counter() - t0, 2)
    return res


def run_genmodels(seed: int, extra: list[str]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "genmodels.train.cli", "experiment=ppo_cartpole",
                        f"seed={seed}", "trainer.progress=false", "trainer.figures=false",
                        f"hydra.run.dir={tmp}/run", *extra],
                       capture_output=True, text=True, check=True, cwd=tmp)
        wall = time.perf_counter() - t0
        res = json.loads(Path(tmp, "run", "results.json").read_text())
    test = res["test"]
    solved = test["solved_time_s"] >= 0
    return {"impl": "genmodels_ppo_cartpole", "seed": seed, "solved": solved,
            "solve_step": int(test["solved_env_steps"]) if solved else None,
            "solve_time_s": round(test["solved_time_s"], 2) if solved else None,
            "train_time_s": res["train_time_s"], "test_return_mean": test["return_mean"],
            "command_wall_s": round(wall, 2)}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None)
    p.add_argument("--skip-reference", action="store_true")
    p.add_argument("extra", nargs="*", help="overrides passed to genmodels-train")
    a = p.parse_args()
    rows = []
    for seed in a.seeds:
        if not a.skip_reference:
            rows.append(run_reference(seed, a.threads))
            print(json.dumps(rows[-1]), flush=True)
        rows.append(run_genmodels(seed, a.extra))
        print(json.dumps(rows[-1]), flush=True)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
