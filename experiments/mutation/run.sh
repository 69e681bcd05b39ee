#!/usr/bin/env bash
# Mutation score of the formula tests, per family (issue 7). Usage, from anywhere:
#     experiments/mutation/run.sh                 # every family, every mutant
#     experiments/mutation/run.sh gan vae         # some families
#     experiments/mutation/run.sh --again gan     # only gan's mutants not killed last time
#                                                 # (after adding tests, or after a source edit
#                                                 # reset some of them to "not checked")
# mutmut 3 (configured in pyproject.toml, [tool.mutmut]) copies genmodels/ and tests/ into
# mutants/, mutates the modules listed there, records which formula tests reach which function,
# then runs, for each mutant, only the tests that reach the mutated function. One worker and
# `nice`, because CI / the dev machine has 2 cores. Logs go to mutants/logs/ (git-ignored); the
# table comes from summarize.py and is also written to experiments/mutation/results.json.
set -euo pipefail
cd "$(dirname "$0")/../.."

declare -A FAMILIES=(
  [rl]="genmodels.rl.returns.* genmodels.rl.rlhf.* genmodels.rl.ppo.*"
  [transfer]="genmodels.transfer.finetune.* genmodels.transfer.ewc.*"
  [vae]="genmodels.vae.losses.*"
  [gan]="genmodels.gan.losses.*"
  [diffusion]="genmodels.diffusion.schedules.* genmodels.diffusion.ddpm.* genmodels.diffusion.sde.*"
  [rnn]="genmodels.rnn.cells.* genmodels.rnn.modules.*"
  [transformer]="genmodels.transformer.attention.* genmodels.transformer.losses.*"
  [audio]="genmodels.audio.features.* genmodels.audio.stft.* genmodels.audio.measures.* genmodels.audio.enhancement.*"
  [checks]="genmodels._checks.*"
)
again=0
if [ "${1:-}" = "--again" ]; then
  again=1
  shift
fi
if [ $# -eq 0 ]; then
  set -- gan vae transfer rl rnn transformer checks audio diffusion
fi

mkdir -p mutants/logs
for family in "$@"; do
  globs=${FAMILIES[$family]:?unknown family $family}
  if [ $again -eq 1 ]; then
    globs=$(python experiments/mutation/summarize.py --not-killed "$family" | tr '\n' ' ')
    [ -n "${globs// /}" ] || { echo "$family: nothing left to run"; continue; }
  fi
  start=$(date +%s)
  # mutmut exits 0 whatever the score; the globs are quoted so the shell leaves them to mutmut
  # shellcheck disable=SC2086
  set -f
  if nice -n 15 mutmut run --max-children 1 $globs > "mutants/logs/$family.log" 2>&1; then
    echo "$family: $(( $(date +%s) - start )) s" | tee -a mutants/logs/times.txt
  else  # e.g. a failing test: mutmut refuses to start; see the log
    echo "$family: mutmut failed, see mutants/logs/$family.log" | tee -a mutants/logs/times.txt
  fi
  set +f
done
python experiments/mutation/summarize.py --json experiments/mutation/results.json \
  --diffs experiments/mutation/survivors.md
