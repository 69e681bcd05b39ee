"""``genmodels-sample``: print text from a trained character language model.

    genmodels-sample outputs/gpt_shakespeare/<time>                 # a run folder
    genmodels-sample outputs/gpt_shakespeare --prompt "ROMEO:" -n 300 --temperature 0.8 --top-k 20
    genmodels-sample path/to/last.pt --num-samples 3 --seed 1

The checkpoint may be a run folder, its ``checkpoints/last.pt``, or ``outputs/<run_name>`` (the
newest run in it). It holds the config and the vocabulary, so no data file is needed. Works for
every family of :data:`genmodels.charlm.task.LANGUAGE_MODELS` (``gpt``, ``lstm_lm``). Sampling is the next-character distribution of eq. 2.27,
softmax(logits / temperature), kept to the ``top_k`` most likely characters when given, drawn
with a generator seeded by ``--seed`` (the same command prints the same text).
"""

from __future__ import annotations

import argparse
import sys

__all__ = ["main", "load_language_model", "sample_text"]


def load_language_model(path: str, device: str = "cpu"):
    """``(model, chars, cfg_dict)`` of a language-model checkpoint, in eval mode."""
    import torch
    from omegaconf import OmegaConf

    from genmodels.charlm.task import LANGUAGE_MODELS
    from genmodels.schema import MODEL_SCHEMAS
    from genmodels.train.checkpoint import load_checkpoint, resolve_checkpoint
    from genmodels.train.config import register_all

    register_all()
    ckpt_path = resolve_checkpoint(path)
    ckpt = load_checkpoint(ckpt_path, map_location=device)   # weights_only: runs no code
    cfg = ckpt["config"]
    family = cfg["model"]["family"]
    chars = ckpt.get("task", {}).get("chars")
    if chars is None:
        raise ValueError(f"checkpoint: {ckpt_path} holds no vocabulary (not a language-model run)")
    if family not in LANGUAGE_MODELS:
        raise ValueError(f"checkpoint: {ckpt_path} is a {family!r} run; genmodels-sample needs a "
                         f"language model ({' or '.join(sorted(LANGUAGE_MODELS))})")
    m = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(MODEL_SCHEMAS[family]),
                                            cfg["model"]))
    model = LANGUAGE_MODELS[family](m, len(chars))
    model.load_state_dict(ckpt["model"])
    return model.to(device).eval(), list(chars), cfg


def sample_text(model, chars: list[str], prompt: str = "\n", max_new_tokens: int = 500,
                temperature: float = 1.0, top_k: int | None = None, seed: int = 0,
                num_samples: int = 1) -> list[str]:
    """``num_samples`` continuations of ``prompt`` (prompt included)."""
    import torch

    from genmodels.data.text import decode

    stoi = {c: i for i, c in enumerate(chars)}
    unknown = sorted({c for c in prompt if c not in stoi})
    if unknown:
        raise ValueError(f"prompt: characters {unknown!r} are not in the model's vocabulary")
    if not prompt:
        raise ValueError("prompt: must hold at least one character (try '\\n')")
    idx = torch.tensor([[stoi[c] for c in prompt]] * num_samples,
                       device=next(model.parameters()).device)
    g = torch.Generator(device=idx.device).manual_seed(seed)
    out = model.generate(idx, max_new_tokens, temperature=temperature, top_k=top_k, generator=g)
    return [decode(chars, row) for row in out.cpu()]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="genmodels-sample", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="run folder, last.pt, or outputs/<run_name>")
    p.add_argument("--prompt", default="\n", help="text to continue (default: a newline)")
    p.add_argument("-n", "--max-new-tokens", type=int, default=500)
    p.add_argument("-t", "--temperature", type=float, default=0.8)
    p.add_argument("-k", "--top-k", type=int, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--num-samples", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    a = p.parse_args(argv)
    try:
        import torch
        if a.threads:
            torch.set_num_threads(a.threads)
        model, chars, _ = load_language_model(a.checkpoint, a.device)
        texts = sample_text(model, chars, a.prompt, a.max_new_tokens, a.temperature, a.top_k,
                            a.seed, a.num_samples)
    except (ValueError, FileNotFoundError) as e:
        print(f"genmodels-sample: {e}", file=sys.stderr)
        return 2
    sep = "\n" + "-" * 72 + "\n"
    print(sep.join(texts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
