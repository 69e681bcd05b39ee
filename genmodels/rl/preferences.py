"""Preference data for RLHF: a scripted "human", sampling of completion pairs, and the JSONL file.

The scripted human has a hidden preference that is easy to state and hard to game:

    "I like lines that use the words of KEYWORDS — as real words, while staying fluent."

Its score of a completion (the characters the policy wrote after the prompt) is

    score = fluency + (number of DISTINCT keywords used as whole words, if fluency ≥ 0.5)

where fluency is the fraction of the completion's words that occur in the corpus (a word cut off
by the end of the completion is not judged). Repeating one keyword earns nothing more, a keyword
inside gibberish earns nothing, and letters that merely spell a keyword inside a longer word
("kingdom", "gloves") do not count.

The data set file is JSON Lines, one comparison a line:
``{"prompt": ..., "chosen": ..., "rejected": ...}`` (plus the scripted scores, for reference,
and ``group``, the prompt's index: all comparisons of one prompt share it).
Real human labels in the same format can replace it (``read_preferences`` needs only the three
text fields).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable

import torch

from genmodels.data.text import CharCorpus, windows

__all__ = ["ScriptedHuman", "sample_completions", "make_preference_pairs", "write_preferences",
           "read_preferences", "corpus_words", "WORD_RE"]

WORD_RE = re.compile(r"[a-z']+")


def corpus_words(text: str) -> set[str]:
    """The lower-case words of a text: the scripted human's vocabulary of fluent words."""
    return set(WORD_RE.findall(text.lower()))


class ScriptedHuman:
    """The hidden preference: distinct keywords used as words, in fluent text."""

    def __init__(self, keywords: Iterable[str], vocabulary: set[str], fluency_gate: float = 0.5):
        self.keywords = {k.lower() for k in keywords}
        if not self.keywords:
            raise ValueError("keywords: need at least one keyword")
        self.vocabulary = vocabulary
        self.fluency_gate = fluency_gate

    def words(self, prompt: str, completion: str) -> list[str]:
        """The words the completion wrote (a word continuing the prompt counts whole; a word cut
        by the end of the completion is left out)."""
        full = (prompt + completion).lower()
        out = []
        for m in WORD_RE.finditer(full):
            if m.end() <= len(prompt):
                continue                          # entirely in the prompt
            if m.end() == len(full):
                continue                          # may be cut off
            out.append(m.group().strip("'"))
        return [w for w in out if w]

    def fluency(self, prompt: str, completion: str) -> float:
        words = self.words(prompt, completion)
        if not words:
            return 0.0
        return sum(w in self.vocabulary for w in words) / len(words)

    def keywords_used(self, prompt: str, completion: str) -> set[str]:
        return self.keywords & set(self.words(prompt, completion))

    def score(self, prompt: str, completion: str) -> float:
        f = self.fluency(prompt, completion)
        k = len(self.keywords_used(prompt, completion)) if f >= self.fluency_gate else 0
        return f + k


@torch.no_grad()
def sample_completions(policy, prompts: torch.Tensor, completion_len: int,
                       temperature: float = 1.0, generator: torch.Generator | None = None
                       ) -> torch.Tensor:
    """``[B, P] -> [B, completion_len]`` tokens sampled from the policy after each prompt."""
    was_training = policy.training
    policy.eval()
    out = policy.generate(prompts, completion_len, temperature=temperature, generator=generator)
    policy.train(was_training)
    return out[:, prompts.shape[1]:]


def make_preference_pairs(policy, corpus: CharCorpus, human: ScriptedHuman, n_pairs: int,
                          prompt_len: int, completion_len: int, samples_per_prompt: int = 4,
                          temperature: float = 1.0, seed: int = 0, batch_prompts: int = 64,
                          min_gap: float = 0.25, all_pairs: bool = True,
                          device: torch.device | str = "cpu", log=None) -> list[dict]:
    """Sample ``samples_per_prompt`` (K) completions per corpus prompt, score them with the
    scripted human and turn the ranking into comparisons (chosen, rejected).

    all_pairs: every pair of the K completions (InstructGPT labels all K-choose-2 pairs of a
    ranking), else only the best against the worst. min_gap: the human abstains when two scores
    differ by less (a near tie is no preference). Each record carries ``group``, the index of
    its prompt, so that held-out splits can keep all pairs of one prompt together.
    """
    g = torch.Generator().manual_seed(seed)
    records, group = [], 0
    while len(records) < n_pairs:
        prompts = windows(corpus.train, prompt_len, batch_prompts, g).to(device)  # (P, L)
        rep = prompts.repeat_interleave(samples_per_prompt, 0)                     # (P·K, L)
        comps = sample_completions(policy, rep, completion_len, temperature, g).cpu()
        comps = comps.view(batch_prompts, samples_per_prompt, completion_len)
        for p, cs in zip(prompts.cpu(), comps):
            ptxt = corpus.decode(p)
            texts = [corpus.decode(c) for c in cs]
            scores = [human.score(ptxt, t) for t in texts]
            order = sorted(range(len(texts)), key=lambda i: -scores[i])
            if all_pairs:
                cand = [(order[a], order[b]) for a in range(len(order))
                        for b in range(a + 1, len(order))]
            else:
                cand = [(order[0], order[-1])]
            for hi, lo in cand:
                if scores[hi] - scores[lo] < min_gap or texts[hi] == texts[lo]:
                    continue
                records.append({"prompt": ptxt, "chosen": texts[hi], "rejected": texts[lo],
                                "score_chosen": round(scores[hi], 4),
                                "score_rejected": round(scores[lo], 4), "group": group})
            group += 1
            if len(records) >= n_pairs:
                break
        if log is not None:
            log(f"preference pairs: {min(len(records), n_pairs)}/{n_pairs}")
    return records[:n_pairs]


def write_preferences(path: str | Path, records: list[dict]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path


def read_preferences(path: str | Path) -> list[dict]:
    """The comparisons of a JSONL file; each line needs ``prompt``, ``chosen`` and ``rejected``."""
    records = []
    with open(path, encoding="utf-8") as f:
        try:
            lines = f.readlines()
        except UnicodeDecodeError as e:
            raise ValueError(f"{path}: not UTF-8 text ({e})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            r = json.loads(line)
        except json.JSONDecodeError as e:          # a corrupted or half-written line
            raise ValueError(f"{path}:{n}: not a JSON object ({e})") from None
        if not isinstance(r, dict):
            raise ValueError(f"{path}:{n}: expected a JSON object, got {type(r).__name__}")
        missing = {"prompt", "chosen", "rejected"} - set(r)
        if missing:
            raise ValueError(f"{path}:{n}: missing field(s) {sorted(missing)}")
        wrong = sorted(k for k in ("prompt", "chosen", "rejected") if not isinstance(r[k], str))
        if wrong:
            raise ValueError(f"{path}:{n}: field(s) {wrong} must be strings")
        records.append(r)
    if not records:
        raise ValueError(f"{path}: no comparisons")
    return records
