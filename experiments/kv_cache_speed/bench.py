"""Sampling speed of the GPT with and without the KV cache (issue 19).

The model has gpt_shakespeare's shape (4 blocks, 4 heads, width 128, FFN 256, 65 characters,
attention through multi_head_attention, the default path) with block_size raised to 1024 so that
1,024 new tokens fit in the window; its weights are random (speed does not depend on them). Each
arm samples N new tokens after a one-character prompt (batch 1, as ``genmodels-sample``), at
temperature 1 with a seeded generator: ``generate(..., use_cache=True)`` vs ``use_cache=False``.
The repeats interleave the arms in one process (cache, no cache, no cache, cache, ...) so that a
change of machine load hits both; each arm's time is the median over the repeats, and both arms
must give the same tokens.

    python experiments/kv_cache_speed/bench.py --threads 1 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import torch

from genmodels.transformer import GPT

HERE = Path(__file__).resolve().parent


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "n/a"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--tokens", type=int, nargs="+", default=[64, 128, 256, 512, 1024])
    p.add_argument("--use-sdpa", action="store_true", help="the fused attention kernel")
    p.add_argument("--out", default=str(HERE / "results.json"))
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = GPT(65, max(1024, max(a.tokens) + 1), n_layer=4, n_head=4, n_embd=128, d_ff=256,
                use_sdpa=a.use_sdpa).eval()
    prompt = torch.zeros(1, 1, dtype=torch.long)
    model.generate(prompt, 8, use_cache=True)               # warm-up of both paths
    model.generate(prompt, 8, use_cache=False)
    load_before = uptime()
    print(f"load before: {load_before}", flush=True)
    times = {n: {"cache": [], "no_cache": []} for n in a.tokens}
    cpu0 = time.process_time()
    for r in range(a.repeats):
        for n in a.tokens:
            order = ("cache", "no_cache") if r % 2 == 0 else ("no_cache", "cache")
            outs = {}
            for arm in order:
                g = torch.Generator().manual_seed(1000 + r)
                t0 = time.perf_counter()
                outs[arm] = model.generate(prompt, n, generator=g, use_cache=(arm == "cache"))
                times[n][arm].append(time.perf_counter() - t0)
            assert torch.equal(outs["cache"], outs["no_cache"]), f"tokens differ at N={n}"
            print(f"repeat {r}  N={n:5d}  cache {times[n]['cache'][-1]:8.3f} s  "
                  f"no cache {times[n]['no_cache'][-1]:8.3f} s", flush=True)
    cpu = time.process_time() - cpu0
    load_after = uptime()
    print(f"load after: {load_after}")
    rows = []
    for n in a.tokens:
        c, u = statistics.median(times[n]["cache"]), statistics.median(times[n]["no_cache"])
        ratios = [nc / ca for ca, nc in zip(times[n]["cache"], times[n]["no_cache"])]
        rows.append({"new_tokens": n, "cache_s": c, "no_cache_s": u, "speedup": u / c,
                     "speedup_per_repeat": ratios, "cache_tokens_per_s": n / c,
                     "no_cache_tokens_per_s": n / u, "cache_all_s": times[n]["cache"],
                     "no_cache_all_s": times[n]["no_cache"]})
        print(f"N={n:5d}  cache {c:8.3f} s ({n / c:7.0f} tok/s)  no cache {u:8.3f} s "
              f"({n / u:7.0f} tok/s)  speed-up {u / c:6.2f}x  (per repeat "
              f"{', '.join(f'{x:.2f}' for x in ratios)})")
    result = {"model": "GPT 4x4x128, d_ff 256, V 65, block_size 1024, random weights",
              "attention": "fused F.scaled_dot_product_attention" if a.use_sdpa
              else "multi_head_attention (formulas)",
              "batch": 1, "prompt_tokens": 1, "threads": a.threads, "repeats": a.repeats,
              "torch": torch.__version__, "machine": platform.machine(),
              "cpus": os.cpu_count(), "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
              "load_before": load_before, "load_after": load_after, "process_cpu_s": cpu,
              "rows": rows}
    Path(a.out).write_text(json.dumps(result, indent=2))
    try:
        from genmodels.plotting import plt, save_figure
        fig, ax = plt.subplots(figsize=(5.5, 3.6))
        ns = [r["new_tokens"] for r in rows]
        ax.plot(ns, [r["cache_tokens_per_s"] for r in rows], "o-", label="KV cache")
        ax.plot(ns, [r["no_cache_tokens_per_s"] for r in rows], "s-", label="no cache")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("new tokens sampled")
        ax.set_ylabel("tokens per second")
        ax.set_title(f"GPT 4x4x128 sampling, {a.threads} thread(s)", fontsize=9)
        ax.legend()
        save_figure(fig, Path(a.out).with_suffix(".png"), dpi=110)
    except Exception as e:  # the numbers matter more than the figure
        print(f"figure skipped: {e}")


if __name__ == "__main__":
    main()
