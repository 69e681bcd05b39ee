"""Timing helpers for the benchmarks in experiments/: interleaved repeats, medians, CPU time.

The machine these numbers come from is shared with other jobs, so every benchmark (1) runs the
implementations it compares round-robin inside one process (a load spike hits all of them alike),
(2) reports the median of the repeats, and (3) records process CPU time next to wall time (CPU
time is what this process computed, wall time includes waiting for a core).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Callable

import torch


def time_round_robin(fns: dict[str, Callable[[], None]], repeats: int = 15, warmup: int = 3
                     ) -> dict[str, dict[str, float]]:
    """Median wall and CPU milliseconds per call of each function, measured round-robin."""
    for _ in range(warmup):
        for f in fns.values():
            f()
    wall = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            w0, c0 = time.perf_counter(), time.process_time()
            f()
            wall[k].append(1e3 * (time.perf_counter() - w0))
            cpu[k].append(1e3 * (time.process_time() - c0))
    return {k: {"wall_ms": statistics.median(wall[k]), "cpu_ms": statistics.median(cpu[k])}
            for k in fns}


def machine() -> dict:
    try:
        load = os.getloadavg()
    except OSError:
        load = None
    return {"torch": torch.__version__, "threads": torch.get_num_threads(),
            "cpu_count": os.cpu_count(), "load_avg_1_5_15": load,
            "processor": platform.processor() or platform.machine()}
