"""Hydra multirun sweeps for real on the joblib and the submitit-local launchers
(configs/hydra/launcher/), and the table that ``python -m genmodels.train.sweep`` makes of them."""

import csv
import json
import math
import os
import statistics
import subprocess
import sys

import pytest

from genmodels.train.sweep import collect, main, summarize, write_tables

pytestmark = [pytest.mark.sweep, pytest.mark.train]

#: two seeds of a tiny sweep_seeds (the experiment's own sweep is five seeds)
TINY = ["experiment=sweep_seeds", "seed=0,1", "model.hidden=16", "model.iwae_k=4",
        "model.iwae_max_images=16", "trainer.max_steps=20", "trainer.scheduler.warmup_steps=5",
        "trainer.log_every=10", "trainer.ckpt_every=10"]


def _sweep(tmp_path, launcher):
    out = tmp_path / launcher
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-m", "genmodels.train.cli", "-m", *TINY,
                        f"hydra/launcher={launcher}", f"hydra.sweep.dir={out}"],
                       capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    return out


def _check_table(out):
    runs, unfinished = collect(out)
    assert unfinished == []
    assert sorted(r.folder.name for r in runs) == ["0", "1"]
    seeds = sorted(o for r in runs for o in r.overrides if o.startswith("seed="))
    assert seeds == ["seed=0", "seed=1"]
    md, _, _ = write_tables(out)
    elbos = [json.loads((out / j / "results.json").read_text())["test"]["elbo"] for j in "01"]
    assert elbos[0] != elbos[1]                       # two seeds, two results
    with open(out / "sweep_summary.csv") as f:
        (row,) = list(csv.DictReader(f))
    assert row["configuration"] == "all runs" and row["runs"] == "2"
    assert float(row["elbo_mean"]) == pytest.approx(statistics.mean(elbos))
    assert float(row["elbo_std"]) == pytest.approx(statistics.stdev(elbos))
    assert f"{statistics.mean(elbos):.4g} ± {statistics.stdev(elbos):.2g}" in md


def test_joblib_sweep_runs_two_jobs_and_the_table_reads_them(tmp_path):
    out = _sweep(tmp_path, "parallel")
    _check_table(out)


@pytest.mark.slow   # 10 s; the joblib launcher's sweep runs by default
def test_submitit_local_sweep_runs_two_jobs_and_the_table_reads_them(tmp_path):
    out = _sweep(tmp_path, "slurm_local")
    assert (out / ".submitit").is_dir()               # the jobs went through submitit
    _check_table(out)


def _fake_run(folder, overrides, test):
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if test is not None:
        (folder / "results.json").write_text(json.dumps({"test": test, "step": 5}))


def test_table_groups_by_the_overrides_other_than_seed(tmp_path, capsys):
    values = {("4", 0): 1.0, ("4", 1): 2.0, ("4", 2): 4.0, ("8", 0): 10.0, ("8", 1): 11.0}
    for i, ((dim, seed), v) in enumerate(values.items()):
        _fake_run(tmp_path / str(i), ["experiment=x", f"model.latent_dim={dim}", f"seed={seed}"],
                  {"elbo": v, "iwae_k": 100})
    _fake_run(tmp_path / "9", ["experiment=x", "model.latent_dim=8", "seed=2"], None)  # killed
    assert main([str(tmp_path)]) == 0
    printed = capsys.readouterr()
    assert "1 unfinished runs" in printed.err
    rows, metrics, constants = summarize(collect(tmp_path)[0])
    assert metrics == ["elbo"] and constants == {"iwae_k": 100.0}
    by = {r["group"]: r for r in rows}
    assert set(by) == {"model.latent_dim=4", "model.latent_dim=8"}
    assert by["model.latent_dim=4"]["runs"] == 3
    assert by["model.latent_dim=4"]["elbo"] == pytest.approx((7 / 3, statistics.stdev([1, 2, 4])))
    assert by["model.latent_dim=8"]["elbo"] == pytest.approx((10.5, math.sqrt(0.5)))
    assert "| model.latent_dim=4 | 3 | 2.333 ± 1.5 |" in printed.out


def test_table_of_a_folder_without_runs_fails_clearly(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no results.json below" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.ddp
def test_submitit_tasks_of_one_job_are_ddp_ranks(tmp_path):
    """``hydra.launcher.tasks_per_node=2``: the two submitit tasks of a job train as DDP ranks
    (the trainer exports torchrun's variables from submitit's) and end where one process does."""
    import torch

    args = [a if a != "seed=0,1" else "seed=0" for a in TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for extra in (["--multirun", "hydra/launcher=slurm_local", "hydra.launcher.tasks_per_node=2",
                   f"hydra.sweep.dir={tmp_path / 'two'}"], [f"hydra.run.dir={tmp_path / 'one'}"]):
        r = subprocess.run([sys.executable, "-m", "genmodels.train.cli", *extra, *args],
                           capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
        assert r.returncode == 0, r.stderr[-4000:]
    (out0,) = (tmp_path / "two" / ".submitit").rglob("*_0_log.out")
    (out1,) = (tmp_path / "two" / ".submitit").rglob("*_1_log.out")
    assert "test: elbo=" in out0.read_text() and "test: elbo=" not in out1.read_text()  # rank 1
    one = torch.load(tmp_path / "one/checkpoints/last.pt", weights_only=True)["model"]
    two = torch.load(tmp_path / "two/0/checkpoints/last.pt", weights_only=True)["model"]
    for k in one:
        torch.testing.assert_close(two[k], one[k], rtol=0, atol=1e-5)
