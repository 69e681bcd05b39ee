"""Running a peer project's own code (nanoGPT's ``train.py``, CleanRL's ``cleanrl/ppo.py``) from a
checkout that the person benchmarking fetched, with the interpreter of that peer's own virtualenv.

Nothing of the peers is copied into this repository: the benchmark scripts take the path of the
checkout and of the interpreter (see ``benchmarks/PEERS.md``), check them before anything runs,
start the peer's script as a subprocess and read what it prints. Every line of its stdout is
timestamped here as it arrives (the peer runs with ``PYTHONUNBUFFERED=1``, so a line arrives when
it is printed), which gives wall times both from the subprocess start and from the peer's first
log line. The thread count is set through ``OMP_NUM_THREADS`` / ``MKL_NUM_THREADS`` (the peers do
not set it themselves; torch takes its intra-op thread count from them).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path
from typing import Callable

#: what each peer's checkout must hold (relative paths), and where it comes from
NANOGPT_FILES = ("train.py", "model.py", "configurator.py", "config/train_shakespeare_char.py",
                 "data/shakespeare_char/prepare.py")
CLEANRL_FILES = ("cleanrl/ppo.py",)
NANOGPT_REPO = "https://github.com/karpathy/nanoGPT"
CLEANRL_REPO = "https://github.com/vwxyzjn/cleanrl"


class PeerError(ValueError):
    """A peer checkout or interpreter that cannot be used (the message says which and why)."""


def check_checkout(path: str | os.PathLike, flag: str, required: tuple[str, ...], repo: str
                   ) -> Path:
    """The checkout at ``path`` as an absolute path, or :class:`PeerError` naming ``flag``."""
    if path is None or str(path) == "":
        raise PeerError(f"{flag}: give the path of a checkout of {repo}")
    p = Path(path).expanduser()
    if not p.exists():
        raise PeerError(f"{flag}: {p} does not exist (clone {repo} there, see benchmarks/PEERS.md)")
    if not p.is_dir():
        raise PeerError(f"{flag}: {p} is not a directory (it must be a checkout of {repo})")
    missing = [r for r in required if not (p / r).is_file()]
    if missing:
        raise PeerError(f"{flag}: {p} is not a checkout of {repo}: it has no "
                        + ", ".join(missing))
    return p.resolve()


def check_python(path: str | os.PathLike, flag: str) -> Path:
    """The interpreter at ``path`` (absolute, symlinks kept: a venv's ``bin/python`` is a link
    whose target is outside the venv), or :class:`PeerError` naming ``flag``."""
    if path is None or str(path) == "":
        raise PeerError(f"{flag}: give the python of the peer's virtualenv (VENV/bin/python)")
    p = Path(path).expanduser()
    if not p.exists():
        raise PeerError(f"{flag}: {p} does not exist (the python of the peer's virtualenv, "
                        "e.g. VENV/bin/python; see benchmarks/PEERS.md)")
    if p.is_dir() or not os.access(p, os.X_OK):
        raise PeerError(f"{flag}: {p} is not an executable file (give VENV/bin/python)")
    return p.absolute()


def peer_env(threads: int) -> dict[str, str]:
    """The environment of a peer subprocess: ours without PYTHONPATH (the peer's venv must not
    see this repository), unbuffered output, ``threads`` intra-op threads."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env.update(PYTHONUNBUFFERED="1", OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    return env


def python_info(python: Path, modules: tuple[str, ...] = ("torch", "numpy")) -> dict:
    """Versions of the peer interpreter and of ``modules`` in it; PeerError if one is missing."""
    code = ("import importlib, importlib.metadata as md, json, sys\n"
            "out = {'python': sys.version.split()[0]}\n"
            f"for m in {list(modules)!r}:\n"
            "    try:\n        importlib.import_module(m)\n        out[m] = md.version(m)\n"
            "    except Exception as e:\n        out[m] = 'MISSING: ' + repr(e)\n"
            "print(json.dumps(out))")
    try:
        r = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=300,
                           env=peer_env(1))
    except OSError as e:
        raise PeerError(f"{python} cannot be run: {e}") from None
    if r.returncode != 0:
        raise PeerError(f"{python} failed: {r.stderr.strip()[-500:]}")
    info = json.loads(r.stdout.strip().splitlines()[-1])
    missing = [m for m in modules if str(info.get(m, "")).startswith("MISSING")]
    if missing:
        raise PeerError(f"{python} lacks {', '.join(missing)}: install the peer's requirements "
                        "in its virtualenv (benchmarks/PEERS.md)")
    return info


def git_commit(path: Path) -> str | None:
    """The commit of a git checkout, None for a plain copy (e.g. from ``git archive``)."""
    try:
        r = subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True,
                           text=True, timeout=30)
    except OSError:
        return None
    return r.stdout.strip() if r.returncode == 0 else None


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def run_streaming(cmd: list[str], cwd: Path, env: dict[str, str], log_path: Path,
                  on_line: Callable[[float, str], bool] | None = None) -> dict:
    """Run ``cmd`` and timestamp each stdout line on arrival (seconds since the spawn).

    ``on_line(t, line)`` returning True stops the peer (SIGTERM; the lines still in the pipe are
    read, not passed on). Writes ``t<TAB>line`` to ``log_path`` and stderr next to it
    (``.stderr``). Returns ``lines`` [(t, text)], ``rc``, ``wall_s`` (spawn to exit),
    ``stopped``; raises RuntimeError when the peer fails on its own.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    err_path = log_path.with_suffix(".stderr")
    lines: list[tuple[float, str]] = []
    stopped = False
    with open(log_path, "w") as log, open(err_path, "w") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=err,
                                text=True, bufsize=1)
        assert proc.stdout is not None
        for raw in proc.stdout:
            t = time.perf_counter() - t0
            text = raw.rstrip("\n")
            lines.append((t, text))
            log.write(f"{t:.4f}\t{text}\n")
            if not stopped and on_line is not None and on_line(t, text):
                stopped = True
                proc.terminate()
        rc = proc.wait()
        wall = time.perf_counter() - t0
    if rc != 0 and not stopped:
        tail = err_path.read_text()[-2000:]
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited with {rc} (cwd {cwd}):\n{tail}")
    return {"lines": lines, "rc": rc, "wall_s": wall, "stopped": stopped}


def scrub(text: str, names: dict) -> str:
    """``text`` with each path of ``names`` replaced by its placeholder (longest first), so that
    results files name no folder of the machine they were measured on."""
    for path, name in sorted(((str(k), v) for k, v in names.items()), key=lambda kv: -len(kv[0])):
        text = text.replace(path, name)
    return text
