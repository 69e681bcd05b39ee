"""The speech commands a person uses: ``genmodels-speak`` and ``genmodels-transcribe``.

``genmodels-speak "text" --run DIR --voice NAME --out x.wav`` says ``text`` with a trained
``tts_speech`` run (phones from the g2p step, predicted durations, the voice's speaker embedding,
Griffin-Lim) and writes a 16-bit WAV whose RIFF ``INFO`` comment says it is synthetic speech
(:func:`~genmodels.audio.wavfile.write_tagged_wav`); ``genmodels-transcribe x.wav [y.wav …]
--run DIR`` prints what a trained ``asr_speech`` / ``asr_lstm_ctc`` run hears in each file (read
with libsndfile, mixed to mono and resampled to the corpus's rate).

Both rebuild the run's task from the configuration stored in its checkpoint
(:func:`load_run`), so the corpus it was trained on is loaded again (from ``data.cache_dir`` when
the run had one, else rendered: about a minute for the default corpus).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

__all__ = ["load_run", "speak", "transcribe_files", "speak_main", "transcribe_main"]


def load_run(run_dir: str | Path, family: str, device: str = "cpu", data=None):
    """The task of the TTS or ASR run in ``run_dir`` (a run folder, a ``last.pt``, or
    ``outputs/<name>``), rebuilt from its checkpoint with its trained weights, in eval mode
    (:func:`genmodels.train.runs.load_run`). ``family`` is the model family the command needs
    ("tts" or "asr"); another family's run is a ``ValueError`` naming ``--run`` and the experiment
    that makes the right one. ``data``: the corpus to build the task on (default: the run's own,
    loaded again from its data config); the caller vouches that it is the same."""
    from genmodels.train.runs import load_run as load_any_run

    experiment = "tts_speech" if family == "tts" else "asr_speech"
    return load_any_run(run_dir, family, device, data=data, option="--run",
                        hint=f"genmodels-train experiment={experiment}")


@torch.no_grad()
def speak(task, text: str, voice: str | None = None, pace: float = 1.0) -> torch.Tensor:
    """The waveform ``[N]`` of ``text`` said by ``voice`` (a training voice of the TTS run; None:
    its first) with a TTS ``task`` of :func:`load_run`."""
    from genmodels.speech.g2p import normalize_text

    if not isinstance(text, str) or not normalize_text(text).strip():
        raise ValueError(f"text: nothing to say in {text!r} (letters, digits and punctuation are read)")
    if voice is None:
        voice = task.speakers[0]
    if voice not in task.speakers:
        raise ValueError(f"--voice: {voice!r} is not a voice of this run; its voices: "
                         f"{', '.join(task.speakers)}")
    if not (isinstance(pace, (int, float)) and 0.25 <= pace <= 4):
        raise ValueError(f"--pace: expected a number in [0.25, 4], got {pace!r}")
    phones = torch.tensor([task.vocab.text_to_ids(normalize_text(text))], device=task.device)
    speaker = torch.tensor([task.speakers.index(voice)], device=task.device)
    frames, mask, _ = task.model.synthesize(phones, speaker, pace=pace)
    return task.waveforms(frames, mask)[0][0]


def transcribe_files(task, paths: list[str | Path], mode: str = "beam_ctc") -> list[str]:
    """What an ASR ``task`` of :func:`load_run` hears in each audio file of ``paths``."""
    from genmodels.speech.transcribe import transcribe_audio

    from genmodels.audio.corpus import read_audio_file

    audios = [read_audio_file(Path(p), task.data.sample_rate, name="wav") for p in paths]
    return transcribe_audio(task, audios, task.data.sample_rate, mode=mode)


def speak_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="genmodels-speak", description="Say a text with a trained "
                                 "tts_speech run; the WAV says in its metadata that it is synthetic.")
    ap.add_argument("text")
    ap.add_argument("--run", required=True, help="the tts_speech run folder (or its last.pt)")
    ap.add_argument("--voice", default=None, help="a training voice of the run (default: its first)")
    ap.add_argument("--out", default="speech.wav", help="the WAV to write (default speech.wav)")
    ap.add_argument("--pace", type=float, default=1.0, help="speaking rate factor (default 1)")
    args = ap.parse_args(argv)
    from genmodels.audio.wavfile import SYNTHETIC_COMMENT, write_tagged_wav
    try:
        task = load_run(args.run, "tts")
        audio = speak(task, args.text, args.voice, args.pace)
    except ValueError as e:
        print(f"genmodels-speak: {e}", file=sys.stderr)
        return 2
    out = write_tagged_wav(args.out, audio, task.sample_rate,
                           comment=f"{SYNTHETIC_COMMENT} (voice {args.voice or task.speakers[0]})",
                           title=args.text)
    print(f"{out}: {audio.numel() / task.sample_rate:.2f} s at {task.sample_rate} Hz, synthetic speech")
    return 0


def transcribe_main(argv: list[str] | None = None) -> int:
    from genmodels.speech.transcribe import ASR_MODES

    ap = argparse.ArgumentParser(prog="genmodels-transcribe",
                                 description="Print what a trained asr_speech run hears in audio files.")
    ap.add_argument("wav", nargs="+")
    ap.add_argument("--run", required=True, help="the asr_speech / asr_lstm_ctc run folder")
    ap.add_argument("--mode", default=None, choices=ASR_MODES,
                    help="decoding (default: lm for a run with a language model, else beam_ctc; "
                         "the LSTM-CTC baseline decodes with ctc, or lm)")
    args = ap.parse_args(argv)
    try:
        task = load_run(args.run, "asr")
        mode = args.mode or ("lm" if getattr(task.model, "lm", None) is not None else "beam_ctc")
        if task.cfg.model.arch == "lstm_ctc" and mode != "lm":
            mode = "ctc"
        texts = transcribe_files(task, args.wav, mode)
    except ValueError as e:
        print(f"genmodels-transcribe: {e}", file=sys.stderr)
        return 2
    for path, text in zip(args.wav, texts):
        print(f"{path}\t{text}")
    return 0
