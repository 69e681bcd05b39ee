"""Student workspaces, made from the exercise fences in the library source.

In a library module, the code a student writes is fenced by two comment lines (with the
exercise's declaration under the first, see :mod:`genmodels.exercise.registry`)::

    # >>> exercise vae.kl: eq. 2.8
    return 0.5 * (...)
    # <<< exercise vae.kl

A workspace is a copy of the ``genmodels`` package in which the fenced lines of the chosen
exercises are replaced by ``raise NotImplementedError("Exercise <name>: implement <eq> — <what>")``;
the markers, the docstrings and the input checks above the fences stay, the declarations go.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from genmodels.exercise.registry import (BY_NAME, EXERCISES, FAMILY_MARKER, PACKAGE_DIR,  # noqa: F401
                                         Exercise, MarkerError, Region, find_regions,
                                         package_files, parse_markers)

REPO_DIR = PACKAGE_DIR.parent                              # the checkout (tests/ lives here)
MANIFEST = ".genmodels-exercise.json"
RESULTS = ".genmodels-exercise-results.json"


def region_text(package_dir: Path, regions: list[Region]) -> str:
    """The fenced source of an exercise (all its fences, joined)."""
    parts = []
    for r in regions:
        lines = (package_dir.parent / r.path).read_text(encoding="utf-8").split("\n")
        parts.append("\n".join(lines[r.body:r.end]))
    return "\n".join(parts)


def region_hash(package_dir: Path, regions: list[Region]) -> str:
    return hashlib.sha256(region_text(package_dir, regions).encode()).hexdigest()[:16]


def stub_message(ex: Exercise) -> str:
    return f"Exercise {ex.name}: implement {ex.eq} — {ex.what}"


def stub_line(ex: Exercise) -> str:
    return f"raise NotImplementedError({stub_message(ex)!r})"


def is_stub(package_dir: Path, regions: list[Region], ex: Exercise) -> bool:
    return f"NotImplementedError({stub_message(ex)!r})" in region_text(package_dir, regions)


def replace_regions(text: str, path: str, replacements: dict[str, str]) -> str:
    """``text`` with each fence of ``name`` (declaration and code) replaced by
    ``replacements[name]`` (one line or several, re-indented to the markers' indentation)."""
    lines = text.split("\n")
    for r in reversed(parse_markers(text, path)):
        if r.name in replacements:
            body = [r.indent + ln if ln else ln for ln in replacements[r.name].split("\n")]
            lines[r.start + 1:r.end] = body
    return "\n".join(lines)


def strip_declarations(text: str, path: str) -> str:
    """``text`` without the declaration lines under its opening markers."""
    lines = text.split("\n")
    for r in reversed(parse_markers(text, path)):
        del lines[r.start + 1:r.body]
    return "\n".join(lines)


def apply_mistake(text: str, path: str, ex: Exercise) -> str:
    """``text`` with ``ex``'s planted mistake applied inside its fences (exactly one occurrence)."""
    old, new = ex.mistake
    lines = text.split("\n")
    regions = [r for r in parse_markers(text, path) if r.name == ex.name]
    hits = [(r, i) for r in regions for i in range(r.body, r.end) if old in lines[i]]
    if len(hits) != 1 or lines[hits[0][1]].count(old) != 1:
        raise MarkerError(f"{ex.name}: the planted mistake's text {old!r} occurs {len(hits)} times "
                          f"in its fenced code in {path}, expected once")
    i = hits[0][1]
    lines[i] = lines[i].replace(old, new)
    return "\n".join(lines)


def resolve(names: list[str]) -> list[Exercise]:
    """Registry entries for ``names`` ("all" = every exercise; a family name = its exercises)."""
    out: list[Exercise] = []
    for n in names:
        if n == "all":
            out.extend(EXERCISES)
        elif n in FAMILY_MARKER:
            out.extend(e for e in EXERCISES if e.family == n)
        elif n in BY_NAME:
            out.append(BY_NAME[n])
        else:
            raise KeyError(n)
    return list(dict.fromkeys(out))


# --------------------------------------------------------------------------------------------
# making a workspace
# --------------------------------------------------------------------------------------------
def _ignore(directory: str, names: list[str]) -> set[str]:
    skip = {n for n in names if n == "__pycache__" or n.endswith((".pyc", ".egg-info"))}
    if Path(directory).resolve() == PACKAGE_DIR:
        skip.add("exercise")          # the grader (and its reference cases) stays out
    return skip


def _markers_ini() -> str:
    """A pytest.ini registering the markers the copied tests use (read from pyproject.toml)."""
    names = set(FAMILY_MARKER.values()) | {"ddpm", "slow", "data", "train", "config", "docs",
                                           "exercise"}
    pyproject = REPO_DIR / "pyproject.toml"
    try:
        import tomllib                                   # Python ≥ 3.11
    except ImportError:
        tomllib = None
    if pyproject.exists() and tomllib is not None:
        conf = tomllib.loads(pyproject.read_text()).get("tool", {}).get("pytest", {})
        for m in conf.get("ini_options", {}).get("markers", []):
            names.add(m.split(":", 1)[0].strip())
    lines = ["[pytest]", "testpaths = tests", "markers ="] + [f"    {n}" for n in sorted(names)]
    return "\n".join(lines) + "\n"


#: the notebook (notebooks/NN_family.ipynb in the checkout) of each exercise family
NOTEBOOKS = {"vae": "01_vae", "gan": "02_gan", "ddpm": "03_diffusion", "flow": "03_diffusion",
             "rnn": "04_rnn", "transformer": "05_transformer", "rl": "06_rl", "transfer": "07_transfer",
             "audio": "08_audio"}


def copy_notebooks(exercises: list[Exercise], out: Path) -> list[Path]:
    """Copy the start-here notebook and those of the exercises' families to ``out/notebooks``
    (their first cell puts ``out`` first on sys.path, so they run the workspace's code). Nothing
    when the checkout has no notebooks/."""
    src = REPO_DIR / "notebooks"
    names = ["00_start_here", *(NOTEBOOKS[ex.family] for ex in exercises if ex.family in NOTEBOOKS)]
    files = [src / f"{n}.ipynb" for n in dict.fromkeys(names) if (src / f"{n}.ipynb").is_file()]
    if files:
        (out / "notebooks").mkdir(exist_ok=True)
    return [Path(shutil.copy2(f, out / "notebooks" / f.name)) for f in files]


def tests_dir() -> Path:
    d = REPO_DIR / "tests"
    if not (d / "conftest.py").exists():
        raise FileNotFoundError(f"the library's tests are not next to the package ({d}); run "
                                "genmodels-exercise from a checkout installed with `pip install -e .`")
    return d


def make_workspace(exercises: list[Exercise], out: Path, *, force: bool = False,
                   mistakes: bool = False) -> Path:
    """Write a workspace to ``out``: the package with ``exercises`` stubbed (or, with
    ``mistakes=True``, with their planted mistakes instead — used by the course's own tests),
    their test files, a pytest.ini and a README. Returns ``out``."""
    out = Path(out)
    if (out / "genmodels").exists():
        if not force:
            raise FileExistsError(f"{out / 'genmodels'} exists: choose a new --out folder (or "
                                  "pass --force to overwrite it and lose what is there)")
        shutil.rmtree(out / "genmodels")
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(PACKAGE_DIR, out / "genmodels", ignore=_ignore)
    regions = find_regions(out / "genmodels")
    by_path: dict[str, list[Exercise]] = {}
    for ex in exercises:
        if ex.name not in regions:
            raise MarkerError(f"exercise {ex.name} has no markers in the library source")
        for r in regions[ex.name]:
            by_path.setdefault(r.path, [])
            if ex not in by_path[r.path]:
                by_path[r.path].append(ex)
    for path in dict.fromkeys(r.path for rs in regions.values() for r in rs):
        p, exs = out / path, by_path.get(path, [])
        text = p.read_text(encoding="utf-8")
        if mistakes:
            for ex in exs:
                text = apply_mistake(text, path, ex)
        else:
            text = replace_regions(text, path, {ex.name: stub_line(ex) for ex in exs})
        p.write_text(strip_declarations(text, path), encoding="utf-8")
    src = tests_dir()
    (out / "tests").mkdir(exist_ok=True)
    shutil.copy2(src / "conftest.py", out / "tests" / "conftest.py")
    for f in dict.fromkeys(f for ex in exercises for f in ex.test_files):
        shutil.copy2(REPO_DIR / f, out / f)
    copy_notebooks(exercises, out)
    (out / "pytest.ini").write_text(_markers_ini())
    (out / "README.md").write_text(readme(exercises, regions))
    manifest = {"exercises": [ex.name for ex in exercises], "mistakes": mistakes}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    (out / RESULTS).unlink(missing_ok=True)
    return out


def read_manifest(workspace: Path) -> dict:
    p = Path(workspace) / MANIFEST
    if not p.exists():
        raise FileNotFoundError(f"{workspace} is not an exercise workspace (no {MANIFEST}); "
                                "make one with `genmodels-exercise make NAME --out DIR`")
    return json.loads(p.read_text())


def readme(exercises: list[Exercise], regions: dict[str, list[Region]]) -> str:
    rows = []
    for ex in exercises:
        where = ", ".join(dict.fromkeys(f"`{r.path}`" for r in regions[ex.name]))
        rows.append(f"| `{ex.name}` | {ex.eq} | {ex.what} | {where} (`{'`, `'.join(ex.functions)}`) |")
    first = exercises[0].name
    return f"""# Your genmodels workspace

This folder holds a copy of the `genmodels` library in which the code of {len(exercises)}
exercise(s) has been removed. Each gap is fenced by two comment lines:

    # >>> exercise {first}: {exercises[0].eq}
    raise NotImplementedError("Exercise {first}: ...")
    # <<< exercise {first}

Replace the `raise` line with your implementation, between the two markers (keep the markers:
the grader and `genmodels-exercise list` use them). The docstring above says what the function
must return, with shapes; the input checks above the fence are already written.

| exercise | equation | what to write | where |
|---|---|---|---|
{chr(10).join(rows)}

Check one exercise, or all of them:

    genmodels-exercise check {first} --workspace .
    genmodels-exercise check --all --workspace .
    genmodels-exercise list --workspace .       # stub / implemented / passing / failing

The grader runs the library's formula tests for the exercise (copied to `tests/`) against the
`genmodels` package in THIS folder (it is put first on the import path), and compares your
function with an independent reference on a small float64 case. For each test it prints pass or
fail, what was expected and what your code gave, and a hint. You can also run the tests
yourself: `python -m pytest tests` from this folder.

Some exercises call others (e.g. the ELBO uses the KL term): if one of them is still a stub,
the grader says so.

`notebooks/` (when the library's checkout has them) walks through your families' equations and
trains their models: opened from there, a notebook imports the `genmodels` of THIS folder, so it
stops at your first stub and trains with your functions.
"""
