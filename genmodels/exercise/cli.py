"""``genmodels-exercise``: list the course's exercises, make a student workspace, grade it.

    genmodels-exercise list [--workspace DIR]
    genmodels-exercise make NAME... --out DIR        (NAME: an exercise, a family, or "all")
    genmodels-exercise check NAME... --workspace DIR
    genmodels-exercise check --all --workspace DIR

Exit codes: 0 all checked exercises pass, 1 some fail, 2 usage error (unknown name, not a
workspace, ...).
"""

from __future__ import annotations

import argparse
import difflib
import json
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


def cmd_check(args) -> int:
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
    missing = [e.name for e in exercises if not all(
        (workspace / f).exists() for f in e.test_files)]
    if missing:
        raise UsageError(f"check: the workspace has no tests for {', '.join(missing)}; make a "
                         f"workspace for it: genmodels-exercise make {missing[0]} --out NEW_DIR")
    results = check(workspace, exercises, timeout=args.timeout)
    print(report(results, table=args.all or len(exercises) > 1, verbose=not args.all or args.verbose))
    return EXIT_OK if all(r.passed for r in results) else EXIT_FAIL


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
    pc.set_defaults(func=cmd_check)
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
