"""nanoGPT's own ``train.py`` (its CPU recipe for shakespeare_char) vs ``gpt_shakespeare`` vs
``lstm_shakespeare``, one after the other in one sitting, with the same thread count.

    python experiments/gpt_shakespeare/benchmark.py --threads 2 \\
        --nanogpt NANOGPT_CHECKOUT --nanogpt-python NANOGPT_VENV/bin/python

(set-up of the checkout and of its virtualenv: ``benchmarks/PEERS.md``)

1. nanoGPT: ``train.py config/train_shakespeare_char.py`` of the checkout, run by the interpreter
   of nanoGPT's virtualenv in the checkout's folder, with exactly the CPU command line of nanoGPT's
   README (``--device=cpu --compile=False --eval_iters=20 --log_interval=1 --block_size=64
   --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000 --lr_decay_iters=2000
   --dropout=0.0``) plus ``--out_dir`` (where its checkpoint goes; it changes nothing else). Its
   data is prepared by the checkout's own ``data/shakespeare_char/prepare.py``; when its
   ``input.txt`` is missing, genmodels' copy of tiny Shakespeare is put there first (prepare.py
   would download the same file), and the script checks that nanoGPT's train/val split is,
   character for character, genmodels' split. From nanoGPT's stdout: its own val estimates
   (``step N: train loss X, val loss Y``, 20 random batches per split), its per-iteration times
   (``iter N: loss X, time Yms``). Training time = the sum of its per-iteration times minus its
   evaluations (each timed here from the arrival of the line before it to the arrival of its
   ``step N`` line). Its checkpoint (``ckpt.pt``: nanoGPT's config saves it at an evaluation when
   the val estimate improved, so normally at iteration 2,000, just before the last of its 2,001
   updates) is scored by ``score_nanogpt.py`` with nanoGPT's interpreter and ``model.py``;
2. ``genmodels-train experiment=gpt_shakespeare`` through the real trainer, in this process;
3. ``genmodels-train experiment=lstm_shakespeare`` with its step count set so that its training
   time matches nanoGPT's (from a timing probe of 20 steps taken right before).

All three final models are scored on the SAME 2,400 fixed val windows of 64 characters
(``genmodels.data.text.fixed_windows``, seed 12345): mean next-character loss in nats over every
position, nanoGPT's estimator with 10x more windows and no sampling noise between models.
The load average is recorded before each arm and at the end. Writes
``results_peer_threads<N>.json`` next to this file (``--results`` to change it) and the peer's
timestamped stdout under ``--out``.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import peers  # noqa: E402
from genmodels.data.text import decode, fixed_windows, load_shakespeare  # noqa: E402

#: nanoGPT's README, "I only have a macbook": the CPU command line (max_iters and lr_decay_iters
#: come from --nano-iters, 2,000 there)
CPU_OVERRIDES = ["--device=cpu", "--compile=False", "--eval_iters=20", "--log_interval=1",
                 "--block_size=64", "--batch_size=12", "--n_layer=4", "--n_head=4",
                 "--n_embd=128"]
STEP_LINE = re.compile(r"^step (\d+): train loss ([\d.]+), val loss ([\d.]+)")
ITER_LINE = re.compile(r"^iter (\d+): loss ([\d.]+), time ([\d.]+)ms")
BLOCK, N_WINDOWS = 64, 2400


def fixed_val_loss(model, val: torch.Tensor, block_size: int = BLOCK, n: int = N_WINDOWS
                   ) -> float:
    x, y = (t.contiguous() for t in fixed_windows(val, block_size, n))
    model.eval()
    total = 0.0
    with torch.no_grad():
        for xb, yb in zip(x.split(400), y.split(400)):
            total += model(xb, yb)[1].item() * yb.numel()
    model.train()
    return total / y.numel()


# ------------------------------------------------------------------------------ nanoGPT
def prepare_nanogpt_data(checkout: Path, python: Path, corpus, threads: int) -> dict:
    """Run the checkout's prepare.py if its bins are missing; check its split is ours."""
    d = checkout / "data" / "shakespeare_char"
    out = {"prepared_now": False, "input_copied_from_genmodels": False}
    if not all((d / f).is_file() for f in ("train.bin", "val.bin", "meta.pkl")):
        if not (d / "input.txt").is_file():
            shutil.copyfile(corpus.source, d / "input.txt")
            out["input_copied_from_genmodels"] = True
            print(f"copied genmodels' tiny Shakespeare to {d / 'input.txt'}", flush=True)
        subprocess.run([str(python), "data/shakespeare_char/prepare.py"], cwd=checkout,
                       env=peers.peer_env(threads), check=True)
        out["prepared_now"] = True
    with open(d / "meta.pkl", "rb") as f:
        itos = pickle.load(f)["itos"]
    for split, ours in (("train", corpus.train), ("val", corpus.val)):
        ids = np.fromfile(d / f"{split}.bin", dtype=np.uint16)
        if "".join(itos[int(i)] for i in ids) != decode(corpus.chars, ours):
            raise SystemExit(
                f"nanoGPT's {d / (split + '.bin')} is not genmodels' {split} split of "
                f"{corpus.source}: delete train.bin, val.bin, meta.pkl and input.txt in {d} "
                "and run again (the script then prepares them from genmodels' copy)")
    out["split_identical_to_genmodels"] = True
    return out


def parse_nanogpt_log(lines: list[tuple[float, str]]) -> dict:
    """nanoGPT's evaluations and per-iteration times from its timestamped stdout."""
    evals, iters = [], []
    loop_s = eval_s = train_s = 0.0
    prev_t, first_t = None, lines[0][0] if lines else 0.0
    pending_eval = 0.0
    for t, text in lines:
        if m := STEP_LINE.match(text):
            dt_eval = t - prev_t if prev_t is not None else 0.0
            pending_eval += dt_eval
            evals.append({"iter": int(m[1]), "train_loss": float(m[2]), "val_loss": float(m[3]),
                          "eval_s": dt_eval, "train_s_before": train_s,
                          "t_since_first_line_s": t - first_t})
        elif m := ITER_LINE.match(text):
            dt = float(m[3]) / 1e3
            iters.append((int(m[1]), float(m[2]), dt))
            loop_s += dt
            eval_s += pending_eval
            train_s += dt - pending_eval
            pending_eval = 0.0
        prev_t = t
    return {"evals": evals, "iterations": len(iters), "loop_s": loop_s, "eval_s": eval_s,
            "train_s": train_s, "last_train_loss": iters[-1][1] if iters else None,
            "first_line_s": first_t}


def run_nanogpt(a, corpus, out: Path) -> dict:
    checkout, python = a.nanogpt, a.nanogpt_python
    info = peers.python_info(python)
    data = prepare_nanogpt_data(checkout, python, corpus, a.threads)
    run_dir = (out / "nanogpt").resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "ckpt.pt").unlink(missing_ok=True)     # never score a stale checkpoint
    overrides = CPU_OVERRIDES + [f"--max_iters={a.nano_iters}", f"--lr_decay_iters={a.nano_iters}",
                                 "--dropout=0.0"]
    cmd = [str(python), "train.py", "config/train_shakespeare_char.py", *overrides,
           f"--out_dir={run_dir}", *a.nano_override]
    print("nanoGPT:", " ".join(cmd[1:]), f"(in the checkout, OMP_NUM_THREADS={a.threads})",
          flush=True)
    run = peers.run_streaming(cmd, checkout, peers.peer_env(a.threads), run_dir / "stdout.log")
    log = parse_nanogpt_log(run["lines"])
    if log["iterations"] != a.nano_iters + 1:
        raise SystemExit(f"nanoGPT printed {log['iterations']} iterations, expected "
                         f"{a.nano_iters + 1}: see {run_dir / 'stdout.log'}")
    ckpt = run_dir / "ckpt.pt"
    if not ckpt.is_file():
        raise SystemExit("nanoGPT saved no checkpoint: its config saves one at an evaluation "
                         "(every eval_interval = 250 iterations) where the val estimate improved; "
                         "for fewer iterations add --nano-override=--eval_interval=N")
    x, y = fixed_windows(corpus.val, BLOCK, N_WINDOWS)
    npz = run_dir / "fixed_windows.npz"
    np.savez(npz, x=x.numpy(), y=y.numpy(), chars=np.array(corpus.chars))
    score = subprocess.run([str(python), str(HERE / "score_nanogpt.py"), "--nanogpt",
                            str(checkout), "--ckpt", str(ckpt), "--windows", str(npz)],
                           capture_output=True, text=True, env=peers.peer_env(a.threads))
    if score.returncode != 0:
        raise SystemExit(f"score_nanogpt.py failed:\n{score.stderr[-2000:]}")
    scored = json.loads(score.stdout.strip().splitlines()[-1])
    return {"checkout": str(checkout), "commit": peers.git_commit(checkout),
            "interpreter": info, "command": cmd,
            "threads_env": a.threads, "data": data,
            "iterations": log["iterations"], "train_s": log["train_s"],
            "loop_s_with_evals": log["loop_s"], "eval_s": log["eval_s"],
            "wall_s_from_spawn": run["wall_s"],
            "wall_s_from_first_line": run["wall_s"] - log["first_line_s"],
            "first_line_s_after_spawn": log["first_line_s"],
            "own_estimate_val": log["evals"][-1]["val_loss"] if log["evals"] else None,
            "own_estimate_train": log["evals"][-1]["train_loss"] if log["evals"] else None,
            "last_train_loss": log["last_train_loss"],
            "val_loss_fixed": scored["val_loss_fixed"], "scored_checkpoint": scored,
            "history": log["evals"], "log": str(run_dir / "stdout.log")}


# ------------------------------------------------------------------------------ genmodels
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


# ------------------------------------------------------------------------------ main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nanogpt", required=True, metavar="PATH",
                   help=f"a checkout of {peers.NANOGPT_REPO} (see benchmarks/PEERS.md)")
    p.add_argument("--nanogpt-python", required=True, metavar="PYTHON",
                   help="the python of nanoGPT's virtualenv (VENV/bin/python)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--ours", nargs="*", default=[], help="extra overrides for gpt_shakespeare")
    p.add_argument("--lstm", nargs="*", default=[], help="extra overrides for lstm_shakespeare")
    p.add_argument("--skip-lstm", action="store_true")
    p.add_argument("--nano-iters", type=int, default=2000,
                   help="nanoGPT's --max_iters and --lr_decay_iters (2000: its README; less for "
                        "smoke tests only)")
    p.add_argument("--nano-override", action="append", default=[], metavar="--KEY=VALUE",
                   help="one more train.py override, for smoke tests only (written "
                        "--nano-override=--eval_interval=10); recorded in the results")
    p.add_argument("--out", default=str(ROOT / "outputs" / "benchmark_gpt_shakespeare"),
                   help="run folders (nanoGPT's checkpoint and log, our runs)")
    p.add_argument("--results", default=None,
                   help="results JSON (default: results_peer_threads<N>.json next to this file)")
    a = p.parse_args(argv)
    try:
        a.nanogpt = peers.check_checkout(a.nanogpt, "--nanogpt", peers.NANOGPT_FILES,
                                         peers.NANOGPT_REPO)
        a.nanogpt_python = peers.check_python(a.nanogpt_python, "--nanogpt-python")
    except peers.PeerError as e:
        p.error(str(e))
    for o in a.nano_override:
        if not (o.startswith("--") and "=" in o):
            p.error(f"--nano-override: {o!r} is not of the form --key=value")
    if a.threads < 1:
        p.error("--threads: must be at least 1")
    return a


def main(argv=None):
    a = parse_args(argv)
    torch.set_num_threads(a.threads)
    threads = [f"trainer.threads={a.threads}"]
    out = Path(a.out)
    corpus = load_shakespeare()
    result = {"threads": a.threads, "corpus": Path(corpus.source).name,
              "command": "python " + " ".join(sys.argv), "torch": torch.__version__,
              "load_avg": {"start": peers.load_average()}}

    # 1. nanoGPT's own train.py
    nano = run_nanogpt(a, corpus, out)
    result["nanogpt"] = nano
    result["load_avg"]["after_nanogpt"] = peers.load_average()
    print(f"nanoGPT: {nano['train_s']:.1f} s training ({nano['loop_s_with_evals']:.1f} s with "
          f"evals, {nano['wall_s_from_spawn']:.1f} s from the subprocess start), val "
          f"{nano['val_loss_fixed']:.4f} on the fixed windows (iteration "
          f"{nano['scored_checkpoint']['ckpt_iter_num']}'s checkpoint; its own estimate "
          f"{nano['own_estimate_val']})", flush=True)
    budget = nano["train_s"]

    # 2. ours
    ours = run_ours("gpt_shakespeare", threads + a.ours, out / "gpt_shakespeare")
    result["gpt_shakespeare"] = ours
    result["load_avg"]["after_gpt_shakespeare"] = peers.load_average()
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
    result["load_avg"]["end"] = peers.load_average()

    # nanoGPT's own val estimate at the last evaluation it had reached by ours' training time
    reached = [e for e in nano["history"] if e["train_s_before"] <= ours["train_s"]]
    result["ratios"] = {
        "gpt_train_time_over_nanogpt": ours["train_s"] / budget,
        "gpt_val_minus_nanogpt": ours["val_loss_fixed"] - nano["val_loss_fixed"],
        "nanogpt_own_val_estimate_at_gpt_train_time": (
            {"iter": reached[-1]["iter"], "val_loss": reached[-1]["val_loss"],
             "train_s": reached[-1]["train_s_before"]} if reached else None),
    }
    if "lstm_shakespeare" in result:
        result["ratios"]["lstm_train_time_over_nanogpt"] = (
            result["lstm_shakespeare"]["train_s"] / budget)
    result["bits_per_char"] = {k: result[k]["val_loss_fixed"] / math.log(2)
                               for k in ("nanogpt", "gpt_shakespeare", "lstm_shakespeare")
                               if k in result}
    path = Path(a.results) if a.results else HERE / f"results_peer_threads{a.threads}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(peers.scrub(json.dumps(result, indent=1), {
        a.nanogpt: "NANOGPT_CHECKOUT", a.nanogpt_python: "NANOGPT_PYTHON", out.resolve(): "OUT",
        ROOT: "."}) + "\n")
    print(json.dumps(result["ratios"], indent=1))
    print(f"load average: {result['load_avg']}")
    print(f"wrote {path}")


if __name__ == "__main__":
    try:
        main()
    except peers.PeerError as e:
        sys.exit(f"error: {e}")
