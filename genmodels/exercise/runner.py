"""The grader's subprocess: runs an exercise's tests and small cases against a workspace.

Run as a script (``python runner.py --workspace DIR --out FILE --tests ... --probes ...``) with
the workspace first on ``sys.path``, so ``import genmodels`` is the student's copy; the
registry and the small cases are loaded from this folder by file path. Writes a JSON report:

    {"genmodels_file": ..., "collect_errors": {file: message},
     "tests": {nodeid: {"outcome": "passed" | "failed", "exc_type": ..., "message": ...}},
     "probes": {name: [{"label", "ok", "expected", "got", "error"}, ...]}}
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import sys
import traceback
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"_genmodels_exercise_{name}", HERE / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


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


def _as_array(x):
    import numpy as np
    import torch
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().numpy()
    return np.asarray(x, dtype=float)


def _fmt(a, limit: int = 8) -> str:
    import numpy as np
    a = np.asarray(a)
    flat = a.ravel()
    body = np.array2string(flat[:limit], precision=6, separator=", ", max_line_width=10_000)
    more = f" … ({a.size} values)" if a.size > limit else ""
    shape = f"shape {list(a.shape)}: " if a.ndim > 1 or a.size > limit else ""
    return f"{shape}{body}{more}"


def run_probes(names: list[str]) -> dict[str, list[dict]]:
    import numpy as np
    probes = _load("probes")
    out = {}
    for name in names:
        if name not in probes.PROBES:
            continue
        rtol, atol = probes.TOLERANCE[name]
        cases = []
        try:
            items = probes.PROBES[name]()
        except Exception as exc:  # the grader's own case could not be set up
            out[name] = [{"label": "setting up the small case", "ok": False, "expected": "",
                          "got": "", "error": f"{type(exc).__name__}: {_short(exc, 2)}"}]
            continue
        for label, expected, got_fn in items:
            exp = _as_array(expected)
            case = {"label": label, "expected": _fmt(exp), "got": "", "error": "", "ok": False}
            try:
                got = _as_array(got_fn())
            except Exception as exc:
                case["error"] = f"{type(exc).__name__}: {_short(exc, 2)}"
            else:
                case["got"] = _fmt(got)
                if got.shape != exp.shape:
                    case["error"] = f"wrong shape: expected {list(exp.shape)}, got {list(got.shape)}"
                elif not np.allclose(got, exp, rtol=rtol, atol=atol, equal_nan=False):
                    err = np.abs(got - exp)
                    where = tuple(int(i) for i in np.unravel_index(int(err.argmax()), err.shape))
                    case["error"] = (f"values differ: largest difference {float(err.max()):.3g}"
                                     + (f" at index {where}" if where else ""))
                else:
                    case["ok"] = True
            cases.append(case)
        out[name] = cases
    return out


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
    ap.add_argument("--probes", nargs="*", default=[])
    args = ap.parse_args()
    workspace = Path(args.workspace).resolve()
    if str(HERE) in sys.path:
        sys.path.remove(str(HERE))
    sys.path.insert(0, str(workspace))
    report: dict = {"tests": {}, "probes": {}, "collect_errors": {}}
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
            report["probes"] = run_probes(args.probes)
    except BaseException as exc:  # e.g. a SyntaxError in the student's module
        report["fatal"] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    Path(args.out).write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
