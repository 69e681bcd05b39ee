"""docs/equations.md stays true: every function and test it names exists, every SPEC function has a row."""

import importlib
import re
from pathlib import Path

import pytest

pytestmark = pytest.mark.docs

ROOT = Path(__file__).resolve().parents[1]
TABLE = (ROOT / "docs/equations.md").read_text()
ROWS = [line for line in TABLE.splitlines() if line.startswith("| ") and "`genmodels." in line]
FUNCTIONS = sorted({m for row in ROWS for m in re.findall(r"`(genmodels\.[\w.]+)`", row)})
TESTS = sorted({m for row in ROWS for m in re.findall(r"`(tests/[\w/]+\.py::\w+)`", row)})


def _spec_functions():
    """Lower-case callables in the tables of SPEC.md (``name(`` inside backticks)."""
    names = set()
    for line in (ROOT / "docs/SPEC.md").read_text().splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 3:      # the "name" column of a SPEC table
            names |= set(re.findall(r"(?<![A-Za-z0-9_])([a-z_][a-z_0-9]*)\(", cells[2]))
    return sorted(names - {"forward"})


def test_table_is_not_empty():
    assert len(ROWS) >= 50 and len(TESTS) >= 80


@pytest.mark.parametrize("dotted", FUNCTIONS)
def test_function_exists(dotted):
    module, name = dotted.rsplit(".", 1)
    assert callable(getattr(importlib.import_module(module), name, None)), f"{dotted} is missing"


@pytest.mark.parametrize("ref", TESTS)
def test_test_exists(ref):
    path, name = ref.split("::")
    assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M), f"{ref} does not exist"


@pytest.mark.parametrize("name", _spec_functions())
def test_every_spec_function_has_a_row(name):
    assert any(f"`genmodels.{pkg}.{name}`" in TABLE for pkg in
               ("rl", "transfer", "vae", "gan", "diffusion", "rnn", "transformer", "audio")), \
        f"SPEC function {name} has no row in docs/equations.md"
