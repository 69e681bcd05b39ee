"""Image datasets: scikit-learn's 8×8 digits (embedded, always offline) and Fashion-MNIST (IDX files).

Every loader returns an :class:`ImageSplits`: ``train``/``val``/``test`` images as float tensors
``[N, 1, H, W]`` scaled to [0, 1] and integer labels ``[N]``. Splits are fixed by ``split_seed``
so every run, on every machine, sees the same images in the same split.
"""

from __future__ import annotations

import gzip
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from genmodels.data.splits import Splits
from genmodels.errors import DatasetNotFoundError

__all__ = ["ImageSplits", "load_digits", "load_fashion_mnist", "read_idx", "write_idx",
           "FASHION_MNIST_DEFAULT_DIR", "FASHION_MNIST_CLASSES", "DatasetNotFoundError"]

FASHION_MNIST_DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                         "Sneaker", "Bag", "Ankle boot")


@dataclass
class ImageSplits(Splits):
    num_classes: int
    name: str

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.train.shape[1:])


def _split(x: np.ndarray, y: np.ndarray, n_val: int, n_test: int, seed: int):
    perm = np.random.default_rng(seed).permutation(len(x))
    test, val, train = perm[:n_test], perm[n_test:n_test + n_val], perm[n_test + n_val:]
    return (x[train], y[train]), (x[val], y[val]), (x[test], y[test])


def _to_splits(name, parts, num_classes):
    tensors = []
    for xs, ys in parts:
        tensors += [torch.as_tensor(xs, dtype=torch.float32), torch.as_tensor(ys, dtype=torch.long)]
    return ImageSplits(*tensors, num_classes=num_classes, name=name)


def load_digits(split_seed: int = 0, val_fraction: float = 0.15,
                test_fraction: float = 0.15) -> ImageSplits:
    """The 1,797 8×8 handwritten digits that ship inside scikit-learn, scaled from 0..16 to [0, 1].

    Split 70/15/15 (train 1,257 / val 270 / test 270) by a fixed permutation.
    """
    from sklearn.datasets import load_digits as _sk_digits

    d = _sk_digits()
    x = (d.images / 16.0).astype(np.float32)[:, None]          # (N, 1, 8, 8)
    n = len(x)
    n_val, n_test = int(round(val_fraction * n)), int(round(test_fraction * n))
    return _to_splits("digits", _split(x, d.target, n_val, n_test, split_seed), 10)


# ---------------------------------------------------------------------------- IDX files
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not.

    Header: two zero bytes, a type code, the number of dimensions, then one big-endian uint32
    per dimension; the data follow in C order.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (gzip.BadGzipFile, EOFError, zlib.error) as e:   # not gzip, or a cut-off download
        raise ValueError(f"{path}: corrupted or truncated gzip file ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number {raw[:4]!r})")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise ValueError(f"{path}: truncated IDX header ({ndim} dimensions need {4 + 4 * ndim} "
                         f"bytes, the file has {len(raw)})")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    body = raw[4 + 4 * ndim:]
    if len(body) != expected:
        raise ValueError(f"{path}: truncated IDX file: header says {dims} ({expected} bytes), "
                         f"found {len(body)} bytes")
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write ``array`` as an IDX file (gzipped when the name ends in .gz). Used by tests."""
    array = np.ascontiguousarray(array)
    code = {np.dtype(np.uint8): 0x08, np.dtype(np.int8): 0x09, np.dtype(np.int16): 0x0B,
            np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D, np.dtype(np.float64): 0x0E}
    if array.dtype not in code:
        raise ValueError(f"array: dtype {array.dtype} has no IDX type code")
    header = bytes([0, 0, code[array.dtype], array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    body = array.astype(array.dtype.newbyteorder(">")).tobytes()
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + body)


def _find(root: Path, stem: str) -> Path | None:
    for name in (f"{stem}.gz", stem, stem.replace("-idx", ".idx")):
        if (root / name).exists():
            return root / name
    return None


def load_fashion_mnist(path: str | os.PathLike | None = None, split_seed: int = 0,
                       val_size: int = 5000, limit: int | None = None) -> ImageSplits:
    """Fashion-MNIST (Xiao et al., 2017) from its four IDX files.

    ``path`` defaults to ``$GENMODELS_FASHION_MNIST`` or /usr/share/datasets/fashion-mnist (filled
    by ``apt-get install dataset-fashion-mnist`` on Debian). The official 60k training images are
    split into train and a fixed ``val_size`` validation set; the official 10k test set is the test
    split. ``limit`` keeps only the first ``limit`` training images (for quick runs).
    """
    root = Path(path or os.environ.get("GENMODELS_FASHION_MNIST") or FASHION_MNIST_DEFAULT_DIR)
    stems = {"train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
             "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte"}
    files = {k: _find(root, s) for k, s in stems.items()}
    missing = [stems[k] for k, f in files.items() if f is None]
    if missing:
        raise DatasetNotFoundError(
            f"Fashion-MNIST not found in {root} (missing {', '.join(missing)}[.gz]). Get it with\n"
            f"  sudo apt-get install dataset-fashion-mnist     # Debian/Ubuntu: fills {FASHION_MNIST_DEFAULT_DIR}\n"
            f"or download the four *-ubyte.gz files from https://github.com/zalandoresearch/fashion-mnist "
            f"into a folder and pass data.path=/that/folder (or set GENMODELS_FASHION_MNIST).")
    arrays = {k: read_idx(f) for k, f in files.items()}
    for split in ("train", "test"):
        x, y = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise ValueError(f"{files[split + '_x']}: expected images [N, H, W] and labels [N], "
                             f"got {x.shape} and {y.shape}")
    train_x = arrays["train_x"].astype(np.float32)[:, None] / 255.0
    test_x = arrays["test_x"].astype(np.float32)[:, None] / 255.0
    if val_size >= len(train_x):
        raise ValueError(f"val_size: {val_size} leaves no training images out of {len(train_x)}")
    (tr, val, _) = _split(train_x, arrays["train_y"].astype(np.int64), val_size, 0, split_seed)
    if limit is not None:
        tr = (tr[0][:limit], tr[1][:limit])
    return _to_splits("fashion_mnist", [tr, val, (test_x, arrays["test_y"].astype(np.int64))], 10)
