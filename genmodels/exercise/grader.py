"""Grade exercises in a workspace and print a verdict a student can act on.

:func:`check` runs ``runner.py`` once in a subprocess whose ``genmodels`` is the workspace's copy
(the workspace is first on ``PYTHONPATH`` and the working directory; the runner verifies it), so
one torch start-up serves every test and small case. For each exercise it reports every mapped
test (pass/fail, the exception's first lines: for a tolerance check, the largest difference),
the small float64 case (expected vs got, computed by an independent reference), and the hint.
The reference solution's code is never shown.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from genmodels.exercise import workspace as ws
from genmodels.exercise.registry import BY_NAME, Exercise

RUNNER = Path(__file__).resolve().parent / "runner.py"
_STUB = re.compile(r"Exercise ([\w.]+): implement")


@dataclass
class TestVerdict:
    nodeid: str
    passed: bool
    message: str = ""

    @property
    def short(self) -> str:
        return self.nodeid.split("::", 1)[-1]


@dataclass
class ExerciseResult:
    exercise: Exercise
    tests: list[TestVerdict] = field(default_factory=list)
    cases: list[dict] = field(default_factory=list)
    error: str = ""                      # the grader could not run (import error, timeout …)
    stubs: list[str] = field(default_factory=list)   # exercises still raising NotImplementedError
    imported_from: str = ""              # the genmodels package the checks imported

    @property
    def passed(self) -> bool:
        return (not self.error and bool(self.tests) and all(t.passed for t in self.tests)
                and all(c["ok"] for c in self.cases))

    @property
    def status(self) -> str:
        if self.passed:
            return "PASS"
        if self.exercise.name in self.stubs:
            return "STUB"
        return "FAIL"


def run_runner(workspace: Path, nodeids: list[str], timeout: float) -> dict:
    """Run ``runner.py`` against ``workspace`` and return its JSON report."""
    workspace = Path(workspace).resolve()
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(workspace), *filter(None, [env.get("PYTHONPATH")])])
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "report.json"
        cmd = [sys.executable, str(RUNNER), "--workspace", str(workspace), "--out", str(out),
               "--tests", *nodeids]
        try:
            proc = subprocess.run(cmd, cwd=workspace, env=env, capture_output=True, text=True,
                                  timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"fatal": f"the checks did not finish within {timeout:.0f} s (an endless loop?)"}
        if not out.exists():
            tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-5:])
            return {"fatal": f"the grader's subprocess failed (exit {proc.returncode}):\n{tail}"}
        return json.loads(out.read_text())


def check(workspace: Path, exercises: list[Exercise], timeout: float = 600.0,
          isolate: bool = True) -> list[ExerciseResult]:
    """Grade ``exercises`` in ``workspace``; records the outcome for ``genmodels-exercise list``.

    With ``isolate`` (the default) each exercise is graded on its own code: one that fails and
    calls other exercises (``uses``, transitively) is checked again in a copy of the workspace
    whose used exercises' fenced code is the library's, so that a mistake (or a stub) in
    ``vae.kl`` costs ``vae.kl`` and not also ``vae.elbo``, which calls it."""
    workspace = Path(workspace)
    nodeids = list(dict.fromkeys(t for e in exercises for t in e.tests + e.cases))
    report = run_runner(workspace, nodeids, timeout)
    results = [interpret(e, report) for e in exercises]
    if isolate:
        results = _isolated(workspace, results, timeout)
    _record(workspace, results)
    return results


def uses_closure(ex: Exercise) -> set[str]:
    """The exercises ``ex`` calls, directly or through others (``uses``, transitively)."""
    seen: set[str] = set()
    todo = list(ex.uses)
    while todo:
        n = todo.pop()
        if n not in seen and n in BY_NAME:
            seen.add(n)
            todo += BY_NAME[n].uses
    return seen


def _with_library_code(workspace: Path, names: set[str]) -> None:
    """Replace the fenced code of the exercises ``names`` in ``workspace`` by the library's."""
    mine, lib = ws.find_regions(workspace / "genmodels"), ws.find_regions()
    for path in {r.path for n in names for r in mine.get(n, [])}:
        target = workspace / path
        lines = target.read_text(encoding="utf-8").split("\n")
        src = (ws.PACKAGE_DIR.parent / path).read_text(encoding="utf-8").split("\n")
        pairs = [(a, b) for n in names for a, b in zip(mine.get(n, []), lib.get(n, []))
                 if a.path == path]
        for a, b in sorted(pairs, key=lambda ab: -ab[0].start):     # bottom up: lines shift
            lines[a.body:a.end] = src[b.body:b.end]
        target.write_text("\n".join(lines), encoding="utf-8")


def _isolated(workspace: Path, results: list[ExerciseResult], timeout: float) -> list[ExerciseResult]:
    redo = [r for r in results if not r.passed and not r.error and uses_closure(r.exercise)
            and r.exercise.name not in r.stubs]       # its own stub stays a stub
    # groups checked in one copy each: no exercise of a group has its own code replaced (a
    # failing ddpm.p_mean_variance must not be graded on the library's p_mean_variance because
    # ddpm.sample, which calls it, is re-checked in the same copy)
    groups: list[tuple[list[ExerciseResult], set[str]]] = []
    for r in redo:
        deps = uses_closure(r.exercise)
        for members, replaced in groups:
            if r.exercise.name not in replaced and not deps & {m.exercise.name for m in members}:
                members.append(r)
                replaced |= deps
                break
        else:
            groups.append(([r], set(deps)))
    again: dict[str, ExerciseResult] = {}
    real = str(workspace.resolve())
    for members, replaced in groups:
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "ws"
            shutil.copytree(workspace, copy, ignore=shutil.ignore_patterns("__pycache__", ".git"))
            _with_library_code(copy, replaced)
            nodeids = list(dict.fromkeys(t for r in members
                                         for t in r.exercise.tests + r.exercise.cases))
            report = run_runner(copy, nodeids, timeout)
            for r in members:
                res = interpret(r.exercise, report)
                # the copy's path stands for the workspace's own
                res.imported_from = res.imported_from.replace(str(copy.resolve()), real, 1)
                again[r.exercise.name] = res
    return [again.get(r.exercise.name, r) for r in results]


def interpret(ex: Exercise, report: dict) -> ExerciseResult:
    res = ExerciseResult(ex, imported_from=report.get("genmodels_file", ""))
    if report.get("fatal"):
        res.error = report["fatal"]
        res.stubs = _STUB.findall(res.error)
        return res
    tests, errs = report.get("tests", {}), report.get("collect_errors", {})

    def not_run(nodeid):
        why = errs.get(nodeid.split("::")[0]) or next(iter(errs.values()), "") or "test not found"
        return f"could not run: {why}"

    for nodeid in ex.tests:
        # parametrised tests report one node per parameter set: fail if any of them fails
        nodes = {k: v for k, v in tests.items() if k == nodeid or k.startswith(nodeid + "[")}
        if not nodes:
            res.tests.append(TestVerdict(nodeid, False, not_run(nodeid)))
            continue
        failed = [(k, v) for k, v in nodes.items() if v.get("outcome") == "failed"]
        if failed:
            k, v = failed[0]
            msg = f"{v.get('exc_type', 'Error')}: {v.get('message', '')}"
            if len(nodes) > 1:
                msg = f"[{len(failed)} of {len(nodes)} cases fail; first: {k.split('[', 1)[-1][:-1]}] " + msg
            res.tests.append(TestVerdict(nodeid, False, msg))
        else:
            res.tests.append(TestVerdict(nodeid, True))
    for nodeid in ex.cases:      # a small-case test records its cases; else it could not set up
        node = tests.get(nodeid, {})
        res.cases += node.get("cases") or [{
            "label": "setting up the small case", "ok": False, "expected": "", "got": "",
            "error": (f"{node.get('exc_type', 'Error')}: {node.get('message', '')}" if node
                      else not_run(nodeid))}]
    texts = [t.message for t in res.tests] + [c.get("error", "") for c in res.cases]
    res.stubs = list(dict.fromkeys(n for t in texts for n in _STUB.findall(t)))
    return res


def _record(workspace: Path, results: list[ExerciseResult]) -> None:
    path = workspace / ws.RESULTS
    data = json.loads(path.read_text()) if path.exists() else {}
    regions = ws.find_regions(workspace / "genmodels")
    for r in results:
        if r.exercise.name in regions:
            data[r.exercise.name] = {"passed": r.passed,
                                     "hash": ws.region_hash(workspace / "genmodels",
                                                            regions[r.exercise.name])}
    path.write_text(json.dumps(data, indent=1) + "\n")


# --------------------------------------------------------------------------------------------
# printing
# --------------------------------------------------------------------------------------------
def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + ln for ln in text.splitlines())


def _shorten_stub(message: str) -> str:
    """A NotImplementedError of a stub, as one short line."""
    m = _STUB.search(message)
    if m and message.lstrip().startswith("NotImplementedError"):
        return f"NotImplementedError: exercise {m[1]} is still the stub"
    return message


def verdict_text(r: ExerciseResult) -> str:
    ex = r.exercise
    lines = [f"Exercise {ex.name} — {ex.eq}: {ex.what}",
             f"  code: {ex.module} ({', '.join(ex.functions)})"]
    if r.error:
        lines.append(_indent(f"could not run the checks: {r.error}", "  "))
    others = [n for n in r.stubs if n != ex.name]
    if ex.name in r.stubs:
        lines.append("  not implemented yet: the fenced code still raises NotImplementedError.")
    for n in others:
        lines.append(f"  note: this uses exercise {n} ({BY_NAME[n].eq}), which is still a stub in "
                     f"this workspace: implement it first.")
    for t in r.tests:
        lines.append(f"  {'pass' if t.passed else 'FAIL'}  {t.short}")
        if not t.passed:
            lines.append(_indent(_shorten_stub(t.message), "          "))
    for c in r.cases:
        lines.append(f"  {'pass' if c['ok'] else 'FAIL'}  small case: {c['label']}")
        if not c["ok"]:
            if c.get("expected"):
                lines.append(f"          expected {c['expected']}")
            lines.append(f"          got      {c['got'] or _shorten_stub(c['error'])}")
            if c["got"] and c["error"]:
                lines.append(f"          ({c['error']})")
    n_ok = sum(t.passed for t in r.tests) + sum(c["ok"] for c in r.cases)
    n_all = len(r.tests) + len(r.cases)
    if not r.passed:
        lines.append(f"  hint: {ex.hint}")
    lines.append(f"verdict: {ex.name} {'PASSES' if r.passed else 'FAILS'} ({n_ok}/{n_all} checks pass)")
    return "\n".join(lines)


def table_text(results: list[ExerciseResult]) -> str:
    rows = []
    for r in results:
        n_t = sum(t.passed for t in r.tests)
        n_c = sum(c["ok"] for c in r.cases)
        cases = f"{n_c}/{len(r.cases)}" if r.cases else "—"
        rows.append([r.exercise.name, r.exercise.eq, f"{n_t}/{len(r.tests)}", cases, r.status])
    header = ["exercise", "equation", "tests", "small cases", "verdict"]
    widths = [max(len(x[i]) for x in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*row).rstrip() for row in rows]
    n_pass = sum(r.passed for r in results)
    out.append(f"{n_pass}/{len(results)} exercises pass")
    return "\n".join(out)


def report(results: list[ExerciseResult], table: bool = False, verbose: bool = True) -> str:
    parts = []
    if verbose:
        parts += [verdict_text(r) for r in results if not (table and r.passed)]
    if table:
        parts.append(table_text(results))
    return "\n\n".join(parts)
