"""Transcribe one split with two ASR runs and list the utterances either gets wrong (issue 21).

    python experiments/asr_speech/compare_transcripts.py outputs/asr_speech/conf15_4k joint \
        outputs/asr_speech/lstm_sp15 greedy --split test --out experiments/asr_speech/late/test_transcripts.json

Each run is rebuilt from its checkpoint (``genmodels.speech.cli.load_run``) and decodes by its
mode (``greedy``, ``beam``, ``beam_ctc``, ``joint``, ``ctc``, ``lm``; a baseline run by greedy
CTC, or with ``lm`` by CTC prefix beam search with its language model). Prints the reference and both transcripts of every utterance with an error (✓ marks a
correct one) and the count of wrong utterances per run; writes them all as JSON.
"""

from __future__ import annotations

import argparse
import json

import torch
from decode_runs import transcribe_split  # this folder's decoding loop

from genmodels.speech.cli import load_run


def transcripts(run: str, mode: str, split: str) -> tuple[list[str], list[str]]:
    task = load_run(run, "asr")
    return transcribe_split(task, split, mode), task.texts[split]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run_a")
    ap.add_argument("mode_a")
    ap.add_argument("run_b")
    ap.add_argument("mode_b")
    ap.add_argument("--split", default="test", choices=("val", "test"))
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
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"split": args.split, "ref": ref,
                       "a": {"run": args.run_a, "mode": args.mode_a, "hyps": a},
                       "b": {"run": args.run_b, "mode": args.mode_b, "hyps": b}}, f, indent=1)


if __name__ == "__main__":
    main()
