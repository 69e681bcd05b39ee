#!/usr/bin/env bash
# The quiet measurement of issue 18, item 2, in one go: on a machine with nothing else running,
# train ddpm_fashion, its score-SDE twin (sde_fashion) and gan_fashion (its config as it is), one
# after the other, then re-score the three checkpoints with experiments/image_generators/evaluate.py
# (DDPM: DDIM-50 with x̂_0 clipped, the config's sampler; DDIM-50 unclipped; Algorithm 2, 1,000
# ancestral steps; SDE: Euler–Maruyama; GAN), logging `cat /proc/loadavg`, wall and CPU times into $OUT/quiet_run.log.
#
#   bash experiments/ddpm_fashion/quiet_run.sh                  # the measurement (about 2 h in all)
#   SMOKE=1 THREADS=1 OUT=/tmp/quiet_smoke bash experiments/ddpm_fashion/quiet_run.sh   # check the script (5 min on a loaded machine)
#
# Environment (all optional):
#   OUT           output folder (default outputs/quiet_fashion_<UTC time>)
#   THREADS       torch threads for training (default 2: the machine's 2 cores)
#   N, REPEATS    images per draw and draws for the table (default 1000, 3)
#   ALG2_REPEATS  draws for Algorithm 2 (default 3; each draw of 1,000 images is ~1.4e6 U-Net
#                 calls of one image, ~25 CPU-minutes)
#   PARALLEL_EVAL 1 (default): the Algorithm-2 scoring runs beside the other scoring, one thread
#                 each, after all training has finished (sampling CPU s per image are unaffected;
#                 wall times per image are then from two busy cores); 0: one after the other
#   SMOKE         1: tiny budgets (steps, samples) to check that the script runs end to end
set -euo pipefail
cd "$(dirname "$0")/../.."

OUT=${OUT:-outputs/quiet_fashion_$(date -u +%Y%m%dT%H%M%S)}
THREADS=${THREADS:-2}
N=${N:-1000}
REPEATS=${REPEATS:-3}
ALG2_REPEATS=${ALG2_REPEATS:-3}
PARALLEL_EVAL=${PARALLEL_EVAL:-1}
SMOKE=${SMOKE:-0}

COMMON=("trainer.threads=$THREADS" "trainer.progress=false")
DIFF_SMOKE=() GAN_SMOKE=()
if [ "$SMOKE" = 1 ]; then
    N=${SMOKE_N:-20}; REPEATS=2; ALG2_REPEATS=1
    DIFF_SMOKE=(trainer.max_steps=20 trainer.eval_every=10 trainer.ckpt_every=10
                trainer.scheduler.warmup_steps=5 model.fd_samples=16 model.n_figure_samples=4
                model.sample_steps=5 trainer.figures=false)
    GAN_SMOKE=(trainer.max_steps=20 trainer.eval_every=10 trainer.ckpt_every=10 trainer.figures=false)
fi

mkdir -p "$OUT"
LOG="$OUT/quiet_run.log"
log() { echo "[$(date -u +%FT%TZ)] loadavg: $(cat /proc/loadavg) | $*" | tee -a "$LOG"; }

log "start: $(git rev-parse --short HEAD) $(nproc) cores, THREADS=$THREADS N=$N REPEATS=$REPEATS ALG2_REPEATS=$ALG2_REPEATS SMOKE=$SMOKE"
log "processes using CPU now: $(ps -eo pcpu=,comm= --sort=-pcpu | head -5 | tr -s ' ' | paste -sd';')"

train() {   # train NAME OVERRIDES...: one run into $OUT/NAME, its wall/CPU times into the log
    local name=$1; shift
    log "train $name: genmodels-train $*"
    local t0 c0
    t0=$(date +%s.%N)
    genmodels-train "$@" "hydra.run.dir=$OUT/$name" > "$OUT/$name.train.log" 2>&1
    python - "$OUT/$name" "$t0" <<'EOF' | tee -a "$LOG"
import json, sys, time
from pathlib import Path
r = json.loads((Path(sys.argv[1]) / "results.json").read_text())
t = r.get("test", {})
print(f"  {r['run_name']}: {r['step']} steps, training {r['train_time_s']:.0f} s wall, "
      f"{r.get('train_cpu_s', float('nan')):.0f} CPU-s (CPU-s / wall = "
      f"{r.get('train_cpu_s', float('nan')) / r['train_time_s']:.2f} cores busy); in-run test FD {t.get('fd', float('nan')):.2f} "
      f"on {t.get('fd_samples')}, class entropy {t.get('class_entropy', float('nan')):.3f}; "
      f"whole command {time.time() - float(sys.argv[2]):.0f} s wall")
EOF
    log "done $name"
}

train ddpm_fashion experiment=ddpm_fashion "${COMMON[@]}" "${DIFF_SMOKE[@]}"
train sde_fashion  experiment=sde_fashion  "${COMMON[@]}" "${DIFF_SMOKE[@]}"
train gan_fashion  experiment=gan_fashion  "${COMMON[@]}" "${GAN_SMOKE[@]}"

EVAL=experiments/image_generators/evaluate.py
evaluate() {   # evaluate NAME ARGS...: evaluate.py with its output and wall/CPU time in the log
    local name=$1; shift
    log "score $name: python $EVAL $*"
    ( TIMEFORMAT="  $name scoring: %R s wall, %U s user CPU, %S s sys CPU"
      time python "$EVAL" "$@" > "$OUT/$name.out" 2> "$OUT/$name.err" ) 2>> "$LOG"
    python - "$OUT/$name.json" <<'EOF' | tee -a "$LOG"
import json, sys
for r in json.load(open(sys.argv[1])):
    print(f"  {r['run']:<22} FD {r['fd']:7.2f} ± {r['fd_sd']:.2f} (draws {r['fd_each']}), "
          f"class entropy {r['class_entropy']:.3f}, KID×1000 {r['kid_x1000']:.1f}, sampling "
          f"{1e3 * r['sample_cpu_s_per_image']:.3f} CPU-ms ({1e3 * r['sample_s_per_image']:.3f} wall ms) "
          f"per image; training {r.get('train_cpu_s') or 0:.0f} CPU-s, {r.get('train_time_s') or 0:.0f} s wall")
EOF
    log "done scoring $name"
}

# Table rows: DDPM with DDIM (the config's sampler), the SDE with Euler–Maruyama, the GAN.
MAIN=(main "$OUT/ddpm_fashion" "$OUT/sde_fashion" "$OUT/gan_fashion" --n "$N" --repeats "$REPEATS"
      --out "$OUT/main.json")
# The same DDPM checkpoint with DDIM as the formula is written (x̂_0 not clipped; the config clips).
NOCLIP=(ddpm_ddim_noclip "$OUT/ddpm_fashion" --set model.clip_x0=false --n "$N" --repeats "$REPEATS"
        --out "$OUT/ddpm_ddim_noclip.json")
# The same DDPM checkpoint with Algorithm 2 (T = 1000 ancestral steps).
ALG2=(ddpm_alg2 "$OUT/ddpm_fashion" --set model.sampler=ddpm --n "$N" --repeats "$ALG2_REPEATS"
      --out "$OUT/ddpm_alg2.json")
if [ "$PARALLEL_EVAL" = 1 ]; then
    evaluate "${ALG2[@]}" & alg2_pid=$!
    evaluate "${MAIN[@]}"
    evaluate "${NOCLIP[@]}"
    wait "$alg2_pid"
else
    evaluate "${MAIN[@]}"
    evaluate "${NOCLIP[@]}"
    evaluate "${ALG2[@]}"
fi
log "all done: $OUT (main.json, ddpm_ddim_noclip.json, ddpm_alg2.json, the run folders)"
