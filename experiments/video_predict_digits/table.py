"""Per-horizon table (Markdown) of a video_predict_digits run: model vs both baselines.

    python experiments/video_predict_digits/table.py RUN_DIR/results.json
"""

import json
import sys


def main(path: str) -> None:
    res = json.load(open(path))
    test = res["test"]
    F = max(int(k.rsplit("_h", 1)[1]) for k in test if "_h" in k and k.rsplit("_h", 1)[1].isdigit())
    rows = [("PSNR (dB) ↑", "psnr", "{:.2f}"), ("SSIM ↑", "ssim", "{:.3f}"),
            ("tracked position error (px) ↓", "track_err", "{:.2f}")]
    print("| metric | method | " + " | ".join(f"+{h}" for h in range(1, F + 1)) + " | mean |")
    print("|---|---|" + "---|" * (F + 1))
    for title, key, fmt in rows:
        if f"{key}_h1" not in test:
            continue
        for method, suffix in (("ConvLSTM", ""), ("copy last", "_copy"), ("shift last", "_shift"),
                               ("blank frame", "_blank")):
            vals = [fmt.format(test[f"{key}{suffix}_h{h}"]) for h in range(1, F + 1)]
            print(f"| {title} | {method} | " + " | ".join(vals) + f" | {fmt.format(test[key + suffix])} |")
    print()
    print("horizons where the ConvLSTM beats both baselines: "
          + ", ".join(f"{k}: {test[f'{k}_horizons_beating_both']}/{F}" for k in ("psnr", "ssim", "track_err")
                      if f"{k}_horizons_beating_both" in test))
    print(f"steps {res['step']}, train wall {res['train_time_s']:.0f} s, train CPU {res['train_cpu_s']:.0f} s, "
          f"test loss {test['loss']:.4f}")


if __name__ == "__main__":
    main(sys.argv[1])
