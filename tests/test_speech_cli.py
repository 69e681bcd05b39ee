"""genmodels-speak and genmodels-transcribe on tiny trained runs: the WAV is written, tagged as
synthetic and read back by the transcriber; wrong runs and voices are refused naming the option."""

import pytest
import soundfile as sf
import torch

from conftest import compose
from genmodels.audio.wavfile import SYNTHETIC_COMMENT, read_wav_info, write_tagged_wav
from genmodels.speech.cli import speak_main, transcribe_main
from genmodels.train.config import to_object
from genmodels.train.trainer import Trainer

pytestmark = [pytest.mark.speech]

TINY_DATA = ["data.voices=6", "data.val_voices=1", "data.test_voices=1", "data.sentences=20",
             "data.val_sentences=2", "data.test_sentences=2", "data.voices_per_sentence=1"]
STEPS = ["trainer.max_steps=2", "trainer.batch_size=4", "trainer.eval_every=2", "trainer.log_every=1",
         "trainer.scheduler.warmup_steps=1", "trainer.progress=false", "trainer.threads=1",
         "trainer.ckpt_every=100", "trainer.figures=false"]
TTS = ["experiment=tts_speech", *TINY_DATA, *STEPS, "model.d_model=16", "model.d_ff=32",
       "model.enc_layers=1", "model.dec_layers=1", "model.griffin_lim_iters=2", "model.eval_voices=1",
       "model.samples=1", "model.eval_utterances=2"]
ASR = ["experiment=asr_speech", *TINY_DATA, *STEPS, "model.max_decode_chars=12", "model.d_model=32",
       "model.d_ff=64", "model.enc_layers=1", "model.dec_layers=1", "model.eval_utterances=2"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = {}
    for name, overrides in (("tts", TTS), ("asr", ASR)):
        d = tmp_path_factory.mktemp(name)
        Trainer(to_object(compose(overrides)), d).fit()
        out[name] = d
    return out


def test_speak_then_transcribe(runs, tmp_path, capsys):
    wav = tmp_path / "x.wav"
    assert speak_main(["the cat sat", "--run", str(runs["tts"]), "--out", str(wav)]) == 0
    audio, sr = sf.read(str(wav))
    assert sr == 8000 and audio.ndim == 1 and len(audio) > 800          # at least 0.1 s
    info = read_wav_info(wav)
    assert info["ICMT"].startswith(SYNTHETIC_COMMENT) and info["INAM"] == "the cat sat"
    other = tmp_path / "y.wav"                                            # another rate: resampled
    write_tagged_wav(other, torch.sin(torch.arange(16000) / 16000 * 2 * torch.pi * 200) * 0.3, 16000)
    capsys.readouterr()
    assert transcribe_main([str(wav), str(other), "--run", str(runs["asr"]), "--mode", "greedy"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(wav), str(other)]


def test_wrong_runs_voices_and_files_are_refused_naming_the_option(runs, tmp_path, capsys):
    assert speak_main(["hello", "--run", str(runs["asr"])]) == 2
    assert "--run:" in capsys.readouterr().err
    assert speak_main(["hello", "--run", str(runs["tts"]), "--voice", "nobody"]) == 2
    assert "--voice:" in capsys.readouterr().err
    assert speak_main(["...", "--run", str(runs["tts"])]) == 2
    assert "text:" in capsys.readouterr().err
    assert transcribe_main([str(tmp_path / "missing.wav"), "--run", str(runs["asr"])]) == 2
    assert "wav:" in capsys.readouterr().err
    assert transcribe_main(["x.wav", "--run", str(tmp_path / "no_run")]) == 2
    assert "--run:" in capsys.readouterr().err
