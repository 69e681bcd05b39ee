"""The tables of experiments/i2v_digits/README.md from a run's results.json.

    python experiments/i2v_digits/table.py RUN_DIR/results.json
"""

from __future__ import annotations

import json
import sys


def tables(results: dict) -> str:
    test = results["test"]
    scales = sorted({k.split("_")[-1] for k in test if k.startswith("angle_err_wrong_s")},
                    key=lambda t: float(t[1:]))
    F = max(int(k.rsplit("_h", 1)[1]) for k in test if k.startswith("agree_real_h"))
    out = ["| test clips | requested = the clip's own direction: angle error mean ± std (°) | "
           "another direction requested: error to the request (°) | its angle to the clip's own direction (°) | "
           "tracked speed (px/frame) | class kept, mean over frames | worst frame | FD mean over frames |",
           "|---|---|---|---|---|---|---|---|"]
    out.append(f"| real frames (the tracker and the crop on the truth) | {test['angle_err_real']:.1f} ± "
               f"{test['angle_err_std_real']:.1f} | — | — | {test['speed_real']:.2f} | "
               f"{100 * test['agree_real']:.1f} % | {100 * test['agree_min_real']:.1f} % | "
               f"{test.get('fd_real', float('nan')):.2f} (val vs test clips) |")
    for t in scales:
        s = t[1:]
        name = {"0": "s = 0 (no brush: v(·, ∅) only)", "1": "s = 1 (conditional)"}.get(s, f"s = {s} (guided)")
        out.append(f"| {name} | {test[f'angle_err_{t}']:.1f} ± {test[f'angle_err_std_{t}']:.1f} | "
                   f"{test[f'angle_err_wrong_{t}']:.1f} ± {test[f'angle_err_wrong_std_{t}']:.1f} | "
                   f"{test[f'wrong_vs_clip_{t}']:.1f} | {test[f'speed_{t}']:.2f} | "
                   f"{100 * test[f'agree_{t}']:.1f} % | {100 * test[f'agree_min_{t}']:.1f} % | "
                   f"{test[f'fd_{t}']:.2f} |")
    out += ["", "| per frame h | " + " | ".join(f"+{h}" for h in range(1, F + 1)) + " |",
            "|---|" + "---|" * F]
    for t in ["real", *scales]:
        out.append(f"| class kept, {t} | " + " | ".join(f"{100 * test[f'agree_{t}_h{h}']:.1f} %"
                                                    for h in range(1, F + 1)) + " |")
    for t in ["real", *scales]:
        if f"fd_{t}_h1" in test:
            out.append(f"| FD, {t} | " + " | ".join(f"{test[f'fd_{t}_h{h}']:.2f}" for h in range(1, F + 1)) + " |")
    out += ["", f"test clips {int(test['eval_clips'])}; yardstick accuracy on the key frames' crops "
                f"{100 * test['key_label_acc']:.1f} %; steps {results['step']}, train wall "
                f"{results['train_time_s']:.0f} s, train CPU {results['train_cpu_s']:.0f} s; test evaluation "
                f"{results['test_eval_time_s']:.0f} s"]
    out.append(f"sampling CPU ms per clip ({F} frames): " + ", ".join(
        f"{t}: {1000 * test[f'sample_cpu_s_per_clip_{t}']:.1f}" for t in scales))
    return "\n".join(out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        print(tables(json.load(f)))
