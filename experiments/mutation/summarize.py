"""Per-family mutation score from mutmut's result files (``mutants/**/*.py.meta``).

Run from the repository root after ``experiments/mutation/run.sh``. Prints a Markdown table
(mutants, killed, survived, timeouts, no tests, score) per family and lists every mutant that was
not killed, so the README can discuss each one; ``--json PATH`` also writes the figures.
Score = killed / (all mutants); a timeout counts as killed only in the ``score incl. timeouts``
column, as mutmut itself does not count it as a kill.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

# Which family each mutated module belongs to (the keys of run.sh's FAMILIES).
FAMILY_BY_MODULE = {
    "genmodels._checks": "checks",
    "genmodels.rl.returns": "rl", "genmodels.rl.rlhf": "rl", "genmodels.rl.ppo": "rl",
    "genmodels.transfer.finetune": "transfer", "genmodels.transfer.ewc": "transfer",
    "genmodels.vae.losses": "vae",
    "genmodels.gan.losses": "gan",
    "genmodels.diffusion.schedules": "diffusion", "genmodels.diffusion.ddpm": "diffusion",
    "genmodels.diffusion.sde": "diffusion",
    "genmodels.rnn.cells": "rnn", "genmodels.rnn.modules": "rnn",
    "genmodels.transformer.attention": "transformer", "genmodels.transformer.losses": "transformer",
    "genmodels.audio.features": "audio", "genmodels.audio.stft": "audio",
    "genmodels.audio.measures": "audio", "genmodels.audio.enhancement": "audio",
}
# mutmut 3's exit-code meaning (mutmut/stats.py: status_by_exit_code)
STATUS = {1: "killed", 3: "killed", 0: "survived", 5: "no tests", 33: "no tests", 34: "skipped",
          36: "timeout", -24: "timeout", 24: "timeout", 152: "timeout", 255: "timeout",
          None: "not checked", -11: "segfault", -9: "segfault"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", type=Path, help="also write the table and survivors here")
    parser.add_argument("--not-killed", metavar="FAMILY",
                        help="only print the names of FAMILY's mutants not (yet) killed, one a line")
    args = parser.parse_args()

    counts: dict[str, Counter] = {}
    others: dict[str, list[str]] = {}
    for meta in sorted(Path("mutants/genmodels").rglob("*.py.meta")):
        data = json.loads(meta.read_text())
        for key, code in data["exit_code_by_key"].items():
            module = next((m for m in FAMILY_BY_MODULE if key.startswith(m + ".")), None)
            family = FAMILY_BY_MODULE.get(module)
            if family is None:
                continue
            status = STATUS.get(code, "suspicious")
            counts.setdefault(family, Counter())[status] += 1
            if status != "killed":
                others.setdefault(family, []).append(f"{status}: {key}")

    if args.not_killed:
        print("\n".join(line.split(": ", 1)[1] for line in others.get(args.not_killed, [])))
        return
    order = ["rl", "transfer", "vae", "gan", "diffusion", "rnn", "transformer", "audio", "checks"]
    rows = []
    print("| family | mutants | killed | survived | timeout | no tests | not checked | score | score incl. timeouts |")
    print("|---|---|---|---|---|---|---|---|---|")
    for fam in [f for f in order if f in counts]:
        c = counts[fam]
        total = sum(c.values())
        score = c["killed"] / total
        score_t = (c["killed"] + c["timeout"]) / total
        rows.append(dict(family=fam, mutants=total, **dict(c), score=score))
        print(f"| {fam} | {total} | {c['killed']} | {c['survived']} | {c['timeout']} | "
              f"{c['no tests']} | {c['not checked']} | {100 * score:.1f}% | {100 * score_t:.1f}% |")
    print()
    for fam in [f for f in order if f in others]:
        print(f"## {fam}: not killed")
        for line in sorted(others[fam]):
            print("   ", line)
    if args.json:
        args.json.write_text(json.dumps(dict(rows=rows, not_killed=others), indent=1) + "\n")


if __name__ == "__main__":
    main()
