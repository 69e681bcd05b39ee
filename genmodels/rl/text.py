"""A tiny character corpus for RLHF: tinyshakespeare as ids, its vocabulary of words, and a
quick pretraining loop for the char-LM policy (stage 1 of the InstructGPT recipe).

Kept inside ``genmodels.rl`` so the RLHF experiments depend only on the GPT module
(:class:`genmodels.transformer.modules.GPT`), not on the language-model training code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from genmodels.transformer.modules import GPT

__all__ = ["CharCorpus", "load_corpus", "WORD_RE", "pretrain_char_lm", "build_gpt"]

WORD_RE = re.compile(r"[a-z']+")


@dataclass
class CharCorpus:
    """The text, its characters (the vocabulary) and the set of lower-case words it uses."""
    text: str
    chars: list[str]
    words: set[str] = field(default_factory=set)

    def __post_init__(self):
        self.stoi = {c: i for i, c in enumerate(self.chars)}
        self.ids = torch.tensor([self.stoi[c] for c in self.text], dtype=torch.long)
        if not self.words:
            self.words = set(WORD_RE.findall(self.text.lower()))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, s: str) -> torch.Tensor:
        """``[len(s)]`` ids; a character outside the vocabulary becomes a space."""
        space = self.stoi.get(" ", 0)
        return torch.tensor([self.stoi.get(c, space) for c in s], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)

    def random_windows(self, n: int, length: int, generator: torch.Generator | None = None,
                       split: str = "train") -> torch.Tensor:
        """``[n, length]`` windows from the first 90 % (train) or the last 10 % (val)."""
        cut = int(0.9 * len(self.ids))
        lo, hi = (0, cut - length) if split == "train" else (cut, len(self.ids) - length)
        start = torch.randint(lo, hi, (n,), generator=generator)
        return torch.stack([self.ids[s:s + length] for s in start.tolist()])


def load_corpus(path: str | Path) -> CharCorpus:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"text_path: {path} does not exist (tinyshakespeare.txt is the "
                                f"usual corpus; pass model.text_path=/path/to/text.txt)")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"text_path: {path} is not UTF-8 text ({e})") from None
    if not text:
        raise ValueError(f"text_path: {path} is empty")
    return CharCorpus(text, sorted(set(text)))


def build_gpt(vocab_size: int, block_size: int, n_layer: int, n_head: int, n_embd: int) -> GPT:
    return GPT(vocab_size, block_size, n_layer=n_layer, n_head=n_head, n_embd=n_embd,
               dropout=0.0)


def pretrain_char_lm(corpus: CharCorpus, block_size: int, n_layer: int, n_head: int,
                     n_embd: int, steps: int, batch: int, lr: float, seed: int,
                     device: torch.device | str = "cpu", log=None) -> GPT:
    """Next-character pretraining (eq. 2.29) with Adam and a cosine learning rate."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = build_gpt(corpus.vocab_size, block_size, n_layer, n_head, n_embd).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, max(steps, 1), eta_min=lr * 0.05)
    model.train()
    for step in range(steps):
        xy = corpus.random_windows(batch, block_size + 1, g).to(device)  # (B, T+1)
        _, loss = model(xy[:, :-1], xy[:, 1:])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if log is not None and (step % 250 == 0 or step == steps - 1):
            log(f"policy pretraining step {step + 1}/{steps}: loss {loss.item():.3f}")
    model.eval()
    return model
