"""The network of the transfer experiments: a shared MLP trunk with one linear head per task."""

from __future__ import annotations

import torch
from torch import nn

from genmodels._checks import check_int

__all__ = ["MultiHeadMLP"]


class MultiHeadMLP(nn.Module):
    """``forward(x[B, D], head=0) -> logits[B, head_sizes[head]]``.

    The trunk is ``layers`` × (Linear, ReLU) of width ``hidden``, shared by every task; each task
    reads its own linear head. With a single head every task shares the classifier too.
    """

    def __init__(self, in_dim: int, hidden: int, layers: int, head_sizes: list[int]):
        super().__init__()
        for name, v in (("in_dim", in_dim), ("hidden", hidden), ("layers", layers)):
            check_int(name, v, minimum=1)
        if not head_sizes or any(int(h) < 1 for h in head_sizes):
            raise ValueError(f"head_sizes: expected a non-empty list of positive sizes, got "
                             f"{head_sizes}")
        mods, width = [], in_dim
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        self.trunk = nn.Sequential(*mods)
        self.heads = nn.ModuleList(nn.Linear(width, int(h)) for h in head_sizes)

    def forward(self, x: torch.Tensor, head: int = 0) -> torch.Tensor:
        if not 0 <= head < len(self.heads):
            raise ValueError(f"head: must lie in [0, {len(self.heads) - 1}], got {head}")
        return self.heads[head](self.trunk(x.flatten(1)))  # (B, D) -> (B, classes of the head)
