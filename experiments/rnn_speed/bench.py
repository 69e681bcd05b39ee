"""From-scratch LSTM vs torch.nn.LSTM on this CPU, forward + backward.

    python experiments/rnn_speed/bench.py [--threads 1] [--repeats 15] [--compile]

Implementations (same weights, copied from the nn.LSTM):
  nn.LSTM       torch's fused C++ LSTM
  bptt          genmodels.rnn.FastLSTM: forward loop without autograd, hand-written BPTT
  jit           a reference loop (four gates in one matmul, written here) as a torch.jit.script
                function, autograd
  cells         genmodels.rnn.LSTM: lstm_cell (eqs. 2.16-2.21) at every step, input checks off
                (as in training after the first step)
  cells_checked the same with every input check on
  compile       torch.compile(LSTM) (with --compile; compile time reported apart)
Writes results.json next to this file and prints a markdown table of ratios to nn.LSTM.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from benchmarks.timing import machine, time_round_robin  # noqa: E402
from genmodels._checks import input_checks  # noqa: E402
from genmodels.rnn import LSTM  # noqa: E402
from genmodels.rnn.fast import FastLSTM  # noqa: E402

SIZES = [(16, 64, 32, 128), (32, 64, 64, 256), (64, 64, 128, 512)]  # (B, T, I, H)


@torch.jit.script
def _fused_loop(xp: torch.Tensor, h: torch.Tensor, c: torch.Tensor, W_h: torch.Tensor):
    hs = []
    for x_t in xp.unbind(1):
        a_f, a_i, a_C, a_o = (x_t + h @ W_h.t()).chunk(4, 1)
        c = torch.sigmoid(a_f) * c + torch.sigmoid(a_i) * torch.tanh(a_C)
        h = torch.sigmoid(a_o) * torch.tanh(c)
        hs.append(h)
    return torch.stack(hs, 1), h, c


def jit_lstm(module: LSTM):
    W, b = module.layer_params(0)
    H = module.hidden_size

    def run(x):
        z = x.new_zeros(x.shape[0], H)
        return _fused_loop(x @ W[:, H:].t() + b, z, z, W[:, :H])
    return run


def _unchecked(module, x):
    with input_checks(False):
        return module(x)[0]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=15)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--cells-max-h", type=int, default=256, help="skip the slow cells path above")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    rows = []
    for B, T, I, H in SIZES:
        ref = torch.nn.LSTM(I, H, batch_first=True)
        impls = {"nn.LSTM": lambda x: ref(x)[0],
                 "bptt": lambda x, m=FastLSTM.from_torch(ref): m(x)[0],
                 "jit": lambda x, f=jit_lstm(LSTM.from_torch(ref)): f(x)[0]}
        if H <= a.cells_max_h:
            impls["cells"] = lambda x, m=LSTM.from_torch(ref): _unchecked(m, x)
            impls["cells_checked"] = lambda x, m=LSTM.from_torch(ref): m(x)[0]
        compile_s = None
        if a.compile and H <= 256:
            cm = torch.compile(LSTM.from_torch(ref))
            x0 = torch.randn(B, T, I, requires_grad=True)
            t0 = time.perf_counter()
            cm(x0)[0].sum().backward()
            compile_s = time.perf_counter() - t0
            impls["compile"] = lambda x, m=cm: m(x)[0]
        x = torch.randn(B, T, I, requires_grad=True)
        out_ref = ref(x)[0]
        for k, f in impls.items():   # same numbers first
            assert torch.allclose(f(x), out_ref, atol=1e-5), k

        def fwd_bwd(f):
            def run():
                f(x).sum().backward()
            return run
        res = time_round_robin({k: fwd_bwd(f) for k, f in impls.items()}, repeats=a.repeats)
        base = res["nn.LSTM"]
        row = {"B": B, "T": T, "I": I, "H": H, "compile_time_s": compile_s,
               **{k: {**v, "ratio_wall": v["wall_ms"] / base["wall_ms"],
                      "ratio_cpu": v["cpu_ms"] / base["cpu_ms"]} for k, v in res.items()}}
        rows.append(row)
        print(f"B={B} T={T} I={I} H={H}: " + ", ".join(
            f"{k} {v['wall_ms']:.1f} ms ({v['wall_ms'] / base['wall_ms']:.2f}x)"
            for k, v in res.items()), flush=True)
    out = {"machine": machine(), "repeats": a.repeats, "rows": rows,
           "command": "python " + " ".join(sys.argv)}
    path = Path(__file__).with_name(f"results_threads{a.threads}.json")
    path.write_text(json.dumps(out, indent=1))
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
