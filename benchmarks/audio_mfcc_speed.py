"""Speed of ``genmodels.audio.mfcc`` against ``librosa.feature.mfcc`` on a batch of 10 s clips.

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/audio_mfcc_speed.py \
        [--clips 16] [--seconds 10] [--sr 22050] [--repeats 5] [--threads 1]

Both get the same float32 batch ``[clips, samples]`` (librosa handles the leading batch axis
itself) and the same arguments (n_mfcc=20, n_fft=2048, hop=512, n_mels=128: librosa's
defaults). Each is timed ``repeats`` times after one warm-up call, alternating, and the median
is reported, with the ratio librosa / genmodels from the same run. Outputs are checked to agree
(relative error) so the comparison is like for like.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import librosa
import numpy as np
import torch

from genmodels.audio import mfcc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--sr", type=int, default=22050)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    n = int(args.seconds * args.sr)
    t = np.arange(n) / args.sr
    f0 = rng.uniform(100, 300, (args.clips, 1))
    batch = (0.3 * np.sin(2 * np.pi * f0 * t) + 0.05 * rng.standard_normal((args.clips, n))
             ).astype(np.float32)                                        # [clips, samples]
    x = torch.from_numpy(batch)
    kw = dict(n_mfcc=20, n_fft=2048, hop_length=512, n_mels=128)

    def ours():
        with torch.no_grad():
            return mfcc(x, args.sr, **kw)

    def theirs():
        return librosa.feature.mfcc(y=batch, sr=args.sr, **kw)

    a, b = ours().numpy(), theirs()                                    # warm-up + agreement
    # librosa floors top_db over the whole batch, ours per clip: compare clip by clip
    per_clip = np.stack([librosa.feature.mfcc(y=batch[i], sr=args.sr, **kw)
                         for i in range(args.clips)])
    rel_err = float(np.abs(a - per_clip).max() / np.abs(per_clip).max())
    times = {"genmodels": [], "librosa": []}
    for _ in range(args.repeats):
        for name, fn in (("genmodels", ours), ("librosa", theirs)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    result = {
        "clips": args.clips, "seconds": args.seconds, "sample_rate": args.sr,
        "threads": args.threads, "repeats": args.repeats, "output_shape": list(a.shape),
        "median_s": {k: round(v, 4) for k, v in med.items()},
        "min_s": {k: round(min(v), 4) for k, v in times.items()},
        "ratio_of_minima": round(min(times["librosa"]) / min(times["genmodels"]), 3),
        "all_s": {k: [round(t, 4) for t in v] for k, v in times.items()},
        "ratio_librosa_over_genmodels": round(med["librosa"] / med["genmodels"], 3),
        "max_rel_error_vs_librosa_per_clip": rel_err,
        "batch_shape_librosa": list(b.shape),
        "torch": torch.__version__, "librosa": librosa.__version__,
        "machine": platform.machine(), "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
