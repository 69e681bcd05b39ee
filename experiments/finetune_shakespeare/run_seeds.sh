#!/usr/bin/env bash
# Pretrained vs scratch speaker classifiers (eq. 2.29) over three seeds; seed k also draws
# split k (model.split_seed=k), so each seed is a different 80/10/10 split of the speeches and
# the pretrained and scratch runs of one seed are compared on the same split.
# Usage (repository root): experiments/finetune_shakespeare/run_seeds.sh [MLM run folder]
# then: python experiments/finetune_shakespeare/summarize.py
set -euo pipefail
MLM=${1:-outputs/mlm_shakespeare/sin64_b32_3000}
OUT=outputs/finetune_shakespeare/seeds
for k in 0 1 2; do
  common=(seed=$k model.split_seed=$k trainer.progress=false trainer.threads=1)
  nice -n 5 genmodels-train experiment=finetune_shakespeare "${common[@]}" \
      model.pretrained="$MLM" hydra.run.dir=$OUT/pretrained/s$k
  nice -n 5 genmodels-train experiment=finetune_shakespeare_scratch "${common[@]}" \
      hydra.run.dir=$OUT/scratch/s$k
done
