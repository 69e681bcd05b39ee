import os
import tempfile

# hypothesis keeps its example database and constants cache in ./.hypothesis; a test run should
# leave nothing in the repository
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY",
                      os.path.join(tempfile.gettempdir(), "genmodels-hypothesis"))

import numpy as np
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


# ------------------------------------------------------------------ small cases of the course
def t64(x):
    """A float64 tensor from numbers, nested lists or an array."""
    return torch.tensor(np.asarray(x, dtype=np.float64))


def randn64(*shape, seed=0):
    """Standard-normal float64 numbers from a generator seeded with ``seed``."""
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def noisy_tone(n=512, sr=8000, seed=0):
    """A 440 Hz sine plus 0.3 × white noise: ``n`` float64 samples at ``sr`` Hz (NumPy)."""
    return np.sin(2 * np.pi * 440 * np.arange(n) / sr) + 0.3 * np.random.default_rng(seed).standard_normal(n)


def _fmt(a, limit=8):
    flat = a.ravel()
    body = np.array2string(flat[:limit], precision=6, separator=", ", max_line_width=10_000)
    more = f" … ({a.size} values)" if a.size > limit else ""
    shape = f"shape {list(a.shape)}: " if a.ndim > 1 or a.size > limit else ""
    return f"{shape}{body}{more}"


def _as_array(x):
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x, dtype=float)


def _run_case(label, expected, got_fn, rtol, atol):
    exp = _as_array(expected)
    case = {"label": label, "expected": _fmt(exp), "got": "", "error": "", "ok": False}
    try:
        got = _as_array(got_fn())
    except Exception as exc:  # the code under test raised: that is the case's outcome
        lines = [ln.rstrip()[:200] for ln in (str(exc).strip() or repr(exc)).splitlines() if ln.strip()]
        case["error"] = f"{type(exc).__name__}: " + "\n".join(lines[:2])
        return case
    case["got"] = _fmt(got)
    if got.shape != exp.shape:
        case["error"] = f"wrong shape: expected {list(exp.shape)}, got {list(got.shape)}"
    elif not np.allclose(got, exp, rtol=rtol, atol=atol, equal_nan=False):
        err = np.abs(got - exp)
        where = tuple(int(i) for i in np.unravel_index(int(err.argmax()), err.shape))
        case["error"] = (f"values differ: largest difference {float(err.max()):.3g}"
                         + (f" at index {where}" if where else ""))
    else:
        case["ok"] = True
    return case


@pytest.fixture
def small_case(request):
    """``small_case((label, expected, got_fn), ..., rtol=1e-7, atol=1e-9)``: an exercise's small
    float64 cases. ``expected`` is computed independently (a PyTorch or librosa built-in, a few
    lines of NumPy), never by the library; ``got_fn()`` runs the code under test. Every case runs
    and is recorded in the test's ``user_properties`` for ``genmodels-exercise check``, which shows
    label, expected and got; the test fails if any case does."""
    def check(*cases, rtol=1e-7, atol=1e-9):
        results = [_run_case(*c, rtol, atol) for c in cases]
        request.node.user_properties.extend(("small_case", r) for r in results)
        failed = [f"{r['label']}: expected {r['expected']}, got {r['got'] or '-'} {r['error']}"
                  for r in results if not r["ok"]]
        if failed:
            raise AssertionError("small case(s) fail:\n" + "\n".join(failed))
    return check
