"""Score a trained vocoder run at several sampling temperatures, on the validation or test clips.

    python experiments/wavenet_synthetic/rescore.py outputs/wavenet_synthetic/lpc16 --split val \
        --temperatures 1.0 0.6 0.3 0.1 0

Rebuilds the task from the run's own overrides (``.hydra/overrides.yaml``), loads
``checkpoints/last.pt`` and, for each temperature, samples the ``eval_clips`` utterances spread
over the split (generator seeded with the run's seed, as the task's ``evaluate``) and scores them
and Griffin-Lim from the same MFCC frames: MCD of the re-extracted MFCCs, log-spectral distance.
Prints a markdown table (and one by speaker); ``--json`` also writes the numbers, ``--figures DIR``
the task's own figures and WAV files at the first temperature.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import yaml
from hydra import compose, initialize_config_dir

from genmodels.audio.task_vocoder import _spread
from genmodels.train.checkpoint import load_checkpoint
from genmodels.train.cli import CONFIG_DIR
from genmodels.train.config import register_all, to_object
from genmodels.train.trainer import build_task


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("run", type=Path)
    parser.add_argument("--split", default="val", choices=("val", "test"))
    parser.add_argument("--temperatures", type=float, nargs="+", default=[1.0, 0.3, 0.1])
    parser.add_argument("--clips", type=int, default=None,
                        help="utterances spread over the split (default: the run's eval_clips)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--figures", type=Path, default=None,
                        help="also write the task's figures and WAVs (test clips) at the first temperature")
    args = parser.parse_args()
    torch.set_num_threads(1)
    register_all()
    overrides = yaml.safe_load((args.run / ".hydra" / "overrides.yaml").read_text())
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        cfg = to_object(compose("config", overrides=[o for o in overrides if not o.startswith("hydra.")]))
    task = build_task(cfg, torch.device("cpu"))
    task.model.load_state_dict(load_checkpoint(args.run / "checkpoints" / "last.pt")["model"])
    task.model.eval()
    m = cfg.model
    idx = _spread(len(task.audio[args.split]), args.clips or m.eval_clips)
    ref, feats = task.audio[args.split][idx], task.feats[args.split][idx]

    per_speaker = len(task.audio[args.split]) // len(task.data.speakers)    # speaker-major clips
    clips_of = {}                                                            # speaker → positions
    for i, j in enumerate(idx.tolist()):
        clips_of.setdefault(task.data.speakers[j // per_speaker].name, []).append(i)
    by_speaker = {}

    def score(est, name):
        mcd, lsd = task.score(est, ref, feats)                                   # [clips] each
        by_speaker[name] = {s: (mcd[c].mean().item(), lsd[c].mean().item()) for s, c in clips_of.items()}
        return mcd.mean().item(), lsd.mean().item(), mcd.max().item()

    gl = torch.stack([task.mfcc_to_audio(f, m.griffin_lim_iters, ref.shape[-1]) for f in feats])
    rows = {"griffinlim": score(gl, "griffinlim")}
    print(f"{args.run} on {len(idx)} {args.split} clips\n"
          "| vocoder | MCD (dB) | LSD (dB) | worst clip's MCD |\n|---|---|---|---|")
    print("| Griffin-Lim | {:.2f} | {:.2f} | {:.2f} |".format(*rows["griffinlim"]), flush=True)
    for t in args.temperatures:
        gen = task.model.synthesize(feats, ref.shape[-1], temperature=t,
                                    generator=torch.Generator().manual_seed(cfg.seed))
        rows[f"wavenet_T{t:g}"] = score(gen, f"wavenet_T{t:g}")
        print(f"| WaveNet, T {t:g} | " + "{:.2f} | {:.2f} | {:.2f} |".format(*rows[f"wavenet_T{t:g}"]),
              flush=True)
    print("\nby speaker (MCD / LSD):\n| vocoder | " + " | ".join(f"{s} (f0 {sp.f0:g} Hz)"
          for s in by_speaker["griffinlim"] for sp in task.data.speakers if sp.name == s) + " |")
    for name, d in by_speaker.items():
        print(f"| {name} | " + " | ".join(f"{v[0]:.2f} / {v[1]:.2f}" for v in d.values()) + " |")
    if args.figures:
        cfg.model.temperature = args.temperatures[0]
        for path in task.figures(args.figures):
            print("wrote", path)
    if args.json:
        args.json.write_text(json.dumps({k: {"mcd": v[0], "lsd": v[1], "worst_mcd": v[2],
                                                   "by_speaker": by_speaker[k]}
                                               for k, v in rows.items()}, indent=1))


if __name__ == "__main__":
    main()
