"""The layering of docs/architecture.md holds: imports go down the stack only, and no module
takes part in an import cycle. Both are read from the source (every ``import`` statement, at
module level or inside a function), so a violation fails here before it can bite at run time."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "genmodels"


def _layers() -> dict[str, int]:
    """package -> layer, from the table in docs/architecture.md (``genmodels`` is the root)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    layers = {}
    for row in re.finditer(r"^\| (\d+) \| ([^|]+) \|", text, re.M):
        for name in re.findall(r"`([\w.]+)`", row.group(2)):
            layers[name] = int(row.group(1))
    return layers


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every genmodels module that ``path`` imports (absolute names; ``from x import y`` counts
    ``x.y`` when that is a module, else ``x``)."""
    tree = ast.parse(path.read_text(), str(path))
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.split(".")[0] == "genmodels"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == "genmodels":
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.add(sub if sub in MODULES else node.module)
    return out


FILES = sorted(p for p in PKG.rglob("*.py"))
MODULES = {_module_name(p) for p in FILES}
GRAPH = {_module_name(p): _imports(p) & MODULES for p in FILES}


def _package(module: str) -> str:
    parts = module.split(".")
    return "genmodels" if len(parts) == 1 else parts[1]


def test_every_package_has_a_layer():
    layers = _layers()
    packages = {_package(m) for m in MODULES}
    assert packages <= set(layers), f"packages missing from docs/architecture.md: " \
                                    f"{sorted(packages - set(layers))}"
    assert set(layers) <= packages, f"docs/architecture.md names packages that do not exist: " \
                                    f"{sorted(set(layers) - packages)}"


def test_imports_go_down_the_layers_only():
    layers = _layers()
    bad = []
    for module, targets in GRAPH.items():
        src = _package(module)
        for target in targets:
            dst = _package(target)
            if dst != src and layers[dst] >= layers[src]:
                bad.append(f"{module} (layer {layers[src]}) imports {target} (layer {layers[dst]})")
    assert not bad, "imports that go sideways or up (see docs/architecture.md):\n" + "\n".join(bad)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one member (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in graph.get(v, ()):
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles():
    cycles = _cycles(GRAPH)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_no_cycles_between_packages():
    """Between packages too (rnn -> transformer -> rnn through different modules is a cycle of
    the design even when no single module cycle exists)."""
    packages: dict[str, set[str]] = {}
    for module, targets in GRAPH.items():
        packages.setdefault(_package(module), set()).update(
            _package(t) for t in targets if _package(t) != _package(module))
    cycles = _cycles(packages)
    assert not cycles, "package cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


def test_the_checks_find_a_cycle_and_an_upward_import():
    """The two checks above can fail: a made-up cycle and a made-up upward import are found."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    layers = _layers()
    assert layers["train"] < layers["vae"] < layers["charlm"] < layers["rl"]
    assert layers["data"] == layers["train"]          # so train -> data would be refused


@pytest.mark.parametrize("low", ["train", "data", "metrics", "_checks", "errors", "schema"])
def test_infrastructure_imports_no_family(low):
    families = {"rnn", "transformer", "diffusion", "vae", "gan", "transfer", "audio", "charlm",
                "rl", "exercise"}
    reached = {_package(t) for m, ts in GRAPH.items() if _package(m) == low for t in ts}
    assert not reached & families, f"genmodels.{low} imports {sorted(reached & families)}"
