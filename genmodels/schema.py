"""The config schemas' base classes and registries, at the bottom of the package.

Every dataset and model family registers its typed schema here (:func:`register_data`,
:func:`register_model`, called from ``genmodels/<pkg>/config.py``), so the data layer and the
families depend on this module, not on the trainer; the trainer reads the registries to build a
run. A schema is a dataclass whose ``problems()`` yields ``(field, message)`` for each impossible
value (helpers :func:`positive`, :func:`choice`, :func:`unit`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

__all__ = ["Checked", "DataConfig", "ModelConfig", "register_model", "register_data",
           "MODEL_FAMILIES", "DATASETS", "DATA_SCHEMAS", "MODEL_SCHEMAS", "positive", "choice", "unit"]


class Checked:
    """Mixin: ``problems()`` yields ``(field, message)`` for each impossible value."""

    def problems(self) -> Iterator[tuple[str, str]]:
        return iter(())

    def run_problems(self, cfg) -> Iterator[tuple[str, str]]:
        """``(full key, message)`` for values impossible together with the rest of the run's
        config ``cfg`` (e.g. a model's phase longer than ``trainer.max_steps``)."""
        return iter(())


def positive(obj, name, *, allow_zero=False):
    v = getattr(obj, name)
    if v is not None and (v < 0 or (v == 0 and not allow_zero)):
        yield name, f"must be {'>= 0' if allow_zero else '> 0'}, got {v}"


def choice(obj, name, choices):
    v = getattr(obj, name)
    if v not in choices:
        yield name, f"must be one of {list(choices)}, got {v!r}"


def unit(obj, name, *, low_open=False, high_open=False):
    v = getattr(obj, name)
    if (v <= 0 if low_open else v < 0) or (v >= 1 if high_open else v > 1):
        yield name, f"must lie in {'(' if low_open else '['}0, 1{')' if high_open else ']'}, got {v}"


# ------------------------------------------------------------------------------ base schemas
@dataclass
class DataConfig(Checked):
    """Base of every dataset schema; ``name`` picks the loader registered for it."""
    name: str = MISSING


@dataclass
class ModelConfig(Checked):
    """Base of every model schema; ``family`` picks the task (training/eval code) of the family."""
    family: str = MISSING
    arch: str = MISSING


# ------------------------------------------------------------------------------ registries
MODEL_FAMILIES: dict[str, str] = {}                  # family → "module:TaskClass"
MODEL_SCHEMAS: dict[str, type] = {}                  # family → its schema dataclass
DATASETS: dict[str, Callable[[Any], Any]] = {}       # data name → loader(data_cfg)
DATA_SCHEMAS: dict[str, type] = {}                   # data name → its schema dataclass


def register_model(schema_name: str, schema: type, family: str, task: str) -> None:
    """Register a model schema (usable as ``defaults: [<schema_name>]`` in configs/model/*.yaml)."""
    ConfigStore.instance().store(group="model", name=schema_name, node=schema)
    MODEL_FAMILIES[family] = task
    MODEL_SCHEMAS[family] = schema


def register_data(schema_name: str, schema: type, name: str, loader: Callable[[Any], Any]) -> None:
    """Register a dataset schema and the function that loads it from its config."""
    ConfigStore.instance().store(group="data", name=schema_name, node=schema)
    DATASETS[name] = loader
    DATA_SCHEMAS[name] = schema
