"""Faults: kill -9 real training runs at random points, corrupt and truncate their checkpoints.

tests/test_trainer.py already kills one VAE run once and truncates one checkpoint; this file does
it across families (VAE, GAN, DDPM, GPT, LSTM), several times per run, at random instants or
aimed inside a checkpoint write (checkpoints are written every few steps), and checks after each
kill that every ``*.pt`` of the run folder loads with ``torch.load(weights_only=True)``. The run
is then resumed until it finishes, and its final metrics and its whole ``metrics.jsonl`` must
equal, bit for bit, those of an uninterrupted run of the same config.

Default run: one kill in each of three families (about 50 CPU-seconds; the DDPM kill is aimed
inside a checkpoint write). ``pytest -m slow tests/test_faults.py`` kills every family six
times, alternating random instants and instants aimed inside a checkpoint write. Counts (kills,
resumes, fallbacks to last.prev.pt) go to ``fault_counts.json`` in pytest's base temp folder, or
to ``$GENMODELS_FAULT_REPORT``; experiments/reliability.md reports them.
"""

from __future__ import annotations

import collections
import json
import os
import pickle
import random
import shutil
import signal
import subprocess
import struct
import sys
import time
import zipfile
from pathlib import Path

import pytest
import torch

from conftest import TINY_VAE, compose, write_counts_report
from genmodels.train.checkpoint import CheckpointError, load_checkpoint
from genmodels.train.config import to_object
from genmodels.train.trainer import Trainer

pytestmark = pytest.mark.fault

QUIET = ["trainer.progress=false", "trainer.threads=1", "trainer.figures=false"]
#: one tiny run per family: a few seconds of training, a checkpoint every few steps so that
#: a random kill often lands inside a checkpoint write
FAMILIES = {
    "vae": TINY_VAE + ["trainer.max_steps=600", "trainer.ckpt_every=7", "trainer.log_every=20",
                       "trainer.eval_every=200"],
    "gan": ["experiment=gan_digits", "model.z_dim=8", "model.width=8", "model.hidden=32",
            "model.fd_samples=40", "model.n_figure_samples=4", "trainer.batch_size=16",
            "trainer.max_steps=120", "trainer.ckpt_every=3", "trainer.log_every=10",
            "trainer.eval_every=60"],
    "ddpm": ["experiment=ddpm_toy2d", "model.timesteps=20", "model.sample_steps=5",
             "model.hidden=16", "model.n_layers=1", "model.fd_samples=20",
             "model.n_figure_samples=4", "data.n_train=256", "data.n_val=64", "data.n_test=64",
             "trainer.batch_size=32", "trainer.max_steps=600", "trainer.ckpt_every=9",
             "trainer.log_every=25", "trainer.eval_every=400",
             "trainer.scheduler.warmup_steps=10"],
    "gpt": ["experiment=gpt_embedded", "model.block_size=16", "model.eval_windows=8",
            "model.eval_batch=4", "model.sample_chars=20", "model.n_layer=1", "model.n_embd=16",
            "model.n_head=2", "model.d_ff=32", "trainer.batch_size=8", "trainer.max_steps=300",
            "trainer.ckpt_every=6", "trainer.log_every=20", "trainer.eval_every=200",
            "trainer.scheduler.warmup_steps=10"],
    "lstm": ["experiment=lstm_embedded", "model.block_size=16", "model.eval_windows=8",
             "model.eval_batch=4", "model.sample_chars=20", "model.n_embd=8",
             "model.hidden_size=16", "trainer.batch_size=8", "trainer.max_steps=400",
             "trainer.ckpt_every=6", "trainer.log_every=20", "trainer.eval_every=200",
             "trainer.scheduler.warmup_steps=10"],
}
#: the VAE is killed in tests/test_trainer.py; of these three, ddpm (a kill inside a checkpoint
#: write) runs by default, gan and gpt (random kill times, 11-12 s each on the 2-core CI machine)
#: with `pytest -m slow`
DEFAULT_FAMILIES = (pytest.param("gan", "random", marks=pytest.mark.slow), ("ddpm", "in_write"),
                    pytest.param("gpt", "random", marks=pytest.mark.slow))

#: filled by the tests, written at module teardown
COUNTS: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


@pytest.fixture(scope="module", autouse=True)
def _write_counts(tmp_path_factory):
    yield
    write_counts_report(tmp_path_factory, "GENMODELS_FAULT_REPORT", "fault_counts.json",
                        {k: dict(v) for k, v in COUNTS.items()})


# ----------------------------------------------------------------------------- helpers
def _cli_cmd():
    exe = shutil.which("genmodels-train")
    return [exe] if exe else [sys.executable, "-m", "genmodels.train.cli"]


def _stable(d: dict) -> dict:
    """Metrics without wall-clock timings (``*_s``, ``*_s_per_*``), which no two runs repeat."""
    return {k: v for k, v in d.items() if not (k.endswith("_s") or "_s_per_" in k)}


def _metrics(path: Path) -> list[dict]:
    return [_stable(json.loads(line)) for line in path.read_text().splitlines()]


def _straight(args, out: Path) -> dict:
    """The uninterrupted reference run, in-process (same config, same numbers as the command)."""
    return Trainer(to_object(compose(args)), out).fit()


def _checkpoints_readable(run: Path) -> int:
    """Every ``*.pt`` of the run folder loads with weights_only=True; returns how many there are."""
    files = sorted(run.rglob("*.pt"))
    for p in files:
        state = torch.load(p, map_location="cpu", weights_only=True)
        assert isinstance(state, dict) and "step" in state and "model" in state, p
    return len(files)


def _run_and_kill(args, run: Path, rng: random.Random, family: str,
                          mode: str = "random") -> bool:
    """Start the command on ``run``, SIGKILL it once it has written a checkpoint of its own:
    after a random delay (``mode="random"``), or the moment a checkpoint's temporary file
    appears, i.e. inside ``save_checkpoint`` (``mode="in_write"``). Returns False when the run
    finished before the kill."""
    ckpt = run / "checkpoints" / "last.pt"
    start_step = _step_or_none(ckpt)
    temp_before = set(run.rglob("*.tmp"))
    log = run.parent / f"stderr_{COUNTS[family]['kills']}.txt"
    with open(log, "w") as stderr:
        proc = subprocess.Popen([*_cli_cmd(), *args, f"hydra.run.dir={run}"], cwd=run.parent,
                                stdout=subprocess.DEVNULL, stderr=stderr)
        killed = _kill_when(proc, mode, ckpt, start_step, rng, family)
    _count_resume(log.read_text(), family)
    if killed:
        # a kill inside save_checkpoint leaves its temporary file (.last.pt.*.tmp), never a bad last.pt
        COUNTS[family]["kills_inside_a_checkpoint_write"] += bool(set(run.rglob("*.tmp")) - temp_before)
    return killed


def _count_resume(stderr: str, family: str) -> None:
    COUNTS[family]["resumes"] += "Resuming from" in stderr
    COUNTS[family]["prev_fallbacks"] += "falling back to the previous checkpoint" in stderr


def _kill_when(proc, mode, ckpt, start_step, rng, family) -> bool:
    """SIGKILL ``proc`` at the instant ``mode`` asks for; False if it finished first."""
    deadline = time.time() + 240
    # wait until this process has written a checkpoint of its own
    while time.time() < deadline and proc.poll() is None:
        if _step_or_none(ckpt) not in (None, start_step):
            break
        time.sleep(0.05)
    if mode == "in_write":
        until = time.time() + 5.0
        while time.time() < until and proc.poll() is None and \
                not any(n.endswith(".tmp") for n in os.listdir(ckpt.parent)):
            time.sleep(0.0002)
    else:
        time.sleep(rng.uniform(0.0, 0.6))
    if proc.poll() is not None:
        assert proc.returncode == 0, f"{family}: the run failed with exit code {proc.returncode}"
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    COUNTS[family]["kills"] += 1
    return True


def _step_or_none(ckpt: Path):
    try:
        return load_checkpoint(ckpt)["step"]
    except (CheckpointError, FileNotFoundError, KeyError):
        return None


def _kill_resume_compare(family: str, kills: int, tmp_path: Path, seed: int,
                         modes=("random",)) -> None:
    args = FAMILIES[family] + QUIET
    rng = random.Random(seed)
    reference = _straight(args, tmp_path / "straight")
    run = tmp_path / "killed"
    run.mkdir()
    for i in range(kills):
        if not _run_and_kill(args, run, rng, family, modes[i % len(modes)]):
            assert i > 0, f"{family}: the run finished before the first kill; make it longer"
            break
        COUNTS[family]["checkpoint_files_checked"] += _checkpoints_readable(run)
    proc = subprocess.run([*_cli_cmd(), *args, f"hydra.run.dir={run}"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Resuming from" in proc.stderr
    _count_resume(proc.stderr, family)
    COUNTS[family]["runs_compared"] += 1
    COUNTS[family]["stale_temp_files_left"] += len(list(run.rglob("*.tmp")))
    assert not list(run.rglob("*.tmp")), "the resume removes the temporary files kills left"
    resumed = json.loads((run / "results.json").read_text())
    for split in ("val", "test"):
        assert _stable(resumed[split]) == _stable(reference[split]), (family, split)
    assert _metrics(run / "metrics.jsonl") == _metrics(tmp_path / "straight/metrics.jsonl")
    COUNTS[family]["identical_final_metrics"] += 1


# ----------------------------------------------------------------------------- kill -9
@pytest.mark.parametrize("family, mode", DEFAULT_FAMILIES)
def test_kill9_then_resume_ends_with_the_uninterrupted_numbers(family, mode, tmp_path):
    _kill_resume_compare(family, kills=1, tmp_path=tmp_path, seed=len(family), modes=(mode,))


@pytest.mark.slow
@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_many_kills_then_resume_ends_with_the_uninterrupted_numbers(family, tmp_path):
    _kill_resume_compare(family, kills=6, tmp_path=tmp_path, seed=sorted(FAMILIES).index(family),
                         modes=("random", "in_write"))


# ----------------------------------------------------------------------------- corrupted files
RUN = TINY_VAE + QUIET + ["trainer.max_steps=40", "trainer.log_every=5", "trainer.eval_every=20",
                          "trainer.ckpt_every=10"]


def _vae(out: Path, extra=()):
    return Trainer(to_object(compose(RUN + list(extra))), out).fit()


@pytest.fixture(scope="module")
def halted_run(tmp_path_factory):
    """A VAE run halted at step 25 (checkpoints at 10, 20, 25: last.pt = 25, last.prev.pt = 20)
    and the results of the uninterrupted run; each test copies the halted folder."""
    root = tmp_path_factory.mktemp("halted")
    full = _vae(root / "full")
    _vae(root / "halted", ["trainer.halt_after=25"])
    return root / "halted", full


def _copy(halted: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(halted, run)
    return run


CORRUPTIONS = {
    "empty": lambda b: b"",
    "truncated_to_half": lambda b: b[: len(b) // 2],
    "truncated_by_one_byte": lambda b: b[:-1],
    "header_overwritten": lambda b: b"\0" * 64 + b[64:],
    "not_a_checkpoint": lambda b: b"this is a text file, not a checkpoint\n",
    "zip_directory_garbled": lambda b: b[:-200] + bytes(200),
}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_corrupted_last_checkpoint_falls_back_to_the_previous_one(kind, halted_run, tmp_path, capsys):
    halted, full = halted_run
    run = _copy(halted, tmp_path)
    last = run / "checkpoints/last.pt"
    last.write_bytes(CORRUPTIONS[kind](last.read_bytes()))
    with pytest.raises(CheckpointError, match=r"last\.pt: unreadable checkpoint"):
        load_checkpoint(last)
    res = _vae(run)                                  # resumes from last.prev.pt (step 20)
    assert "falling back to the previous checkpoint" in capsys.readouterr().err
    assert _stable(res["test"]) == _stable(full["test"])
    COUNTS["corrupted_checkpoints"]["fallbacks_with_identical_results"] += 1


def test_missing_last_checkpoint_falls_back_to_the_previous_one(halted_run, tmp_path):
    """A kill between renaming last.pt to last.prev.pt and writing the new last.pt."""
    halted, full = halted_run
    run = _copy(halted, tmp_path)
    (run / "checkpoints/last.pt").unlink()
    assert _stable(_vae(run)["test"]) == _stable(full["test"])
    COUNTS["corrupted_checkpoints"]["fallbacks_with_identical_results"] += 1


@pytest.mark.parametrize("kind", ["empty", "truncated_to_half", "not_a_checkpoint"])
def test_both_checkpoints_corrupted_is_a_clear_error_naming_the_file(kind, halted_run, tmp_path):
    halted, _ = halted_run
    run = _copy(halted, tmp_path)
    for p in (run / "checkpoints/last.pt", run / "checkpoints/last.prev.pt"):
        p.write_bytes(CORRUPTIONS[kind](p.read_bytes()))
    with pytest.raises(CheckpointError, match=r"last\.prev\.pt: unreadable checkpoint"):
        _vae(run)
    COUNTS["corrupted_checkpoints"]["both_bad_clear_errors"] += 1


def test_cli_reports_unreadable_checkpoints_without_a_traceback(halted_run, tmp_path):
    halted, _ = halted_run
    run = _copy(halted, tmp_path)
    for p in (run / "checkpoints/last.pt", run / "checkpoints/last.prev.pt"):
        p.write_bytes(b"")
    proc = subprocess.run([*_cli_cmd(), *RUN, f"hydra.run.dir={run}"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 5
    assert "last.prev.pt: unreadable checkpoint" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bit_flips_inside_the_weights_are_detected(halted_run, tmp_path):
    halted, _ = halted_run
    run = _copy(halted, tmp_path)
    last = run / "checkpoints/last.pt"
    good = load_checkpoint(last)
    raw = bytearray(last.read_bytes())
    with zipfile.ZipFile(last) as z:                 # the largest tensor storage of the file
        info = max((i for i in z.infolist() if "/data/" in i.filename), key=lambda i: i.file_size)
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26:info.header_offset + 30])
    mid = info.header_offset + 30 + name_len + extra_len + info.file_size // 2
    raw[mid:mid + 8] = bytes(b ^ 0xFF for b in raw[mid:mid + 8])
    last.write_bytes(bytes(raw))
    try:
        bad = load_checkpoint(last)
    except CheckpointError:
        return
    assert _same(good, bad), "flipped bytes loaded silently as different values"


def _same(a, b) -> bool:
    """Equal nested containers of tensors and numbers."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    return a == b


# ----------------------------------------------------------------------------- weights_only
class _Payload:
    """Unpickling this runs ``touch <path>``: what a malicious checkpoint would do."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


def test_a_checkpoint_with_a_pickled_object_is_refused_and_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"step": 1, "model": {}, "payload": _Payload(marker)}, evil)
    with pytest.raises(CheckpointError, match=r"evil\.pt: unreadable checkpoint"):
        load_checkpoint(evil)
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):        # what load_checkpoint relies on
        torch.load(evil, weights_only=True)
    assert not marker.exists()
    COUNTS["weights_only"]["pickled_objects_refused"] += 1


def test_resume_refuses_a_malicious_last_checkpoint_and_uses_the_previous_one(halted_run, tmp_path,
                                                                              capsys):
    halted, full = halted_run
    run = _copy(halted, tmp_path)
    marker = tmp_path / "pwned"
    torch.save({"step": 25, "payload": _Payload(marker)}, run / "checkpoints/last.pt")
    res = _vae(run)
    assert not marker.exists()
    assert "falling back to the previous checkpoint" in capsys.readouterr().err
    assert _stable(res["test"]) == _stable(full["test"])
    COUNTS["weights_only"]["pickled_objects_refused"] += 1


def test_resume_survives_a_half_written_metrics_line(halted_run, tmp_path):
    halted, full = halted_run
    run = _copy(halted, tmp_path)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"step": 26, "split": "tra')                 # the write a crash cut short
    assert _stable(_vae(run)["test"]) == _stable(full["test"])
