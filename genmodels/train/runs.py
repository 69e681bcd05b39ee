"""A finished run, back as a task: the configuration saved in its checkpoint, typed again by the
registered schemas, the task rebuilt from it and the trained weights loaded (eval mode). What the
commands that *use* trained models (``genmodels-speak``, ``genmodels-transcribe``,
``genmodels-animate``) start from."""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["load_run"]


def load_run(run_dir: str | Path, family: str | tuple[str, ...], device: str = "cpu", data=None,
             option: str = "--run", hint: str = ""):
    """The task of the run in ``run_dir`` (a run folder, a ``last.pt``, or ``outputs/<name>``: its
    newest run), rebuilt from its checkpoint's configuration, with its trained weights, in eval
    mode. ``family``: the model family (``model.family``) the caller needs, or several; another
    family's run is a ``ValueError`` naming ``option`` (the command-line option that gave the
    folder), followed by ``hint`` (how to make the right one). ``data``: the data set to build the
    task on (default: the run's own, loaded again from its data config); the caller vouches that it
    is the same."""
    from omegaconf import OmegaConf

    from genmodels.schema import DATA_SCHEMAS, MODEL_SCHEMAS
    from genmodels.train.checkpoint import load_checkpoint, resolve_checkpoint
    from genmodels.train.config import Config, register_all, to_object
    from genmodels.train.trainer import build_task, task_class

    wanted = (family,) if isinstance(family, str) else tuple(family)
    register_all()
    try:
        path = resolve_checkpoint(run_dir)
    except (FileNotFoundError, ValueError) as e:
        raise ValueError(f"{option}: {e}") from None
    ckpt = load_checkpoint(path, map_location=device)
    saved = ckpt.get("config", {})
    got = saved.get("model", {}).get("family")
    if got not in wanted:
        raise ValueError(f"{option}: {run_dir} is a {got!r} run; this needs a "
                         f"{' or '.join(repr(w) for w in wanted)} run{f' ({hint})' if hint else ''}")
    base = OmegaConf.structured(Config)
    base.data = OmegaConf.structured(DATA_SCHEMAS[saved["data"]["name"]])
    base.model = OmegaConf.structured(MODEL_SCHEMAS[got])
    cfg = to_object(OmegaConf.merge(base, saved))
    if data is None:
        task = build_task(cfg, torch.device(device))
    else:
        task = task_class(cfg)(cfg, data, torch.device(device))
    task.model.load_state_dict(ckpt["model"])
    task.load_state_dict(ckpt.get("task", {}))
    task.model.eval()
    return task
