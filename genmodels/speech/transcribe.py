"""Transcribe any audio with a trained ASR run (experiments asr_speech / asr_lstm_ctc).

:func:`load_asr_run` rebuilds the run's :class:`~genmodels.speech.task_asr.ASRTask` from the
configuration stored in its checkpoint (``<run>/checkpoints/last.pt``) and loads its weights;
:func:`transcribe_audio` computes the ASR's own features of each waveform and decodes them with
the task's decoders (greedy, beam, beam rescored by the CTC head, joint CTC/attention beam
search, the CTC head alone, or ``lm``: the best search with the run's language model), so a synthesised waveform is read exactly as the ASR reads its
test recordings.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from types import SimpleNamespace

import torch

from genmodels.errors import ConfigError
from genmodels.speech.asr import asr_features
from genmodels.train.checkpoint import load_checkpoint

__all__ = ["load_asr_run", "transcribe_audio", "ASR_MODES"]

#: the decoding modes of :meth:`~genmodels.speech.task_asr.ASRTask.transcribe`
ASR_MODES = ("greedy", "beam", "beam_ctc", "joint", "ctc", "lm")


def load_asr_run(run_dir: str | Path, data, device: torch.device | str = "cpu",
                 key: str = "model.asr_run"):
    """The ASR task of the run in ``run_dir`` with its trained weights (eval mode). ``data`` is
    the speech corpus it was trained on (its training transcripts set the decoding limit).
    A missing run or a run of another family is a :class:`ConfigError` naming ``key``."""
    from genmodels.speech.config import ASRConfig
    from genmodels.speech.task_asr import ASRTask

    ckpt = Path(run_dir) / "checkpoints" / "last.pt"
    if not ckpt.is_file():
        raise ConfigError(f"{key}: no ASR checkpoint at {ckpt} (train one with "
                          f"genmodels-train experiment=asr_speech, or set {key}=null)")
    state = load_checkpoint(ckpt, map_location=device)
    saved = state.get("config", {})
    if saved.get("model", {}).get("family") != "asr":
        raise ConfigError(f"{key}: {run_dir} is not an ASR run (model family "
                          f"{saved.get('model', {}).get('family')!r})")
    names = {f.name for f in dataclasses.fields(ASRConfig)}
    model_cfg = ASRConfig(**{k: v for k, v in saved["model"].items() if k in names})
    cfg = SimpleNamespace(model=model_cfg, trainer=SimpleNamespace(**saved["trainer"]),
                          data=SimpleNamespace(**saved["data"]), seed=saved.get("seed", 0))
    task = ASRTask(cfg, data, torch.device(device))
    task.model.load_state_dict(state["model"])
    task.model.eval()
    task.run_config = saved
    return task


@torch.no_grad()
def transcribe_audio(task, audios: list[torch.Tensor], sample_rate: int, mode: str = "beam_ctc",
                     chunk: int = 32) -> list[str]:
    """Transcripts of waveforms ``audios`` (each ``[N]``) by an ASR ``task`` of
    :func:`load_asr_run`; ``sample_rate`` must be the ASR's corpus rate."""
    if mode not in ASR_MODES:
        raise ValueError(f"mode: must be one of {ASR_MODES}, got {mode!r}")
    if sample_rate != task.data.sample_rate:
        raise ValueError(f"sample_rate: the ASR reads {task.data.sample_rate} Hz audio, got "
                         f"{sample_rate}")
    m = task.cfg.model
    task.feats["_audio"] = [asr_features(a.float(), sample_rate, m.n_mfcc, m.n_fft, m.hop_length,
                                         m.n_mels) for a in audios]
    try:
        out = []
        for i in range(0, len(audios), chunk):
            out += task.transcribe("_audio", list(range(i, min(len(audios), i + chunk))), mode)
        return out
    finally:
        del task.feats["_audio"]
