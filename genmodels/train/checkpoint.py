"""Atomic checkpoints: a crash at any instant leaves either the old file or the new one, whole.

The bytes go to a temporary file in the same folder, are flushed and fsync'ed, and the file is
renamed over the target with ``os.replace`` (atomic on POSIX); the folder is fsync'ed so the rename
itself survives a power loss.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["atomic_write_bytes", "save_checkpoint", "load_checkpoint", "atomic_write_text",
           "CheckpointError", "previous_path", "write_json", "resolve_checkpoint"]


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory fds
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


class CheckpointError(RuntimeError):
    """A checkpoint file cannot be read (truncated, corrupted, or not a checkpoint)."""


def previous_path(path: str | os.PathLike) -> Path:
    path = Path(path)
    return path.with_name(path.stem + ".prev" + path.suffix)


def save_checkpoint(path: str | os.PathLike, state: dict[str, Any], keep_previous: bool = False) -> None:
    """``torch.save`` of ``state`` to ``path``, atomically.

    With ``keep_previous`` the file being replaced is first renamed to ``<name>.prev.pt``, so a
    checkpoint that is later found unreadable (a disk error, a truncated copy) has a fallback.
    """
    buf = io.BytesIO()
    torch.save(state, buf)
    path = Path(path)
    if keep_previous and path.exists():
        os.replace(path, previous_path(path))
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | os.PathLike, map_location="cpu") -> dict[str, Any]:
    """Load with ``weights_only=True``: tensors and plain containers only, no code from the file.

    First every entry of the file (``torch.save`` writes a zip archive) is checked against the
    CRC-32 the zip stores for it, because ``torch.load`` checks none: flipped bytes inside a
    tensor would otherwise load silently as wrong weights.
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                bad = z.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(f"CRC-32 mismatch in {bad}")
        return torch.load(path, map_location=map_location, weights_only=True)
    except FileNotFoundError:
        raise
    except Exception as e:  # truncated zip, bad magic, disallowed global, ...
        raise CheckpointError(f"{path}: unreadable checkpoint ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from e


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint from a run folder, a ``last.pt``, or ``outputs/<run_name>`` (its newest run)."""
    p = Path(path).expanduser()
    if p.is_file():
        return p
    if (p / "checkpoints" / "last.pt").is_file():
        return p / "checkpoints" / "last.pt"
    runs = sorted(p.glob("*/checkpoints/last.pt")) if p.is_dir() else []
    if runs:
        return runs[-1]                 # run folders are named by date and time: newest last
    raise FileNotFoundError(f"no checkpoint at {p}: expected a last.pt file, a run folder with "
                            f"checkpoints/last.pt, or outputs/<run_name> holding such runs")
