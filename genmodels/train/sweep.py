"""Collect a Hydra multirun folder into one table: mean ± std of each final metric.

    genmodels-train -m experiment=sweep_seeds hydra/launcher=parallel
    python -m genmodels.train.sweep multirun/sweep_seeds/<date> [--split test]

Every run folder below the sweep folder with a ``results.json`` is one run; its Hydra overrides
(``.hydra/overrides.yaml``) name it. Runs are grouped by their overrides other than ``seed`` —
a sweep over seeds is one group, a sweep over ``model.latent_dim=4,8`` × seeds one group per
latent size — and each metric of ``results.json[split]`` gets its mean and sample standard
deviation (n − 1 in the denominator) over the group's runs. Metrics that are equal in every run
(settings echoed in the results, such as ``iwae_k``) are listed once under the table instead.

Writes ``sweep_summary.md``, ``sweep_summary.csv`` (one row per group) and ``sweep_runs.csv``
(one row per run) into the sweep folder (or ``--out``), and prints the markdown. Run folders
without ``results.json`` (a failed or still running job) are reported, never averaged in.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

__all__ = ["Run", "collect", "summarize", "to_markdown", "main"]


@dataclass
class Run:
    folder: Path
    overrides: list[str]            # Hydra's overrides of this job, e.g. ["seed=3", "experiment=…"]
    metrics: dict[str, float]

    @property
    def group(self) -> tuple[str, ...]:
        """The overrides that define the configuration, i.e. all but the seed."""
        return tuple(o for o in self.overrides if o.split("=", 1)[0].lstrip("+~") != "seed")


def _overrides(folder: Path) -> list[str]:
    path = folder / ".hydra" / "overrides.yaml"
    return list(yaml.safe_load(path.read_text()) or []) if path.exists() else []


def collect(sweep_dir: str | Path, split: str = "test") -> tuple[list[Run], list[Path]]:
    """The finished runs below ``sweep_dir`` (sorted by folder) and the unfinished run folders
    (those with a ``.hydra`` folder but no ``results.json``)."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep folder {sweep_dir} does not exist")
    runs = []
    for path in sorted(sweep_dir.rglob("results.json")):
        try:
            results = json.loads(path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: not valid JSON ({e})") from None
        if split not in results:
            raise ValueError(f"{path}: no {split!r} results (has {sorted(results)})")
        metrics = {k: float(v) for k, v in results[split].items()
                   if isinstance(v, (int, float)) and not isinstance(v, bool)}
        runs.append(Run(path.parent, _overrides(path.parent), metrics))
    done = {r.folder for r in runs}
    unfinished = sorted(p.parent for p in sweep_dir.rglob(".hydra")
                        if p.parent not in done and p.parent != sweep_dir)
    if not runs:
        raise FileNotFoundError(f"no results.json below {sweep_dir}"
                                + (f" ({len(unfinished)} unfinished runs)" if unfinished else ""))
    return runs, unfinished


def _mean_std(values: list[float]) -> tuple[float, float]:
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def summarize(runs: list[Run]) -> tuple[list[dict], list[str], dict[str, float]]:
    """``(rows, metrics, constants)``: one row per group — ``{"group", "runs", "<m>": (mean, std)}``
    — the varying metrics in order of appearance, and the metrics equal in every run."""
    names = list(dict.fromkeys(k for r in runs for k in r.metrics))
    constants = {k: runs[0].metrics[k] for k in names
                 if all(k in r.metrics and r.metrics[k] == runs[0].metrics[k] for r in runs)}
    varying = [k for k in names if k not in constants]
    shared = set.intersection(*(set(r.group) for r in runs))  # e.g. experiment=…: not a label
    groups: dict[tuple[str, ...], list[Run]] = {}
    for r in runs:
        groups.setdefault(r.group, []).append(r)
    rows = []
    for key, members in groups.items():
        label = " ".join(o for o in key if o not in shared) or "all runs"
        row = {"group": label, "runs": len(members)}
        for k in varying:
            vals = [m.metrics[k] for m in members if k in m.metrics]
            row[k] = _mean_std(vals) if vals else (math.nan, math.nan)
        rows.append(row)
    return rows, varying, constants


def _fmt(mean: float, std: float) -> str:
    if math.isnan(mean):
        return "–"
    return f"{mean:.4g}" if math.isnan(std) else f"{mean:.4g} ± {std:.2g}"


def to_markdown(rows: list[dict], metrics: list[str], constants: dict[str, float],
                split: str) -> str:
    head = ["configuration", "runs", *metrics]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [row["group"], str(row["runs"]), *(_fmt(*row[k]) for k in metrics)]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append(f"{split} metrics, mean ± sample standard deviation over the runs of each "
                 f"configuration.")
    if constants:
        lines.append("Equal in every run: " + ", ".join(f"{k} = {v:g}" for k, v in constants.items())
                     + ".")
    return "\n".join(lines) + "\n"


def write_tables(sweep_dir: str | Path, out: str | Path | None = None, split: str = "test"
                 ) -> tuple[str, list[Run], list[Path]]:
    """Collect, summarise and write the three files; returns ``(markdown, runs, unfinished)``."""
    runs, unfinished = collect(sweep_dir, split)
    rows, metrics, constants = summarize(runs)
    out = Path(out or sweep_dir)
    out.mkdir(parents=True, exist_ok=True)
    md = to_markdown(rows, metrics, constants, split)
    (out / "sweep_summary.md").write_text(md)
    with open(out / "sweep_summary.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["configuration", "runs", *(f"{k}_{s}" for k in metrics for s in ("mean", "std"))])
        for row in rows:
            w.writerow([row["group"], row["runs"], *(v for k in metrics for v in row[k])])
    with open(out / "sweep_runs.csv", "w", newline="") as f:
        w = csv.writer(f)
        names = list(dict.fromkeys(k for r in runs for k in r.metrics))
        w.writerow(["folder", "overrides", *names])
        for r in runs:
            w.writerow([str(r.folder), " ".join(r.overrides), *(r.metrics.get(k, "") for k in names)])
    return md, runs, unfinished


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m genmodels.train.sweep",
                                description=__doc__.split("\n\n")[0])
    p.add_argument("sweep_dir", help="a Hydra multirun folder, e.g. multirun/sweep_seeds/<date>")
    p.add_argument("--split", default="test", help="which results to tabulate (test or val)")
    p.add_argument("--out", default=None, help="folder for the tables (default: the sweep folder)")
    args = p.parse_args(argv)
    try:
        md, runs, unfinished = write_tables(args.sweep_dir, args.out, args.split)
    except (FileNotFoundError, ValueError) as e:
        print(f"genmodels.train.sweep: {e}", file=sys.stderr)
        return 2
    print(md)
    print(f"{len(runs)} runs -> {Path(args.out or args.sweep_dir) / 'sweep_summary.md'} "
          f"(and sweep_summary.csv, sweep_runs.csv)")
    if unfinished:
        print(f"{len(unfinished)} unfinished runs (no results.json): "
              + ", ".join(str(u) for u in unfinished), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
