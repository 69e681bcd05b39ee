"""Every audio experiment trains a few steps through the trainer (and once through the
genmodels-train command), writing metrics, WAV files and figures; bad combinations fail early."""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from conftest import compose
from genmodels.train.config import ConfigError, to_object
from genmodels.train.trainer import Trainer

pytestmark = [pytest.mark.audio, pytest.mark.train]

TINY_DATA = ["data.speakers=2", "data.utterances=8", "data.val_utterances=2",
             "data.test_utterances=2", "data.seconds=0.4"]
TINY_TRAINER = ["trainer.max_steps=2", "trainer.eval_every=1", "trainer.log_every=1",
                "trainer.ckpt_every=2", "trainer.batch_size=2", "trainer.progress=false",
                "trainer.threads=1", "trainer.scheduler.warmup_steps=0"]
TINY_MODEL = {
    "vc_synthetic": ["model.hidden=8", "model.layers=1", "model.n_examples=1",
                     "model.griffin_lim_iters=2"],
    "wavenet_synthetic": ["model.residual_channels=4", "model.dilation_channels=4",
                          "model.skip_channels=8", "model.n_layers=2", "model.cond_hidden=4",
                          "model.segment_frames=4", "model.eval_clips=1", "model.val_clips=2",
                          "model.n_examples=1", "model.griffin_lim_iters=2"],
    "denoise_synthetic": ["model.hidden=8", "model.layers=1", "model.test_items=4",
                          "model.n_examples=1"],
    "separate_synthetic": ["model.hidden=8", "model.layers=1", "model.test_items=4",
                           "model.n_examples=1"],
    "restore_synthetic": ["model.channels=4", "model.depth=1", "model.test_items=4",
                          "model.n_examples=1"],
    "enhance_synthetic": ["model.channels=4", "model.depth=1", "model.test_items=4",
                          "model.n_examples=1"],
}
EXPECTED = {
    "vc_synthetic": {"mcd_converted", "mcd_unconverted", "mcd_affine"},
    "wavenet_synthetic": {"nll", "mcd_wavenet", "mcd_griffinlim", "lsd_wavenet", "lsd_griffinlim"},
    "denoise_synthetic": {"si_sdr_improvement", "si_sdr_improvement_spectral_subtraction"},
    "separate_synthetic": {"si_sdr_improvement", "si_sdr_in", "si_sdr_out"},
    "restore_synthetic": {"si_sdr_improvement"},
    "enhance_synthetic": {"si_sdr_improvement", "si_sdr_improvement_over_noisy"},
}


def _overrides(name):
    return [f"experiment={name}"] + TINY_DATA + TINY_TRAINER + TINY_MODEL[name]


@pytest.mark.parametrize("name", sorted(n for n in TINY_MODEL if n != "vc_synthetic"))
def test_experiment_trains_and_writes_wavs_and_figures(name, tmp_path):
    results = Trainer(to_object(compose(_overrides(name))), tmp_path).fit()
    assert EXPECTED[name] <= set(results["test"])
    assert all(np.isfinite(v) for v in results["test"].values())
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    wavs = sorted((tmp_path / "figures" / "audio").glob("*.wav"))
    assert len(wavs) >= 3
    audio, sr = sf.read(wavs[0])
    assert sr == 8000 and audio.ndim == 1 and len(audio) == int(0.4 * 8000)
    pngs = {p.name for p in (tmp_path / "figures").glob("*.png")}
    assert "loss_curves.png" in pngs and len(pngs) >= 2


def test_vc_through_the_genmodels_train_command(tmp_path):
    """The real command line, as a user runs it (the other experiments use the Trainer directly,
    which is what the command calls)."""
    cmd = [sys.executable, "-m", "genmodels.train.cli"] + _overrides("vc_synthetic") + \
        [f"hydra.run.dir={tmp_path}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert EXPECTED["vc_synthetic"] <= set(results["test"])
    assert (tmp_path / "figures" / "vc_mfcc.png").exists()
    assert len(list((tmp_path / "figures" / "audio").glob("vc_example0_*.wav"))) == 4


def test_denoise_on_a_wav_folder(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "wavs"
    folder.mkdir()
    t = np.arange(8000) / 8000
    for i in range(4):
        tone = 0.3 * np.sin(2 * np.pi * (150 + 40 * i) * t) * (1 + 0.2 * rng.standard_normal(8000))
        sf.write(folder / f"take{i}.wav", tone.astype(np.float32), 8000)
    over = ["experiment=denoise_synthetic", "data=wav_folder", f"data.path={folder}",
            "data.segment_seconds=0.25"] + TINY_TRAINER + TINY_MODEL["denoise_synthetic"]
    results = Trainer(to_object(compose(over)), tmp_path / "run").fit()
    assert np.isfinite(results["test"]["si_sdr_improvement"])


def test_bad_combinations_fail_before_training(tmp_path):
    sf.write(tmp_path / "one.wav", np.zeros(4000, dtype=np.float32), 8000)
    with pytest.raises(ConfigError, match="parallel"):
        Trainer(to_object(compose(["experiment=vc_synthetic", "data=wav_folder",
                                   f"data.path={tmp_path}"] + TINY_TRAINER)), tmp_path / "a").fit()
    with pytest.raises(ConfigError, match="arch"):
        Trainer(to_object(compose(_overrides("separate_synthetic") + ["model.arch=waveunet"])),
                tmp_path / "b").fit()
    with pytest.raises(ConfigError, match="data"):
        Trainer(to_object(compose(["experiment=denoise_synthetic", "data=digits"] + TINY_TRAINER)),
                tmp_path / "c").fit()
    with pytest.raises(ConfigError, match="model.target"):
        to_object(compose(_overrides("vc_synthetic") + ["model.target=A"]))
    with pytest.raises(ConfigError, match="model.lpc_order"):
        to_object(compose(_overrides("wavenet_synthetic") + ["model.lpc_order=128"]))
    with pytest.raises(ConfigError, match="model.lpc_order"):
        to_object(compose(_overrides("wavenet_synthetic") + ["model.lpc_order=-1"]))
    with pytest.raises(ConfigError, match="data.utterances"):
        to_object(compose(_overrides("vc_synthetic") + ["data.utterances=4"]))
    with pytest.raises(ConfigError, match="model.source"):
        Trainer(to_object(compose(_overrides("vc_synthetic") + ["model.source=F"])),
                tmp_path / "d").fit()


def test_resumed_audio_run_equals_uninterrupted(tmp_path):
    """Batches are a function of (seed, step): halting after step 1 and resuming gives the same
    parameters and test numbers as running both steps at once."""
    over = _overrides("separate_synthetic") + ["trainer.figures=false", "trainer.ckpt_every=1"]
    full = Trainer(to_object(compose(over)), tmp_path / "full")
    full_res = full.fit()
    assert Trainer(to_object(compose(over + ["trainer.halt_after=1"])), tmp_path / "split").fit() is None
    resumed = Trainer(to_object(compose(over)), tmp_path / "split")
    res = resumed.fit()
    assert res["test"] == full_res["test"]
    for p, q in zip(full.task.model.parameters(), resumed.task.model.parameters()):
        assert torch.equal(p, q)
