"""Transcription measures of the speech family: edit distance and character error rate.

The Levenshtein distance d(hyp, ref) is the fewest single-item substitutions, insertions and
deletions (each costing 1) that turn ``hyp`` into ``ref``, computed by the dynamic programme

    D[i][j] = min(D[i−1][j] + 1, D[i][j−1] + 1, D[i−1][j−1] + [hyp_i ≠ ref_j]),
    D[i][0] = i, D[0][j] = j,   d = D[len(hyp)][len(ref)].

The character error rate of a corpus is Σ d(h, r) / Σ len(r): errors over reference characters,
pooled over the sentences (not a mean of per-sentence rates, which would weigh a two-letter
sentence like a paragraph).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["edit_distance", "character_error_rate"]


def _check_sequence(name: str, s) -> None:
    if isinstance(s, (bytes, bytearray)) or not isinstance(s, Sequence):
        raise ValueError(f"{name}: expected a sequence (a str or a list of tokens), got "
                         f"{type(s).__name__}")


def edit_distance(hyp: Sequence, ref: Sequence) -> int:
    """The Levenshtein distance between two sequences of comparable items (unit costs)."""
    _check_sequence("hyp", hyp)
    _check_sequence("ref", ref)
    # >>> exercise speech.edit_distance: CER (edit distance)
    # what: the Levenshtein distance by dynamic programming, one row of D at a time
    # hint: D[i][j] = min(D[i−1][j] + 1, D[i][j−1] + 1, D[i−1][j−1] + [hyp_i ≠ ref_j]), with
    #   D[0][j] = j and D[i][0] = i; a match costs nothing.
    # mistake: `prev[j - 1] + (h != r)` -> `prev[j - 1] + 1`
    prev = list(range(len(ref) + 1))                 # D[i−1][·], starting with D[0][j] = j
    for i, h in enumerate(hyp, start=1):
        cur = [i] + [0] * len(ref)
        for j, r in enumerate(ref, start=1):
            cur[j] = min(prev[j] + 1,                # delete h
                         cur[j - 1] + 1,             # insert r
                         prev[j - 1] + (h != r))     # substitute (free when equal)
        prev = cur
    return prev[-1]
    # <<< exercise speech.edit_distance


def character_error_rate(hyps: list[str], refs: list[str]) -> float:
    """Σ edit_distance(h, r) / Σ len(r) over a corpus of (hypothesis, reference) strings."""
    for name, v in (("hyps", hyps), ("refs", refs)):
        if not isinstance(v, (list, tuple)) or not all(isinstance(s, str) for s in v):
            raise ValueError(f"{name}: expected a list of strings")
    if len(hyps) != len(refs):
        raise ValueError(f"refs: {len(refs)} references for {len(hyps)} hyps (one per hypothesis)")
    total = sum(len(r) for r in refs)
    if total == 0:
        raise ValueError("refs: their total length is 0, so the rate is undefined")
    # >>> exercise speech.character_error_rate: CER
    # what: the corpus CER: all the edits over all the reference characters
    # hint: pool over the corpus (Σ edits / Σ len(ref)), not the mean of per-utterance rates,
    #   which weighs a 3-character reference like a 40-character one.
    # mistake: `return sum(edit_distance(h, r) for h, r in zip(hyps, refs)) / total` -> `return sum(edit_distance(h, r) / len(r) for h, r in zip(hyps, refs)) / len(refs)`
    # uses: speech.edit_distance
    return sum(edit_distance(h, r) for h, r in zip(hyps, refs)) / total
    # <<< exercise speech.character_error_rate
