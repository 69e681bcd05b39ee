"""The documentation stays true.

docs/equations.md: every function, test and exercise it names exists, every SPEC function and
every exercise of the course's registry has a row, each row's exercise column names exactly the
exercises fenced in its functions, and every equation 2.1–2.38 and both algorithms have a row
with a function, a test and an exercise. The family pages: each exists,
mentions each of its equations, and its worked examples print what the page says they print.
"""

import contextlib
import importlib
import inspect
import io
import re
from pathlib import Path

import pytest
import torch

from genmodels.exercise.registry import BY_NAME, EXERCISES

pytestmark = pytest.mark.docs

ROOT = Path(__file__).resolve().parents[1]
#: the equation table (the page's last section, "Empty batches", is tests/test_fuzz_spec.py's)
TABLE = (ROOT / "docs/equations.md").read_text().split("\n## Empty batches", 1)[0]
ROWS = [line for line in TABLE.splitlines() if line.startswith("| ") and "`genmodels." in line]


def _cells(row):
    """``(eq, functions, tests, exercises)`` of a row ``| eq | function | test | exercise |``."""
    cells = [c.strip() for c in row.strip().strip("|").split(" | ")]
    assert len(cells) == 4, f"expected 4 columns (eq | function | test | exercise): {row}"
    eq, funcs, tests, exercises = cells
    return (eq, re.findall(r"`(genmodels\.[\w.]+)`", funcs),
            re.findall(r"`(tests/[\w/]+\.py::\w+)`", tests), re.findall(r"`([\w]+\.[\w]+)`", exercises))


CELLS = [_cells(row) for row in ROWS]
FUNCTIONS = sorted({f for _, funcs, _, _ in CELLS for f in funcs})
TESTS = sorted({t for _, _, tests, _ in CELLS for t in tests})
EXERCISE_REFS = sorted({(e, f) for _, funcs, _, exs in CELLS for e in exs for f in funcs})

#: the chapter's numbered equations and its two algorithms, as the eq column writes them
EQUATIONS = [f"2.{i}" for i in range(1, 39)] + ["Alg 1", "Alg 2"]


def _equations_of(eq_cell):
    """The equations an eq cell covers: "2.16–2.21" → 2.16 … 2.21; "Alg 1 l.4" → Alg 1."""
    covered = set()
    for lo, hi in re.findall(r"\b2\.(\d+)(?:\s*[–-]\s*2\.(\d+))?", eq_cell):
        covered |= {f"2.{i}" for i in range(int(lo), int(hi or lo) + 1)}
    covered |= {f"Alg {n}" for n in re.findall(r"\bAlg(?:orithm)?s?\.? ?(\d)", eq_cell)}
    return covered


def _spec_functions():
    """Lower-case callables in the tables of SPEC.md: each backticked ``name(`` of a row's name
    column (the first column that has one: the chapter's tables are "eq | name | meaning", those
    beyond it "name | meaning"). Module methods (GPT's ``generate``, ``forward``) are not
    functions of a package."""
    names = set()
    for line in (ROOT / "docs/SPEC.md").read_text().splitlines():
        cells = line.split("|")
        if line.startswith("|") and len(cells) > 3:
            for cell in cells[1:3]:
                found = re.findall(r"`([a-z_][a-z_0-9]*)\(", cell)
                if found:
                    names |= set(found)
                    break
    return sorted(names - {"forward", "generate"})


def _resolve(dotted):
    module, name = dotted.rsplit(".", 1)
    return getattr(importlib.import_module(module), name, None)


# ------------------------------------------------------------------------------ equations.md
def test_table_is_not_empty():
    assert len(ROWS) >= 50 and len(TESTS) >= 80


@pytest.mark.parametrize("dotted", FUNCTIONS)
def test_function_exists(dotted):
    assert callable(_resolve(dotted)), f"{dotted} is missing"


@pytest.mark.parametrize("ref", TESTS)
def test_test_exists(ref):
    path, name = ref.split("::")
    assert re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M), f"{ref} does not exist"


@pytest.mark.parametrize("name", _spec_functions())
def test_every_spec_function_has_a_row(name):
    assert any(f"`genmodels.{pkg}.{name}`" in TABLE for pkg in
               ("rl", "transfer", "vae", "gan", "diffusion", "flow", "rnn", "transformer", "audio",
                "speech", "video")), \
        f"SPEC function {name} has no row in docs/equations.md"


@pytest.mark.parametrize("equation", EQUATIONS)
def test_every_equation_has_a_function_a_test_and_an_exercise(equation):
    rows = [(funcs, tests, exs) for eq, funcs, tests, exs in CELLS if equation in _equations_of(eq)]
    assert rows, f"equation {equation} has no row in docs/equations.md"
    assert any(funcs and tests and exs for funcs, tests, exs in rows), (
        f"equation {equation}: no row gives it a function, a test and an exercise "
        f"(rows: {rows})")


@pytest.mark.parametrize("exercise, function", EXERCISE_REFS)
def test_exercise_exists_and_sits_in_its_rows_module(exercise, function):
    assert exercise in BY_NAME, (f"exercise {exercise} (row of {function}) is not in "
                                 f"genmodels.exercise.registry; known: {sorted(BY_NAME)}")
    source = Path(inspect.getsourcefile(_resolve(function))).resolve()
    assert source == (ROOT / BY_NAME[exercise].module).resolve(), (
        f"exercise {exercise} is fenced in {BY_NAME[exercise].module}, "
        f"but its row's function {function} is defined in {source}")


def _exercises_fenced_in(functions):
    """The registry's exercises whose fences sit in one of ``functions`` (dotted names of
    functions or classes): what a row's exercise column must name."""
    names = []
    for dotted in functions:
        obj = _resolve(dotted)
        source = Path(inspect.getsourcefile(obj)).resolve()
        for ex in EXERCISES:
            if (source == (ROOT / ex.module).resolve()
                    and any(f == obj.__qualname__ or f.startswith(obj.__qualname__ + ".")
                            for f in ex.functions)):
                names.append(ex.name)
    return list(dict.fromkeys(names))


@pytest.mark.parametrize("row", ROWS, ids=[", ".join(c[1]) for c in CELLS])
def test_exercise_column_follows_from_the_registry(row):
    """A row names exactly the exercises fenced in its functions (`—` when there are none)."""
    _, funcs, _, exs = _cells(row)
    want = _exercises_fenced_in(funcs)
    column = ", ".join(f"`{e}`" for e in want) or "—"
    assert exs == want, f"docs/equations.md: the exercise column of {funcs} should read {column}"


@pytest.mark.parametrize("exercise", [e.name for e in EXERCISES])
def test_every_exercise_has_a_row(exercise):
    assert any(exercise in exs for _, _, _, exs in CELLS), \
        f"exercise {exercise} of the registry has no row in docs/equations.md"


def test_coverage_check_catches_a_missing_exercise():
    """The coverage test is not vacuous: the parser finds ranges and algorithms, and a row
    without an exercise does not count."""
    assert _equations_of("2.16–2.21 (BPTT by hand)") == {f"2.{i}" for i in range(16, 22)}
    assert _equations_of("Alg 1 l.4") == {"Alg 1"} and _equations_of("Alg 2 (DDIM)") == {"Alg 2"}
    eq, funcs, tests, exs = _cells("| 2.5 | `genmodels.vae.gaussian_log_density` | "
                                   "`tests/test_vae_equations.py::test_x` | — |")
    assert "2.5" in _equations_of(eq) and funcs and tests and not exs
    # the column check resolves classes to their fenced methods, and names nothing else
    assert _exercises_fenced_in(["genmodels.audio.VoiceConverter"]) == ["audio.voice_conversion"]
    assert _exercises_fenced_in(["genmodels.audio.mu_law_compress", "genmodels.audio.mu_law_expand",
                                 "genmodels.audio.WaveNet"]) == ["audio.mu_law"]


# ------------------------------------------------------------------------------ family pages
FAMILY_PAGES = {
    "rl.md": [f"2.{i}" for i in range(1, 5)],
    "transfer.md": ["L_T", "\\theta'", "\\Omega", "R(\\theta)"],
    "vae.md": [f"2.{i}" for i in range(5, 9)],
    "gan.md": ["2.9", "2.10", "2.11"],
    "diffusion.md": ["2.12", "2.13", "Algorithm 1", "Algorithm 2"],
    "rnn.md": [f"2.{i}" for i in range(14, 22)],
    "transformer.md": [f"2.{i}" for i in range(22, 30)],
    "audio.md": [f"2.{i}" for i in range(30, 39)],
    "video.md": [f"2.{i}" for i in range(16, 22)] + ["PSNR", "SSIM"],
}


def _mentions(text, equation):
    """``equation`` appears in ``text`` on its own ("2.1" not inside "2.13") or inside a range."""
    if not re.fullmatch(r"2\.\d+", equation):
        return equation in text
    if re.search(rf"(?<![\d.]){re.escape(equation)}(?!\d)", text):
        return True
    n = int(equation.split(".")[1])
    return any(int(lo) <= n <= int(hi)
               for lo, hi in re.findall(r"(?<![\d.])2\.(\d+)\s*[–-]\s*2\.(\d+)", text))


@pytest.mark.parametrize("page, equations", FAMILY_PAGES.items(), ids=list(FAMILY_PAGES))
def test_family_page_exists_and_mentions_its_equations(page, equations):
    path = ROOT / "docs" / page
    assert path.is_file(), f"docs/{page} does not exist"
    text = path.read_text()
    missing = [eq for eq in equations if not _mentions(text, eq)]
    assert not missing, f"docs/{page} never mentions {missing}"


def _worked_examples(text):
    """Each ```python block that is followed directly by a ```text block: (code, output)."""
    return re.findall(r"```python\n(.*?)```\s*\n```text\n(.*?)```", text, re.S)


@pytest.mark.parametrize("page", ["vae.md", "gan.md", "diffusion.md", "flow.md", "rl.md", "transfer.md",
                                  "video.md"])
def test_worked_example_prints_what_the_page_shows(page):
    examples = _worked_examples((ROOT / "docs" / page).read_text())
    assert examples, f"docs/{page} has no worked example (a ```python block followed by ```text)"
    for code, expected in examples:
        out = io.StringIO()
        try:
            with contextlib.redirect_stdout(out):
                exec(compile(code, f"docs/{page}", "exec"), {"__name__": "__docs__"})
        finally:
            torch.set_printoptions(profile="default")
        assert out.getvalue().strip() == expected.strip(), (
            f"docs/{page}: the worked example now prints\n{out.getvalue()}\ninstead of\n{expected}")


PAGE_FAMILY = {"vae.md": "vae", "gan.md": "gan", "diffusion.md": "ddpm", "flow.md": "flow", "rl.md": "rl",
               "transfer.md": "transfer"}


@pytest.mark.parametrize("page, family", PAGE_FAMILY.items(), ids=list(PAGE_FAMILY))
def test_family_page_lists_exactly_its_exercises(page, family):
    text = (ROOT / "docs" / page).read_text()
    section = text[text.index("## Tests and exercises"):]
    listed = set(re.findall(r"^\| `([\w]+\.[\w]+)` \|", section, re.M))
    registered = {e.name for e in EXERCISES if e.family == family}
    assert listed == registered, (f"docs/{page} lists {sorted(listed - registered)} that the registry "
                                  f"lacks, and lacks {sorted(registered - listed)}")
