"""Flow matching against DDPM/DDIM at the same number of network evaluations (NFE), on the yardstick.

    python experiments/flow_digits/compare.py FLOW_RUN DDPM_RUN [--steps 10 20 50] [--n 1000]
        [--repeats 3] [--reference val+test] [--alg2-repeats 0] [--out results.json]
        [--figure fd_vs_nfe.png]
    python experiments/flow_digits/compare.py - - --from-json results.json --figure fd_vs_nfe.png

FLOW_RUN and DDPM_RUN are folders written by ``genmodels-train experiment=flow_digits`` and
``experiment=ddpm_digits``. Each run's task is rebuilt from its own overrides and its final
checkpoint loaded (experiments/image_generators/evaluate.py), then, for every step count k:

* flow: k Euler steps of dx/dt = v_θ(x, t) (k network evaluations);
* DDIM, η = 0: deterministic DDIM on k of the DDPM's 1,000 timesteps (k evaluations);
* DDIM, η = 1: the same sub-sequence with DDPM's posterior variance, i.e. ancestral (Algorithm-2
  style) sampling with k steps instead of 1,000 (k evaluations).

Every cell is ``--repeats`` draws of ``--n`` images (global seeds 0, 1, …) scored by
:func:`genmodels.metrics.sample_quality` against the same held-out reference; a row of real
training images gives the FD floor, and ``--alg2-repeats`` adds the DDPM's own Algorithm 2 (1,000
evaluations) as the reference point.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "image_generators"))
from evaluate import load_task as load_run_task, repeated  # noqa: E402

from genmodels.diffusion.ddpm import ddim_sample, ddpm_sample  # noqa: E402
from genmodels.train.config import register_all  # noqa: E402


def load_task(run: Path):
    task, _ = load_run_task(run)
    results = json.loads((run / "results.json").read_text())
    return task, {"train_steps": results["step"], "train_cpu_s": results.get("train_cpu_s"),
                  "train_time_s": results["train_time_s"]}


def to_images(x: torch.Tensor) -> torch.Tensor:
    return (x.clamp(-1, 1) + 1) / 2


def plot(rows: list[dict], path: Path) -> None:
    """FD (mean ± sd over the draws) against the number of network evaluations, one line per
    sampler; the real-data floor as a band."""
    import matplotlib.pyplot as plt

    from genmodels.plotting import save_figure
    fig, ax = plt.subplots(figsize=(5.6, 3.6))
    for i, name in enumerate(["flow, Euler", "DDIM, eta=0", "DDIM, eta=1"]):
        r = sorted((x for x in rows if x["sampler"] == name), key=lambda x: x["nfe"])
        if r:
            ax.errorbar([x["nfe"] for x in r], [x["fd"] for x in r], yerr=[x["fd_sd"] for x in r],
                        marker="o", capsize=3, label=name.replace("eta", "η"), color=f"C{i}")
    for x in rows:
        if x["sampler"] == "DDPM, Algorithm 2":
            ax.axhline(x["fd"], color="C3", ls="--", lw=1,
                       label=f"DDPM, Algorithm 2 ({x['nfe']} NFE): {x['fd']:.2f}")
        if x["sampler"] == "real training images":
            ax.axhspan(x["fd"] - x["fd_sd"], x["fd"] + x["fd_sd"], color="gray", alpha=0.25,
                       label="real training images (floor)")
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks([10, 20, 50])
    ax.set_xticklabels(["10", "20", "50"])
    ax.set_xlabel("network evaluations per image (sampling steps)")
    ax.set_ylabel("FD on the yardstick (lower is better)")
    ax.set_title("digits: flow matching vs DDPM/DDIM at equal NFE", fontsize=9)
    ax.legend(fontsize=7)
    save_figure(fig, path, dpi=110)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("flow_run", type=Path)
    p.add_argument("ddpm_run", type=Path)
    p.add_argument("--steps", type=int, nargs="+", default=[10, 20, 50])
    p.add_argument("--n", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--reference", default="val+test")
    p.add_argument("--alg2-repeats", type=int, default=0)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--figure", type=Path, default=None, help="FD against NFE (PNG)")
    p.add_argument("--from-json", type=Path, nargs="+", default=None,
                   help="only draw --figure from earlier --out files (the run folders are ignored)")
    args = p.parse_args(argv)
    if args.from_json:
        plot([r for f in args.from_json for r in json.loads(f.read_text())], args.figure)
        return 0
    torch.set_num_threads(1)
    register_all()
    flow, flow_train = load_task(args.flow_run)
    ddpm, ddpm_train = load_task(args.ddpm_run)
    shape, net, sched = ddpm.shape, ddpm.model.sampling_net, ddpm.schedule
    samplers = {
        "flow, Euler": (lambda k: lambda n: to_images(flow.sample_raw(n, steps=k)), flow_train),
        "DDIM, eta=0": (lambda k: lambda n: to_images(ddim_sample(net, (n, *shape), sched, k)), ddpm_train),
        "DDIM, eta=1": (lambda k: lambda n: to_images(ddim_sample(net, (n, *shape), sched, k, eta=1.0)),
                        ddpm_train),
    }
    rows = []

    def emit(row):
        rows.append(row)
        print(json.dumps(row), flush=True)

    for k in args.steps:
        for name, (make, train) in samplers.items():
            t0 = time.perf_counter()
            emit({"sampler": name, "nfe": k, **repeated(flow.data, make(k), args.n, args.repeats,
                                                         args.reference),
                  **train, "eval_wall_s": time.perf_counter() - t0})
    if args.alg2_repeats:
        emit({"sampler": "DDPM, Algorithm 2", "nfe": sched.T,
              **repeated(ddpm.data, lambda n: to_images(ddpm_sample(net, (n, *shape), sched)), args.n,
                         args.alg2_repeats, args.reference), **ddpm_train})
    data = flow.data

    def real_images(k):
        return data.train[torch.randperm(len(data.train))[:k]]
    emit({"sampler": "real training images", "nfe": 0,
          **repeated(data, real_images, args.n, args.repeats, args.reference)})
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")
    if args.figure:
        plot(rows, args.figure)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
