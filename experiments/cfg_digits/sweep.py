"""Class accuracy and FD of classifier-free guided samples against the guidance scale s.

    python experiments/cfg_digits/sweep.py RUN_DIR [--scales 0 1 2 3 5] [--n 1000] [--repeats 3]
        [--reference val+test] [--out results.json] [--figure guidance_curve.png]
    python experiments/cfg_digits/sweep.py - --from-json results.json [more.json] --figure guidance_curve.png

RUN_DIR is a folder written by ``genmodels-train experiment=cfg_digits``. Its task is rebuilt from
the run's overrides and its final checkpoint (EMA weights) loaded; for every scale s, ``--repeats``
draws (global seeds 0, 1, …) of ``--n`` images ask for the ten classes equally (image i asks for
class i mod 10) and are sampled with the run's sampler (DDIM, ``model.sample_steps``) on the
guided ε̃ = ε_∅ + s (ε_y − ε_∅). Each draw reports

* ``class_accuracy``: the fraction that the yardstick classifier (genmodels/metrics/yardstick.py,
  test accuracy 0.970 on real digits) assigns to the class asked for;
* ``fd`` and ``class_entropy`` against the held-out reference (``--reference``), as in
  experiments/README.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "flow_digits"))
from compare import load_task  # noqa: E402

from genmodels.metrics.yardstick import get_yardstick  # noqa: E402
from genmodels.train.config import register_all  # noqa: E402


def plot(rows: list[dict], path: Path, reference: str, n: int) -> None:
    """Class accuracy and FD (mean ± sd over the draws) against the guidance scale."""
    import matplotlib.pyplot as plt

    from genmodels.plotting import save_figure
    rows = sorted(rows, key=lambda r: r["guidance_scale"])
    scales = [r["guidance_scale"] for r in rows]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.4))
    a1.errorbar(scales, [100 * r["class_accuracy"] for r in rows],
                yerr=[100 * r["class_accuracy_sd"] for r in rows], marker="o", capsize=3)
    a1.axhline(95, color="gray", ls="--", lw=0.8, label="95 %")
    a1.set_xlabel("guidance scale s")
    a1.set_ylabel("class accuracy (%)")
    a1.set_title("yardstick assigns the class asked for", fontsize=9)
    a1.legend(fontsize=8)
    a2.errorbar(scales, [r["fd"] for r in rows], yerr=[r["fd_sd"] for r in rows], marker="o",
                capsize=3, color="C1")
    a2.set_xlabel("guidance scale s")
    a2.set_ylabel(f"FD vs {reference} (lower is better)")
    a2.set_title(f"FD of {n} class-balanced samples", fontsize=9)
    save_figure(fig, path, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", type=Path)
    p.add_argument("--scales", type=float, nargs="*", default=[0, 1, 2, 3, 5])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--reference", default="val+test")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--figure", type=Path, default=None)
    p.add_argument("--grids", type=float, nargs="+", default=[],
                   help="also save a sample grid (row k asks for class k, seed 0) per scale, into --grid-dir")
    p.add_argument("--grid-dir", type=Path, default=Path("figures"))
    p.add_argument("--from-json", type=Path, nargs="+", default=None,
                   help="only draw --figure from earlier --out files (RUN_DIR is ignored)")
    args = p.parse_args(argv)
    if args.from_json:
        plot([r for f in args.from_json for r in json.loads(f.read_text())], args.figure,
             args.reference, args.n)
        return 0
    torch.set_num_threads(1)
    register_all()
    task, train = load_task(args.run)
    ys = get_yardstick(task.data)
    for s in args.grids:                     # what the run's figures() draws, at other scales
        from genmodels.plotting import save_image_grid
        labels = torch.arange(task.num_classes).repeat_interleave(8)
        torch.manual_seed(0)
        with torch.no_grad():
            images = task.sample(len(labels), labels=labels, guidance_scale=s)
        save_image_grid(images, args.grid_dir / f"samples_s{s:g}.png", nrow=8,
                        title=f"guidance scale s = {s:g}: row k asks for class k")
    rows = []
    for s in args.scales:
        draws = []
        for seed in range(args.repeats):
            torch.manual_seed(seed)
            t0, c0 = time.perf_counter(), time.process_time()
            with torch.no_grad():
                q = task.guided_quality(args.reference, args.n, guidance_scale=s)
            q.update(wall_s=time.perf_counter() - t0, cpu_s=time.process_time() - c0)
            draws.append(q)
        acc = torch.tensor([q["class_accuracy"] for q in draws], dtype=torch.float64)
        fd = torch.tensor([q["fd"] for q in draws], dtype=torch.float64)
        row = {"guidance_scale": s, "class_accuracy": float(acc.mean()),
               "class_accuracy_sd": float(acc.std()) if len(draws) > 1 else 0.0,
               "class_accuracy_each": [round(float(a), 4) for a in acc],
               "fd": float(fd.mean()), "fd_sd": float(fd.std()) if len(draws) > 1 else 0.0,
               "fd_each": [round(float(f), 3) for f in fd],
               "class_entropy": sum(q["class_entropy"] for q in draws) / len(draws),
               "fd_samples": args.n, "fd_reference": draws[0]["fd_reference"], "repeats": args.repeats,
               "sample_cpu_s_per_image": sum(q["sample_cpu_s_per_image"] for q in draws) / len(draws),
               "sampler": f"{task.cfg.model.sampler}, {task.cfg.model.sample_steps} steps",
               "yardstick_test_accuracy": ys.accuracy, **train}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")
    if args.figure:
        plot(rows, args.figure, args.reference, args.n)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
