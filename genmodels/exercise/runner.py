"""The grader's subprocess: runs exercises' tests against a workspace.

Run as a script (``python runner.py --workspace DIR --out FILE --tests ...``) with the workspace
first on ``sys.path``, so ``import genmodels`` is the student's copy. Writes a JSON report:

    {"genmodels_file": ..., "collect_errors": {file: message},
     "tests": {nodeid: {"outcome": "passed" | "failed", "exc_type": ..., "message": ...,
                        "cases": [{"label", "ok", "expected", "got", "error"}, ...]}}}

``cases`` are what a small-case test (one taking the ``small_case`` fixture of tests/conftest.py)
recorded in its ``user_properties``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import traceback
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _short(exc: BaseException, lines: int = 6, width: int = 200) -> str:
    text = str(exc).strip() or repr(exc)
    # pytest's assertion rewriting explains every sub-expression; drop the bound-method noise
    kept = [ln.rstrip() for ln in text.splitlines() if ln.strip() and " object at 0x" not in ln]
    if kept and kept[0].startswith("assert "):   # a rewritten assert: keep the short explanations
        kept = kept[:1] + [ln for ln in kept[1:] if len(ln) <= 120 and (
            ln.lstrip().startswith("+  where") or not ln.lstrip().startswith("+"))][:2]
    return "\n".join(ln[:width] for ln in kept[:lines])


class Collector:
    """A pytest plugin recording each test's outcome and its exception."""

    def __init__(self):
        self.tests: dict[str, dict] = {}
        self.collect_errors: dict[str, str] = {}

    def pytest_exception_interact(self, node, call, report):
        exc = call.excinfo.value
        entry = self.tests.setdefault(node.nodeid, {})
        entry.update(exc_type=type(exc).__name__, message=_short(exc))

    def pytest_runtest_logreport(self, report):
        entry = self.tests.setdefault(report.nodeid, {"outcome": "passed"})
        if report.when == "call":
            entry["cases"] = [v for k, v in report.user_properties if k == "small_case"]
        if report.failed:
            entry["outcome"] = "failed"
            if "message" not in entry:
                entry["message"] = (report.longreprtext or "").strip().splitlines()[-1:][0:1]
                entry["message"] = entry["message"][0] if entry["message"] else "failed"
        elif report.skipped and entry.get("outcome") != "failed":
            entry["outcome"] = "skipped"

    def pytest_collectreport(self, report):
        if report.failed:
            text = (report.longreprtext or "").strip().splitlines()
            errors = [ln[2:] for ln in text if ln.startswith("E ")] or text[-3:]
            self.collect_errors[report.nodeid] = "\n".join(ln.rstrip()[:200] for ln in errors[-6:])


def _quick_hypothesis() -> None:
    """Property-based tests: no shrinking of failing examples (a grader needs the verdict, and
    every exercise also has a small fixed case), which keeps a stub's failures fast."""
    try:
        from hypothesis import Phase, settings
    except ImportError:
        return
    settings.register_profile("genmodels-exercise", phases=[Phase.explicit, Phase.reuse,
                                                           Phase.generate], deadline=None)
    settings.load_profile("genmodels-exercise")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workspace", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--tests", nargs="*", default=[])
    args = ap.parse_args()
    workspace = Path(args.workspace).resolve()
    if str(HERE) in sys.path:
        sys.path.remove(str(HERE))
    sys.path.insert(0, str(workspace))
    report: dict = {"tests": {}, "collect_errors": {}}
    try:
        import torch
        torch.set_num_threads(1)
        import genmodels
        report["genmodels_file"] = str(Path(genmodels.__file__).resolve())
        if workspace not in Path(genmodels.__file__).resolve().parents:
            report["fatal"] = (f"`import genmodels` found {genmodels.__file__}, not the workspace's "
                               f"copy under {workspace}")
        else:
            import pytest
            _quick_hypothesis()
            collector = Collector()
            sink = io.StringIO()
            with redirect_stdout(sink), redirect_stderr(sink):
                pytest.main([*args.tests, "-q", "-p", "no:cacheprovider", "--rootdir", str(workspace),
                             "-c", str(workspace / "pytest.ini"), "-o", "addopts=", "--tb=line",
                             "-W", "ignore::DeprecationWarning"], plugins=[collector])
            report["tests"], report["collect_errors"] = collector.tests, collector.collect_errors
    except BaseException as exc:  # e.g. a SyntaxError in the student's module
        report["fatal"] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
