"""Score trained ASR runs on val and test with every decoding, per voice (issue 21).

    python experiments/asr_speech/decode_runs.py outputs/asr_speech/full outputs/asr_speech/lstm_full \
        --lambdas 0.3 0.5 0.7 --out experiments/asr_speech/decodings.json

Each run's task is rebuilt from its checkpoint (``genmodels.speech.cli.load_run``: the corpus from
its ``data.cache_dir``). A Transformer run is decoded greedily, by beam search, by the beam
rescored with its CTC head, by its CTC head alone and by one-pass joint CTC/attention beam search
at every ``--lambdas`` weight; the LSTM-CTC baseline by greedy CTC. A run trained with a language
model (``model.lm_weight`` > 0) is also decoded with it by shallow fusion at every ``--betas``
weight (mode ``lm``: the joint search at the run's own CTC weight, or CTC prefix beam search). Prints and writes the pooled
CER of each split and of each voice in it, its substitutions, deletions and insertions (per
reference character), the CER with runs of a doubled letter merged in hypothesis and reference
("posible" = "possible"), the characters per second of each voice, and the process CPU seconds
of each decoding. Weights are to be chosen on val, then read on test.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import defaultdict

import torch

from genmodels.speech.cli import load_run
from genmodels.speech.measures import character_error_rate


def edit_ops(hyp: str, ref: str) -> tuple[int, int, int]:
    """(substitutions, deletions, insertions) of one minimal edit path from ``ref`` to ``hyp``."""
    n, m = len(ref), len(hyp)
    d = [[i + j if i == 0 or j == 0 else 0 for j in range(m + 1)] for i in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]))
    i, j, sub, dele, ins = n, m, 0, 0, 0
    while i > 0 or j > 0:
        if i > 0 and j > 0 and d[i][j] == d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            sub, i, j = sub + (ref[i - 1] != hyp[j - 1]), i - 1, j - 1
        elif i > 0 and d[i][j] == d[i - 1][j] + 1:
            dele, i = dele + 1, i - 1
        else:
            ins, j = ins + 1, j - 1
    return sub, dele, ins


def merge_doubles(text: str) -> str:
    return re.sub(r"(.)\1+", r"\1", text)


def transcribe_split(task, split: str, mode: str) -> list[str]:
    """Every utterance of ``split`` transcribed by ``mode``, 32 at a time."""
    n = len(task.texts[split])
    hyps: list[str] = []
    with torch.no_grad():
        for i in range(0, n, 32):
            hyps += task.transcribe(split, list(range(i, min(n, i + 32))), mode)
    return hyps


def score(task, split: str, mode: str) -> dict:
    utts = task.data.utterances(split)
    refs = [u.text for u in utts]
    t0 = time.process_time()
    hyps = transcribe_split(task, split, mode)
    cpu = time.process_time() - t0
    by_voice = defaultdict(list)
    for i, u in enumerate(utts):
        by_voice[u.speaker].append(i)
    n = sum(len(r) for r in refs)
    sub, dele, ins = (sum(x) / n for x in zip(*(edit_ops(h, r) for h, r in zip(hyps, refs))))
    return {"cer": character_error_rate(hyps, refs), "cpu_s": round(cpu, 2),
            "sub": sub, "del": dele, "ins": ins,
            "cer_doubles_merged": character_error_rate([merge_doubles(h) for h in hyps],
                                                       [merge_doubles(r) for r in refs]),
            "voices": {v: character_error_rate([hyps[i] for i in idx], [refs[i] for i in idx])
                       for v, idx in sorted(by_voice.items())},
            "examples": [{"ref": r, "hyp": h} for r, h in zip(refs[:3], hyps[:3])]}


def voice_rates(task) -> dict:
    """Characters per second of speech, per voice and split (the encoder sees
    100 / model.subsample positions per second)."""
    out = {}
    for split in ("train", "val", "test"):
        secs, chars = defaultdict(float), defaultdict(int)
        for u in task.data.utterances(split):
            secs[u.speaker] += u.seconds
            chars[u.speaker] += len(u.text)
        out[split] = {v: round(chars[v] / secs[v], 2) for v in sorted(secs)}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="run folders (asr_speech or asr_lstm_ctc)")
    ap.add_argument("--lambdas", nargs="+", type=float, default=[0.3],
                    help="CTC weights of the joint search")
    ap.add_argument("--betas", nargs="+", type=float, default=[],
                    help="language-model weights of shallow fusion (runs trained with one; "
                         "the joint search at the run's own CTC weight)")
    ap.add_argument("--splits", nargs="+", default=["val", "test"])
    ap.add_argument("--modes", nargs="+", default=["greedy", "beam", "beam_ctc", "ctc", "joint"])
    ap.add_argument("--out", help="write the results here as JSON")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    results = {}
    for run in args.runs:
        task = load_run(run, "asr")
        m = task.cfg.model
        res = {"arch": m.arch, "subsample": m.subsample, "chars_per_s": voice_rates(task)}
        own_lambda = m.joint_ctc_weight
        if m.arch == "lstm_ctc":
            modes = [("greedy_ctc", "greedy", None, None)]
        else:
            modes = [(f"joint_{lam:g}", "joint", lam, None) if mode == "joint"
                     else (mode, mode, None, None)
                     for mode in args.modes for lam in (args.lambdas if mode == "joint" else [0])]
        if getattr(task.model, "lm", None) is not None:
            modes += [(f"lm_{beta:g}", "lm", own_lambda, beta) for beta in args.betas]
        for split in args.splits:
            for name, mode, lam, beta in modes:
                if lam is not None:
                    m.joint_ctc_weight = lam
                if beta is not None:
                    m.lm_weight = beta
                r = score(task, split, mode)
                res.setdefault(split, {})[name] = r
                voices = " ".join(f"{v} {100 * c:.2f}" for v, c in r["voices"].items())
                print(f"{run} {split} {name}: CER {100 * r['cer']:.2f} % ({voices}; sub/del/ins "
                      f"{100 * r['sub']:.2f}/{100 * r['del']:.2f}/{100 * r['ins']:.2f}; doubles "
                      f"merged {100 * r['cer_doubles_merged']:.2f}; {r['cpu_s']} CPU s)",
                      flush=True)
        results[run] = res
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
