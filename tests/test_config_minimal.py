"""Every value is stated once: a YAML file holds only what it changes.

* configs/model, configs/data, configs/trainer: no value equals the default of the dataclass the
  file is typed by (the ``*_schema`` of its ``defaults:`` list; configs/trainer/*.yaml: the
  ``trainer`` field of ``Config``), so the default lives in the dataclass alone;
* configs/experiment: no value equals what the composition without it already gives (the group
  options the experiment selects, over their dataclasses).
"""

from __future__ import annotations

import typing
from functools import lru_cache
from pathlib import Path

import pytest
from omegaconf import DictConfig, ListConfig, OmegaConf

from conftest import CONFIG_DIR, compose
from genmodels.train.config import Config, register_all

pytestmark = pytest.mark.config

GROUP_FILES = [p for g in ("model", "data", "trainer")
               for p in sorted(Path(CONFIG_DIR, g).glob("*.yaml"))]
EXPERIMENT_FILES = sorted(Path(CONFIG_DIR, "experiment").glob("*.yaml"))


class _Missing:
    def __repr__(self):
        return "???"


_MISSING = _Missing()


def _rel(path: Path) -> str:
    return str(path.relative_to(Path(CONFIG_DIR).parent))


def _leaves(node: DictConfig, prefix: str = ""):
    """Dotted keys of the values a YAML file states (not its ``defaults`` list nor ``hydra``)."""
    for key in node:
        if not prefix and key in ("defaults", "hydra"):
            continue
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            yield from _leaves(child, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}"


def _value(cfg: DictConfig, key: str):
    """The value at dotted ``key`` as plain Python (lists as lists, ``???`` as a marker),
    interpolations unresolved."""
    node = cfg
    for part in key.split("."):
        node = node._get_node(part)
    if node._is_missing():
        return _MISSING
    if isinstance(node, (DictConfig, ListConfig)):
        return OmegaConf.to_container(node, resolve=False)
    return node._value()


def _load(path: Path) -> DictConfig:
    raw = OmegaConf.load(path)
    assert isinstance(raw, DictConfig) or raw is None, f"{_rel(path)}: not a mapping"
    return raw if raw is not None else OmegaConf.create()


def _schema(path: Path) -> type:
    """The dataclass a group file is typed by."""
    from hydra.core.config_store import ConfigStore
    group = path.parent.name
    names = [d for d in _load(path).get("defaults", []) if isinstance(d, str) and d != "_self_"]
    if not names:                     # untyped file: typed by the Config field it fills
        return typing.get_type_hints(Config)[group]
    register_all()
    return OmegaConf.get_type(ConfigStore.instance().load(f"{group}/{names[0]}.yaml").node)


@pytest.mark.parametrize("path", GROUP_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_group_file_states_no_dataclass_default(path):
    schema = _schema(path)
    default = OmegaConf.structured(schema)
    raw = _load(path)
    raw.pop("defaults", None)
    stated = OmegaConf.merge(default, raw)          # the YAML's values, typed by the schema
    restated = [f"{key} = {_value(stated, key)!r}" for key in _leaves(raw)
                if _value(stated, key) == _value(default, key)]
    assert not restated, (f"{_rel(path)} restates the default of {schema.__name__} "
                          f"(state it in the dataclass only): " + ", ".join(restated))




def _group_choices(path: Path) -> tuple[str, ...]:
    """``override /model: X`` etc. of an experiment's defaults list, as command-line overrides."""
    choices = []
    for entry in _load(path).get("defaults", []):
        if isinstance(entry, DictConfig):
            for key, option in entry.items():
                choices.append(f"{key.removeprefix('override ').lstrip('/')}={option}")
    return tuple(sorted(choices))


@lru_cache(maxsize=None)
def _composed(overrides: tuple[str, ...]) -> DictConfig:
    return compose(list(overrides))


def _parent_experiment(path: Path) -> str | None:
    """The experiment an experiment file extends (a plain name in its defaults list), if any."""
    names = [d for d in _load(path).get("defaults", []) if isinstance(d, str) and d != "_self_"]
    return names[0] if names else None


@pytest.mark.parametrize("path", EXPERIMENT_FILES, ids=lambda p: p.stem)
def test_experiment_states_only_what_it_changes(path):
    parent = _parent_experiment(path)
    base = (_composed((f"experiment={parent}", *_group_choices(path))) if parent
            else _composed(("~experiment", *_group_choices(path))))
    raw = _load(path)
    body = raw.copy()
    for key in ("defaults", "hydra"):
        body.pop(key, None)
    stated = OmegaConf.merge(base, body)
    restated = [f"{key} = {_value(stated, key)!r}" for key in _leaves(raw)
                if _value(stated, key) == _value(base, key)]
    assert not restated, (f"{_rel(path)} restates what its composition already gives without "
                          f"it: " + ", ".join(restated))


def test_the_check_sees_a_restated_value():
    """The comparison itself: a restated value is found, a changed one is not."""
    default = OmegaConf.structured(typing.get_type_hints(Config)["trainer"])
    raw = OmegaConf.create({"max_steps": 1000, "batch_size": 7, "optim": {"lr": 1e-3}})
    stated = OmegaConf.merge(default, raw)
    assert [k for k in _leaves(raw) if _value(stated, k) == _value(default, k)] == \
        ["max_steps", "optim.lr"]
