"""The train / val / test container every in-memory dataset returns."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Splits"]


@dataclass
class Splits:
    """Inputs and integer labels of the three splits (inputs ``[N, ...]``, labels ``[N]``)."""

    train: torch.Tensor
    train_labels: torch.Tensor
    val: torch.Tensor
    val_labels: torch.Tensor
    test: torch.Tensor
    test_labels: torch.Tensor

    def split(self, name: str) -> tuple[torch.Tensor, torch.Tensor]:
        if name not in ("train", "val", "test"):
            raise ValueError(f"split: must be 'train', 'val' or 'test', got {name!r}")
        return getattr(self, name), getattr(self, f"{name}_labels")
