"""Transcribe one split with two ASR runs and list the utterances either gets wrong (issue 21).

    python experiments/asr_speech/compare_transcripts.py outputs/asr_speech/conf15_4k joint \
        outputs/asr_speech/lstm_sp15 greedy --split test --out experiments/asr_speech/late/test_transcripts.json

Each run is rebuilt from its checkpoint (``genmodels.speech.cli.load_run``) and decodes by its
mode (``greedy``, ``beam``, ``beam_ctc``, ``joint``, ``ctc``, ``lm``; a baseline run by greedy
CTC, or with ``lm`` by CTC prefix beam search with its language model). Prints the reference and both transcripts of every utterance with an error (✓ marks a
correct one), the count of wrong utterances per run, and the difference of the two CERs (A − B,
percentage points) with a 95 % interval from a paired bootstrap over sentences: the held-out
sentences are drawn with replacement (``--resamples`` times, seed 0), each with all its voices,
because a sentence's voices tend to share their errors; writes them all as JSON.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from decode_runs import transcribe_split  # this folder's decoding loop

from genmodels.speech.cli import load_run
from genmodels.speech.measures import edit_distance


def transcripts(run: str, mode: str, split: str) -> tuple[list[str], list[str]]:
    task = load_run(run, "asr")
    return transcribe_split(task, split, mode), task.texts[split]


def paired_bootstrap(ref: list[str], a: list[str], b: list[str], resamples: int = 10_000,
                     seed: int = 0) -> dict:
    """CER(A) − CER(B) in percentage points and its 95 % percentile interval, resampling the
    sentences (the distinct references) with replacement, each with all of its utterances."""
    sentences = sorted(set(ref))
    index = {t: i for i, t in enumerate(sentences)}
    err = np.zeros((len(sentences), 2))
    chars = np.zeros(len(sentences))
    for r, x, y in zip(ref, a, b):
        i = index[r]
        err[i] += (edit_distance(x, r), edit_distance(y, r))
        chars[i] += len(r)
    rng = np.random.default_rng(seed)
    draw = rng.integers(0, len(sentences), size=(resamples, len(sentences)))
    e, n = err[draw].sum(axis=1), chars[draw].sum(axis=1)
    diff = 100 * (e[:, 0] - e[:, 1]) / n
    point = 100 * (err[:, 0].sum() - err[:, 1].sum()) / chars.sum()
    lo, hi = np.percentile(diff, [2.5, 97.5])
    return {"sentences": len(sentences), "cer_a": 100 * err[:, 0].sum() / chars.sum(),
            "cer_b": 100 * err[:, 1].sum() / chars.sum(), "diff": point, "ci95": [lo, hi],
            "p_a_not_below_b": float(np.mean(diff >= 0)), "resamples": resamples}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_a")
    ap.add_argument("mode_a")
    ap.add_argument("run_b")
    ap.add_argument("mode_b")
    ap.add_argument("--split", default="test", choices=("val", "test"))
    ap.add_argument("--resamples", type=int, default=10_000)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    a, ref = transcripts(args.run_a, args.mode_a, args.split)
    b, ref_b = transcripts(args.run_b, args.mode_b, args.split)
    if ref != ref_b:
        raise SystemExit("the two runs were trained on different corpora (their references differ)")
    for r, x, y in zip(ref, a, b):
        if x != r or y != r:
            print(f"ref {r}\nA   {x}{'  ✓' if x == r else ''}\nB   {y}{'  ✓' if y == r else ''}\n")
    wrong_a = sum(x != r for x, r in zip(a, ref))
    wrong_b = sum(y != r for y, r in zip(b, ref))
    print(f"utterances with an error: A ({args.run_a}, {args.mode_a}) {wrong_a}, "
          f"B ({args.run_b}, {args.mode_b}) {wrong_b}, of {len(ref)}")
    boot = paired_bootstrap(ref, a, b, args.resamples)
    print(f"CER A {boot['cer_a']:.2f} %, B {boot['cer_b']:.2f} %; A − B {boot['diff']:+.2f} points, "
          f"95 % interval [{boot['ci95'][0]:+.2f}, {boot['ci95'][1]:+.2f}] (paired bootstrap over "
          f"{boot['sentences']} sentences); share of resamples with A not below B "
          f"{boot['p_a_not_below_b']:.3f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"split": args.split, "ref": ref,
                       "a": {"run": args.run_a, "mode": args.mode_a, "hyps": a},
                       "b": {"run": args.run_b, "mode": args.mode_b, "hyps": b},
                       "bootstrap": boot}, f, indent=1)


if __name__ == "__main__":
    main()
