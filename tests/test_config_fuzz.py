"""Random Hydra overrides: every bad one fails before training, with a message naming the key.

tests/test_config.py checks a handful of hand-picked overrides; here hypothesis draws them from
the whole config surface of every experiment:

* unknown keys at any level of the tree, plain (``trainer.optim.bogus=1``, rejected when Hydra
  composes) or added (``+model.bogus=1``, rejected by ``to_object``);
* wrong types for every typed key (a word for an int, a float or a bool, a list for a string);
* impossible values: a negative number for every numeric key that is not a signed quantity
  (``SIGNED``), and zero for the sizes that must be positive;
* unknown names for every choice (``experiment=``, ``model=``, ``data=``, ``trainer=`` and every
  string key that a schema restricts with ``choice(...)``).

In-process, through ``to_object`` (what ``genmodels-train`` runs before building anything) on the
composed experiment with the override applied by Hydra's own parser and override code — the
steps of ``compose`` after the config files are read, 40x faster than composing again (a test
checks both routes agree); group options (``model=...``) go through ``compose`` itself. A few
overrides also go through the real command, which must exit before training.
The number of overrides tried is written to ``config_fuzz_counts.json`` in pytest's base temp
folder (or ``$GENMODELS_CONFIG_FUZZ_REPORT``) for experiments/reliability.md.
"""

from __future__ import annotations

import collections
import copy
import re
import shutil
import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import pytest
from hydra._internal.config_loader_impl import ConfigLoaderImpl
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import ConfigCompositionException, HydraException
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from conftest import CONFIG_DIR, REPO, compose, write_counts_report
from genmodels.train.config import ConfigError, to_object

pytestmark = [pytest.mark.fault, pytest.mark.config]

EXPERIMENTS = sorted(p.stem for p in Path(CONFIG_DIR, "experiment").glob("*.yaml"))
#: numeric keys where a negative value is meaningful
SIGNED = {"model.snr_low", "model.snr_high", "model.target_return", "model.fmin_db"}
#: sizes and counts that must be >= 1 (zero is as impossible as negative)
NONZERO = re.compile(r"(^|\.)(batch_size|max_steps|log_every|ckpt_every|hidden|hidden_size|"
                     r"latent_dim|n_layer|n_head|n_embd|block_size|timesteps|num_envs|num_steps|"
                     r"z_dim|width|base_channels|eval_batch|eval_windows)$")
#: string keys restricted by a schema's choice(...) (read from the schema sources)
CHOICE_FIELDS = {m for p in REPO.glob("genmodels/*/config.py")
                 for m in re.findall(r'choice\(self, "(\w+)"', p.read_text())}
GROUPS = ("experiment", "model", "data", "trainer")
COUNTS: collections.Counter = collections.Counter()
_SETTINGS = dict(deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@pytest.fixture(scope="module", autouse=True)
def _write_counts(tmp_path_factory):
    yield
    write_counts_report(tmp_path_factory, "GENMODELS_CONFIG_FUZZ_REPORT", "config_fuzz_counts.json",
                        dict(COUNTS))


@lru_cache(maxsize=None)
def composed(experiment: str):
    return compose([f"experiment={experiment}"])


def apply(experiment: str, overrides: list[str]):
    """``compose([experiment=..., *overrides])`` without reading the files again: Hydra's parser
    and its code that applies key=value overrides, on a copy of the composed experiment."""
    cfg = copy.deepcopy(composed(experiment))
    ConfigLoaderImpl._apply_overrides_to_config(OverridesParser.create().parse_overrides(overrides), cfg)
    return cfg


@lru_cache(maxsize=None)
def leaves(experiment: str) -> dict[str, tuple[str, object]]:
    """``key -> (type name, value)`` of every leaf of the composed experiment (typed by its
    schema, so an Optional key that is null still has its int/float type)."""
    cfg = composed(experiment)
    out = {}

    def walk(node, prefix):
        for key in node.keys():
            full = f"{prefix}{key}"
            child = node._get_node(key)
            if OmegaConf.is_dict(child):
                walk(child, full + ".")
                continue
            if OmegaConf.is_list(child):
                out[full] = ("list", OmegaConf.to_container(child))
                continue
            ref = getattr(child._metadata, "ref_type", None)           # e.g. Optional[int]
            args = [a.__name__ for a in getattr(ref, "__args__", ()) if a is not type(None)]
            out[full] = (args[0] if args else getattr(ref, "__name__", str(ref)), child._value())

    walk(cfg, "")
    return {k: v for k, v in out.items() if not k.startswith("hydra")}


def _fails_naming(experiment, overrides, key, full_compose=False):
    """Composing + validating ``overrides`` raises, and the message (or its cause) names ``key``."""
    try:
        to_object(compose(overrides) if full_compose else apply(experiment, overrides))
    except (ConfigError, ConfigCompositionException, OmegaConfBaseException, HydraException) as e:
        text = f"{e}\n{e.__cause__}"
        assert key in text, f"{overrides}: {type(e).__name__} does not name {key!r}: {text}"
        return type(e).__name__
    raise AssertionError(f"{overrides}: accepted")


_IDENT = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)


def _nodes(experiment):
    return sorted({""} | {k.rsplit(".", 1)[0] + "." for k in leaves(experiment) if "." in k})


# ----------------------------------------------------------------------------- properties
@settings(max_examples=100, **_SETTINGS)
@given(data=st.data())
def test_unknown_keys_fail_naming_the_key(data):
    experiment = data.draw(st.sampled_from(EXPERIMENTS))
    node = data.draw(st.sampled_from(_nodes(experiment)))
    name = data.draw(_IDENT.filter(lambda n: f"{node}{n}" not in leaves(experiment)
                                   and not any(k.startswith(f"{node}{n}.") for k in leaves(experiment))))
    plus = data.draw(st.booleans())
    key = f"{node}{name}"
    kind = _fails_naming(experiment, [f"{'+' if plus else ''}{key}=1"], key)
    if plus:
        assert kind == "ConfigError"            # `+key` passes Hydra, our validation stops it
    COUNTS["unknown_key"] += 1


_BAD_TYPE = {"int": ["abc", "1.5", "[1,2]", "true"], "float": ["fast", "[1,2]", "{a: 1}"],
             "bool": ["maybe", "1.5", "banana", "[1]"], "str": ["[1,2]", "{a: 1}"],
             "list": ["abc", "3"]}


@settings(max_examples=150, **_SETTINGS)
@given(data=st.data())
def test_wrong_types_fail_naming_the_key(data):
    experiment = data.draw(st.sampled_from(EXPERIMENTS))
    typed = sorted(k for k, (t, _) in leaves(experiment).items() if t in _BAD_TYPE)
    key = data.draw(st.sampled_from(typed))
    bad = data.draw(st.sampled_from(_BAD_TYPE[leaves(experiment)[key][0]]))
    _fails_naming(experiment, [f"{key}={bad}"], key)
    COUNTS["wrong_type"] += 1


@settings(max_examples=150, **_SETTINGS)
@given(data=st.data())
def test_impossible_numbers_fail_naming_the_key(data):
    experiment = data.draw(st.sampled_from(EXPERIMENTS))
    numeric = sorted(k for k, (t, _) in leaves(experiment).items()
                     if t in ("int", "float") and k not in SIGNED)
    key = data.draw(st.sampled_from(numeric))
    is_int = leaves(experiment)[key][0] == "int"
    if NONZERO.search(key) and data.draw(st.booleans()):
        bad = "0"
    elif is_int:
        bad = str(data.draw(st.integers(-10 ** 6, -1)))
    else:
        bad = repr(data.draw(st.floats(-1e6, -1e-6)))
    _fails_naming(experiment, [f"{key}={bad}"], key)
    COUNTS["impossible_value"] += 1


def test_a_range_check_names_the_key_that_left_it():
    """Found by the fuzz above: clip_high = -1 was reported as a clip_low error."""
    _fails_naming("separate_synthetic", ["model.clip_high=-1.0"], "model.clip_high")
    _fails_naming("separate_synthetic", ["model.clip_low=0.9"], "model.clip_low")


def test_an_unknown_voice_is_refused_before_training():
    """Found by the fuzz below: vc_synthetic took model.source=zza and failed later."""
    _fails_naming("vc_synthetic", ["model.source=zza"], "model.source")
    _fails_naming("vc_synthetic", ["model.target=E"], "model.target")      # 4 voices: A-D


@settings(max_examples=100, **_SETTINGS)
@given(data=st.data())
def test_unknown_choices_fail_naming_the_key(data):
    experiment = data.draw(st.sampled_from(EXPERIMENTS))
    choices = sorted(k for k, (t, _) in leaves(experiment).items()
                     if t == "str" and k.rsplit(".", 1)[-1] in CHOICE_FIELDS)
    key = data.draw(st.sampled_from(choices))
    name = data.draw(_IDENT.map(lambda s: "zz" + s))      # no real option starts with "zz"
    _fails_naming(experiment, [f"{key}={name}"], key)
    COUNTS["unknown_choice"] += 1


@settings(max_examples=12, **_SETTINGS)
@given(data=st.data())
def test_unknown_group_options_fail_naming_them(data):
    """``model=zzfoo``: Hydra finds no such config file (composed for real, hence few draws)."""
    group = data.draw(st.sampled_from(GROUPS))
    name = data.draw(_IDENT.map(lambda s: "zz" + s))
    _fails_naming(None, [f"{group}={name}"], name, full_compose=True)
    COUNTS["unknown_group_option"] += 1


@pytest.mark.parametrize("override, key", [
    ("trainer.optim.bogus=1", "trainer.optim.bogus"), ("+data.bogus=2", "data.bogus"),
    ("trainer.max_steps=1.5", "trainer.max_steps"), ("trainer.progress=maybe", "trainer.progress"),
    ("trainer.optim.lr=-2", "trainer.optim.lr"), ("trainer.optim.name=zzsgd", "trainer.optim.name"),
])
def test_the_fast_route_fails_like_compose(override, key):
    """``apply`` (used for the many draws) raises the same error as composing from the files."""
    errors = []
    for full in (False, True):
        errors.append(_fails_naming("gan_digits", [override] if not full else
                                    ["experiment=gan_digits", override], key, full_compose=full))
    assert errors[0] == errors[1]


def test_the_surface_is_large():
    """The draws above range over many keys: every experiment, hundreds of typed leaves."""
    n = sum(len(leaves(e)) for e in EXPERIMENTS)
    COUNTS["leaves_over_all_experiments"] = n
    COUNTS["experiments"] = len(EXPERIMENTS)
    assert len(EXPERIMENTS) >= 20 and n >= 500
    assert {"arch", "name"} <= CHOICE_FIELDS


# ----------------------------------------------------------------------------- the real command
def _cli(args, tmp_path):
    exe = shutil.which("genmodels-train")
    cmd = [exe] if exe else [sys.executable, "-m", "genmodels.train.cli"]
    return subprocess.run([*cmd, *args, f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("override, key", [
    ("+model.bogus=1", "model.bogus"),
    ("data.split_seed=-3", "data.split_seed"),
])
def test_cli_exits_2_before_training(override, key, tmp_path):
    proc = _cli(["experiment=gan_digits", override], tmp_path)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert key in proc.stderr
    assert not (tmp_path / "run" / "metrics.jsonl").exists()
    COUNTS["cli_runs"] += 1


@pytest.mark.parametrize("override, key", [("trainer.max_steps=abc", "trainer.max_steps")])
def test_cli_exits_2_on_composition_errors(override, key, tmp_path):
    proc = _cli([override], tmp_path)
    assert key in proc.stdout + proc.stderr
    assert proc.returncode == 2
