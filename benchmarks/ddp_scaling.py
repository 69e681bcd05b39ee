"""DDP throughput: training samples per second of ``genmodels-train`` with 1 and 2 processes.

    python benchmarks/ddp_scaling.py                       # the table in experiments/ddp_scaling
    python benchmarks/ddp_scaling.py --steps 20 --repeats 1 --out /tmp/ddp   # a quick check

Strong scaling: the global batch is the experiment's ``trainer.batch_size`` in every setting, so
N processes each compute 1/N of it. Settings, each the real command (``torchrun`` for N > 1):

* ``1 process × 1 thread`` — the baseline;
* ``1 process × N threads`` — the other way to use N cores: intra-op parallelism;
* ``N processes × 1 thread`` — DDP over gloo, each process on its share.

Throughput = global batch × timed steps / training seconds, where the training seconds are the
trainer's own ``train_time_s`` (rank 0's wall time inside training steps, so start-up and
evaluation are excluded) between the first logged step (the warm-up) and the last. Settings are
run round-robin, ``--repeats`` times, and the median is reported (benchmarks/timing.py explains
why). The table goes to ``experiments/ddp_scaling/results.json`` and between the table markers
of its README.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from timing import machine  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "experiments" / "ddp_scaling"
#: experiment -> overrides that keep evaluation short (it is not timed, only waited for)
FAMILIES = {
    "gpt_embedded": ["model.eval_windows=64"],
    "vae_digits": ["model.iwae_k=10", "model.iwae_max_images=100"],
}
BEGIN = "<!-- ddp_scaling table: written by benchmarks/ddp_scaling.py -->"
END = "<!-- end of table -->"


def run_once(experiment: str, nproc: int, threads: int, steps: int, warmup: int, work: Path) -> float:
    """Samples per second of one real training run."""
    out = work / f"{experiment}_{nproc}x{threads}"
    launcher = [sys.executable]
    if nproc > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    args = [f"experiment={experiment}", *FAMILIES[experiment], f"trainer.max_steps={steps}",
            f"trainer.log_every={warmup}", "trainer.eval_every=0", f"trainer.ckpt_every={steps}",
            "trainer.scheduler.warmup_steps=0", "trainer.figures=false", "trainer.progress=false",
            f"trainer.threads={threads}", "trainer.resume=false", f"hydra.run.dir={out}"]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    r = subprocess.run([*launcher, "-m", "genmodels.train.cli", *args], capture_output=True,
                       text=True, env=env, cwd=REPO)
    if r.returncode:
        raise RuntimeError(f"{experiment} with {nproc} processes failed:\n{r.stderr[-3000:]}")
    rows = [json.loads(line) for line in open(out / "metrics.jsonl")]
    train = {row["step"]: row["train_time_s"] for row in rows if row["split"] == "train"}
    seconds = train[steps] - train[warmup]
    return global_batch(out) * (steps - warmup) / seconds


def global_batch(run_dir: Path) -> int:
    import yaml

    cfg = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    return int(cfg["trainer"]["batch_size"])


def settings(n: int) -> list[tuple[str, int, int]]:
    return [("1 process × 1 thread", 1, 1), (f"1 process × {n} threads", 1, n),
            (f"{n} processes × 1 thread (DDP, gloo)", n, 1)]


def markdown(results: dict, n: int, steps: int, warmup: int, repeats: int) -> str:
    lines = [f"| experiment (global batch) | setting | samples/s (median of {repeats}) | "
             f"speed-up over 1 × 1 |", "|---|---|---|---|"]
    for exp, res in results.items():
        base = res["1 process × 1 thread"]["median"]
        for name, _, _ in settings(n):
            med = res[name]["median"]
            lines.append(f"| {exp} ({res['global_batch']}) | {name} | {med:.0f} | "
                         f"{med / base:.2f}× |")
    m = machine()
    lines += ["", f"{steps} steps a run, the first {warmup} not timed; "
                  f"torch {m['torch']}, {m['cpu_count']} CPUs, load average {m['load_avg_1_5_15']} "
                  f"at the end."]
    return "\n".join(lines) + "\n"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--experiments", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    p.add_argument("--nproc", type=int, default=2, help="processes (and threads) to compare with 1")
    p.add_argument("--steps", type=int, default=200, help="training steps a run")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", type=Path, default=OUT, help="folder for results.json (and README.md)")
    args = p.parse_args()
    warmup = max(1, args.steps // 10)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for exp in args.experiments:
            samples = {name: [] for name, _, _ in settings(args.nproc)}
            for rep in range(args.repeats):
                for name, nproc, threads in settings(args.nproc):
                    sps = run_once(exp, nproc, threads, args.steps, warmup, Path(tmp) / str(rep))
                    samples[name].append(sps)
                    print(f"{exp:14s} {name:36s} repeat {rep + 1}: {sps:9.0f} samples/s", flush=True)
            results[exp] = {name: {"median": statistics.median(v), "runs": v}
                            for name, v in samples.items()}
            results[exp]["global_batch"] = global_batch(Path(tmp) / "0" / f"{exp}_1x1")
    table = markdown(results, args.nproc, args.steps, warmup, args.repeats)
    print("\n" + table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(
        {"steps": args.steps, "warmup_steps": warmup, "repeats": args.repeats,
         "machine": machine(), "results": results}, indent=2) + "\n")
    readme = args.out / "README.md"
    if readme.exists() and BEGIN in readme.read_text():
        text = readme.read_text()
        head, rest = text.split(BEGIN, 1)
        readme.write_text(head + BEGIN + "\n" + table + END + rest.split(END, 1)[1])
        print(f"table written into {readme}")


if __name__ == "__main__":
    main()
