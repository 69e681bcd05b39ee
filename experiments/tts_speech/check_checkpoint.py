"""Score a tts_speech checkpoint mid-run (what the pilot checks of the README ran).

    python experiments/tts_speech/check_checkpoint.py RUN_DIR ASR_RUN_DIR N [CACHE_DIR]

Builds the experiment's task (corpus from CACHE_DIR), loads RUN_DIR/checkpoints/last.pt, and
prints the ASR's CER (beam search rescored by its CTC head) on the first N held-out test
utterances: real recordings, TTS (predicted durations, Griffin-Lim) and the ceiling (Griffin-Lim
of the real magnitude), with the first transcripts.
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from conftest import compose  # noqa: E402
from genmodels.speech.measures import character_error_rate  # noqa: E402
from genmodels.speech.transcribe import load_asr_run, transcribe_audio  # noqa: E402
from genmodels.speech.tts import log_magnitude  # noqa: E402
from genmodels.train.checkpoint import load_checkpoint  # noqa: E402
from genmodels.train.config import to_object  # noqa: E402
from genmodels.train.trainer import build_task  # noqa: E402

run, asr_run, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
cache = sys.argv[4] if len(sys.argv) > 4 else "outputs/speech_cache"
torch.set_num_threads(1)
cfg = to_object(compose(["experiment=tts_speech", f"data.cache_dir={cache}",
                         f"model.eval_utterances={n}"]))
task = build_task(cfg, torch.device("cpu"))
state = load_checkpoint(Path(run) / "checkpoints" / "last.pt")
task.model.load_state_dict(state["model"])
task.model.eval()
asr = load_asr_run(asr_run, task.data)
refs = [u.text for u in task.utts["test"]]
real = [u.audio.float() for u in task.utts["test"]]
with torch.no_grad():
    tts = [o["audio"] for o in task.synthesize("test", list(range(len(refs))))]
ceiling = [task.vocode(log_magnitude(a, cfg.model.n_fft, cfg.model.hop_length).exp().T)
           for a in real]
hyps = {k: transcribe_audio(asr, v, task.sample_rate, cfg.model.asr_mode)
        for k, v in (("real", real), ("tts", tts), ("ceiling", ceiling))}
print(f"step {state.get('step')}: " + ", ".join(
    f"cer_{k} {character_error_rate(h, refs):.4f}" for k, h in hyps.items()))
for i in range(min(4, len(refs))):
    print(f"  {refs[i]!r} | tts {hyps['tts'][i]!r} | ceiling {hyps['ceiling'][i]!r}")
