"""Training steps per second on the SPEC path (the default) against the opt-in fused kernels,
and the cost of the formula functions' input checks, at each experiment's own shapes.

    python experiments/spec_path_speed/bench.py [--repeats 15] [--steps 5] [--out results.json]

For each experiment the real trainer is set up from the experiment's config (``Trainer._setup``:
its data, model, optimiser and learning rate) once per variant, and one timed call is
``--steps`` training steps exactly as the trainer's loop makes them (draw the batch, take this
process's share, ``training_step`` with the trainer's ``optimize``). The variants of one
experiment run round-robin in one process (benchmarks/timing.py), so a load spike hits all of
them alike; the median of ``--repeats`` calls is reported.

Variants:
  spec            the default: the SPEC functions, input checks off (the trainer's state after
                  its first step)
  spec_checked    the same with every input check on (the trainer's first step; tests, exercises)
  fused           the opt-in kernel: model.use_sdpa=true (GPT) or model.impl=bptt (LSTM)

Needs tiny Shakespeare for the two character models (found as the experiments find it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from timing import machine, time_round_robin  # noqa: E402

from genmodels._checks import input_checks  # noqa: E402
from genmodels.train import dist  # noqa: E402
from genmodels.train.config import register_all, to_object  # noqa: E402
from genmodels.train.trainer import Trainer  # noqa: E402

#: experiment -> the override that selects its fused kernel (None: no kernel to compare)
EXPERIMENTS = {
    "gpt_shakespeare": "model.use_sdpa=true",
    "lstm_shakespeare": "model.impl=bptt",
    "vae_digits": None,
    "gan_digits": None,
    "ddpm_digits": None,
    "ewc_permuted": None,
}


def compose(overrides):
    from hydra import compose as _compose, initialize_config_dir

    register_all()
    with initialize_config_dir(config_dir=str(ROOT / "configs"), version_base="1.3"):
        return _compose(config_name="config", overrides=list(overrides))


def stepper(experiment: str, extra: list[str], checked: bool, steps: int, out: Path):
    cfg = to_object(compose([f"experiment={experiment}", "trainer.progress=false",
                             "trainer.threads=1", *extra]))
    trainer = Trainer(cfg, out)
    trainer._setup()
    trainer.task.model.train()
    state = {"step": 0}

    def run():
        with input_checks(checked):
            for _ in range(steps):
                trainer._set_lr()
                batch = dist.take_share(trainer.task.draw(state["step"]), trainer.task.batch_key)
                trainer.task.training_step(state["step"], batch, trainer.optimize)
                trainer.step = state["step"] = state["step"] + 1

    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--steps", type=int, default=5, help="training steps per timed call")
    ap.add_argument("--experiments", nargs="*", default=list(EXPERIMENTS))
    ap.add_argument("--out", default=str(Path(__file__).with_name("results.json")))
    a = ap.parse_args()
    torch.set_num_threads(1)
    results = {"machine_before": machine(), "steps_per_call": a.steps, "repeats": a.repeats}
    with tempfile.TemporaryDirectory() as tmp:
        for name in a.experiments:
            fused = EXPERIMENTS[name]
            variants = {"spec": stepper(name, [], False, a.steps, Path(tmp) / f"{name}_s"),
                        "spec_checked": stepper(name, [], True, a.steps, Path(tmp) / f"{name}_c")}
            if fused:
                variants["fused"] = stepper(name, [fused], False, a.steps, Path(tmp) / f"{name}_f")
            t = time_round_robin(variants, repeats=a.repeats, warmup=2)
            row = {k: {"ms_per_step": v["wall_ms"] / a.steps, "cpu_ms_per_step": v["cpu_ms"] / a.steps,
                       "steps_per_s": 1e3 * a.steps / v["wall_ms"]} for k, v in t.items()}
            row["checks_overhead"] = t["spec_checked"]["wall_ms"] / t["spec"]["wall_ms"] - 1
            if fused:
                row["spec_over_fused"] = t["spec"]["wall_ms"] / t["fused"]["wall_ms"]
                row["fused_override"] = fused
            results[name] = row
            print(name, json.dumps({k: (round(v, 4) if isinstance(v, float) else v)
                                    for k, v in row.items() if not isinstance(v, dict)}),
                  {k: round(v["ms_per_step"], 2) for k, v in row.items() if isinstance(v, dict)},
                  flush=True)
    results["machine_after"] = machine()
    Path(a.out).write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
