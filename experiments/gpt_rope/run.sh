#!/usr/bin/env bash
# gpt_shakespeare with rotary positions (RoPE) against its learned positions: the same model,
# data, seed, batches and 1,600 steps; only model.pos_encoding differs. Evaluation every 100
# steps (the experiment's default is 400) for the curve; evaluation does not touch training.
# Usage (repository root): experiments/gpt_rope/run.sh; then python experiments/gpt_rope/plot.py
set -euo pipefail
OUT=outputs/gpt_rope
for pe in learned rope; do
  nice -n 5 genmodels-train experiment=gpt_shakespeare model.pos_encoding=$pe \
      trainer.eval_every=100 trainer.progress=false hydra.run.dir=$OUT/$pe
done
