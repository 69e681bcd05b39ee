"""The course's exercises, read from where each is declared: its fence in the library source.

The code a student writes is fenced by two comment lines; the comment lines directly under the
opening marker declare the exercise::

    # >>> exercise vae.kl: eq. 2.8
    # what: the closed-form KL(N(μ, σ²I) ‖ N(0, I)) = ½ Σ (μ² + σ² − log σ² − 1)
    # hint: ½ Σ_j (μ_j² + σ_j² − log σ_j² − 1), summed over the latent axis; it is 0 at μ = 0,
    #   σ = 1.
    # mistake: `0.5 * (mu ** 2` -> `(mu ** 2`
    sigma_sq = ...
    # <<< exercise vae.kl

``what`` (one line: what the student implements, the stub's message), ``hint`` (shown when a
check fails) and ``mistake`` are required; ``# uses: a.b, c.d`` (exercises this one's code or
tests call: implement those first) and ``# points: 2`` (what passing is worth, default
``DEFAULT_POINTS``) are optional. A value continues on comment lines indented
further (``#   ...``). The *planted mistake* is a text found once in the fenced code and a
plausible wrong version of it; the course's own tests plant it to prove the grader catches it
(never in two exercises of a ``uses`` pair at once). An exercise may have several fences (a
function and its helper), one of which carries the declaration; its function(s) are those around
its fences, the declaring fence's first. Workspaces get the fences without the declarations.

The tests that grade an exercise carry its mark, ``@pytest.mark.exercise("vae.kl")`` on one line
above a top-level test (a test may carry several names); those that take the ``small_case``
fixture (tests/conftest.py) are its small float64 cases, which the grader shows as expected vs
got.

Order: ``FAMILIES``, then ``SYLLABUS`` (other modules after it, by path), then the first fence's
line. This module imports nothing but the standard library: the grader may load it by file path
next to a student's workspace, whose ``genmodels`` package must be the one under test. It reads
the package it sits in and the checkout's ``tests/`` folder (without one, exercises have no tests).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

#: points of an exercise whose fence declares none (``# points: 2`` changes one; a teacher's
#: points file, ``genmodels-exercise check --points FILE``, changes any for a course)
DEFAULT_POINTS = 1.0

FAMILIES = ("rl", "transfer", "vae", "gan", "ddpm", "flow", "rnn", "transformer", "audio", "speech",
            "video")

#: the pytest marker that selects each family's tests (``pytest -m ddpm`` also works)
FAMILY_MARKER = {"rl": "rl", "transfer": "transfer", "vae": "vae", "gan": "gan",
                 "ddpm": "diffusion", "flow": "flow", "rnn": "rnn", "transformer": "transformer", "audio": "audio",
                 "speech": "speech", "video": "video"}

#: within a family, the modules in the order of the methods chapter (other modules follow)
SYLLABUS = ("rl/returns", "rl/rlhf", "rl/ppo", "transfer/finetune", "transfer/ewc", "diffusion/ddpm",
            "diffusion/sde", "audio/features", "audio/voice_conversion", "audio/measures",
            "audio/wavenet", "audio/enhancement", "audio/separation")

PACKAGE_DIR = Path(__file__).resolve().parents[1]          # .../genmodels
TESTS_DIR = PACKAGE_DIR.parent / "tests"

_OPEN = re.compile(r"^(?P<indent>[ \t]*)# >>> exercise (?P<name>[\w.]+): (?P<eq>.+?)\s*$")
_CLOSE = re.compile(r"^(?P<indent>[ \t]*)# <<< exercise (?P<name>[\w.]+)\s*$")
_FIELD = re.compile(r"# (?P<key>what|hint|mistake|uses|points): (?P<value>.+?)\s*")
_MORE = re.compile(r"#\s{2,}(?P<value>\S.*?)\s*")
_MISTAKE = re.compile(r"`(?P<old>.+?)` -> `(?P<new>.+)`")


class MarkerError(ValueError):
    """Unbalanced, nested or malformed exercise markers or declarations."""


@dataclass(frozen=True)
class Exercise:
    name: str                 # "<family>.<short>"
    eq: str                   # as written on the opening marker, e.g. "eq. 2.8"
    what: str                 # one line: what the student implements
    module: str               # the module holding the fenced code, e.g. "genmodels/vae/losses.py"
    functions: tuple[str, ...]  # the function(s) / method(s) the fences sit in
    tests: tuple[str, ...]    # pytest node ids of the formula tests, relative to the repository root
    hint: str                 # shown when a check fails
    mistake: tuple[str, str]  # (text in the fenced code, a plausible wrong version of it)
    uses: tuple[str, ...] = field(default=())    # exercises to implement first
    cases: tuple[str, ...] = field(default=())   # node ids of its small-case tests
    points: float = DEFAULT_POINTS  # what passing it is worth (``# points:``)

    @property
    def family(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def test_files(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.split("::", 1)[0] for t in self.tests + self.cases))


@dataclass(frozen=True)
class Region:
    """One fence: the markers are lines ``start`` and ``end`` (0-based), the declaration lines
    ``start+1 … body-1``, the fenced code ``body … end-1``."""
    name: str
    eq: str
    path: str          # relative to the package's parent, e.g. "genmodels/vae/losses.py"
    start: int
    end: int
    indent: str
    body: int
    declaration: tuple[tuple[str, str], ...] = ()


def _declaration(lines: list[str], start: int, end: int, indent: str, where: str):
    """The ``(key, value)`` pairs under an opening marker, and the index of the first code line."""
    fields: list[list[str]] = []
    i = start + 1
    while i < end and lines[i].startswith(indent):
        text = lines[i][len(indent):]
        if m := _FIELD.fullmatch(text):
            if any(k == m["key"] for k, _ in fields):
                raise MarkerError(f"{where}:{i + 1}: '{m['key']}' declared twice")
            fields.append([m["key"], m["value"]])
        elif fields and (m := _MORE.fullmatch(text)):
            fields[-1][1] += " " + m["value"]
        else:
            break
        i += 1
    return tuple((k, v) for k, v in fields), i


def parse_markers(text: str, path: str) -> list[Region]:
    """Every fenced region of one module, in order; raises MarkerError on malformed markers."""
    regions, open_ = [], None
    lines = text.split("\n")
    for i, line in enumerate(lines):
        if m := _OPEN.match(line):
            if open_ is not None:
                raise MarkerError(f"{path}:{i + 1}: exercise {m['name']} opens inside "
                                  f"exercise {open_[0]['name']}")
            open_ = (m, i)
        elif m := _CLOSE.match(line):
            if open_ is None or open_[0]["name"] != m["name"]:
                raise MarkerError(f"{path}:{i + 1}: '# <<< exercise {m['name']}' closes nothing open")
            start_m, start = open_
            if start_m["indent"] != m["indent"]:
                raise MarkerError(f"{path}:{i + 1}: markers of {m['name']} are indented differently")
            declaration, body = _declaration(lines, start, i, m["indent"], path)
            if body == i:
                raise MarkerError(f"{path}:{i + 1}: exercise {m['name']} fences no line")
            regions.append(Region(m["name"], start_m["eq"], path, start, i, m["indent"], body,
                                  declaration))
            open_ = None
        elif "exercise" in line and re.match(r"^\s*# (>>>|<<<)", line):
            raise MarkerError(f"{path}:{i + 1}: malformed exercise marker: {line.strip()!r}")
    if open_ is not None:
        raise MarkerError(f"{path}: exercise {open_[0]['name']} is never closed")
    return regions


def package_files(package_dir: Path) -> list[Path]:
    """The package's modules that may hold exercises (this grader's own package excluded)."""
    return sorted(p for p in package_dir.rglob("*.py")
                  if "exercise" not in p.relative_to(package_dir).parts[:1]
                  and "__pycache__" not in p.parts)


def find_regions(package_dir: Path = PACKAGE_DIR) -> dict[str, list[Region]]:
    """``{exercise name: [Region, ...]}`` for every marker in the package."""
    found: dict[str, list[Region]] = {}
    for p in package_files(package_dir):
        text = p.read_text(encoding="utf-8")
        if "# >>> exercise" not in text and "# <<< exercise" not in text:
            continue
        rel = p.relative_to(package_dir.parent).as_posix()
        for r in parse_markers(text, rel):
            found.setdefault(r.name, []).append(r)
    return found


def functions_around(tree: ast.Module, regions: list[Region]) -> list[str]:
    """The top-level function or ``Class.method`` of a module around each region's fenced lines."""
    spans = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            spans.append((node.name, node.lineno, node.end_lineno))
        elif isinstance(node, ast.ClassDef):
            spans += [(f"{node.name}.{f.name}", f.lineno, f.end_lineno) for f in node.body
                      if isinstance(f, ast.FunctionDef)]
    out = []
    for r in regions:
        names = [n for n, a, b in spans if a < r.start + 1 and r.end <= b]   # 1-based a, b
        if not names:
            raise MarkerError(f"{r.path}:{r.start + 1}: exercise {r.name} is fenced outside a "
                              "function or method")
        out.append(names[0])
    return list(dict.fromkeys(out))


_MARK = re.compile(r"^@pytest\.mark\.exercise\((?P<args>[^()]*)\)\s*$", re.M)
_DEF = re.compile(r"^def (?P<name>\w+)\((?P<params>[^)]*)\)", re.M)


def tagged_tests(tests_dir: Path = TESTS_DIR) -> dict[str, tuple[list[str], list[str]]]:
    """``{exercise name: (formula test ids, small-case test ids)}`` from the one-line
    ``@pytest.mark.exercise("name", ...)`` decorators of the top-level tests in ``tests_dir``."""
    found: dict[str, tuple[list[str], list[str]]] = {}
    for p in sorted(tests_dir.glob("test_*.py")) if tests_dir.is_dir() else []:
        text = p.read_text(encoding="utf-8")
        rel = p.relative_to(tests_dir.parent).as_posix()
        for mark in _MARK.finditer(text):
            names = re.findall(r"\"([\w.]+)\"", mark["args"])
            test = _DEF.search(text, mark.end())
            if not names or not test:
                raise MarkerError(f"{rel}: {mark[0]!r} names no exercise or marks no test")
            small = "small_case" in re.findall(r"\w+", test["params"])
            for n in names:
                found.setdefault(n, ([], []))[small].append(f"{rel}::{test['name']}")
    return found


def scan(package_dir: Path = PACKAGE_DIR, tests_dir: Path = TESTS_DIR) -> tuple[Exercise, ...]:
    """Every exercise declared in ``package_dir``, with its tests from ``tests_dir``."""
    tests, found = tagged_tests(tests_dir), find_regions(package_dir)
    exercises, trees = [], {}
    for name, regions in found.items():
        declared = [r for r in regions if r.declaration]
        if len(declared) != 1:
            raise MarkerError(f"exercise {name}: {len(declared)} of its fences carry a declaration "
                              "(# what: / # hint: / # mistake: under '# >>> exercise'), expected one")
        head, decl = declared[0], dict(declared[0].declaration)
        where = f"{head.path}:{head.start + 1}: exercise {name}"
        if missing := [k for k in ("what", "hint", "mistake") if k not in decl]:
            raise MarkerError(f"{where}: the declaration lacks {', '.join(missing)}")
        if not (mistake := _MISTAKE.fullmatch(decl["mistake"])):
            raise MarkerError(f"{where}: write the mistake as `text` -> `wrong text`")
        if name.split(".", 1)[0] not in FAMILIES or {r.path for r in regions} != {head.path}:
            raise MarkerError(f"{where}: unknown family, or fences in more than one module")
        if head.path not in trees:
            trees[head.path] = ast.parse((package_dir.parent / head.path).read_text(encoding="utf-8"))
        functions = functions_around(trees[head.path], [head, *regions])
        uses = tuple(u.strip() for u in decl.get("uses", "").split(",") if u.strip())
        try:
            points = float(decl.get("points", DEFAULT_POINTS))
        except ValueError:
            points = -1.0
        if not points >= 0 or points == float("inf"):
            raise MarkerError(f"{where}: points must be a number >= 0, got {decl['points']!r}")
        formula, small = tests.get(name, ([], []))
        exercises.append(Exercise(name, head.eq, decl["what"], head.path, tuple(functions),
                                  tuple(formula), decl["hint"], (mistake["old"], mistake["new"]),
                                  uses, tuple(small), points))

    def order(e):
        module = e.module.removeprefix("genmodels/").removesuffix(".py")
        rank = SYLLABUS.index(module) if module in SYLLABUS else len(SYLLABUS)
        return FAMILIES.index(e.family), rank, e.module, found[e.name][0].start
    return tuple(sorted(exercises, key=order))


EXERCISES: tuple[Exercise, ...] = scan()
BY_NAME: dict[str, Exercise] = {e.name: e for e in EXERCISES}
