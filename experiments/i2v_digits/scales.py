"""Score a finished i2v_digits run at other guidance scales (the test evaluation of
genmodels/video/task_i2v.py, on the run's final EMA weights), without training again.

    python experiments/i2v_digits/scales.py RUN_DIR --scales 5 8 --out results_scales.json

The config is the experiment's, composed again with ``model.guidance_scales`` replaced; it must
equal the one saved in the run's checkpoint in every other key (else the script stops).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from genmodels.train.checkpoint import load_checkpoint, write_json
from genmodels.train.config import register_all, to_object
from genmodels.train.trainer import _flatten, build_task, config_to_dict

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--scales", type=float, nargs="+", required=True)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    register_all()
    state = load_checkpoint(args.run_dir / "checkpoints" / "last.pt")
    scales = "[" + ",".join(str(s) for s in args.scales) + "]"
    with initialize_config_dir(config_dir=str(CONFIGS), version_base="1.3"):
        cfg = to_object(compose(config_name="config", overrides=[
            f"experiment={state['config']['run_name']}", f"model.guidance_scales={scales}"]))
    old, new = _flatten(state["config"]), _flatten(config_to_dict(cfg))
    diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k)
                  and k != "model.guidance_scales" and not k.startswith("trainer.progress"))
    if diff:
        raise SystemExit(f"the run's config differs from the experiment's in {diff}")
    task = build_task(cfg, torch.device("cpu"))
    task.model.load_state_dict(state["model"])
    t0, c0 = time.perf_counter(), time.process_time()
    with torch.no_grad():
        test = task.evaluate("test")
    write_json(args.out, {"run_dir": str(args.run_dir), "step": state["step"], "scales": args.scales,
                          "eval_s": round(time.perf_counter() - t0, 1),
                          "eval_cpu_s": round(time.process_time() - c0, 1), "test": test})
    print(json.dumps({k: v for k, v in test.items()
                      if k.startswith(("angle_err", "agree_s", "agree_min", "fd_s", "wrong_vs"))}, indent=1))


if __name__ == "__main__":
    main()
