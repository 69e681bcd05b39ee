"""What the course notebooks (``notebooks/``) share: the fast / full setting, a temporary run
folder, and training an experiment from Python as ``genmodels-train`` does.

Import it right after ``%matplotlib inline``: it notes the notebook's backend before
:mod:`genmodels.plotting` selects Agg for the trainer's figure files, and returns to it after each
run, so the notebook keeps drawing inline.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

import matplotlib

INLINE = matplotlib.get_backend()   # Jupyter's inline backend, before genmodels.plotting picks Agg

import matplotlib.pyplot as plt     # noqa: E402
import torch                         # noqa: E402
from hydra import compose, initialize_config_dir   # noqa: E402

from genmodels.train.cli import CONFIG_DIR                  # noqa: E402
from genmodels.train.config import register_all, to_object  # noqa: E402
from genmodels.train.trainer import Trainer                 # noqa: E402

__all__ = ["FAST", "OUT", "train", "curve", "show_figures"]

warnings.filterwarnings("ignore", message="IProgress not found")  # tqdm in a kernel without widgets

#: GENMODELS_FAST=1: the setting CI executes (tiny runs, every cell still runs); else the full one
FAST = os.environ.get("GENMODELS_FAST") == "1"
#: where the notebook's runs go (a temporary folder)
OUT = Path(tempfile.mkdtemp(prefix="genmodels-notebook-"))
torch.manual_seed(0)


def train(experiment: str, overrides=(), name: str | None = None):
    """Train ``experiment`` (configs/experiment/) with Hydra overrides, as ``genmodels-train``
    does; returns ``(results, run folder)``."""
    register_all()
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"experiment={experiment}",
                                                       "trainer.progress=false", *overrides])
    run_dir = OUT / (name or experiment)
    results = Trainer(to_object(cfg), run_dir).fit()
    plt.switch_backend(INLINE)      # the trainer draws its figures with Agg; back to inline
    return results, run_dir


def curve(run_dir: Path, key: str, split: str = "train"):
    """``(steps, values)`` of ``key`` in a run's metrics.jsonl."""
    rows = [json.loads(line) for line in open(run_dir / "metrics.jsonl")]
    rows = [r for r in rows if r.get("split") == split and key in r]
    return [r["step"] for r in rows], [r[key] for r in rows]


def show_figures(run_dir: Path, names=None, width: float = 5) -> None:
    """The run's figures (figures/*.png), side by side."""
    files = sorted((run_dir / "figures").glob("*.png"))
    if names is not None:
        files = [f for n in names for f in files if f.stem == n]
    if not files:
        print("no figures in", run_dir / "figures")
        return
    fig, axes = plt.subplots(1, len(files), figsize=(width * len(files), width), squeeze=False)
    for ax, f in zip(axes[0], files):
        ax.imshow(plt.imread(f))
        ax.set_title(f.name)
        ax.axis("off")
    plt.show()
