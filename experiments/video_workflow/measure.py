"""Score the chain of genmodels-animate over every digit × 8 directions (80 clips, one seed each):
does the still show the digit asked for, does the motion go where the prompt says, does the digit
keep its class in every frame, the interpolated ones included?

    python experiments/video_workflow/measure.py STILL_RUN VIDEO_RUN INTERP_RUN --out results.json

The yardstick is the image family's digits classifier (genmodels.metrics.get_yardstick), on the
still and on the 8 x 8 window of each frame that holds the most intensity (digit_crops), as in
i2v_digits; the direction is the tracker's (centres of mass, least-squares velocity through the
key frame: genmodels.video.i2v.tracked_angles) over the brush's frames.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from genmodels.metrics.yardstick import get_yardstick
from genmodels.train.runs import load_run
from genmodels.video.i2v import angle_error, digit_crops, tracked_angles
from genmodels.video.workflow import DIGIT_WORDS, animate

WORDS = {v: k for k, v in DIGIT_WORDS.items()}
DIRECTIONS = {0: "right", 45: "up and to the right", 90: "up", 135: "up and to the left", 180: "left",
              225: "down and to the left", 270: "down", 315: "down and to the right"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("still_run")
    ap.add_argument("video_run")
    ap.add_argument("interp_run")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    torch.set_num_threads(1)
    still, video, interp = (load_run(args.still_run, "guided_diffusion"), load_run(args.video_run, "video_i2v"),
                            load_run(args.interp_run, "video_interp"))
    ys = get_yardstick(video.data.source_images, seed=0)
    rows = []
    t0, c0 = time.perf_counter(), time.process_time()
    for d in range(10):
        for i, (angle, words) in enumerate(DIRECTIONS.items()):
            prompt = f"a {WORDS[d]} moving {words}"
            r = animate(prompt, still, video, interp, seed=10 * d + i)
            still_cls = int(ys.predict(r["still"][None, None]).item())
            frames_cls = ys.predict(digit_crops(r["doubled"], 8)[:, None]).tolist()
            err = float(angle_error(tracked_angles(r["frames"][:1], r["frames"][None, 1:]),
                                    torch.tensor([float(angle)], dtype=torch.float64)))
            rows.append({"prompt": prompt, "digit": d, "angle": angle, "still_class": still_cls,
                         "frame_classes": frames_cls, "angle_error": err})
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = len(rows)
    summary = {
        "clips": n,
        "still_is_the_digit": sum(r["still_class"] == r["digit"] for r in rows) / n,
        "every_frame_keeps_the_still_class": sum(all(c == r["still_class"] for c in r["frame_classes"])
                                                 for r in rows) / n,
        "frames_keeping_the_still_class": sum(sum(c == r["still_class"] for c in r["frame_classes"])
                                              for r in rows) / sum(len(r["frame_classes"]) for r in rows),
        "brush_frames_keeping_it": sum(sum(c == r["still_class"] for c in r["frame_classes"][0::2])
                                       for r in rows) / sum(len(r["frame_classes"][0::2]) for r in rows),
        "interpolated_frames_keeping_it": sum(sum(c == r["still_class"] for c in r["frame_classes"][1::2])
                                              for r in rows) / sum(len(r["frame_classes"][1::2]) for r in rows),
        "angle_error_mean": sum(r["angle_error"] for r in rows) / n,
        "angle_error_max": max(r["angle_error"] for r in rows),
        "wall_s": round(wall, 1), "cpu_s": round(cpu, 1),
    }
    with open(args.out, "w") as f:
        json.dump({"summary": summary, "clips": rows}, f, indent=1)
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
