"""The speech corpus with text (genmodels.speech, issue 21): its sizes, the render speed, a figure
of the alignment and two WAV samples.

    python experiments/speech_text_corpus/make.py            # --n 1000 to time 1,000 utterances

Writes results.json, figures/alignment.png and samples/*.wav beside this file. Rendering is
timed on the first ``--n`` training utterances of the default corpus (data=speech_text), one
thread, after one warm-up utterance; the cache is timed by saving and reading those utterances.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from genmodels.audio.plots import write_wav
from genmodels.speech import VOICES, plan_speech_text, render_sentence
from genmodels.speech.corpus import _load_cache, _save_cache
from genmodels.speech.g2p import SPEECH_PHONES
from genmodels.speech.plots import plot_alignment

HERE = Path(__file__).resolve().parent


def g2p_ambiguity() -> dict:
    """How far the rules are from invertible: word types of the phrase pool whose phones another
    spelling shares, and the CER of reading every pool phrase back by choosing, for each word's
    phone string, its most frequent spelling (a floor for a recogniser that knows the words)."""
    from collections import Counter, defaultdict

    from genmodels.speech import character_error_rate, embedded_sentences, phonemize
    pool = embedded_sentences(12, 40)
    words = Counter(w for t in pool for w in t.split())
    spellings = defaultdict(set)
    for w in words:
        spellings[" ".join(phonemize(w))].add(w)
    shared = [w for v in spellings.values() if len(v) > 1 for w in v]
    pick = {k: max(sorted(v), key=lambda w: words[w]) for k, v in spellings.items()}
    hyps = [" ".join(pick[" ".join(phonemize(w))] for w in t.split()) for t in pool]
    return dict(word_types=len(words), types_sharing_phones=len(shared),
                token_fraction_sharing=round(sum(words[w] for w in shared) / sum(words.values()), 4),
                readback_cer=round(character_error_rate(hyps, pool), 5),
                examples=sorted(sorted(v) for v in spellings.values() if len(v) > 1)[:8])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200, help="utterances to time")
    args = ap.parse_args()
    torch.set_num_threads(1)
    plan = plan_speech_text()                                   # the defaults of data=speech_text
    sizes = {s: dict(utterances=len(plan[s]), sentences=len({t for _, t, _ in plan[s]}),
                     voices=sorted({v.name for _, _, v in plan[s]})) for s in plan}

    todo = plan["train"][:args.n]
    render_sentence(todo[0][1], todo[0][2], 8000, 0, todo[0][0])          # warm-up
    t0 = time.perf_counter()
    utts = [render_sentence(t, v, 8000, 0, j) for j, t, v in todo]
    seconds = time.perf_counter() - t0
    audio_s = sum(u.seconds for u in utts)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.npz"
        _save_cache(path, {"train": utts, "val": [], "test": []})
        t0 = time.perf_counter()
        back = _load_cache(path, 8000)["train"]
        load_s = time.perf_counter() - t0
        assert all(torch.equal(a.audio, b.audio) for a, b in zip(utts, back))
    lengths = np.array([u.seconds for u in utts])

    # the whole default corpus's audio length follows from the durations of the plan's utterances:
    # estimate it from the timed ones (mean seconds per character)
    per_char = audio_s / sum(len(u.text) for u in utts)
    hours = {s: round(sum(len(t) for _, t, _ in plan[s]) * per_char / 3600, 2) for s in plan}

    j, text, _ = plan["test"][0]
    voices = [v for _, t, v in plan["test"] if t == text]
    shown = [render_sentence(text, v, 8000, 0, j) for v in voices[:2]]
    plot_alignment(shown, HERE / "figures" / "alignment.png",
                   title=f"held-out sentence {text!r} said by held-out voices "
                         f"{shown[0].speaker} ({voices[0].f0} Hz) and {shown[1].speaker} "
                         f"({voices[1].f0} Hz): spectrogram, phone alignment, f0 ×10 (dashed)")
    for u in shown:
        write_wav(HERE / "samples" / f"{u.speaker}_test0.wav", u.audio, 8000)

    results = dict(
        command="python experiments/speech_text_corpus/make.py" + (f" --n {args.n}" if args.n != 200 else ""),
        machine=f"{platform.processor() or platform.machine()}, torch threads 1",
        sample_rate=8000, sizes=sizes, estimated_hours=hours,
        phone_inventory=len(SPEECH_PHONES), built_in_voices=len(VOICES),
        render=dict(utterances=len(utts), seconds=round(seconds, 2),
                    seconds_per_utterance=round(seconds / len(utts), 4),
                    audio_seconds_mean=round(float(lengths.mean()), 2),
                    audio_seconds_min_max=[round(float(lengths.min()), 2), round(float(lengths.max()), 2)],
                    realtime_factor=round(audio_s / seconds, 1),
                    per_1000_utterances_s=round(1000 * seconds / len(utts), 1)),
        cache_read=dict(utterances=len(utts), seconds=round(load_s, 3)),
        g2p_ambiguity=g2p_ambiguity(),
    )
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
