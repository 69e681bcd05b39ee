"""Bad input at the edges of ``genmodels-train`` (issue 20): non-finite and oversized numbers in
a config, run names that leave outputs/, run folders that cannot be written, and the exit codes
the README documents. Training cases run through the real command line (a subprocess), each in a
temporary current folder whose files are listed before and after.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CONFIG_DIR, compose
from genmodels.train.config import ConfigError, to_object, validate

pytestmark = [pytest.mark.config, pytest.mark.fault]

REPO = Path(__file__).resolve().parent.parent
EXPERIMENTS = sorted(p.stem for p in Path(CONFIG_DIR, "experiment").glob("*.yaml")
                     if p.stem != "sweep_seeds")
#: keeps a run that a check wrongly lets through short (the tests expect no training at all)
SHORT = ["trainer.max_steps=2", "trainer.scheduler.warmup_steps=0", "trainer.progress=false",
         "trainer.figures=false"]


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def _train(cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HYDRA_FULL_ERROR="0")
    return subprocess.run([sys.executable, "-m", "genmodels.train.cli", *overrides],
                          capture_output=True, text=True, cwd=cwd, timeout=180, env=env)


def _refused(proc, code: int, key: str) -> None:
    assert proc.returncode == code, (proc.returncode, proc.stdout[-2000:], proc.stderr[-3000:])
    assert key in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr


# ------------------------------------------------------------------ 1. non-finite / huge numbers
def _number_fields(obj, path=""):
    """(full key, value) of every float and int field of a config tree (bools excluded)."""
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if dataclasses.is_dataclass(v):
            yield from _number_fields(v, f"{path}{f.name}.")
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            yield f"{path}{f.name}", v


def _set(cfg, key, value):
    *parents, name = key.split(".")
    node = cfg
    for p in parents:
        node = getattr(node, p)
    setattr(node, name, value)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_float_key_refuses_nan_and_inf(experiment):
    """Walk every float field of every experiment's config (trainer, optimiser, scheduler, data,
    family): NaN, +inf and -inf are each refused by name."""
    base = to_object(compose([f"experiment={experiment}"]))
    floats = [k for k, v in _number_fields(base) if isinstance(v, float)]
    assert "trainer.optim.lr" in floats and "trainer.scheduler.min_lr_ratio" in floats
    for key in floats:
        for bad in (math.nan, math.inf, -math.inf):
            cfg = copy.deepcopy(base)
            _set(cfg, key, bad)
            with pytest.raises(ConfigError) as err:
                validate(cfg)
            assert f"{key}: must be a finite number" in str(err.value), (key, bad, str(err.value))


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_int_key_refuses_values_beyond_64_bits(experiment):
    base = to_object(compose([f"experiment={experiment}"]))
    ints = [k for k, v in _number_fields(base) if isinstance(v, int)]
    assert "seed" in ints and "trainer.batch_size" in ints
    for key in ints:
        cfg = copy.deepcopy(base)
        _set(cfg, key, 10**24)
        with pytest.raises(ConfigError) as err:
            validate(cfg)
        assert f"{key}: must fit a 64-bit integer" in str(err.value), (key, str(err.value))
    cfg = copy.deepcopy(base)
    cfg.seed = 2**63 - 1          # the largest seed torch.manual_seed and the trainer accept
    validate(cfg)


#: through the command: (override, the full key the message must name); family floats included
CLI_NUMBERS = [
    ("trainer.optim.lr=nan", "trainer.optim.lr"),
    ("trainer.optim.beta1=nan", "trainer.optim.beta1"),
    ("trainer.optim.beta2=inf", "trainer.optim.beta2"),
    ("trainer.optim.eps=nan", "trainer.optim.eps"),
    ("trainer.optim.weight_decay=inf", "trainer.optim.weight_decay"),
    ("trainer.grad_clip=inf", "trainer.grad_clip"),
    ("trainer.scheduler.min_lr_ratio=nan", "trainer.scheduler.min_lr_ratio"),
    ("seed=1234567890123456789012345", "seed"),
    ("experiment=ddpm_toy2d model.beta_end=nan", "model.beta_end"),
]


@pytest.mark.train
@pytest.mark.parametrize("override,key", CLI_NUMBERS, ids=[o for o, _ in CLI_NUMBERS])
def test_cli_refuses_non_finite_and_huge_numbers(tmp_path, override, key):
    before = _files(tmp_path)
    proc = _train(tmp_path, *override.split(), *SHORT)
    _refused(proc, 2, key)
    assert _files(tmp_path) == before      # refused before Hydra writes the run folder


# ------------------------------------------------------------------ 2. run names
BAD_NAMES = ["..", "../x", "../../escaped", ".", "a/b", "a\\b", "", "'.. '"]


@pytest.mark.train
@pytest.mark.parametrize("name", BAD_NAMES)
def test_cli_refuses_run_names_that_are_not_plain_names(tmp_path, name):
    cwd = tmp_path / "work" / "here"
    cwd.mkdir(parents=True)
    before = _files(tmp_path)
    proc = _train(cwd, f"run_name={name}", *SHORT)
    _refused(proc, 2, "run_name")
    assert _files(tmp_path) == before, sorted(_files(tmp_path) - before)


@pytest.mark.train
def test_cli_refuses_climbing_run_names_in_a_sweep_too(tmp_path):
    cwd = tmp_path / "here"
    cwd.mkdir()
    proc = _train(cwd, "-m", "run_name=ok,..", *SHORT)
    _refused(proc, 2, "run_name")
    assert _files(tmp_path) == {"here"}


@pytest.mark.train
def test_a_plain_run_name_writes_only_inside_outputs(tmp_path):
    cwd = tmp_path / "here"
    cwd.mkdir()
    proc = _train(cwd, "run_name=my.run-1", "experiment=ddpm_toy2d", *SHORT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    written = _files(tmp_path) - {"here"}
    assert written and all((f + "/").startswith("here/outputs/my.run-1/") or f == "here/outputs"
                           for f in written), sorted(written)


# ------------------------------------------------------------------ 3. folders that cannot be written
@pytest.mark.train
def test_cli_run_folder_through_a_file_exits_6(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    proc = _train(tmp_path, f"hydra.run.dir={blocker}/sub/run", *SHORT)
    _refused(proc, 6, str(blocker))
    assert "not a folder" in proc.stderr
    assert _files(tmp_path) == {"a_file"} and blocker.read_text() == "not a folder"


@pytest.mark.train
def test_cli_run_folder_that_is_a_file_exits_6(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    proc = _train(tmp_path, f"hydra.run.dir={blocker}", *SHORT)
    _refused(proc, 6, f"{blocker} is a file, not a folder")
    assert _files(tmp_path) == {"a_file"} and blocker.read_text() == "not a folder"


@pytest.mark.train
def test_cli_default_outputs_being_a_file_exits_6(tmp_path):
    (tmp_path / "outputs").write_text("")
    proc = _train(tmp_path, *SHORT)
    _refused(proc, 6, str(tmp_path / "outputs"))
    assert _files(tmp_path) == {"outputs"}


@pytest.mark.train
@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0,
                    reason="root may write into read-only folders, so there is nothing to refuse")
def test_cli_read_only_output_folder_exits_6(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        proc = _train(tmp_path, f"hydra.run.dir={ro}/run", *SHORT)
        _refused(proc, 6, str(ro))
        assert "not writable" in proc.stderr and not any(ro.iterdir())
    finally:
        ro.chmod(0o755)


# ------------------------------------------------------------------ 4. the documented exit codes
def _readme_codes() -> dict[int, str]:
    text = (REPO / "README.md").read_text()
    para = text[text.index("**Failures.**"):]
    para = para[:para.index("\n\n**", 1)] if "\n\n**" in para[1:] else para
    return {int(m.group(1)): m.group(2) for m in re.finditer(r"^- `(\d+)`: (.+)$", para, re.M)}


def _cli_codes() -> set[int]:
    src = (REPO / "genmodels" / "train" / "cli.py").read_text()
    return {int(c) for c in re.findall(r"sys\.exit\((\d+)\)", src)}


def test_readme_lists_exactly_the_exit_codes_the_cli_produces():
    documented = _readme_codes()
    produced = _cli_codes() | {0, 1}   # 0: a normal end; 1: an uncaught exception (a crash)
    assert produced >= {2, 3, 4, 5, 6}
    assert set(documented) == produced, (sorted(documented), sorted(produced))
    assert "NaN" in documented[3] and "dataset" in documented[4] and "written" in documented[6]


# ------------------------------------------------------------------ 5. a batch larger than the data
#: the families whose batches are epochs without replacement (genmodels.train.task.batch_indices):
#: a batch of more items than the training split is refused by name, exit 2, before any update.
#: The char LMs (gpt, lstm, mlm) and the WaveNet/enhancement tasks draw random windows or clips
#: with replacement, so any batch size is a valid batch there and nothing is refused.
BATCH_FAMILIES = ["vae_digits", "gan_digits", "ddpm_digits", "sde_digits", "ewc_split",
                  pytest.param("vc_synthetic", marks=pytest.mark.slow)]   # 17 s: it renders its corpus first


@pytest.mark.train
@pytest.mark.parametrize("experiment", BATCH_FAMILIES)
def test_cli_refuses_a_batch_larger_than_the_training_data(tmp_path, experiment):
    run = tmp_path / "run"
    extra = ["model.steps_a=1"] if experiment.startswith("ewc") else []   # task A: step 0 only
    proc = _train(tmp_path, f"experiment={experiment}", "trainer.batch_size=100000",
                  f"hydra.run.dir={run}", *SHORT, *extra)
    _refused(proc, 2, "trainer.batch_size: 100000 exceeds the ")
    assert re.search(r"exceeds the \d+ training items", proc.stderr)
    assert not (run / "checkpoints").exists() and not (run / "results.json").exists()


def test_unwritable_names_a_folder_without_write_permission(tmp_path, monkeypatch):
    """The read-only branch of the check, in-process (the CLI test above is skipped as root, who
    may write anywhere): os.access saying no is reported with the folder that refused."""
    from genmodels.train import cli

    assert cli._unwritable(tmp_path / "new" / "run") is None
    monkeypatch.setattr(cli.os, "access", lambda path, mode: False)
    why = cli._unwritable(tmp_path / "new" / "run")
    assert why == f"{tmp_path} is not writable by this user (permission denied)"


# ------------------------------------------------------------------ 5. settings impossible together
@pytest.mark.train
@pytest.mark.parametrize("steps_a", ["2", "3"])
def test_cli_refuses_an_ewc_phase_a_as_long_as_the_run(tmp_path, steps_a):
    """model.steps_a ≥ trainer.max_steps leaves no step for task B: refused with both keys named,
    exit 2, before the run folder holds a checkpoint (was a ValueError traceback from the task)."""
    run = tmp_path / "run"
    proc = _train(tmp_path, "experiment=ewc_split", f"model.steps_a={steps_a}",
                  f"hydra.run.dir={run}", *SHORT)
    _refused(proc, 2, f"model.steps_a: {steps_a} must be below trainer.max_steps (2)")
    assert not (run / "checkpoints").exists()


@pytest.mark.train
@pytest.mark.parametrize("experiment,override,key", [
    ("ewc_split", "data=embedded_text model.steps_a=1", "data: the ewc family needs an image dataset"),
    ("gan_digits", "data=embedded_text", "data: the GAN trains on images"),
])
def test_cli_refuses_a_dataset_the_family_cannot_use(tmp_path, experiment, override, key):
    proc = _train(tmp_path, f"experiment={experiment}", *override.split(),
                  f"hydra.run.dir={tmp_path / 'run'}", *SHORT)
    _refused(proc, 2, key)
