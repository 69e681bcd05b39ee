"""Score finished image-generator runs with one yardstick, in one process, under one set of conditions.

    python experiments/image_generators/evaluate.py RUN_DIR [RUN_DIR ...] [--n N] [--repeats R] [--out table.json]

For every run folder written by ``genmodels-train`` (VAE, GAN, DDPM or score-SDE), rebuild the task
from the run's own Hydra overrides (``.hydra/overrides.yaml``), load ``checkpoints/last.pt``, draw
``--repeats`` independent sets of ``--n`` images with torch on one thread, and report

* ``fd`` (mean and standard deviation over the repeats) and ``class_entropy`` (mean) from
  :func:`genmodels.metrics.sample_quality`: the cached yardstick of the dataset, every set scored
  against the same held-out reference (the test split, at most its first 2,000 images);
* ``kid_x1000`` (mean and sd): 1000 × the unbiased kernel distance in the same feature space, which
  is 0 on average for real images and so still ranks models that sit on FD's small-sample floor;
* the sampling time per image, as wall time and as this process's CPU seconds (the robust number on
  a shared machine: with one thread it is what an idle core would take);
* the training wall time and CPU seconds the trainer recorded in ``results.json``.

A "real images" row per dataset scores n training images the same way: the floor of FD at that n.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import yaml
from hydra import compose, initialize_config_dir

from genmodels.metrics import sample_quality
from genmodels.train.config import register_all, to_object
from genmodels.train.trainer import build_task

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _generator(task):
    family = task.cfg.model.family
    if family in ("vae", "gan"):
        return task.model.sample
    if family in ("diffusion", "flow", "guided_diffusion"):   # guided: balanced classes, model.guidance_scale
        return task.sample
    raise ValueError(f"run: family {family!r} is not an image generator")


def load_task(run: Path, extra=()):
    """``(task, cfg)`` of a run folder: its config from the run's own overrides (plus ``extra``,
    e.g. model.sampler=ddpm to score another sampler) and its last checkpoint, in eval mode."""
    overrides = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())
    overrides = [o for o in overrides if not o.startswith(("hydra.", "trainer.progress"))]
    overrides += list(extra)
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = to_object(compose(config_name="config", overrides=overrides))
    task = build_task(cfg, torch.device("cpu"))
    state = torch.load(run / "checkpoints" / "last.pt", map_location="cpu", weights_only=False)
    task.model.load_state_dict(state["model"])
    task.model.eval()
    return task, cfg


def score_run(run: Path, n: int, repeats: int, reference: str = "test", extra=()) -> dict:
    task, cfg = load_task(run, extra)
    row = {"run": cfg.run_name, "data": cfg.data.name, "family": cfg.model.family}
    row.update(repeated(task.data, _generator(task), n, repeats, reference))
    for _ in range(360):                     # a run still in its final evaluation: wait for it
        if (run / "results.json").exists():
            break
        time.sleep(10)
    results = json.loads((run / "results.json").read_text())
    row.update(steps=results["step"], train_time_s=results["train_time_s"],
               train_cpu_s=results.get("train_cpu_s"), data_obj=task.data)
    return row


def repeated(data, generate, n: int, repeats: int, reference: str = "test") -> dict:
    """``repeats`` draws of n images (seeds 0, 1, …): FD mean ± sd, entropy mean, total timing."""
    qs = []
    for seed in range(repeats):
        torch.manual_seed(seed)
        with torch.no_grad():
            qs.append(sample_quality(data, reference, generate, n))
    fds = torch.tensor([q["fd"] for q in qs], dtype=torch.float64)
    return {"fd": float(fds.mean()), "fd_sd": float(fds.std()) if repeats > 1 else 0.0,
            "fd_each": [round(float(f), 3) for f in fds],
            "kid_x1000": 1000 * sum(q["kid"] for q in qs) / repeats,
            "kid_x1000_sd": (1000 * float(torch.tensor([q["kid"] for q in qs]).std())
                             if repeats > 1 else 0.0),
            "class_entropy": sum(q["class_entropy"] for q in qs) / repeats,
            "fd_samples": n, "fd_reference": qs[0]["fd_reference"], "repeats": repeats,
            "sample_s_per_image": sum(q["sample_s_per_image"] for q in qs) / repeats,
            "sample_cpu_s_per_image": sum(q["sample_cpu_s_per_image"] for q in qs) / repeats}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--n", type=int, default=500, help="generated images per draw")
    p.add_argument("--repeats", type=int, default=3, help="independent draws per run")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="config override applied to every run (e.g. model.sampler=ddpm)")
    p.add_argument("--reference", default="test",
                   help="held-out split(s) to compare with, e.g. test or val+test (larger: lower FD floor)")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    register_all()
    rows, datasets = [], {}
    for run in args.runs:
        row = score_run(run, args.n, args.repeats, args.reference, args.set)
        datasets.setdefault(row["data"], row.pop("data_obj"))
        row.pop("data_obj", None)
        rows.append(row)
        print(json.dumps(row), flush=True)
    for name, data in datasets.items():      # the floor: real training images against the test split
        def real_images(k):                  # k random training images (global RNG, seeded per draw)
            return data.train[torch.randperm(len(data.train))[:k]]
        row = {"run": "real training images", "data": name, "family": "data",
               **repeated(data, real_images, args.n, args.repeats, args.reference)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
