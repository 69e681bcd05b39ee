"""Milestones: the student's own functions train the family's model.

``genmodels-exercise train FAMILY --workspace DIR`` runs the family's experiment with
``genmodels-train`` in a subprocess whose ``genmodels`` is the workspace's copy (the workspace is
first on ``sys.path``), checks afterwards that the modules holding the family's exercises were
imported from the workspace, and compares the run's result with the reference number: ``PASS``
or ``not yet``. A stub stops the run at its first call; the milestone then names the exercise.
Reaching the number is not enough: the family's exercises must also pass their checks (PPO
solves CartPole even with a wrong GAE), else ``not yet`` names the failing ones.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from genmodels.exercise.registry import EXERCISES

_STUB = re.compile(r"Exercise ([\w.]+): implement")

#: the launcher run in the subprocess: put the workspace first, run genmodels-train, and record
#: where every genmodels module came from
_LAUNCH = r"""
import json, sys
workspace, out, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
sys.path.insert(0, workspace)
try:
    sys.argv = ["genmodels-train", *argv]
    from genmodels.train.cli import main
    main()
finally:
    mods = {k: getattr(m, "__file__", None) for k, m in list(sys.modules.items())
            if k == "genmodels" or k.startswith("genmodels.")}
    open(out, "w").write(json.dumps(mods))
"""


@dataclass(frozen=True)
class Milestone:
    family: str               # an exercise family (genmodels-exercise list)
    experiment: str           # the configs/experiment/ it trains
    metric: str               # "<split>.<key>" of the run's results.json
    goal: str                 # "<=" or ">="
    target: float             # the number to reach
    reference: str            # what the library's own code reached, with its folder
    overrides: tuple[str, ...] = ()

    def reached(self, value: float) -> bool:
        return value <= self.target if self.goal == "<=" else value >= self.target


#: one per family that has one; the targets sit a little behind the library's own numbers
#: (same config and seed: the reference bodies reproduce those numbers exactly)
MILESTONES: dict[str, Milestone] = {m.family: m for m in (
    Milestone("vae", "vae_digits", "test.nll_iwae", "<=", 24.0,
              "23.21 nats (experiments/vae_digits)"),
    Milestone("ddpm", "ddpm_toy2d", "test.fd", "<=", 0.05,
              "FD 0.005 on the 2-D toy data (experiments/ddpm_toy2d)"),
    Milestone("rl", "ppo_cartpole", "test.return_mean", ">=", 475.0,
              "CartPole solved: greedy test return 500 (experiments/ppo_cartpole)"),
    Milestone("transformer", "gpt_embedded", "test.loss", "<=", 1.45,
              "test loss 1.398 nats/char on the embedded text"),
    Milestone("rnn", "lstm_embedded", "test.loss", "<=", 1.55,
              "test loss 1.487 nats/char on the embedded text"),
    Milestone("transfer", "ewc_split", "test.ewc_acc_A", ">=", 0.95,
              "task A kept by EWC after task B: test accuracy 1.00 (plain fine-tuning 0.98)"),
    Milestone("gan", "gan_digits", "test.fd", "<=", 10.0,
              "FD 6.44 (seeds 1, 2: 3.96, 3.89; real test images: about 4)"),
    Milestone("flow", "flow_digits", "test.fd", "<=", 8.0,
              "FD 5.23 after 3,000 steps (seeds 1, 2: 3.84, 5.28)",
              overrides=("trainer.max_steps=3000", "trainer.eval_every=1000")),
    Milestone("audio", "vc_synthetic", "test.mcd_converted", "<=", 12.5,
              "MCD 11.57 dB after 500 steps (seeds 1, 2: 11.56, 11.60; unconverted 39.97)",
              overrides=("trainer.max_steps=500",)),
    Milestone("video", "interp_digits", "test.psnr", ">=", 21.5,
              "PSNR 22.02 dB after 1,000 steps (the cross-fade: 18.16)",
              overrides=("trainer.max_steps=1000", "trainer.eval_every=500")),
    Milestone("speech", "tts_speech", "test.frame_l1", "<=", 0.45,
              "frame L1 0.408 after 500 steps (seeds 1, 2: 0.401, 0.419; the full 3,000-step run: 0.246)",
              overrides=("trainer.max_steps=500", "trainer.scheduler.warmup_steps=50",
                         "trainer.eval_every=500")),
)}


#: families whose milestone is not there yet, with why (``genmodels-exercise train`` says so)
NOT_YET: dict[str, str] = {}


def run(family: str, workspace: Path, out_dir: Path | None = None, extra: list[str] = (),
        timeout: float = 3600.0) -> dict:
    """Train ``family``'s milestone with the workspace's code. Returns ``{"status": "PASS" |
    "not yet" | "stub" | "error", "value", "message", "run_dir", "imported": {module: file}}``."""
    if family not in MILESTONES:
        raise KeyError(family)
    m = MILESTONES[family]
    workspace = Path(workspace).resolve()
    tmp = tempfile.mkdtemp(prefix="genmodels-milestone-")
    run_dir = Path(out_dir).resolve() if out_dir else Path(tmp) / "run"
    mods_file = Path(tmp) / "modules.json"
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONPATH", None)
    cmd = [sys.executable, "-c", _LAUNCH, str(workspace), str(mods_file), f"experiment={m.experiment}",
           f"hydra.run.dir={run_dir}", *m.overrides, *extra]
    try:
        proc = subprocess.run(cmd, cwd=workspace, env=env, capture_output=True, text=True,
                              timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "error", "value": None, "run_dir": str(run_dir), "imported": {},
                "message": f"the run did not finish within {timeout:.0f} s"}
    imported = json.loads(mods_file.read_text()) if mods_file.exists() else {}
    mods_file.unlink(missing_ok=True)
    if out_dir:                         # the temporary folder held only the modules file
        shutil.rmtree(tmp, ignore_errors=True)
    out = {"value": None, "run_dir": str(run_dir), "imported": imported}
    stubs = list(dict.fromkeys(_STUB.findall(proc.stderr + proc.stdout)))
    if proc.returncode != 0:
        if stubs:
            return {**out, "status": "stub", "message": (
                f"the run stopped at exercise {stubs[0]}, still a stub: implement it "
                f"(genmodels-exercise check {stubs[0]} --workspace {workspace})")}
        tail = "\n".join(proc.stderr.strip().splitlines()[-6:])
        return {**out, "status": "error", "message": f"the run failed (exit {proc.returncode}):\n{tail}"}
    foreign = sorted(name for ex in EXERCISES if ex.family == family
                     for name, f in [(ex.module.removesuffix(".py").replace("/", "."), None)]
                     if not _inside(imported.get(name), workspace))
    if foreign:
        return {**out, "status": "error", "message": (
            f"{', '.join(foreign)} did not come from the workspace ({workspace}): "
            "the milestone must train on the workspace's own functions")}
    split, key = m.metric.split(".", 1)
    value = float(json.loads((run_dir / "results.json").read_text())[split][key])
    ok = m.reached(value)
    message = (f"{m.metric} = {value:.4g} ({'reaches' if ok else 'does not reach'} {m.goal} "
               f"{m.target:g}; the library's own code: {m.reference})")
    if ok:      # a model can train on a wrong formula (PPO solves CartPole with a wrong GAE):
        failing = failing_exercises(family, workspace)      # the number alone is not a pass
        if failing:
            return {**out, "value": value, "status": "not yet", "message": (
                f"{message}, but {', '.join(failing)} fail(s) their checks: "
                f"genmodels-exercise check {failing[0]} --workspace {workspace}")}
    return {**out, "value": value, "status": "PASS" if ok else "not yet", "message": message}


def failing_exercises(family: str, workspace: Path) -> list[str]:
    """The workspace's exercises of ``family`` that do not pass their checks."""
    from genmodels.exercise import grader
    from genmodels.exercise import workspace as ws
    names = [n for n in ws.read_manifest(workspace)["exercises"] if n.split(".", 1)[0] == family]
    results = grader.check(workspace, ws.resolve(names)) if names else []
    return [r.exercise.name for r in results if not r.passed]


def _inside(path: str | None, folder: Path) -> bool:
    return path is not None and folder in Path(path).resolve().parents
