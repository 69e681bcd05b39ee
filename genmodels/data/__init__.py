"""Datasets. Images: :func:`load_digits` (embedded) and :func:`load_fashion_mnist` (IDX files)."""

from genmodels.data.images import (FASHION_MNIST_CLASSES, FASHION_MNIST_DEFAULT_DIR,
                                   DatasetNotFoundError, ImageSplits, load_digits,
                                   load_fashion_mnist, read_idx, write_idx)

__all__ = ["ImageSplits", "load_digits", "load_fashion_mnist", "read_idx", "write_idx",
           "DatasetNotFoundError", "FASHION_MNIST_DEFAULT_DIR", "FASHION_MNIST_CLASSES"]
