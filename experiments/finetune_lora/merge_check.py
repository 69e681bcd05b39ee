"""Merged weights vs the adapter, in float64, for the LoRA runs of run_seeds.sh.

For each run folder: compose its config again from ``.hydra/overrides.yaml``, build the
fine-tuning task (its data splits and its LoRA model), load ``checkpoints/last.pt``, cast to
float64, and compare the class logits of every test speech computed through the adapters
(``lora_linear``) with those of the merged model (``W ← W + (α/r)BA``, ``merge_lora``); then
unmerge and compare the weights with the checkpoint's. Also counts the trained parameters, and
repeats the merged-vs-adapter comparison in float32 (the dtype of training).

The adapters here sit on raw ``x @ w`` matrices (``LoRAWeight``), whose adapter path forms the
matrix ``w + (α/r)·AᵀBᵀ`` itself (``lora_linear`` on the identity, exact) before multiplying; the
merge adds ``((α/r)·BA)ᵀ`` — the same products summed in the same order, so the two can agree to
the last bit. (On an ``nn.Linear``, ``LoRALinear`` takes the activation path ``x Aᵀ Bᵀ`` instead;
``tests/test_transfer_lora.py`` measures merged vs adapter there, < 1e-13 in float64.)

    python experiments/finetune_lora/merge_check.py outputs/finetune_lora/seeds/lora_*/s*
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import yaml
from hydra import compose, initialize_config_dir

from genmodels.train.checkpoint import load_checkpoint
from genmodels.train.config import register_all, to_object
from genmodels.train.trainer import build_task
from genmodels.transfer import merge_lora, unmerge_lora
from genmodels.transfer.lora import _adapters

REPO = Path(__file__).resolve().parents[2]


def _without_adapters(model, ids, mask):
    """Class logits with every adapter's B set to zero (ΔW = 0), B restored afterwards."""
    saved = [(a.B, a.B.detach().clone()) for a, _ in _adapters(model)]
    for b, _ in saved:
        b.zero_()
    out = model.classify(ids, mask)
    for b, v in saved:
        b.copy_(v)
    return out


def check(run: Path) -> dict:
    overrides = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text())
    overrides = [o for o in overrides if not o.startswith("hydra.")]
    register_all()
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        cfg = to_object(compose(config_name="config", overrides=overrides))
    task = build_task(cfg, torch.device("cpu"))
    ckpt = load_checkpoint(run / "checkpoints" / "last.pt")
    task.model.load_state_dict(ckpt["model"])
    ids, mask, y = task.splits.split("test")
    trained, total = task.trainable_fraction()
    with torch.no_grad():                           # float32, the dtype it trained in
        model = task.model.float().eval()
        a32 = model.classify(ids, mask)
        merge_lora(model)
        diff32 = (model.classify(ids, mask) - a32).abs().max().item()
        unmerge_lora(model)
    task.model.load_state_dict(ckpt["model"])      # the checkpoint's weights again, in float64
    model = task.model.double().eval()
    with torch.no_grad():
        adapter = model.classify(ids, mask)
        n = merge_lora(model)
        merged = model.classify(ids, mask)
        unmerge_lora(model)
        again = model.classify(ids, mask)
        delta = max(a.delta().abs().max().item() for a, _ in _adapters(model))   # max |ΔW|
        base_logits = _without_adapters(model, ids, mask)
        state = {k: v.double() for k, v in ckpt["model"].items()}
        w_err = max((p.detach() - state[k]).abs().max().item()
                    for k, p in model.state_dict().items() if k.endswith(".original"))
    return {"run": run.as_posix(), "adapters": n, "trained_params": trained,
            "total_params": total, "trained_fraction": trained / total,
            "test_items": len(y), "merged_vs_adapter_max_abs_logit_diff_f64":
                (merged - adapter).abs().max().item(),
            "logit_scale_max_abs": adapter.abs().max().item(),
            "merged_vs_adapter_max_abs_logit_diff_f32": diff32,
            "unmerged_vs_adapter_max_abs_logit_diff_f64": (again - adapter).abs().max().item(),
            "unmerged_weight_max_abs_err_f64": w_err,
            "max_abs_delta_w": delta,
            "adapter_vs_frozen_encoder_max_abs_logit_diff": (adapter - base_logits).abs().max().item(),
            "test_accuracy_f64": (adapter.argmax(-1) == y).float().mean().item()}


def main() -> None:
    rows = [check(Path(p)) for p in sys.argv[1:]]
    for r in rows:
        print(json.dumps(r))
    out = Path(__file__).resolve().parent / "merge_check.json"
    out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
