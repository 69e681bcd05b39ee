"""From-scratch attention (eq. 2.23) vs torch's F.scaled_dot_product_attention, forward + backward.

    python experiments/attention_speed/bench.py [--threads 1] [--repeats 20]

For each size (B, h, L, d_h) and mask kind (none, causal, boolean padding mask) it times
  sdpa          F.scaled_dot_product_attention (is_causal=True for causal, attn_mask for bool)
  ours          genmodels.transformer.scaled_dot_product_attention (checks included; autograd)
  ours_bptt     genmodels.transformer.fast_attention.fast_attention (hand-written backward)
round-robin in one process, and reports the ratio ours / sdpa (goal <= 1.5x). Also the
from-scratch MultiHeadAttention module (use_sdpa=False) vs the same module on the fused kernel
(use_sdpa=True) at the GPT size. Writes results_threads<N>.json next to this file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.timing import machine, time_round_robin  # noqa: E402
from genmodels.transformer import MultiHeadAttention, scaled_dot_product_attention  # noqa: E402
from genmodels.transformer.fast_attention import fast_attention  # noqa: E402

SIZES = [(12, 4, 64, 32), (32, 4, 128, 32), (8, 8, 256, 64)]  # (B, h, L, d_h)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=20)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    rows = []
    for B, h, L, dh in SIZES:
        q, k, v = (torch.randn(B, h, L, dh, requires_grad=True) for _ in range(3))
        causal = torch.ones(L, L, dtype=torch.bool).tril()
        pad = torch.ones(B, 1, 1, L, dtype=torch.bool)
        pad[: B // 2, ..., 3 * L // 4:] = False                 # half the batch padded
        for kind in ("none", "causal", "padding"):
            if kind == "none":
                ref = lambda: F.scaled_dot_product_attention(q, k, v)
                ours = lambda: scaled_dot_product_attention(q, k, v)[0]
                bptt = lambda: fast_attention(q, k, v)
            elif kind == "causal":
                ref = lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)
                ours = lambda: scaled_dot_product_attention(q, k, v, causal)[0]
                bptt = lambda: fast_attention(q, k, v, causal)
            else:
                ref = lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=pad)
                ours = lambda: scaled_dot_product_attention(q, k, v, pad)[0]
                bptt = lambda: fast_attention(q, k, v, pad)
            assert torch.allclose(ref(), ours(), atol=1e-5)
            assert torch.allclose(ref(), bptt(), atol=1e-5)
            res = time_round_robin({"sdpa": lambda f=ref: f().sum().backward(),
                                    "ours": lambda f=ours: f().sum().backward(),
                                    "ours_bptt": lambda f=bptt: f().sum().backward()},
                                   repeats=a.repeats)
            r = {"B": B, "heads": h, "L": L, "d_h": dh, "mask": kind, **res}
            for name in ("ours", "ours_bptt"):
                r[f"ratio_wall_{name}"] = res[name]["wall_ms"] / res["sdpa"]["wall_ms"]
                r[f"ratio_cpu_{name}"] = res[name]["cpu_ms"] / res["sdpa"]["cpu_ms"]
            rows.append(r)
            print(f"B={B} h={h} L={L} d_h={dh} {kind:8s}: sdpa {res['sdpa']['wall_ms']:.2f} ms, "
                  f"ours {res['ours']['wall_ms']:.2f} ms ({r['ratio_wall_ours']:.2f}x, cpu "
                  f"{r['ratio_cpu_ours']:.2f}x), ours_bptt {res['ours_bptt']['wall_ms']:.2f} ms "
                  f"({r['ratio_wall_ours_bptt']:.2f}x, cpu {r['ratio_cpu_ours_bptt']:.2f}x)",
                  flush=True)
    # the module at GPT's size: x [12, 64, 128], 4 heads, causal
    mods = {}
    x = torch.randn(12, 64, 128, requires_grad=True)
    fast = MultiHeadAttention(128, 4, use_sdpa=True)
    slow = MultiHeadAttention(128, 4, use_sdpa=False)
    slow.load_state_dict(fast.state_dict())
    assert torch.allclose(fast(x, is_causal=True), slow(x, is_causal=True), atol=1e-5)
    mods = time_round_robin({"module_sdpa": lambda: fast(x, is_causal=True).sum().backward(),
                             "module_ours": lambda: slow(x, is_causal=True).sum().backward()},
                            repeats=a.repeats)
    mod_ratio = mods["module_ours"]["wall_ms"] / mods["module_sdpa"]["wall_ms"]
    print(f"MultiHeadAttention d=128 h=4 L=64 B=12 causal: use_sdpa {mods['module_sdpa']['wall_ms']:.2f}"
          f" ms, from scratch {mods['module_ours']['wall_ms']:.2f} ms, ratio {mod_ratio:.2f}")
    out = {"machine": machine(), "repeats": a.repeats, "rows": rows,
           "module": {**mods, "ratio_wall": mod_ratio}, "command": "python " + " ".join(sys.argv)}
    path = Path(__file__).with_name(f"results_threads{a.threads}.json")
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
