#!/usr/bin/env bash
# The quiet sitting of issues 21 (speech) and 22 (video): every experiment of a family trained one
# after the other, as configured (trainer.threads: one or both cores), on a machine with nothing else running;
# per run the load average before and after, the training wall time and CPU seconds (from the
# run's results.json) and the whole command's wall time go to $OUT/quiet_run.log and a Markdown
# table $OUT/table.md. The issues ask for each experiment to train in <= 20 minutes "on this 2-core
# CPU (quiet machine)".
#
#   bash experiments/quiet_sitting/run.sh video            # ~35 min: prediction, interpolation, SR x3, image-to-video
#   bash experiments/quiet_sitting/run.sh speech           # ~90 min (88 on 2026-12-07's slower host, two threads): ASR, Conformer ASR, the baseline, TTS (scored by the ASR), cloning
#   bash experiments/quiet_sitting/run.sh asr              # ~35 min: the Conformer-encoder ASR and the baseline alone
#   SMOKE=1 OUT=/tmp/quiet_smoke bash experiments/quiet_sitting/run.sh video speech   # check the script (minutes)
#
# Environment (optional): OUT (default outputs/quiet_sitting_<UTC time>), SMOKE=1 (2 training
# steps each, smaller evaluations: checks that the commands run, measures nothing), CACHE (a
# rendered speech corpus to reuse; default: rendered into $OUT/speech_cache).
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -ge 1 ] || { echo "usage: $0 video|speech|asr ..." >&2; exit 2; }
OUT=${OUT:-outputs/quiet_sitting_$(date -u +%Y%m%dT%H%M%S)}
SMOKE=${SMOKE:-0}
mkdir -p "$OUT"
LOG="$OUT/quiet_run.log"
TABLE="$OUT/table.md"
log() { echo "[$(date -u +%FT%TZ)] loadavg: $(cat /proc/loadavg) | $*" | tee -a "$LOG"; }
[ -f "$TABLE" ] || printf '| experiment | steps | training wall (s) | training CPU (s) | whole command wall (s) | load avg before → after (1 min) |\n|---|---|---|---|---|---|\n' > "$TABLE"

log "start: $(git rev-parse --short HEAD), $(nproc) cores, SMOKE=$SMOKE, families: $*"
log "busiest processes: $(ps -eo pcpu=,comm= --sort=-pcpu | head -5 | tr -s ' ' | paste -sd';')"

S=()   # smoke overrides, per experiment below
train() {   # train NAME OVERRIDES...: one run into $OUT/NAME
    local name=$1; shift
    local before t0
    before=$(cut -d' ' -f1 /proc/loadavg)
    log "train $name: genmodels-train $* ${S[*]}"
    t0=$(date +%s.%N)
    genmodels-train "$@" "${S[@]}" trainer.progress=false "hydra.run.dir=$OUT/$name" > "$OUT/$name.log" 2>&1
    python - "$OUT/$name" "$t0" "$before" "$(cut -d' ' -f1 /proc/loadavg)" "$name" <<'PY' | tee -a "$LOG" "$TABLE"
import json, sys, time
from pathlib import Path
r = json.loads((Path(sys.argv[1]) / "results.json").read_text())
print(f"| {sys.argv[5]} | {r['step']} | {r['train_time_s']:.0f} | {r.get('train_cpu_s', float('nan')):.0f} | "
      f"{time.time() - float(sys.argv[2]):.0f} | {sys.argv[3]} → {sys.argv[4]} |")
PY
}

for family in "$@"; do
  case $family in
    video)
      [ "$SMOKE" = 1 ] && S=(trainer.max_steps=2 trainer.eval_every=2 trainer.scheduler.warmup_steps=0)
      train video_predict_digits experiment=video_predict_digits $([ "$SMOKE" = 1 ] && echo data.test_clips=8 data.val_clips=8)
      train interp_digits experiment=interp_digits $([ "$SMOKE" = 1 ] && echo data.test_clips=4 data.val_clips=4)
      train sr_digits_x2 experiment=sr_digits_x2
      train sr_fashion_x2 experiment=sr_fashion_x2 $([ "$SMOKE" = 1 ] && echo model.eval_images=16 model.fd_images=0)
      train sr_fashion_x4 experiment=sr_fashion_x4 $([ "$SMOKE" = 1 ] && echo model.eval_images=16 model.fd_images=0)
      train i2v_digits experiment=i2v_digits $([ "$SMOKE" = 1 ] && echo data.test_clips=8 data.val_clips=8 model.val_sample_clips=4)
      ;;
    speech|asr)
      [ "$SMOKE" = 1 ] && S=(trainer.max_steps=2 trainer.eval_every=2 trainer.scheduler.warmup_steps=0 model.eval_utterances=4)
      CACHE=${CACHE:-$OUT/speech_cache}
      log "render the speech corpus once into $CACHE (reused if it is there)"
      ( TIMEFORMAT="  corpus rendering: %R s wall, %U s user CPU"; time python -c "
import sys
from genmodels.speech.corpus import synthesize_speech_text
synthesize_speech_text(cache_dir=sys.argv[1])                  # asr_speech, tts_speech, clone_speech
synthesize_speech_text(sentences=2400, cache_dir=sys.argv[1])   # asr_conformer, asr_lstm_ctc (data.sentences)" "$CACHE" ) 2>> "$LOG" || log "(rendering through the first run instead)"
      [ "$family" = speech ] && train asr_speech experiment=asr_speech "data.cache_dir=$CACHE"
      train asr_conformer experiment=asr_conformer "data.cache_dir=$CACHE"
      train asr_lstm_ctc experiment=asr_lstm_ctc "data.cache_dir=$CACHE"
      [ "$family" = asr ] && continue
      train tts_speech experiment=tts_speech "data.cache_dir=$CACHE" "model.asr_run=$OUT/asr_speech"
      if [ -f configs/experiment/clone_speech.yaml ]; then
        [ "$SMOKE" = 1 ] && S=(trainer.max_steps=2 trainer.eval_every=2 trainer.scheduler.warmup_steps=0)
        train clone_speech experiment=clone_speech "data.cache_dir=$CACHE" "model.tts_run=$OUT/tts_speech"
      fi
      ;;
    *) echo "unknown family $family (video, speech, asr)" >&2; exit 2 ;;
  esac
done
log "all done: $OUT (table.md, quiet_run.log, the run folders)"
