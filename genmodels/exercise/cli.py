"""``genmodels-exercise``: list the course's exercises, make a student workspace, grade it.

    genmodels-exercise list [--workspace DIR]
    genmodels-exercise make NAME... --out DIR        (NAME: an exercise, a family, or "all")
    genmodels-exercise check NAME... --workspace DIR
    genmodels-exercise check --all --workspace DIR [--format gradescope|json|csv] [--output PATH]
                              [--points FILE] [--tests TEACHER_TESTS_DIR] [--accept-reference]
    genmodels-exercise classroom --workspace DIR      (writes .github/workflows/classroom.yml)
    genmodels-exercise train FAMILY --workspace DIR    (milestone: the workspace's code trains it)

Exit codes: 0 all checked exercises pass, 1 some fail, 2 usage error (unknown name, not a
workspace, ...).
"""

from __future__ import annotations

import argparse
import difflib
import json
import shutil
import sys
from pathlib import Path

from genmodels.exercise.registry import BY_NAME, EXERCISES, FAMILY_MARKER
from genmodels.exercise import workspace as ws

EXIT_OK, EXIT_FAIL, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    pass


def _resolve(names: list[str]):
    try:
        return ws.resolve(names)
    except KeyError as err:
        bad = err.args[0]
        choices = list(BY_NAME) + list(FAMILY_MARKER) + ["all"]
        close = difflib.get_close_matches(bad, choices, n=5, cutoff=0.5)
        if not close:   # e.g. "kl" → vae.kl: match on the part after the family
            close = [n for n in BY_NAME if bad.lower() in n.lower()][:5]
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UsageError(f"unknown exercise {bad!r}.{hint} "
                         "(`genmodels-exercise list` shows them all)") from None


def _table(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*["-" * w for w in widths])]
    lines += [fmt.format(*r) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def statuses(workspace: Path | None) -> dict[str, str]:
    """Status of every exercise: in the library ("ready" or "NO MARKERS"), or in a workspace
    ("stub", "implemented" = edited since the last check, "passing", "failing", or "reference"
    for exercises the workspace was not made for)."""
    if workspace is None:
        found = ws.find_regions()
        return {e.name: "ready" if e.name in found else "NO MARKERS" for e in EXERCISES}
    manifest = ws.read_manifest(workspace)
    pkg = Path(workspace) / "genmodels"
    found = ws.find_regions(pkg)
    results_file = Path(workspace) / ws.RESULTS
    results = json.loads(results_file.read_text()) if results_file.exists() else {}
    out = {}
    for e in EXERCISES:
        if e.name not in found:
            out[e.name] = "NO MARKERS"
        elif ws.is_stub(pkg, found[e.name], e):
            out[e.name] = "stub"
        elif e.name in results and results[e.name]["hash"] == ws.region_hash(pkg, found[e.name]):
            out[e.name] = "passing" if results[e.name]["passed"] else "failing"
        elif e.name in manifest["exercises"]:
            out[e.name] = "implemented"
        else:
            out[e.name] = "reference"
    return out


def list_table(workspace: Path | None = None) -> str:
    status = statuses(workspace)
    rows = [[e.name, e.eq, f"{e.module.removeprefix('genmodels/').removesuffix('.py').replace('/', '.')}"
             f": {', '.join(e.functions)}", status[e.name]] for e in EXERCISES]
    return _table(rows, ["exercise", "equation", "module: function", "status"])


def cmd_list(args) -> int:
    print(list_table(Path(args.workspace) if args.workspace else None))
    return EXIT_OK


def cmd_make(args) -> int:
    names = ["all"] if args.all else args.names
    if not names:
        raise UsageError("make: name at least one exercise (or a family, or `all`)")
    exercises = _resolve(names)
    try:
        out = ws.make_workspace(exercises, Path(args.out), force=args.force)
    except (FileExistsError, FileNotFoundError) as err:
        raise UsageError(str(err)) from None
    names = [e.name for e in exercises]
    if len(names) > 6:
        families = ", ".join(dict.fromkeys(e.family for e in exercises))
        print(f"wrote {out}: {len(names)} exercise(s) to implement, families {families}")
    else:
        print(f"wrote {out}: {len(names)} exercise(s) to implement — {', '.join(names)}")
    print(f"read {out / 'README.md'}, then: genmodels-exercise check "
          f"{exercises[0].name if len(exercises) == 1 else '--all'} --workspace {out}")
    return EXIT_OK


#: where a teacher's hidden tests are copied inside the workspace while it is graded
HIDDEN = ".genmodels-hidden-tests"


def _with_teacher_tests(exercises, tests: Path):
    """The exercises with their tests taken from a teacher's tests folder instead of the
    workspace's ``tests/``; node ids point into its copy at ``<workspace>/HIDDEN/``."""
    import dataclasses

    from genmodels.exercise.registry import tagged_tests
    if not (tests / "conftest.py").exists():
        raise UsageError(f"--tests {tests}: expected a tests folder with the course's conftest.py")
    found = tagged_tests(tests)
    out = []
    for e in exercises:
        formula, small = found.get(e.name, ([], []))
        if not formula and not small:
            raise UsageError(f"--tests {tests}: no test there is tagged "
                             f"@pytest.mark.exercise({e.name!r})")
        moved = lambda ids: tuple(f"{HIDDEN}/{i}" for i in ids)   # noqa: E731
        out.append(dataclasses.replace(e, tests=moved(formula), cases=moved(small)))
    return out


def cmd_check(args) -> int:
    from genmodels.exercise import lms
    from genmodels.exercise.grader import check, report
    workspace = Path(args.workspace)
    try:
        manifest = ws.read_manifest(workspace)
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    if args.all:
        exercises = ws.resolve(manifest["exercises"])
    elif args.names:
        exercises = _resolve(args.names)
    else:
        raise UsageError("check: name an exercise, or pass --all")
    try:
        points = lms.load_points(args.points)
    except ValueError as err:
        raise UsageError(str(err)) from None
    if args.tests:
        exercises = _with_teacher_tests(exercises, Path(args.tests).resolve())
    else:
        missing = [e.name for e in exercises if not all(
            (workspace / f).exists() for f in e.test_files)]
        if missing:
            raise UsageError(f"check: the workspace has no tests for {', '.join(missing)}; make "
                             f"a workspace for it: genmodels-exercise make {missing[0]} --out NEW_DIR")
    hidden = workspace / HIDDEN
    try:
        if args.tests:       # the teacher's tests, inside the workspace for the grading only
            shutil.rmtree(hidden, ignore_errors=True)
            src = Path(args.tests).resolve()
            shutil.copytree(src, hidden / src.name, ignore=shutil.ignore_patterns("__pycache__"))
        results = check(workspace, exercises, timeout=args.timeout)
    finally:
        shutil.rmtree(hidden, ignore_errors=True)
    grades = lms.grade(results, workspace, points, accept_reference=args.accept_reference)
    if args.format == "text":
        text = report(results, table=args.all or len(exercises) > 1,
                      verbose=not args.all or args.verbose)
        flagged = [g for g in grades if g.status in ("COPIED", "ERROR")]
        text += "".join(f"\nnote: {g.output} (graded {g.status}, 0 points, in the LMS "
                        f"formats)" for g in flagged)
    elif args.format == "gradescope":
        text = json.dumps(lms.gradescope(grades, visibility=args.visibility), indent=1)
    elif args.format == "json":
        text = json.dumps(lms.summary(grades), indent=1)
    else:
        text = lms.summary_csv(grades)
    if args.output:
        Path(args.output).parent.mkdir(parents=True, exist_ok=True)
        Path(args.output).write_text(text + ("" if text.endswith("\n") else "\n"))
        print(f"wrote {args.output}: {sum(g.score for g in grades):g} of "
              f"{sum(g.max_score for g in grades):g} points")
    else:
        print(text)
    if args.format == "text":     # the student's own check: did the checks pass
        return EXIT_OK if all(r.passed for r in results) else EXIT_FAIL
    return EXIT_OK if all(g.status == "PASS" for g in grades) else EXIT_FAIL


def cmd_train(args) -> int:
    from genmodels.exercise import milestone
    workspace = Path(args.workspace)
    try:
        ws.read_manifest(workspace)
    except FileNotFoundError as err:
        raise UsageError(str(err)) from None
    if args.family in milestone.NOT_YET:
        raise UsageError(f"train: {args.family} has no milestone yet: "
                         f"{milestone.NOT_YET[args.family]}")
    if args.family not in milestone.MILESTONES:
        raise UsageError(f"train: no milestone for {args.family!r}; families with one: "
                         f"{', '.join(milestone.MILESTONES)}")
    m = milestone.MILESTONES[args.family]
    print(f"training experiment={m.experiment} with the workspace's code (goal: {m.metric} "
          f"{m.goal} {m.target:g}) ...", flush=True)
    res = milestone.run(args.family, workspace, Path(args.out) if args.out else None,
                        extra=args.overrides)
    print(f"milestone {args.family}: {res['status'].upper() if res['status'] == 'PASS' else res['status']}"
          f" — {res['message']}")
    print(f"run folder: {res['run_dir']}")
    return EXIT_OK if res["status"] == "PASS" else EXIT_FAIL


def cmd_classroom(args) -> int:
    from genmodels.exercise import lms
    workspace = Path(args.workspace)
    try:
        manifest = ws.read_manifest(workspace)
        points = lms.load_points(args.points)
    except (FileNotFoundError, ValueError) as err:
        raise UsageError(str(err)) from None
    exercises = ws.resolve(manifest["exercises"])
    out = workspace / ".github" / "workflows" / "classroom.yml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(lms.classroom_workflow(exercises, points, install=args.install))
    print(f"wrote {out}: {len(exercises)} graded step(s), "
          f"{sum(points.get(e.name, e.points) for e in exercises):g} points")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="genmodels-exercise",
                                description="Course exercises: one per equation of the methods chapter.")
    sub = p.add_subparsers(dest="command", required=True)
    pl = sub.add_parser("list", help="every exercise, its equation, where it lives, its status")
    pl.add_argument("--workspace", help="show the status of each exercise in this workspace")
    pl.set_defaults(func=cmd_list)
    pm = sub.add_parser("make", help="write a student workspace with the chosen exercises removed")
    pm.add_argument("names", nargs="*", metavar="NAME", help="exercise(s), family name(s), or all")
    pm.add_argument("--all", action="store_true", help="every exercise (the whole course)")
    pm.add_argument("--out", required=True, help="the workspace folder to create")
    pm.add_argument("--force", action="store_true", help="overwrite an existing workspace")
    pm.set_defaults(func=cmd_make)
    pc = sub.add_parser("check", help="grade exercise(s) in a workspace")
    pc.add_argument("names", nargs="*", metavar="NAME")
    pc.add_argument("--all", action="store_true", help="every exercise of the workspace, as a table")
    pc.add_argument("--workspace", required=True)
    pc.add_argument("--verbose", action="store_true", help="with --all: details of every failure")
    pc.add_argument("--timeout", type=float, default=600.0, help="seconds (default 600)")
    pc.add_argument("--format", choices=("text", "gradescope", "json", "csv"), default="text",
                    help="text (default), Gradescope's results.json, a JSON or CSV summary")
    pc.add_argument("--output", help="write the grades to this file (default: print them)")
    pc.add_argument("--points", help="a JSON file {exercise: points} overriding the declared points")
    pc.add_argument("--tests", help="grade with this tests folder (a teacher's, hidden from the "
                                    "workspace) instead of the workspace's tests/")
    pc.add_argument("--visibility", default="visible",
                    choices=("hidden", "after_due_date", "after_published", "visible"),
                    help="Gradescope visibility of each exercise's result (default visible)")
    pc.add_argument("--accept-reference", action="store_true",
                    help="do not flag fenced code identical to the library's (grading the "
                         "reference solutions themselves)")
    pc.set_defaults(func=cmd_check)
    pt = sub.add_parser("train", help="milestone: train the family's model on the workspace's "
                                      "own functions and compare with the reference number")
    pt.add_argument("family")
    pt.add_argument("--workspace", required=True)
    pt.add_argument("--out", help="the run folder (default: a temporary folder)")
    pt.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                    help="an extra genmodels-train override (repeatable), e.g. --set seed=1")
    pt.set_defaults(func=cmd_train)
    pg = sub.add_parser("classroom", help="write a GitHub Classroom autograding workflow into a "
                                          "workspace (.github/workflows/classroom.yml)")
    pg.add_argument("--workspace", required=True)
    pg.add_argument("--points", help="a JSON file {exercise: points}")
    pg.add_argument("--install", default='pip install "genmodels[dev]"',
                    help="the command that installs the grader on the runner")
    pg.set_defaults(func=cmd_classroom)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:          # argparse: 2 on a usage error, 0 for --help
        return int(exc.code or 0)
    try:
        return args.func(args)
    except (UsageError, FileNotFoundError, FileExistsError) as err:
        print(f"genmodels-exercise: error: {err}", file=sys.stderr)
        return EXIT_USAGE
    except ws.MarkerError as err:
        print(f"genmodels-exercise: error in the exercise markers: {err}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
