"""The reward model R_θ(x, y) of RLHF (eq. 2.2): a GPT trunk read at the last token, then a
scalar head — InstructGPT's design (there initialised from the supervised policy)."""

from __future__ import annotations

import torch
from torch import nn

from genmodels.transformer.modules import GPT

__all__ = ["RewardModel", "pad_right"]


class RewardModel(nn.Module):
    """``forward(idx[B, T], lengths=None) -> r[B]`` from the GPT trunk's hidden states.

    pooling ``"last"``: the head on the hidden state of the last real token (InstructGPT);
    ``"mean"``: the mean of the head over every real token — a sum of per-position judgements,
    which learns "this text uses a keyword somewhere" from far fewer comparisons. (With causal
    attention the shared prompt's positions are identical for the chosen and the rejected
    completion, so they cancel in r_c − r_r.) ``lengths[b]`` tokens of row b are real; right
    padding never changes a real token's hidden state. ``gpt_options`` go to the trunk's
    :class:`~genmodels.transformer.modules.GPT` (e.g. ``attention``).
    """

    def __init__(self, vocab_size: int, block_size: int, n_layer: int, n_head: int, n_embd: int,
                 pooling: str = "last", **gpt_options):
        super().__init__()
        if pooling not in ("last", "mean"):
            raise ValueError(f"pooling: must be 'last' or 'mean', got {pooling!r}")
        self.pooling = pooling
        self.trunk = GPT(vocab_size, block_size, n_layer, n_head, n_embd, **gpt_options)
        self.head = nn.Linear(n_embd, 1)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, idx: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        h = self.trunk.hidden(idx)  # (B, T, d)
        if self.pooling == "mean":
            r_t = self.head(h).squeeze(-1)  # (B, T): one judgement per position
            if lengths is None:
                return r_t.mean(dim=1)
            real = torch.arange(idx.shape[1], device=idx.device)[None] < lengths[:, None]
            return (r_t * real).sum(1) / lengths.to(r_t.dtype)
        if lengths is None:
            last = h[:, -1]
        else:
            last = h[torch.arange(len(idx), device=idx.device), lengths - 1]  # (B, d)
        return self.head(last).squeeze(-1)


def pad_right(seqs: list[torch.Tensor], max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the last ``max_len`` tokens of each sequence, right-pad with id 0:
    ``([B, L], lengths[B])``."""
    seqs = [s[-max_len:] for s in seqs]
    L = max(len(s) for s in seqs)
    out = torch.zeros(len(seqs), L, dtype=torch.long)
    for i, s in enumerate(seqs):
        out[i, :len(s)] = s
    return out, torch.tensor([len(s) for s in seqs])
