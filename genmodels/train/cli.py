"""``genmodels-train``: the Hydra entry point that trains any experiment.

    genmodels-train                                  # the default experiment (vae_digits)
    genmodels-train experiment=vae_fashion trainer.max_steps=500
    genmodels-train -m experiment=vae_digits seed=0,1,2      # a sweep (Hydra multirun)
    genmodels-train --cfg job                        # print the composed config and exit
    torchrun --nproc_per_node=2 -m genmodels.train.cli experiment=vae_digits   # data-parallel

A run writes into its Hydra folder (outputs/<run_name>/<time>/): metrics.jsonl, results.json,
checkpoints/last.pt and figures/. Re-running with ``hydra.run.dir=<that folder>`` resumes it.
Exit codes (the README's "Failures" lists the same): 0 done, 1 crash (an unexpected error), 2 bad
config, 3 NaN/inf loss, 4 dataset missing, 5 unreadable checkpoint (both ``last.pt`` and
``last.prev.pt``), 6 run folder not writable. The schema's config errors (2) and an unwritable
run folder (6) are found before Hydra writes anything (:func:`_check_composes`).

Under torchrun every process runs this command; only rank 0 writes the run folder, and the
others are told (by overrides appended here) to write no Hydra files of their own.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from genmodels.train.config import ConfigError, register_all, to_object

__all__ = ["main", "run"]


def run(cfg: DictConfig, out_dir: str | Path) -> dict | None:
    """Validate ``cfg`` and train; the function behind the command (usable from Python)."""
    from genmodels.train.trainer import Trainer  # torch is imported only past config checks

    return Trainer(to_object(cfg), out_dir).fit()


#: configs/ of the source tree, reached through the genmodels/conf link (a copy in a built wheel)
CONFIG_DIR = str((Path(__file__).resolve().parent.parent / "conf").resolve())


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="config")
def _hydra_main(cfg: DictConfig):
    from genmodels.errors import DatasetNotFoundError
    from genmodels.train.checkpoint import CheckpointError
    from genmodels.train.trainer import NonFiniteLossError

    out_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        results = run(cfg, out_dir)
    except ConfigError as e:
        print(f"genmodels-train: {e}", file=sys.stderr)
        sys.exit(2)
    except NonFiniteLossError as e:
        print(f"genmodels-train: {e}", file=sys.stderr)
        sys.exit(3)
    except DatasetNotFoundError as e:
        print(f"genmodels-train: {e}", file=sys.stderr)
        sys.exit(4)
    except CheckpointError as e:
        print(f"genmodels-train: {e}; move the run folder's checkpoints/ away to start over, "
              f"or set trainer.resume=false", file=sys.stderr)
        sys.exit(5)
    if results is None:
        return None
    print(f"\n{cfg.run_name}: {results['step']} steps, {results['train_time_s']:.1f} s of training")
    for split in ("val", "test"):
        vals = ", ".join(f"{k}={v:.4g}" for k, v in results[split].items())
        print(f"  {split}: {vals}")
    print(f"  metrics: {out_dir / 'metrics.jsonl'} (and results.json)")
    print(f"  figures: {out_dir / 'figures'}")
    print(f"  checkpoint: {out_dir / 'checkpoints' / 'last.pt'}")
    first = next(iter(results["test"].values()), None)
    return first  # the objective a Hydra sweeper would read


#: appended to the command line of the ranks other than 0 under torchrun: no .hydra/ folder, no
#: log file, no run folder named by their own clock (the trainer takes rank 0's folder)
SILENT_RANK_OVERRIDES = ("hydra.output_subdir=null", "hydra/job_logging=disabled",
                         "hydra/hydra_logging=disabled", "hydra.run.dir=.")


def _bad_config(message: str) -> None:
    print(f"genmodels-train: {message}", file=sys.stderr)
    sys.exit(2)


def _unwritable(folder: Path) -> str | None:
    """Why the run folder ``folder`` cannot be created or written (None when it can): the nearest
    part of the path that exists must be a folder this process may write into."""
    folder = Path(os.path.abspath(folder))
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        if existing == folder:
            return f"{folder} is a file, not a folder"
        return f"{existing} is a file, not a folder, so {folder} cannot be created in it"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"{existing} is not writable by this user (permission denied)"
    return None


def _check_composes(argv: list[str]) -> None:
    """Compose the command line's overrides once before Hydra runs (Hydra writes the run folder
    and its .hydra/ files before any code of ours): exit with code 2 on a composition error (an
    unknown key, a wrong type, an unknown option; Hydra itself reports those with exit code 1,
    the code of any crash) or an impossible value, and with code 6 when the run folder cannot be
    written. With flags (``-m``, ``--cfg``, ...) only the run names given are checked; the rest
    is left to Hydra and to the check in :func:`run`."""
    from genmodels.train.config import run_name_problem

    if any(a.startswith("-") for a in argv):
        for a in argv:
            if a.lstrip("+").startswith("run_name="):
                for name in a.split("=", 1)[1].split(","):
                    bad = run_name_problem(name)
                    if bad:
                        _bad_config(f"invalid config:\n  run_name: {bad}")
        return
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf import OmegaConf, open_dict
    from omegaconf.errors import OmegaConfBaseException

    overrides = [a for a in argv if not a.lstrip("+~").startswith(("hydra.", "hydra/"))]
    run_dirs = [a for a in argv if a.startswith("hydra.run.dir=")]
    try:
        with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
            cfg = compose(config_name="config", overrides=overrides + run_dirs,
                          return_hydra_config=True)
        with open_dict(cfg):
            hydra_cfg = cfg.pop("hydra")
        run_dir = OmegaConf.select(OmegaConf.merge({"hydra": hydra_cfg}, cfg), "hydra.run.dir")
    except (HydraException, OmegaConfBaseException) as e:
        _bad_config(f"bad config: {e}")
    try:
        to_object(cfg)
    except ConfigError as e:
        _bad_config(str(e))
    why = _unwritable(Path(run_dir))
    if why:
        print(f"genmodels-train: cannot write the run folder {run_dir}: {why}. Nothing was "
              f"trained; set hydra.run.dir=<a writable folder>", file=sys.stderr)
        sys.exit(6)


def main() -> None:
    register_all()
    _check_composes(sys.argv[1:])
    if int(os.environ.get("RANK", "0")) > 0:
        given = {a.split("=", 1)[0] for a in sys.argv[1:]}
        sys.argv += [o for o in SILENT_RANK_OVERRIDES if o.split("=", 1)[0] not in given]
    _hydra_main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        _leave_without_finalization()


def _leave_without_finalization() -> None:
    """End a torchrun process that finished its work (process group destroyed, every file
    written atomically) without interpreter finalization.

    Twice in about 150 two-process runs of the slow suite (2026-12-06, 2-core machine under load),
    a rank that had finished and destroyed its gloo group still died at exit ("terminate called without an active exception",
    exit -6, torchrun then failing the whole run): gloo's worker threads can hold work objects
    whose tensors are released while the interpreter is torn down (pytorch/pytorch#179291).
    Nothing is left to do at that point, so the process flushes its streams and logs and leaves
    with ``os._exit(0)``. Failures never come here: they leave through ``sys.exit(code)``.
    """
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
