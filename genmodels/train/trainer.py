"""The trainer every model family uses.

What it guarantees, whatever the family:
- **reproducible**: the same config and seed give the same numbers on the same machine; batches
  are a pure function of (seed, step) and the RNG states travel in the checkpoint, so a killed
  and resumed run ends with exactly the numbers of an uninterrupted one;
- **safe**: checkpoints are written atomically (temp file, fsync, rename); a NaN or inf loss (or
  gradient) stops the run with a message naming the step, before the bad update, so the last
  checkpoint on disk stays good;
- **observable**: a tqdm bar with the live loss, ``metrics.jsonl`` (one JSON object a line, with
  ``split`` = train / val / test), ``results.json``, and matplotlib figures, all in the run folder;
- **data-parallel** under ``torchrun --nproc_per_node=N`` (see :mod:`genmodels.train.dist`):
  ``trainer.batch_size`` is the global batch (drawn by the task, :meth:`Task.draw`), each process
  trains on its 1/N share (the trainer hands it to :meth:`Task.training_step`) with DDP
  averaging the gradients, and N processes reproduce the parameters of one (up to the rounding
  of the all-reduce). Only rank 0 writes: logs, metrics, checkpoints, figures, the progress bar;
  it also runs the evaluations (on the full split, so the numbers are those of one process).
  A checkpoint does not depend on N: a run may be resumed with another number of processes
  (except PPO's, whose environments are split over the processes).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import json
import math
import random
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf
from tqdm.auto import tqdm

from genmodels._checks import NonFiniteError, input_checks
from genmodels.train import dist
from genmodels.train.checkpoint import (CheckpointError, atomic_write_text, load_checkpoint,
                                       previous_path, save_checkpoint, write_json)
from genmodels.train.config import DATASETS, MODEL_FAMILIES, Config, ConfigError, register_all
from genmodels.train.task import Task

__all__ = ["Trainer", "NonFiniteLossError", "seed_everything", "resolve_device", "lr_factor",
           "build_task", "task_class"]

#: keys that may differ between a run and its resume (they do not change the numbers)
RESUME_MUTABLE = ("trainer.max_steps", "trainer.resume", "trainer.halt_after", "trainer.progress",
                  "trainer.device", "trainer.threads", "trainer.figures", "trainer.eval_every",
                  "trainer.log_every", "trainer.ckpt_every", "trainer.input_checks")


class NonFiniteLossError(RuntimeError):
    """The loss or the gradient became NaN/inf; raised before the bad update is applied."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(name: str, local_rank: int | None = None) -> torch.device:
    """The device of ``trainer.device``; under torchrun (``local_rank`` given) a CUDA run takes
    ``cuda:LOCAL_RANK``, one GPU per process."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"trainer.device: {name!r} requested but CUDA is not available "
                          f"(use trainer.device=auto or cpu)")
    if local_rank is not None and name.startswith("cuda"):
        if name != "cuda":
            raise ConfigError(f"trainer.device: {name!r} under torchrun; use cuda or auto (each "
                              f"process takes cuda:LOCAL_RANK)")
        return torch.device("cuda", local_rank)
    return torch.device(name)


def lr_factor(step: int, max_steps: int, name: str, warmup_steps: int, min_lr_ratio: float) -> float:
    """Multiplier of the peak learning rate at ``step`` (0-based): linear warm-up, then
    constant, cosine or linear decay to ``min_lr_ratio`` at ``max_steps``."""
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if name == "constant":
        return 1.0
    progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)
    decay = 0.5 * (1 + math.cos(math.pi * progress)) if name == "cosine" else 1 - progress
    return min_lr_ratio + (1 - min_lr_ratio) * decay


def task_class(cfg: Config) -> type[Task]:
    """The Task class registered for ``cfg.model.family``."""
    register_all()
    module, cls = MODEL_FAMILIES[cfg.model.family].split(":")
    return getattr(importlib.import_module(module), cls)


def build_task(cfg: Config, device: torch.device) -> Task:
    cls = task_class(cfg)
    return cls(cfg, DATASETS[cfg.data.name](cfg.data), device)


def _make_optimizer(params, o) -> torch.optim.Optimizer:
    if o.name == "sgd":
        return torch.optim.SGD(params, lr=o.lr, momentum=o.beta1, weight_decay=o.weight_decay)
    cls = torch.optim.AdamW if o.name == "adamw" else torch.optim.Adam
    return cls(params, lr=o.lr, betas=(o.beta1, o.beta2), eps=o.eps, weight_decay=o.weight_decay)


_NO_DEFAULT = object()


def _schema_default(cfg, key: str):
    """The schema's default of the dotted config ``key`` (a dataclass field), or a sentinel."""
    *path, name = key.split(".")
    obj = cfg
    for part in path:
        obj = getattr(obj, part, None)
    if obj is None or not dataclasses.is_dataclass(obj):
        return _NO_DEFAULT
    field = {f.name: f for f in dataclasses.fields(obj)}.get(name)
    if field is None or field.default is dataclasses.MISSING:
        return _NO_DEFAULT
    return field.default


def _flatten(d: dict, prefix: str = "") -> dict[str, Any]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out.update(_flatten(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_to_dict(cfg: Config) -> dict:
    return OmegaConf.to_container(OmegaConf.structured(cfg), resolve=True)


class MetricsLog:
    """``metrics.jsonl``: appended a line at a time and flushed, so a crash loses nothing logged."""

    def __init__(self, path: Path):
        self.path = path

    def truncate_after(self, step: int, *, final: bool = False) -> None:
        """On resume: drop what a killed run logged after its last checkpoint. With ``final``
        (the checkpoint is the last one, at max_steps) also drop the val/test rows at ``step``:
        the final evaluation runs after that checkpoint is written, and the resumed run redoes it."""
        if not self.path.exists():
            return
        keep = []
        lines = self.path.read_text().splitlines()
        for i, line in enumerate(lines):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as e:
                if i == len(lines) - 1:          # the last write, cut short (power loss, full disk)
                    print(f"{self.path}: dropping a half-written last line", file=sys.stderr)
                    break
                raise ValueError(f"{self.path}: line {i + 1} is not JSON ({e})") from e
            if record["step"] < step or (record["step"] == step and
                                         not (final and record.get("split") != "train")):
                keep.append(line)
        atomic_write_text(self.path, "".join(line + "\n" for line in keep))

    def write(self, record: dict) -> None:
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


class Trainer:
    def __init__(self, cfg: Config, out_dir: str | Path):
        self.cfg = cfg
        self.out_dir = Path(out_dir)
        self.ckpt_path = self.out_dir / "checkpoints" / "last.pt"
        self.metrics = MetricsLog(self.out_dir / "metrics.jsonl")
        self.step = 0
        self.train_time_s = 0.0      # wall-clock seconds inside training steps
        self.train_cpu_s = 0.0       # CPU seconds of this process in them (robust to a busy machine)
        self.last_good_ckpt: str | None = None
        self.dist = dist.DistContext()  # this process's rank (set by fit under torchrun)
        self.ddp: dict[str, torch.nn.Module] = {}   # optimiser group -> its DDP (N > 1 only)

    # ------------------------------------------------------------------ setup
    def _setup(self) -> None:
        t = self.cfg.trainer
        if t.threads:
            torch.set_num_threads(t.threads)
        if dist.env_world_size() > 1:       # launched by torchrun: join the process group
            use_cuda = resolve_device(t.device).type == "cuda"
            self.dist = dist.init_from_env(use_cuda)
            key = task_class(self.cfg).batch_key     # the config value that sizes draw's batch
            size = functools.reduce(getattr, key.split("."), self.cfg)
            if size % self.dist.world_size:
                raise ConfigError(f"{key}: {size} is the global batch and must be a multiple "
                                  f"of the {self.dist.world_size} processes")
            # every rank writes into rank 0's run folder (Hydra may name folders by the second)
            self.out_dir = Path(dist.broadcast_object(str(self.out_dir)))
            self.ckpt_path = self.out_dir / "checkpoints" / "last.pt"
            self.metrics = MetricsLog(self.out_dir / "metrics.jsonl")
        seed_everything(self.cfg.seed)      # the same stream on every rank (see genmodels.train.dist)
        self.device = resolve_device(t.device,
                                     self.dist.local_rank if self.dist.distributed else None)
        self.task = build_task(self.cfg, self.device)
        if self.dist.distributed and self.device.type == "cuda":
            # BatchNorm over the global batch (torch's SyncBatchNorm needs GPUs: on CPU each rank
            # normalises by its own share's statistics)
            self.task.model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.task.model)
        self.groups = self.task.param_groups()
        self.optimizers = {name: _make_optimizer(params, t.optim) for name, params in self.groups.items()}
        if self.dist.distributed:
            self.ddp = {name: dist.wrap_group(params, self.device,
                                              self.task.ddp_find_unused_parameters)
                        for name, params in self.groups.items()}

    def _state(self) -> dict:
        kind, keys, pos, has_gauss, gauss = np.random.get_state()
        # plain tensors and tuples only, so the file loads with torch.load(weights_only=True)
        rng = {"torch": torch.get_rng_state(), "python": random.getstate(),
               "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, gauss)}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        return {"step": self.step, "train_time_s": self.train_time_s, "train_cpu_s": self.train_cpu_s,
                "model": self.task.model.state_dict(),
                "optimizers": {k: o.state_dict() for k, o in self.optimizers.items()},
                "task": self.task.state_dict(), "rng": rng, "config": config_to_dict(self.cfg)}

    def save(self) -> None:
        save_checkpoint(self.ckpt_path, self._state(), keep_previous=True)
        self.last_good_ckpt = f"{self.ckpt_path} (step {self.step})"

    def _load_latest(self) -> dict:
        """``last.pt``, or ``last.prev.pt`` when the latest is missing or unreadable."""
        prev = previous_path(self.ckpt_path)
        # a run killed while writing a checkpoint leaves its temporary file (never a half-written
        # last.pt, which is replaced atomically): only rank 0 writes checkpoints, so none is live
        if self.dist.is_main:
            for tmp in self.ckpt_path.parent.glob(f".{self.ckpt_path.name}.*.tmp"):
                tmp.unlink(missing_ok=True)
        try:
            return load_checkpoint(self.ckpt_path, map_location=self.device)
        except (CheckpointError, FileNotFoundError) as e:
            if not prev.exists():
                raise
            print(f"{e}; falling back to the previous checkpoint {prev}", file=sys.stderr)
            return load_checkpoint(prev, map_location=self.device)

    def _resume(self) -> None:
        state = self._load_latest()
        old, new = _flatten(state["config"]), _flatten(config_to_dict(self.cfg))
        # a field added to a schema after the checkpoint was written, left at its default, is no
        # change: the run was trained as that default says
        diff = sorted(k for k in set(old) | set(new)
                      if old.get(k) != new.get(k) and not k.startswith(RESUME_MUTABLE)
                      and not (k not in old and _schema_default(self.cfg, k) == new[k]))
        if diff:
            listing = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff)
            raise ConfigError(f"cannot resume {self.ckpt_path}: the config changed ({listing}). "
                              f"Use a new run folder, or trainer.resume=false to start over.")
        self.task.model.load_state_dict(state["model"])
        for k, o in self.optimizers.items():
            o.load_state_dict(state["optimizers"][k])
        self.task.load_state_dict(state["task"])
        torch.set_rng_state(state["rng"]["torch"])
        kind, keys, pos, has_gauss, gauss = state["rng"]["numpy"]
        np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, gauss))
        random.setstate(state["rng"]["python"])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        self.step, self.train_time_s = state["step"], state["train_time_s"]
        self.train_cpu_s = state.get("train_cpu_s", 0.0)
        self.last_good_ckpt = f"{self.ckpt_path} (step {self.step})"
        if self.dist.is_main:
            self.metrics.truncate_after(self.step, final=self.step >= self.cfg.trainer.max_steps)

    # ------------------------------------------------------------------ one update
    def optimize(self, loss: torch.Tensor, group: str = "model") -> None:
        """Backward, clip, step — after checking that the loss and the gradient are finite."""
        if not torch.isfinite(loss.detach()).all():
            self._non_finite(f"loss is {loss.item()}", group)
        opt = self.optimizers[group]
        opt.zero_grad(set_to_none=True)
        if self.ddp:                        # arm DDP's gradient all-reduce for this backward
            loss = self.ddp[group](loss)
        loss.backward()
        params = self.groups[group]
        clip = self.cfg.trainer.grad_clip
        norm = torch.nn.utils.clip_grad_norm_(params, clip if clip is not None else float("inf"))
        if not torch.isfinite(norm):
            self._non_finite(f"gradient norm is {norm.item()}", group)
        opt.step()

    def _non_finite(self, what: str, group: str) -> None:
        last = self.last_good_ckpt or "none written yet (lower trainer.ckpt_every to keep one)"
        raise NonFiniteLossError(
            f"{what} at step {self.step + 1} (optimizer '{group}'); training stopped before the bad "
            f"update. Last good checkpoint: {last}. Try a lower trainer.optim.lr or "
            f"trainer.grad_clip.")

    def _set_lr(self) -> float:
        t = self.cfg.trainer
        lr = t.optim.lr * lr_factor(self.step, t.max_steps, t.scheduler.name,
                                    t.scheduler.warmup_steps, t.scheduler.min_lr_ratio)
        for o in self.optimizers.values():
            for g in o.param_groups:
                g["lr"] = lr
        return lr

    def evaluate(self, split: str) -> dict[str, float]:
        """Evaluation never touches the training RNG stream: it forks it and seeds its own."""
        devices = [self.device.index or 0] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self.cfg.seed + 7919)
            self.task.model.eval()
            with torch.no_grad():
                result = self.task.evaluate(split)
            self.task.model.train()
        return {k: float(v) for k, v in result.items()}

    # ------------------------------------------------------------------ the loop
    def fit(self) -> dict[str, Any] | None:
        """Train to ``trainer.max_steps``; returns the final results, or None when halted early
        (and on the ranks other than 0 of a torchrun run)."""
        try:
            results = self._fit()
            # leave together: a rank that tore down its process group while rank 0 was still
            # evaluating sometimes died in gloo's teardown ("terminate called without an active
            # exception", exit -6) although its training had finished
            self.dist.barrier()
            return results
        finally:
            self.ddp.clear()                    # the DDP reducers go before their process group
            self.dist.close()

    def _fit(self) -> dict[str, Any] | None:
        t = self.cfg.trainer
        self._setup()
        main = self.dist.is_main
        if main:
            self.out_dir.mkdir(parents=True, exist_ok=True)
        if t.resume and (self.ckpt_path.exists() or previous_path(self.ckpt_path).exists()):
            self._resume()
            if main:
                print(f"Resuming from {self.ckpt_path} at step {self.step}", file=sys.stderr)
        elif main and self.metrics.path.exists():
            self.metrics.path.unlink()
        bar = tqdm(total=t.max_steps, initial=self.step, disable=not (t.progress and main),
                   desc=self.cfg.run_name, dynamic_ncols=True, file=sys.stderr)
        self.task.model.train()
        first_step = self.step
        while self.step < t.max_steps:
            lr = self._set_lr()
            t0, c0 = time.perf_counter(), time.process_time()
            # the formula functions check their inputs in the first step of this process (a wrong
            # shape or dtype fails there, naming the argument), then run unchecked; the NaN stop on
            # the loss and the gradient (optimize) stays on at every step
            checked = t.input_checks == "always" or self.step == first_step
            try:
                with input_checks(checked):
                    # the global batch, drawn alike on every rank; this rank computes its share
                    batch = dist.take_share(self.task.draw(self.step), self.task.batch_key)
                    logs = self.task.training_step(self.step, batch, self.optimize)
            except NonFiniteError as e:        # NaN/inf reached an equation function's input
                self._non_finite(f"a NaN/inf value appeared ({e})", "model")
            self.train_time_s += time.perf_counter() - t0
            self.train_cpu_s += time.process_time() - c0
            self.step += 1
            bar.update(1)
            if self.step % t.log_every == 0 or self.step == t.max_steps:
                logs = dist.mean_logs(logs)     # the global batch's values (N > 1)
                if main:
                    self.metrics.write({"step": self.step, "split": "train", "lr": lr,
                                        "train_time_s": round(self.train_time_s, 4), **logs})
                bar.set_postfix({k: f"{v:.4g}" for k, v in logs.items()
                                 if k == self.task.progress_metric})
            if main and t.eval_every and self.step % t.eval_every == 0 and self.step < t.max_steps:
                self.metrics.write({"step": self.step, "split": "val", **self.evaluate("val")})
            if main and (self.step % t.ckpt_every == 0 or self.step == t.max_steps):
                self.save()
            if t.halt_after is not None and self.step >= t.halt_after and self.step < t.max_steps:
                bar.close()
                if main:
                    self.save()
                    print(f"Halted at step {self.step} (trainer.halt_after); checkpoint "
                          f"{self.ckpt_path}", file=sys.stderr)
                return None
        bar.close()
        return self._finish() if main else None

    def _finish(self) -> dict[str, Any]:
        results = {"run_name": self.cfg.run_name, "step": self.step,
                   "train_time_s": round(self.train_time_s, 3),
                   "train_cpu_s": round(self.train_cpu_s, 3)}
        for split in ("val", "test"):
            t0 = time.perf_counter()
            results[split] = self.evaluate(split)
            results[f"{split}_eval_time_s"] = round(time.perf_counter() - t0, 3)
            self.metrics.write({"step": self.step, "split": split, **results[split]})
        write_json(self.out_dir / "results.json", results)
        figures = []
        if self.cfg.trainer.figures:
            from genmodels.plotting import plot_metrics
            fig_dir = self.out_dir / "figures"
            figures.append(plot_metrics(self.metrics.read(), fig_dir / "loss_curves.png"))
            self.task.model.eval()
            with torch.random.fork_rng(devices=[]), torch.no_grad():
                torch.manual_seed(self.cfg.seed + 104729)
                figures += self.task.figures(fig_dir)
        results["figures"] = [str(p) for p in figures]
        return results
