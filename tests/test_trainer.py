"""The generic trainer: determinism, resume after a stop, NaN handling, atomic checkpoints, CLI."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from conftest import TINY_VAE, compose
from genmodels.train.checkpoint import load_checkpoint, save_checkpoint
from genmodels.train.config import to_object
from genmodels.train.trainer import NonFiniteLossError, Trainer, lr_factor
from genmodels.train.task import batch_indices

pytestmark = pytest.mark.train

RUN = TINY_VAE + ["trainer.max_steps=40", "trainer.log_every=5", "trainer.eval_every=20",
                  "trainer.ckpt_every=10", "trainer.figures=false"]


def _train(out_dir, extra=()):
    trainer = Trainer(to_object(compose(RUN + list(extra))), out_dir)
    return trainer, trainer.fit()


def _stable(metrics: dict) -> dict:
    """Metrics without wall-clock timings (``*_s``, ``*_s_per_image``), which no run repeats."""
    return {k: v for k, v in metrics.items() if not (k.endswith("_s") or "_s_per_" in k)}


def _metrics(path):
    return [_stable(json.loads(line)) for line in open(path)]


def test_same_seed_same_numbers_and_other_seed_differs(tmp_path):
    _, a = _train(tmp_path / "a")
    _, b = _train(tmp_path / "b")
    _, c = _train(tmp_path / "c", ["seed=1"])
    assert _stable(a["test"]) == _stable(b["test"])
    assert _metrics(tmp_path / "a/metrics.jsonl") == _metrics(tmp_path / "b/metrics.jsonl")
    assert _stable(a["test"]) != _stable(c["test"])


def test_resume_after_halt_equals_uninterrupted_run(tmp_path):
    full, full_res = _train(tmp_path / "full")
    halted, res = _train(tmp_path / "split", ["trainer.halt_after=25"])
    assert res is None and halted.step == 25
    assert load_checkpoint(tmp_path / "split/checkpoints/last.pt")["step"] == 25
    resumed, resumed_res = _train(tmp_path / "split")
    assert _stable(resumed_res["test"]) == _stable(full_res["test"])
    for p, q in zip(full.task.model.parameters(), resumed.task.model.parameters()):
        assert torch.equal(p, q)
    assert _metrics(tmp_path / "split/metrics.jsonl") == _metrics(tmp_path / "full/metrics.jsonl")


def test_resume_killed_during_the_final_evaluation_logs_it_once(tmp_path):
    """A run killed after its last checkpoint, while the final evaluation was logging, resumes
    at max_steps and evaluates again: the log then holds that evaluation once, not twice."""
    _, ref = _train(tmp_path / "a")
    run = tmp_path / "b"
    _train(run)
    (run / "results.json").unlink()                       # as if killed before results.json
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("\n".join(lines[:-1]) + "\n")   # ... after the val row
    _, res = _train(run)
    assert _stable(res["test"]) == _stable(ref["test"])
    assert _metrics(run / "metrics.jsonl") == _metrics(tmp_path / "a/metrics.jsonl")


def test_resume_refuses_a_changed_config(tmp_path):
    _train(tmp_path / "r", ["trainer.halt_after=10"])
    with pytest.raises(ValueError, match="trainer.optim.lr"):
        _train(tmp_path / "r", ["trainer.optim.lr=0.5"])


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    from genmodels.vae.task import VAETask

    original = VAETask.training_step

    def poisoned(self, step, batch, optimize):
        if step == 16:                           # the 17th update
            with torch.no_grad():
                self.model.to_stats.bias.fill_(float("nan"))
        return original(self, step, batch, optimize)

    monkeypatch.setattr(VAETask, "training_step", poisoned)
    trainer = Trainer(to_object(compose(RUN)), tmp_path)
    with pytest.raises(NonFiniteLossError, match=r"at step 17\b.*last\.pt \(step 10\)"):
        trainer.fit()
    ckpt = load_checkpoint(tmp_path / "checkpoints/last.pt")
    assert ckpt["step"] == 10
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values())


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "ck.pt"
    save_checkpoint(path, {"a": torch.ones(3)})

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        save_checkpoint(path, {"a": torch.zeros(3)})
    assert torch.equal(load_checkpoint(path)["a"], torch.ones(3))     # old file intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck.pt"]    # no temp file left


def test_batches_are_epochs_without_replacement():
    seen = torch.cat([batch_indices(10, 3, s, seed=0) for s in range(3)])
    assert len(set(seen.tolist())) == 9                               # one epoch: 3 disjoint batches
    assert torch.equal(batch_indices(10, 3, 4, seed=0), batch_indices(10, 3, 4, seed=0))
    assert not torch.equal(batch_indices(10, 3, 0, 0), batch_indices(10, 3, 3, 0))


def test_lr_schedules():
    assert lr_factor(0, 100, "constant", 10, 0.0) == pytest.approx(0.1)
    assert lr_factor(9, 100, "cosine", 10, 0.0) == pytest.approx(1.0)
    assert lr_factor(55, 100, "cosine", 10, 0.0) == pytest.approx(0.5)     # halfway: cos(π/2)
    assert lr_factor(100, 100, "cosine", 10, 0.1) == pytest.approx(0.1)
    assert lr_factor(55, 100, "linear", 10, 0.0) == pytest.approx(0.5)


def _cli(args, cwd, **kw):
    """The installed console script when present (what a user types), else the module."""
    import shutil

    exe = shutil.which("genmodels-train")
    cmd = [exe] if exe else [sys.executable, "-m", "genmodels.train.cli"]
    return subprocess.run([*cmd, *args], cwd=cwd, capture_output=True, text=True, timeout=300, **kw)


def test_cli_trains_writes_outputs_and_prints_where(tmp_path):
    run_dir = tmp_path / "run"
    proc = _cli(TINY_VAE + ["trainer.max_steps=20", "trainer.eval_every=10", "trainer.log_every=5",
                            f"hydra.run.dir={run_dir}"], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("metrics.jsonl", "results.json", "checkpoints/last.pt", "figures/loss_curves.png",
                 "figures/samples.png", "figures/reconstructions.png", "figures/latent_traversal.png"):
        assert (run_dir / name).is_file(), name
    assert str(run_dir / "metrics.jsonl") in proc.stdout
    results = json.loads((run_dir / "results.json").read_text())
    assert results["step"] == 20 and results["test"]["nll_iwae"] > 0


def test_cli_resumes_a_killed_run_to_the_same_numbers(tmp_path):
    """SIGKILL a real run once it has a checkpoint, run the same command again, compare with an
    uninterrupted run."""
    args = TINY_VAE + ["trainer.max_steps=1500", "trainer.ckpt_every=100", "trainer.eval_every=0",
                       "trainer.log_every=100", "trainer.figures=false"]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-m", "genmodels.train.cli", *args,
                             f"hydra.run.dir={killed}"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (killed / "checkpoints/last.pt").exists() and time.time() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "results.json").exists()
    again = _cli(args + [f"hydra.run.dir={killed}"], cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "Resuming from" in again.stderr
    straight = _cli(args + [f"hydra.run.dir={tmp_path / 'straight'}"], cwd=tmp_path)
    assert straight.returncode == 0
    a = json.loads((killed / "results.json").read_text())
    b = json.loads((tmp_path / "straight/results.json").read_text())
    assert _stable(a["test"]) == _stable(b["test"]) and _stable(a["val"]) == _stable(b["val"])
    assert _metrics(killed / "metrics.jsonl") == _metrics(tmp_path / "straight/metrics.jsonl")


def test_inf_loss_stops_before_the_update(tmp_path, monkeypatch):
    from genmodels.vae.task import VAETask

    def inf_loss(self, step, batch, optimize):
        if step == 12:
            optimize(torch.tensor(float("inf"), requires_grad=True))
        return {"loss": 0.0}

    monkeypatch.setattr(VAETask, "training_step", inf_loss)
    with pytest.raises(NonFiniteLossError, match=r"loss is inf at step 13\b.*\(step 10\)"):
        Trainer(to_object(compose(RUN)), tmp_path).fit()


def test_truncated_checkpoint_falls_back_to_the_previous_one(tmp_path):
    """A corrupted last.pt gives a clear message and the run resumes from last.prev.pt."""
    _, full_res = _train(tmp_path / "full")
    _train(tmp_path / "r", ["trainer.halt_after=25"])      # checkpoints at 10, 20, 25
    last = tmp_path / "r/checkpoints/last.pt"
    assert load_checkpoint(tmp_path / "r/checkpoints/last.prev.pt")["step"] == 20
    last.write_bytes(last.read_bytes()[:1000])              # truncate it
    from genmodels.train.checkpoint import CheckpointError
    with pytest.raises(CheckpointError, match="last.pt: unreadable checkpoint"):
        load_checkpoint(last)
    _, res = _train(tmp_path / "r")
    assert _stable(res["test"]) == _stable(full_res["test"])


def test_checkpoint_loads_with_weights_only(tmp_path):
    _train(tmp_path / "w", ["trainer.halt_after=10"])
    state = torch.load(tmp_path / "w/checkpoints/last.pt", weights_only=True)
    assert state["step"] == 10


@pytest.mark.parametrize("setting, expected", [("first", [True] + [False] * 39),
                                               ("always", [True] * 40)])
def test_formula_input_checks_run_in_the_first_step_only(tmp_path, monkeypatch, setting, expected):
    from genmodels._checks import checks_enabled
    from genmodels.vae.task import VAETask

    seen, original = [], VAETask.training_step

    def recording(self, *args, **kwargs):
        seen.append(checks_enabled())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(VAETask, "training_step", recording)
    _train(tmp_path, [f"trainer.input_checks={setting}"])
    assert seen == expected
    assert checks_enabled()                      # switched back on after training


def test_resumed_run_checks_its_first_step_again(tmp_path, monkeypatch):
    from genmodels._checks import checks_enabled
    from genmodels.vae.task import VAETask

    _train(tmp_path, ["trainer.halt_after=25"])
    seen, original = [], VAETask.training_step

    def recording(self, *args, **kwargs):
        seen.append(checks_enabled())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(VAETask, "training_step", recording)
    _train(tmp_path)
    assert seen == [True] + [False] * 14
