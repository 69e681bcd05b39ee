"""Every config composes; bad configs fail before training with a message naming the key."""

import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException
from omegaconf.errors import OmegaConfBaseException

from conftest import CONFIG_DIR, compose
from genmodels.train.config import ConfigError, Config, to_object

pytestmark = pytest.mark.config

EXPERIMENTS = sorted(p.stem for p in Path(CONFIG_DIR, "experiment").glob("*.yaml"))
GROUP_OPTIONS = [(g, p.stem) for g in ("data", "model", "trainer")
                 for p in sorted(Path(CONFIG_DIR, g).glob("*.yaml"))]


def test_there_are_experiments():
    assert "vae_digits" in EXPERIMENTS and "vae_fashion" in EXPERIMENTS


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes_and_validates(name):
    cfg = to_object(compose([f"experiment={name}"]))
    assert isinstance(cfg, Config)
    assert cfg.run_name == name


@pytest.mark.parametrize("group, option", GROUP_OPTIONS)
def test_every_group_option_composes_and_is_typed(group, option):
    # Every option composes and is backed by a registered dataclass schema (so it is strict).
    # Validation of values happens per experiment above: an option may leave a value MISSING
    # (e.g. a user's own data path) that only an experiment or the command line fills in.
    import dataclasses

    from omegaconf import OmegaConf

    cfg = compose([f"{group}={option}"])
    assert dataclasses.is_dataclass(OmegaConf.get_type(cfg[group])), f"{group}/{option} has no schema"


def test_default_experiment_is_vae_digits():
    cfg = to_object(compose())
    assert (cfg.run_name, cfg.data.name, cfg.model.family) == ("vae_digits", "digits", "vae")


@pytest.mark.parametrize("override, key", [
    ("trainer.optim.lr=-0.1", "trainer.optim.lr"),
    ("trainer.batch_size=0", "trainer.batch_size"),
    ("trainer.max_steps=-5", "trainer.max_steps"),
    ("trainer.optim.name=adagrad", "trainer.optim.name"),
    ("trainer.scheduler.min_lr_ratio=2", "trainer.scheduler.min_lr_ratio"),
    ("model.latent_dim=0", "model.latent_dim"),
    ("model.arch=transformer", "model.arch"),
    ("trainer.device=tpu", "trainer.device"),
])
def test_impossible_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        to_object(compose([override]))


def test_several_problems_are_listed_together():
    with pytest.raises(ConfigError) as err:
        to_object(compose(["trainer.optim.lr=-1", "trainer.batch_size=0"]))
    assert "trainer.optim.lr" in str(err.value) and "trainer.batch_size" in str(err.value)


def test_unknown_key_fails_at_composition():
    with pytest.raises((ConfigCompositionException, OmegaConfBaseException)) as err:
        compose(["trainer.bogus=1"])
    assert "bogus" in str(err.value) + str(err.value.__cause__)


@pytest.mark.parametrize("override, key", [
    ("+trainer.bogus=1", "trainer.bogus"),
    ("+trainer.optim.bogus=1", "trainer.optim.bogus"),
    ("+model.bogus=1", "model.bogus"),
    ("+data.bogus=1", "data.bogus"),
    ("+bogus=1", "bogus"),
])
def test_added_unknown_keys_fail_validation(override, key):
    with pytest.raises(ConfigError, match=rf"unknown config key\(s\): {key}\b"):
        to_object(compose([override]))


@pytest.mark.parametrize("override, key", [
    ("trainer.max_steps=abc", "max_steps"),
    ("trainer.optim.lr=fast", "lr"),
    ("model.hidden=1.5", "hidden"),
    ("trainer.progress=maybe", "progress"),
])
def test_wrong_types_fail(override, key):
    with pytest.raises((ConfigCompositionException, OmegaConfBaseException)) as err:
        compose([override])
    assert key in str(err.value) + str(err.value.__cause__)


@pytest.mark.train
def test_cli_rejects_bad_config_before_training(tmp_path):
    """Through the real command: exit code 2, the key in the message, nothing trained."""
    proc = subprocess.run(
        [sys.executable, "-m", "genmodels.train.cli", "trainer.optim.lr=-1",
         f"hydra.run.dir={tmp_path / 'run'}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "trainer.optim.lr" in proc.stderr
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
    proc = subprocess.run(
        [sys.executable, "-m", "genmodels.train.cli", "trainer.batchsize=3",
         f"hydra.run.dir={tmp_path / 'run2'}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode != 0 and "batchsize" in proc.stderr
