"""Dataset schemas for the Hydra ``data`` group (configs/data/*.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from genmodels.train.config import DataConfig, positive, register_data


@dataclass
class DigitsConfig(DataConfig):
    """scikit-learn's 8×8 digits: embedded, always offline."""
    name: str = "digits"
    split_seed: int = 0           # fixes the 70/15/15 train/val/test split


@dataclass
class FashionMNISTConfig(DataConfig):
    """Fashion-MNIST 28×28 from its IDX files."""
    name: str = "fashion_mnist"
    path: Optional[str] = None    # folder of the IDX files; null: $GENMODELS_FASHION_MNIST or /usr/share/datasets/fashion-mnist
    split_seed: int = 0
    val_size: int = 5000          # taken from the 60k training images
    limit: Optional[int] = None   # keep only this many training images (quick runs)

    def problems(self):
        yield from positive(self, "val_size")
        yield from positive(self, "limit")


def _digits(cfg: DigitsConfig):
    from genmodels.data.images import load_digits
    return load_digits(split_seed=cfg.split_seed)


def _fashion(cfg: FashionMNISTConfig):
    from genmodels.data.images import load_fashion_mnist
    return load_fashion_mnist(cfg.path, split_seed=cfg.split_seed, val_size=cfg.val_size,
                              limit=cfg.limit)


register_data("digits_schema", DigitsConfig, "digits", _digits)
register_data("fashion_mnist_schema", FashionMNISTConfig, "fashion_mnist", _fashion)
