"""Time to solve CartPole-v1: CleanRL's own ``cleanrl/ppo.py`` vs genmodels' ``ppo_cartpole``.

    python benchmarks/ppo_cartpole_vs_cleanrl.py --seeds 1 2 3 4 5 --threads 1 \\
        --cleanrl CLEANRL_CHECKOUT --cleanrl-python CLEANRL_VENV/bin/python \\
        --out experiments/ppo_cartpole/benchmark_peer.json

(set-up of the checkout and of its virtualenv, gymnasium 0.29.1 among others:
``benchmarks/PEERS.md``)

For each seed, back to back so that both see the same machine load:

1. ``CLEANRL_PYTHON CLEANRL_CHECKOUT/cleanrl/ppo.py --seed S`` — CleanRL's file itself, with its
   defaults (CartPole-v1, 500,000 steps, 4 envs × 128 steps, …; tracking and video capture are
   off by default), run in a folder of its own under ``--out-dir`` (its TensorBoard events go to
   ``runs/`` there), ``OMP_NUM_THREADS=--threads``. Its stdout has one line per finished episode,
   ``global_step=G, episodic_return=[R]``, and one ``SPS: N`` line per iteration;
2. ``genmodels-train experiment=ppo_cartpole seed=S trainer.threads=--threads``.

"Solved" is genmodels' definition (``genmodels/rl/task_ppo.py``, ``solved_time_s``): the first
finished episode after which at least 100 episodes have ended and the mean return of the last 100
is ≥ 475 (``PPOConfig.return_window``, ``target_return``). For CleanRL the script applies it to
the episode lines as they arrive and reports the step G of that line and three times to it:

* ``solve_s_from_spawn``: from the start of the subprocess (Python, torch and gymnasium imports
  included);
* ``solve_s_from_first_line``: from the arrival of CleanRL's first log line, which is its first
  finished episode (a few dozen env steps after its ``start_time``);
* ``solve_s_own_clock``: from CleanRL's own ``start_time`` (just before the first ``reset``),
  placed on our clock from its ``SPS`` lines (SPS = global_step / (time − start_time), printed at
  the end of each iteration; the median over the iterations before the solve).

genmodels' ``solved_time_s`` counts the wall time inside its training steps from the first
rollout, its own clock: it compares with ``solve_s_own_clock`` (CleanRL's clock also runs through
its TensorBoard writes; genmodels' stops between trainer steps). Both whole commands' wall times
are reported too. CleanRL is stopped (SIGTERM) once solved unless ``--run-to-end``: nothing
before that point changes. The load average is recorded before each run.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import peers  # noqa: E402

EPISODE_LINE = re.compile(r"^global_step=(\d+), episodic_return=\[?\s*([-+\d.eE]+)\s*\]?")
SPS_LINE = re.compile(r"^SPS: (\d+)")
#: CleanRL's ppo.py defaults: num_envs × num_steps env steps per iteration
CLEANRL_BATCH = 4 * 128


def solve_rule() -> tuple[int, float]:
    from genmodels.rl.config import PPOConfig

    c = PPOConfig()
    return c.return_window, c.target_return


class SolveTracker:
    """Reads CleanRL's ppo.py stdout line by line (``feed``) and applies genmodels' "solved" rule.

    ``feed(t, line)`` (t: seconds since the spawn) returns True on the line whose episode solves.
    ``start_estimates``: CleanRL's ``start_time`` on our clock, one per ``SPS`` line
    (t − iteration · batch / SPS).
    """

    def __init__(self, window: int, target: float, batch: int = CLEANRL_BATCH):
        self.window, self.target, self.batch = window, target, batch
        self.recent: collections.deque = collections.deque(maxlen=window)
        self.episodes, self.last_step = 0, 0
        self.first_t: float | None = None
        self.solved: dict | None = None
        self.start_estimates: list[float] = []

    def feed(self, t: float, text: str) -> bool:
        if self.first_t is None:
            self.first_t = t
        if m := EPISODE_LINE.match(text):
            self.episodes += 1
            self.last_step = int(m[1])
            self.recent.append(float(m[2]))
            if (self.solved is None and len(self.recent) == self.window
                    and sum(self.recent) / self.window >= self.target):
                self.solved = {"global_step": int(m[1]), "episodes": self.episodes, "t": t}
                return True
        elif (m := SPS_LINE.match(text)) and int(m[1]) > 0:
            k = len(self.start_estimates) + 1
            self.start_estimates.append(t - k * self.batch / int(m[1]))
        return False

    def times(self) -> dict:
        """Seconds to the solve from the spawn, from the first line, from CleanRL's start_time."""
        s = self.solved
        if s is None:
            return {"solve_s_from_spawn": None, "solve_s_from_first_line": None,
                    "solve_s_own_clock": None}
        own = (s["t"] - statistics.median(self.start_estimates)
               if self.start_estimates else None)
        return {"solve_s_from_spawn": round(s["t"], 2),
                "solve_s_from_first_line": round(s["t"] - self.first_t, 2),
                "solve_s_own_clock": None if own is None else round(own, 2)}


def run_cleanrl(a, seed: int, window: int, target: float) -> dict:
    run_dir = (Path(a.out_dir) / f"cleanrl_seed{seed}").resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    cmd = [str(a.cleanrl_python), str(a.cleanrl / "cleanrl" / "ppo.py"), "--seed", str(seed)]
    if a.total_timesteps:
        cmd += ["--total-timesteps", str(a.total_timesteps)]
    tr = SolveTracker(window, target)
    load = peers.load_average()
    run = peers.run_streaming(cmd, run_dir, peers.peer_env(a.threads), run_dir / "stdout.log",
                              lambda t, text: tr.feed(t, text) and not a.run_to_end)
    if tr.episodes == 0:
        raise SystemExit(
            f"CleanRL's ppo.py printed no episode (see {run_dir / 'stdout.log'}): its logging "
            "reads infos['final_info'] as gymnasium 0.29 lays it out; under gymnasium >= 1.0 it "
            "logs nothing. Install gymnasium==0.29.1 in its virtualenv (benchmarks/PEERS.md)")
    s = tr.solved
    return {"impl": "cleanrl_ppo.py", "seed": seed, "solved": s is not None,
            "solve_step": s and s["global_step"], "solve_episodes": s and s["episodes"],
            **tr.times(), "first_line_s_after_spawn": round(tr.first_t, 3),
            "episodes": tr.episodes, "last_global_step": tr.last_step,
            "last100_mean": round(sum(tr.recent) / len(tr.recent), 1),
            "stopped_at_solve": run["stopped"], "command_wall_s": round(run["wall_s"], 2),
            "load_avg_before": load, "threads_env": a.threads,
            "command": cmd, "log": str(run_dir / "stdout.log")}


def run_genmodels(seed: int, threads: int, extra: list[str]) -> dict:
    load = peers.load_average()
    overrides = ["experiment=ppo_cartpole", f"seed={seed}", f"trainer.threads={threads}",
                 "trainer.progress=false", "trainer.figures=false", *extra]
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "genmodels.train.cli", *overrides,
                        f"hydra.run.dir={tmp}/run"], capture_output=True, text=True, check=True,
                       cwd=tmp, env=os.environ | {"OMP_NUM_THREADS": str(threads),
                                                  "MKL_NUM_THREADS": str(threads)})
        wall = time.perf_counter() - t0
        res = json.loads(Path(tmp, "run", "results.json").read_text())
    test = res["test"]
    solved = test["solved_time_s"] >= 0
    return {"impl": "genmodels_ppo_cartpole", "seed": seed, "solved": solved,
            "solve_step": int(test["solved_env_steps"]) if solved else None,
            "solve_time_s": round(test["solved_time_s"], 2) if solved else None,
            "train_time_s": res["train_time_s"], "test_return_mean": test["return_mean"],
            "command_wall_s": round(wall, 2), "load_avg_before": load,
            "command": ["genmodels-train", *overrides]}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cleanrl", required=True, metavar="PATH",
                   help=f"a checkout of {peers.CLEANRL_REPO} (see benchmarks/PEERS.md)")
    p.add_argument("--cleanrl-python", required=True, metavar="PYTHON",
                   help="the python of CleanRL's virtualenv (VENV/bin/python)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--total-timesteps", type=int, default=None,
                   help="CleanRL's --total-timesteps (default: ppo.py's own, 500000; it also "
                        "sets the length of its learning-rate annealing)")
    p.add_argument("--run-to-end", action="store_true",
                   help="let CleanRL run all its steps instead of stopping it once solved")
    p.add_argument("--out", default=None, help="results JSON")
    p.add_argument("--out-dir", default=str(ROOT / "outputs" / "benchmark_ppo_cleanrl"),
                   help="CleanRL's run folders (its stdout log, TensorBoard events)")
    p.add_argument("extra", nargs="*", help="overrides passed to genmodels-train")
    a = p.parse_args(argv)
    try:
        a.cleanrl = peers.check_checkout(a.cleanrl, "--cleanrl", peers.CLEANRL_FILES,
                                         peers.CLEANRL_REPO)
        a.cleanrl_python = peers.check_python(a.cleanrl_python, "--cleanrl-python")
    except peers.PeerError as e:
        p.error(str(e))
    if a.threads < 1:
        p.error("--threads: must be at least 1")
    return a


def main(argv=None):
    a = parse_args(argv)
    window, target = solve_rule()
    info = peers.python_info(a.cleanrl_python, ("torch", "numpy", "gymnasium", "tyro",
                                                "tensorboard"))
    if not info["gymnasium"].startswith("0.29"):
        print(f"warning: gymnasium {info['gymnasium']} in CleanRL's venv; ppo.py was written "
              "for 0.29.1 (CleanRL's pin)", flush=True)
    meta = {"cleanrl_commit": peers.git_commit(a.cleanrl), "cleanrl_interpreter": info,
            "threads": a.threads, "solve_rule": {"window": window, "target": target},
            "command": "python " + " ".join(sys.argv), "load_avg_start": peers.load_average()}
    print(json.dumps(meta), flush=True)
    rows = []
    for seed in a.seeds:
        rows.append(run_cleanrl(a, seed, window, target))
        print(json.dumps({k: v for k, v in rows[-1].items() if k not in ("command", "log")}),
              flush=True)
        rows.append(run_genmodels(seed, a.threads, a.extra))
        print(json.dumps({k: v for k, v in rows[-1].items() if k != "command"}), flush=True)
    meta["load_avg_end"] = peers.load_average()
    print("seed | CleanRL: step, s own clock (s from first line, s from spawn) | "
          "ppo_cartpole: step, s | ratio to CleanRL's own clock")
    for c, g in zip(rows[::2], rows[1::2]):
        ratio = (g["solve_time_s"] / c["solve_s_own_clock"]
                 if g["solved"] and c["solved"] and c["solve_s_own_clock"] else None)
        print(f"{c['seed']} | {c['solve_step']}, {c['solve_s_own_clock']} "
              f"({c['solve_s_from_first_line']}, {c['solve_s_from_spawn']}) | "
              f"{g['solve_step']}, {g['solve_time_s']} | "
              f"{'-' if ratio is None else f'{ratio:.3f}'}")
    print(f"load average: start {meta['load_avg_start']}, end {meta['load_avg_end']}")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps({"meta": meta, "rows": rows}, indent=1)
        Path(a.out).write_text(peers.scrub(text, {
            a.cleanrl: "CLEANRL_CHECKOUT", a.cleanrl_python: "CLEANRL_PYTHON",
            Path(a.out_dir).resolve(): "OUT_DIR", ROOT: "."}) + "\n")


if __name__ == "__main__":
    try:
        main()
    except peers.PeerError as e:
        sys.exit(f"error: {e}")
