import os
import tempfile

# hypothesis keeps its example database and constants cache in ./.hypothesis; a test run should
# leave nothing in the repository
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY",
                      os.path.join(tempfile.gettempdir(), "genmodels-hypothesis"))

import pytest
import torch

# Tests run on 2-core CI machines, sometimes beside another process: one intra-op thread avoids
# oversubscription, which slows small ops down by 10-60x.
torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def _cache_in_tmp(tmp_path_factory):
    """Caches (the yardstick classifier, downloaded text) go to a temporary folder, never to the
    user's ~/.cache: a test run leaves nothing behind and never reuses a stale cache."""
    old = os.environ.get("GENMODELS_CACHE")
    os.environ["GENMODELS_CACHE"] = str(tmp_path_factory.mktemp("genmodels-cache"))
    yield
    if old is None:
        os.environ.pop("GENMODELS_CACHE", None)
    else:
        os.environ["GENMODELS_CACHE"] = old


@pytest.fixture
def f64():
    """Run a test in float64 (formula checks to 1e-10), restoring the default afterwards."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch.float64
    torch.set_default_dtype(old)


@pytest.fixture
def gen():
    """A seeded CPU generator so random test inputs are the same on every run."""
    return torch.Generator().manual_seed(1234)


def write_counts_report(tmp_path_factory, env_var: str, filename: str, report: dict) -> str:
    """Write a suite's counts (experiments/reliability.md reports them) as JSON to ``$env_var``,
    or to ``filename`` in pytest's base temporary folder; returns the path."""
    import json
    path = os.environ.get(env_var) or str(tmp_path_factory.getbasetemp() / filename)
    with open(path, "w") as f:
        json.dump(report, f, indent=1, sort_keys=True)
    return path


REPO = __import__("pathlib").Path(__file__).resolve().parents[1]
CONFIG_DIR = str(REPO / "configs")


def compose(overrides=()):
    """Compose configs/config.yaml with Hydra's compose API (what genmodels-train does)."""
    from hydra import compose as _compose, initialize_config_dir
    from genmodels.train.config import register_all

    register_all()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return _compose(config_name="config", overrides=list(overrides))


#: a VAE run small enough for unit tests: a few seconds in all
TINY_VAE = ["model.hidden=32", "model.latent_dim=4", "model.iwae_k=20", "model.eval_chunk=10",
            "model.n_figure_samples=4", "trainer.batch_size=32", "trainer.progress=false",
            "trainer.scheduler.warmup_steps=5",
            "trainer.threads=1"]
