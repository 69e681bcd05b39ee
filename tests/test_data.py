"""Dataset loaders: the embedded digits and Fashion-MNIST from (tiny, self-written) IDX files."""

import gzip

import numpy as np
import pytest
import torch

from genmodels.data import DatasetNotFoundError, load_digits, load_fashion_mnist, read_idx, write_idx

pytestmark = pytest.mark.data


def test_digits_splits_fixed_disjoint_and_scaled():
    from sklearn.datasets import load_digits as sk

    d = load_digits()
    assert d.train.shape == (1257, 1, 8, 8) and d.val.shape == (270, 1, 8, 8) == d.test.shape
    assert d.train.dtype == torch.float32 and d.train_labels.dtype == torch.long
    assert float(d.train.min()) == 0.0 and float(d.train.max()) == 1.0
    # together the splits are exactly scikit-learn's images / 16, each once
    ref = torch.tensor(sk().images / 16.0, dtype=torch.float32).flatten(1)
    ours = torch.cat([d.train, d.val, d.test]).flatten(1)
    assert torch.equal(torch.sort(ours, dim=0).values, torch.sort(ref, dim=0).values)
    assert len({tuple(r.tolist()) for r in ours}) == len({tuple(r.tolist()) for r in ref})
    again = load_digits()
    assert torch.equal(d.test, again.test)                      # deterministic
    assert not torch.equal(d.test, load_digits(split_seed=1).test)


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float32])
def test_idx_round_trip(tmp_path, suffix, dtype):
    a = (np.arange(2 * 3 * 4) * 3 - 5).astype(dtype).reshape(2, 3, 4)
    if dtype == np.uint8:
        a = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / f"a.idx{suffix}", a)
    b = read_idx(tmp_path / f"a.idx{suffix}")
    assert b.dtype == a.dtype and np.array_equal(a, b)


def test_idx_header_written_by_hand(tmp_path):
    # magic 0x00000801 (uint8, 1 dim), size 3, then the bytes — the MNIST labels layout
    (tmp_path / "l").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 9]))
    assert read_idx(tmp_path / "l").tolist() == [7, 2, 9]
    (tmp_path / "bad").write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 5, 7, 2]))
    with pytest.raises(ValueError, match="truncated"):
        read_idx(tmp_path / "bad")
    (tmp_path / "junk").write_bytes(b"PK\x03\x04")
    with pytest.raises(ValueError, match="not an IDX"):
        read_idx(tmp_path / "junk")


def _tiny_fashion(folder, n_train=12, n_test=4):
    rng = np.random.default_rng(0)
    folder.mkdir()
    tx = rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8)
    ty = (np.arange(n_train) % 10).astype(np.uint8)
    write_idx(folder / "train-images-idx3-ubyte.gz", tx)
    write_idx(folder / "train-labels-idx1-ubyte.gz", ty)
    write_idx(folder / "t10k-images-idx3-ubyte", rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8))
    write_idx(folder / "t10k-labels-idx1-ubyte", np.arange(n_test, dtype=np.uint8))
    return tx, ty


def test_fashion_mnist_from_tiny_idx_files(tmp_path):
    tx, ty = _tiny_fashion(tmp_path / "fm")
    d = load_fashion_mnist(tmp_path / "fm", val_size=3)
    assert d.train.shape == (9, 1, 28, 28) and d.val.shape == (3, 1, 28, 28)
    assert d.test.shape == (4, 1, 28, 28) and d.test_labels.tolist() == [0, 1, 2, 3]
    # every train/val image is one of the file's images / 255 with its own label
    lookup = {tx[i].tobytes(): ty[i] for i in range(len(tx))}
    for x, y in zip(torch.cat([d.train, d.val]), torch.cat([d.train_labels, d.val_labels])):
        raw = (x[0].numpy() * 255).round().astype(np.uint8)
        assert lookup[raw.tobytes()] == y.item()
    assert load_fashion_mnist(tmp_path / "fm", val_size=3, limit=4).train.shape[0] == 4


def test_fashion_mnist_missing_says_how_to_get_it(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_fashion_mnist(tmp_path / "nowhere")


def test_fashion_mnist_env_variable(tmp_path, monkeypatch):
    _tiny_fashion(tmp_path / "fm")
    monkeypatch.setenv("GENMODELS_FASHION_MNIST", str(tmp_path / "fm"))
    assert load_fashion_mnist(val_size=2).train.shape[0] == 10


def test_missing_dataset_through_the_cli(tmp_path):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "genmodels.train.cli", "experiment=vae_fashion",
                           f"data.path={tmp_path / 'none'}", f"hydra.run.dir={tmp_path / 'run'}"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert proc.returncode == 4 and "dataset-fashion-mnist" in proc.stderr
