"""Bad files given to every loader: a clear error that names the file, never a crash deep inside.

Loaders: the IDX reader of Fashion-MNIST (``genmodels/data/images.py``), the text corpora
(``genmodels/data/text.py``, also RLHF's corpus), the preference JSONL of RLHF
(``genmodels/rl/preferences.py``), the audio folder reader (``genmodels/audio/corpus.py``) and
checkpoints (``genmodels/train/checkpoint.py``). Each is given missing, empty, corrupted,
truncated and wrong-format files. The contract: a ``ValueError`` (a bad file), an ``OSError``
such as ``FileNotFoundError`` / ``DatasetNotFoundError`` (no file), or for checkpoints a
``CheckpointError`` — and the message names the file.
"""

from __future__ import annotations

import gzip
import io
import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from genmodels.audio import load_wav_folder
from genmodels.data.images import DatasetNotFoundError, load_fashion_mnist, read_idx, write_idx
from genmodels.data.text import load_shakespeare, load_text_file
from genmodels.rl.preferences import read_preferences, write_preferences
from genmodels.train.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

pytestmark = [pytest.mark.fault, pytest.mark.data]

TEXT = "First Citizen:\nBefore we proceed any further, hear me speak.\n\n" * 20


def _idx_bytes(array: np.ndarray) -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "a.idx"
        write_idx(path, array)
        return path.read_bytes()


GOOD_IDX = _idx_bytes(np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4))


def _wav_bytes(n=800, subtype="PCM_16", data=None) -> bytes:
    buf = io.BytesIO()
    x = np.sin(np.arange(n) / 5.0).astype(np.float32) * 0.5 if data is None else data
    sf.write(buf, x, 8000, format="WAV", subtype=subtype)
    return buf.getvalue()


def _ckpt_bytes() -> bytes:
    buf = io.BytesIO()
    torch.save({"step": 3, "model": {"w": torch.ones(64, 64)}}, buf)
    return buf.getvalue()


# name -> (file name, bytes or None for "missing" or "dir" for a folder in its place)
IDX_CASES = {
    "missing": ("train-images-idx3-ubyte", None),
    "directory": ("train-images-idx3-ubyte", "dir"),
    "empty": ("train-images-idx3-ubyte", b""),
    "text_file": ("train-images-idx3-ubyte", b"<html>404 Not Found</html>\n"),
    "bad_magic": ("train-images-idx3-ubyte", b"\x01\x02" + GOOD_IDX[2:]),
    "truncated_header": ("train-images-idx3-ubyte", GOOD_IDX[:9]),
    "truncated_body": ("train-images-idx3-ubyte", GOOD_IDX[:-5]),
    "extra_bytes": ("train-images-idx3-ubyte", GOOD_IDX + b"\0"),
    "gz_not_gzip": ("train-images-idx3-ubyte.gz", GOOD_IDX),
    "gz_truncated": ("train-images-idx3-ubyte.gz", gzip.compress(GOOD_IDX)[:-12]),
    "gz_garbled": ("train-images-idx3-ubyte.gz", gzip.compress(GOOD_IDX)[:12] + b"\xff" * 30),
}


def _place(tmp_path, name, content):
    p = tmp_path / name
    if content == "dir":
        p.mkdir()
    elif content is not None:
        p.write_bytes(content)
    return p


def _expect_clear_error(fn, path, *, types=(ValueError, OSError)):
    """``fn()`` raises one of ``types`` whose message names the file (its full path or name)."""
    with pytest.raises(types) as info:
        fn()
    msg = str(info.value)
    assert str(path) in msg or path.name in msg, f"{type(info.value).__name__} without the file: {msg}"
    return info.value


@pytest.mark.parametrize("case", sorted(IDX_CASES))
def test_idx_reader_names_the_bad_file(case, tmp_path):
    name, content = IDX_CASES[case]
    p = _place(tmp_path, name, content)
    _expect_clear_error(lambda: read_idx(p), p)


def test_fashion_mnist_with_one_corrupted_file_names_it(tmp_path):
    images = np.zeros((12, 28, 28), np.uint8)
    labels = np.arange(12, dtype=np.uint8) % 10
    for stem, arr in (("train-images-idx3-ubyte", images), ("train-labels-idx1-ubyte", labels),
                      ("t10k-images-idx3-ubyte", images[:4]), ("t10k-labels-idx1-ubyte", labels[:4])):
        write_idx(tmp_path / f"{stem}.gz", arr)
    assert len(load_fashion_mnist(tmp_path, val_size=2).train) == 10       # the good folder loads
    bad = tmp_path / "t10k-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-8])
    _expect_clear_error(lambda: load_fashion_mnist(tmp_path, val_size=2), bad)
    write_idx(bad, labels[:3])                                              # 4 images, 3 labels
    _expect_clear_error(lambda: load_fashion_mnist(tmp_path, val_size=2),
                        tmp_path / "t10k-images-idx3-ubyte.gz")
    bad.unlink()
    err = _expect_clear_error(lambda: load_fashion_mnist(tmp_path), tmp_path)
    assert isinstance(err, DatasetNotFoundError) and "t10k-labels-idx1-ubyte" in str(err)


TEXT_CASES = {
    "missing": None,
    "directory": "dir",
    "empty": b"",
    "too_short": b"To be.\n",
    "binary": bytes(range(256)) * 4,
    "latin1_not_utf8": ("Ça ira, " * 40).encode("latin-1"),
}


@pytest.mark.parametrize("case", sorted(TEXT_CASES))
@pytest.mark.parametrize("loader", ["load_text_file", "load_shakespeare"])
def test_text_loaders_name_the_bad_file(loader, case, tmp_path):
    p = _place(tmp_path, "tinyshakespeare.txt", TEXT_CASES[case])
    fn = {"load_text_file": lambda: load_text_file(p),
          "load_shakespeare": lambda: load_shakespeare(str(p), cache_dir=tmp_path / "cache",
                                                       download_if_missing=False)}[loader]
    _expect_clear_error(fn, p)


def test_good_text_loads(tmp_path):
    p = tmp_path / "tinyshakespeare.txt"
    p.write_text(TEXT)
    assert load_text_file(p).vocab_size == len(set(TEXT))


GOOD_PAIR = {"prompt": "ROMEO:", "chosen": " hear me", "rejected": " zzz"}
PREFERENCE_CASES = {
    "missing": None,
    "directory": "dir",
    "empty": b"",
    "blank_lines_only": b"\n\n  \n",
    "not_json": b"prompt,chosen,rejected\nROMEO:,a,b\n",
    "half_written_last_line": (json.dumps(GOOD_PAIR) + "\n" + json.dumps(GOOD_PAIR)[:20]).encode(),
    "json_array_line": b"[1, 2, 3]\n",
    "json_number_line": b"42\n",
    "missing_field": json.dumps({"prompt": "a", "chosen": "b"}).encode() + b"\n",
    "field_not_a_string": json.dumps({**GOOD_PAIR, "chosen": 3}).encode() + b"\n",
    "not_utf8": b'{"prompt": "\xff\xfe", "chosen": "a", "rejected": "b"}\n',
}


@pytest.mark.parametrize("case", sorted(PREFERENCE_CASES))
def test_preference_jsonl_names_the_bad_file(case, tmp_path):
    p = _place(tmp_path, "preferences.jsonl", PREFERENCE_CASES[case])
    _expect_clear_error(lambda: read_preferences(p), p)


def test_good_preferences_round_trip(tmp_path):
    p = write_preferences(tmp_path / "p.jsonl", [GOOD_PAIR, GOOD_PAIR])
    assert read_preferences(p) == [GOOD_PAIR, GOOD_PAIR]


def _wav_cases():
    good = _wav_bytes()
    nan = np.full(100, np.nan, np.float32)
    return {
        "empty_file": good[:0],
        "text_file": b"RIFF? no, a text file\n",
        "header_only": good[:44],
        "cut_in_the_header": good[:30],
        "truncated_samples": good[: len(good) // 2],
        "garbled_header": b"\0" * 44 + good[44:],
        "zero_samples": _wav_bytes(data=np.zeros(0, np.float32)),
        "nan_samples": _wav_bytes(data=nan, subtype="FLOAT"),
    }


WAV_CASES = _wav_cases()


@pytest.mark.parametrize("case", sorted(WAV_CASES))
def test_wav_folder_names_the_bad_file(case, tmp_path):
    (tmp_path / "ok.wav").write_bytes(_wav_bytes())
    bad = tmp_path / "speaker1" / "bad.wav"
    bad.parent.mkdir()
    bad.write_bytes(WAV_CASES[case])
    _expect_clear_error(lambda: load_wav_folder(tmp_path), bad)


def test_wav_folder_missing_or_without_audio(tmp_path):
    missing = tmp_path / "nowhere"
    err = _expect_clear_error(lambda: load_wav_folder(missing), missing)
    assert isinstance(err, DatasetNotFoundError)
    (tmp_path / "notes.txt").write_text("no audio here")
    err = _expect_clear_error(lambda: load_wav_folder(tmp_path), tmp_path)
    assert isinstance(err, DatasetNotFoundError)
    (tmp_path / "ok.wav").write_bytes(_wav_bytes())
    assert load_wav_folder(tmp_path)[0][1].shape == (800,)                  # the good file loads


CKPT = _ckpt_bytes()
CHECKPOINT_CASES = {
    "missing": None,
    "directory": "dir",
    "empty": b"",
    "truncated_to_half": CKPT[: len(CKPT) // 2],
    "last_byte_missing": CKPT[:-1],
    "garbled_start": b"\xff" * 100 + CKPT[100:],
    "json_not_torch": b'{"step": 3}\n',
    "pickled_object": None,                      # written below: an object weights_only refuses
}


@pytest.mark.parametrize("case", sorted(CHECKPOINT_CASES))
def test_checkpoint_loader_names_the_bad_file(case, tmp_path):
    content = CHECKPOINT_CASES[case]
    if case == "pickled_object":
        p = tmp_path / "last.pt"
        torch.save({"step": 1, "bad": io.StringIO("x")}, p)
    else:
        p = _place(tmp_path, "last.pt", content)
    _expect_clear_error(lambda: load_checkpoint(p), p,
                        types=(CheckpointError, FileNotFoundError, IsADirectoryError))


def test_good_checkpoint_loads(tmp_path):
    save_checkpoint(tmp_path / "last.pt", {"step": 3, "model": {"w": torch.ones(2)}})
    assert load_checkpoint(tmp_path / "last.pt")["step"] == 3
