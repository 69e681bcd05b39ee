#!/usr/bin/env bash
# LoRA vs full fine-tuning of the MLM encoder on finetune_shakespeare's speaker task (eq. 2.29),
# three seeds; seed k also draws split k (model.split_seed=k), so both arms of a seed share
# their 80/10/10 split, their batches and their head initialisation.
# Usage (repository root): [SEEDS="0 1 2"] experiments/finetune_lora/run_seeds.sh [MLM run folder] [LoRA lr] [rank] [alpha]
# then: python experiments/finetune_lora/summarize.py
set -euo pipefail
MLM=${1:-outputs/mlm_shakespeare/sin64_b32_3000}
LR=${2:-2e-3}
RANK=${3:-4}
ALPHA=${4:-8}
OUT=outputs/finetune_lora/seeds
for k in ${SEEDS:-0 1 2}; do
  common=(experiment=finetune_shakespeare model.pretrained="$MLM" seed=$k model.split_seed=$k
          trainer.progress=false trainer.threads=1)
  [ -f $OUT/full/s$k/results.json ] || nice -n 5 genmodels-train "${common[@]}" \
      hydra.run.dir=$OUT/full/s$k
  nice -n 5 genmodels-train "${common[@]}" model.lora_rank=$RANK model.lora_alpha=$ALPHA \
      trainer.optim.lr=$LR hydra.run.dir=$OUT/lora_r${RANK}_a${ALPHA}_lr${LR}/s$k
done
