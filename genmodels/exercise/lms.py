"""Grades in the forms a learning-management system takes.

Every exercise is worth its ``# points:`` (declared in its fence, default
:data:`~genmodels.exercise.registry.DEFAULT_POINTS`), or what a teacher's points file gives
(``{"vae.kl": 2, ...}``, JSON). An exercise earns all its points when every one of its checks
passes, none otherwise. Two ways of passing without doing the work earn nothing and say why:

* the checks imported a ``genmodels`` that is not the workspace's own (the installed library,
  which ships the solutions): status ``ERROR``;
* the fenced code is the library's solution byte for byte (its files copied back): status
  ``COPIED``, unless the teacher grades a reference workspace (``accept_reference``).

Formats: Gradescope's autograder ``results.json`` (:func:`gradescope`), a JSON or CSV summary for
any other LMS (:func:`summary`, :func:`summary_csv`), and a GitHub Classroom autograding workflow
(:func:`classroom_workflow`: one command-grader step per exercise, then the reporter).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from genmodels.exercise import workspace as ws
from genmodels.exercise.grader import ExerciseResult, verdict_text
from genmodels.exercise.registry import BY_NAME, Exercise

#: Gradescope's visibility values (its autograder specification)
VISIBILITIES = ("hidden", "after_due_date", "after_published", "visible")


@dataclass
class Grade:
    exercise: str
    equation: str
    status: str            # PASS, FAIL, STUB, COPIED or ERROR
    score: float
    max_score: float
    checks_passed: int
    checks: int
    output: str            # what the student reads: the verdict, or why no points


def load_points(path: str | Path | None) -> dict[str, float]:
    """A teacher's points file: a JSON object ``{exercise name: points}`` (others keep their
    declared points). Raises ValueError naming the file for an unknown name or a bad value."""
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"points file {path}: {err}") from None
    if not isinstance(data, dict):
        raise ValueError(f"points file {path}: expected a JSON object {{exercise: points}}")
    out = {}
    for name, value in data.items():
        if name not in BY_NAME:
            raise ValueError(f"points file {path}: unknown exercise {name!r}")
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value) or value < 0:
            raise ValueError(f"points file {path}: {name}: expected a number >= 0, got {value!r}")
        out[name] = float(value)
    return out


def copied_from_reference(workspace: Path, ex: Exercise) -> bool:
    """Whether the workspace's fenced code of ``ex`` is the library's, byte for byte."""
    mine = ws.find_regions(Path(workspace) / "genmodels").get(ex.name)
    ref = ws.find_regions().get(ex.name)
    if not mine or not ref:
        return False
    return ws.region_text(Path(workspace) / "genmodels", mine) == ws.region_text(ws.PACKAGE_DIR, ref)


def grade(results: list[ExerciseResult], workspace: Path, points: dict[str, float] | None = None,
          accept_reference: bool = False) -> list[Grade]:
    """One :class:`Grade` per graded exercise."""
    points = points or {}
    workspace = Path(workspace).resolve()
    grades = []
    for r in results:
        ex = r.exercise
        max_score = points.get(ex.name, ex.points)
        n_ok = sum(t.passed for t in r.tests) + sum(c["ok"] for c in r.cases)
        n_all = len(r.tests) + len(r.cases)
        own = bool(r.imported_from) and workspace in Path(r.imported_from).resolve().parents
        if r.passed and not own:
            status, output = "ERROR", (f"the checks imported {r.imported_from}, not the "
                                       f"workspace's genmodels: no points")
        elif r.passed and not accept_reference and copied_from_reference(workspace, ex):
            status, output = "COPIED", (f"the fenced code of {ex.name} is the library's solution "
                                        "byte for byte (its file copied back): no points")
        else:
            status, output = r.status, verdict_text(r)
        score = max_score if status == "PASS" else 0.0
        grades.append(Grade(ex.name, ex.eq, status, score, max_score, n_ok, n_all, output))
    return grades


def gradescope(grades: list[Grade], visibility: str = "visible",
               stdout_visibility: str = "hidden") -> dict:
    """Gradescope's autograder ``results.json``: ``score`` (the total), ``output``,
    ``visibility``, ``stdout_visibility`` and ``tests``, each with ``name``, ``number``,
    ``score``, ``max_score``, ``status``, ``output`` and ``visibility``."""
    for name, v in (("visibility", visibility), ("stdout_visibility", stdout_visibility)):
        if v not in VISIBILITIES:
            raise ValueError(f"{name}: expected one of {list(VISIBILITIES)}, got {v!r}")
    tests = [{"name": f"{g.exercise} ({g.equation})", "number": str(i + 1), "score": g.score,
              "max_score": g.max_score, "status": "passed" if g.status == "PASS" else "failed",
              "output": g.output, "visibility": visibility} for i, g in enumerate(grades)]
    total, top = sum(g.score for g in grades), sum(g.max_score for g in grades)
    n_pass = sum(g.status == "PASS" for g in grades)
    return {"score": total, "output": f"{n_pass}/{len(grades)} exercises pass: {total:g} of "
                                      f"{top:g} points", "visibility": visibility,
            "stdout_visibility": stdout_visibility, "tests": tests}


def summary(grades: list[Grade]) -> dict:
    """A JSON summary: the total, the maximum and one row per exercise."""
    return {"score": sum(g.score for g in grades), "max_score": sum(g.max_score for g in grades),
            "exercises": [asdict(g) for g in grades]}


def summary_csv(grades: list[Grade]) -> str:
    """One CSV row per exercise (no verdict text): exercise, equation, status, score,
    max_score, checks_passed, checks."""
    buf = io.StringIO()
    cols = ["exercise", "equation", "status", "score", "max_score", "checks_passed", "checks"]
    w = csv.DictWriter(buf, fieldnames=cols, lineterminator="\n")
    w.writeheader()
    for g in grades:
        w.writerow({k: getattr(g, k) for k in cols})
    return buf.getvalue()


def _step_id(name: str) -> str:
    return name.replace(".", "-").replace("_", "-")


def classroom_workflow(exercises: list[Exercise], points: dict[str, float] | None = None,
                       python: str = "3.11", install: str = 'pip install "genmodels[dev]"',
                       timeout_min: int = 10) -> str:
    """``.github/workflows/classroom.yml`` for a student repository holding a workspace: one
    ``classroom-resources/autograding-command-grader`` step per exercise (the command
    ``genmodels-exercise check NAME --workspace . --format json``, whose exit code is the grade:
    0 = its points, so a COPIED or ERROR exercise earns none), then the reporter.

    ``install`` installs the grader (the teacher's index or wheel; torch pinned to a CPU build)."""
    points = points or {}
    lines = ["name: Autograding Tests", "'on':", "- push", "- workflow_dispatch",
             "permissions:", "  checks: write", "  actions: read", "  contents: read",
             "jobs:", "  run-autograding-tests:", "    runs-on: ubuntu-latest",
             "    if: github.actor != 'github-classroom[bot]'", "    steps:",
             "    - name: Checkout code", "      uses: actions/checkout@v4",
             "    - uses: actions/setup-python@v5", "      with:",
             f"        python-version: '{python}'",
             "    - name: Install the grader", f"      run: {json.dumps(install)}"]
    ids = []
    for ex in exercises:
        sid = _step_id(ex.name)
        ids.append(sid)
        score = points.get(ex.name, ex.points)
        lines += [f"    - name: {ex.name}", f"      id: {sid}",
                  "      uses: classroom-resources/autograding-command-grader@v1", "      with:",
                  f"        test-name: {ex.name}",
                  f"        command: genmodels-exercise check {ex.name} --workspace . "
                  f"--format json --output grades/{ex.name}.json",
                  f"        timeout: {timeout_min}", f"        max-score: {score:g}"]
    lines += ["    - name: Autograding Reporter",
              "      uses: classroom-resources/autograding-grading-reporter@v1", "      env:"]
    lines += [f"        {sid.upper()}_RESULTS: \"${{{{steps.{sid}.outputs.result}}}}\"" for sid in ids]
    lines += ["      with:", f"        runners: {','.join(ids)}"]
    return "\n".join(lines) + "\n"
