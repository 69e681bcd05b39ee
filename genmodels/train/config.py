"""Typed configuration: Hydra structured configs that fail before training on a bad value.

Three layers of checking, each naming the offending key:

1. unknown keys and wrong types are rejected by OmegaConf when Hydra composes the config
   (every node below is a dataclass, so the config is in struct mode);
2. impossible values (a negative learning rate, a zero batch size) are rejected by
   :func:`validate`, which walks the config and calls each dataclass's ``problems()``;
3. each model family and dataset registers its own schema with :func:`register_model` /
   :func:`register_data` (:mod:`genmodels.schema`, called from ``genmodels/<family>/config.py``),
   so adding a family never edits this file; :func:`register_all` discovers them by name.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import pkgutil
from dataclasses import dataclass, field
from typing import Any, Iterator, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from genmodels.errors import ConfigError
from genmodels.schema import (DATASETS, MODEL_FAMILIES, MODEL_SCHEMAS, Checked, DataConfig,
                              ModelConfig, choice, positive, register_data, register_model, unit)

__all__ = ["ConfigError", "Checked", "DataConfig", "ModelConfig", "OptimConfig",
           "SchedulerConfig", "TrainerConfig", "Config", "register_model", "register_data",
           "register_all", "to_object", "validate", "MODEL_FAMILIES", "DATASETS",
           "positive", "choice", "unit", "number_problem", "run_name_problem"]


@dataclass
class OptimConfig(Checked):
    name: str = "adam"            # adam | adamw | sgd
    lr: float = 1e-3              # peak learning rate
    weight_decay: float = 0.0
    beta1: float = 0.9            # Adam β₁ (or SGD momentum when name=sgd)
    beta2: float = 0.999          # Adam β₂
    eps: float = 1e-8

    def problems(self):
        yield from choice(self, "name", ("adam", "adamw", "sgd"))
        yield from positive(self, "lr")
        yield from positive(self, "weight_decay", allow_zero=True)
        yield from unit(self, "beta1", high_open=True)
        yield from unit(self, "beta2", high_open=True)
        yield from positive(self, "eps")


@dataclass
class SchedulerConfig(Checked):
    name: str = "constant"        # constant | cosine | linear (decay after warm-up)
    warmup_steps: int = 0         # linear warm-up from 0 to lr
    min_lr_ratio: float = 0.0     # final lr / peak lr for cosine and linear

    def problems(self):
        yield from choice(self, "name", ("constant", "cosine", "linear"))
        yield from positive(self, "warmup_steps", allow_zero=True)
        yield from unit(self, "min_lr_ratio")


@dataclass
class TrainerConfig(Checked):
    max_steps: int = 1000         # optimisation steps in all
    batch_size: int = 64
    eval_every: int = 500         # validation metrics every N steps (0: only at the end)
    log_every: int = 50           # training metrics to metrics.jsonl every N steps
    ckpt_every: int = 500         # atomic checkpoint every N steps (and always at the end)
    grad_clip: Optional[float] = 1.0   # max global gradient norm; null disables clipping
    device: str = "auto"          # auto (CUDA when present) | cpu | cuda | cuda:N
    threads: Optional[int] = None  # torch intra-op threads; null leaves torch's default
    progress: bool = True         # tqdm progress bar with the live loss
    resume: bool = True           # continue from <run dir>/checkpoints/last.pt when it exists
    halt_after: Optional[int] = None  # stop (as if killed) after this step; for tests and preemption
    figures: bool = True          # write matplotlib figures at the end
    input_checks: str = "first"   # first: formula functions check their inputs in the first step, then run unchecked | always
    optim: OptimConfig = field(default_factory=OptimConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)

    def problems(self):
        for name in ("max_steps", "batch_size", "log_every", "ckpt_every"):
            yield from positive(self, name)
        yield from positive(self, "eval_every", allow_zero=True)
        yield from positive(self, "grad_clip")
        yield from positive(self, "threads")
        yield from positive(self, "halt_after")
        yield from choice(self, "input_checks", ("first", "always"))
        if not (self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:")):
            yield "device", f"must be auto, cpu, cuda or cuda:N, got {self.device!r}"
        if self.scheduler.warmup_steps > self.max_steps:
            yield "scheduler.warmup_steps", (f"({self.scheduler.warmup_steps}) must not exceed "
                                             f"max_steps ({self.max_steps})")


@dataclass
class Config(Checked):
    run_name: str = "run"         # names the output folder: outputs/<run_name>/<time>
    seed: int = 0                 # same config + seed ⇒ same numbers on the same machine
    data: Any = MISSING           # a registered DataConfig subclass (configs/data/*.yaml)
    model: Any = MISSING          # a registered ModelConfig subclass (configs/model/*.yaml)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)

    def problems(self):
        yield from positive(self, "seed", allow_zero=True)
        bad = run_name_problem(self.run_name)
        if bad:
            yield "run_name", bad


def run_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a folder inside outputs/ (None when it can): the run folder is
    outputs/<run_name>/<time>, so a name that is empty, ``.``, ``..``, or holds a path separator
    would put the run (checkpoints, Hydra files) elsewhere."""
    if (not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name
            or name != name.strip()):
        return (f"must be a plain folder name (not empty, '.' or '..', no '/' or '\\', no "
                f"leading or trailing spaces), got {name!r}")
    return None


_REGISTERED = False


def register_all() -> None:
    """Store the base schema and import ``genmodels.<pkg>.config`` of every subpackage."""
    global _REGISTERED
    if _REGISTERED:
        return
    ConfigStore.instance().store(name="base_config", node=Config)
    import genmodels
    for mod in pkgutil.iter_modules(genmodels.__path__):
        if mod.ispkg and importlib.util.find_spec(f"genmodels.{mod.name}.config") is not None:
            importlib.import_module(f"genmodels.{mod.name}.config")
    _REGISTERED = True


# ------------------------------------------------------------------------------ checking
#: every integer value must fit a signed 64-bit integer: the code hands them to torch (tensors,
#: ``torch.manual_seed``) and numpy, which refuse larger ones deep inside training
INT_LIMIT = 2**63


def number_problem(v) -> str | None:
    """Why the number ``v`` is unusable in any config key (None when usable, or not a number):
    a float must be finite (a NaN or inf learning rate, beta, eps, clip or ratio passes every
    range check, since comparisons with NaN are false, and ends in a crash or a NaN loss), an
    integer must fit 64 bits."""
    if isinstance(v, bool):
        return None
    if isinstance(v, float) and not math.isfinite(v):
        return f"must be a finite number, got {v}"
    if isinstance(v, int) and not -INT_LIMIT <= v < INT_LIMIT:
        return f"must fit a 64-bit integer (|value| < 2**63), got {v}"
    return None


def _walk(obj, path) -> Iterator[tuple[str, str]]:
    bad: set[str] = set()
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            items = enumerate(v) if isinstance(v, (list, tuple)) else [(None, v)]
            for i, x in items:
                msg = number_problem(x)
                if msg:
                    bad.add(f.name)
                    yield f"{path}{f.name}" + ("" if i is None else f"[{i}]"), msg
    if isinstance(obj, Checked):
        try:
            for key, msg in obj.problems():
                if key not in bad:       # a non-finite value is already reported once
                    yield f"{path}{key}", msg
        except (TypeError, ValueError, OverflowError):
            if not bad:
                raise
    if dataclasses.is_dataclass(obj):
        for f in dataclasses.fields(obj):
            yield from _walk(getattr(obj, f.name), f"{path}{f.name}.")


def validate(cfg: Config) -> Config:
    """Raise :class:`ConfigError` listing every impossible value, each with its full key."""
    found = list(_walk(cfg, ""))
    for section in (cfg.model, cfg.data):
        if isinstance(section, Checked) and not found:   # cross-key checks need sane values
            found.extend(section.run_problems(cfg))
    if isinstance(cfg.model, ModelConfig) and cfg.model.family not in MODEL_FAMILIES:
        found.append(("model.family", f"unknown family {cfg.model.family!r}; "
                                      f"known: {sorted(MODEL_FAMILIES)}"))
    if isinstance(cfg.data, DataConfig) and cfg.data.name not in DATASETS:
        found.append(("data.name", f"unknown dataset {cfg.data.name!r}; known: {sorted(DATASETS)}"))
    if found:
        lines = "\n".join(f"  {key}: {msg}" for key, msg in found)
        raise ConfigError(f"invalid config:\n{lines}")
    return cfg


def _unknown_keys(node, path: str = "") -> Iterator[str]:
    """Keys that a ``+key=value`` override added to a typed node (Hydra lifts struct mode for
    ``+``, and ``OmegaConf.to_object`` would silently drop them)."""
    if not isinstance(node, DictConfig):
        return
    schema = OmegaConf.get_type(node)
    names = {f.name for f in dataclasses.fields(schema)} if dataclasses.is_dataclass(schema) else None
    for key in node.keys():
        if names is not None and key not in names:
            yield f"{path}{key}"
        elif key != "hydra":
            yield from _unknown_keys(node._get_node(key), f"{path}{key}.")


def to_object(cfg: DictConfig | Config) -> Config:
    """Turn a composed DictConfig into typed dataclasses and validate them."""
    if isinstance(cfg, DictConfig):
        unknown = list(_unknown_keys(cfg))
        if unknown:
            raise ConfigError("unknown config key(s): " + ", ".join(unknown) +
                              " (see `genmodels-train --cfg job` for the valid keys)")
    obj = OmegaConf.to_object(cfg) if isinstance(cfg, DictConfig) else cfg
    if not isinstance(obj, Config):
        raise ConfigError("config: the root must be genmodels' Config schema "
                          "(configs/config.yaml starts with `defaults: [base_config, ...]`)")
    for key, base in (("data", DataConfig), ("model", ModelConfig)):
        if not isinstance(getattr(obj, key), base):
            raise ConfigError(f"{key}: must be chosen from configs/{key}/ (a registered schema), "
                              f"got {type(getattr(obj, key)).__name__}")
    return validate(obj)
