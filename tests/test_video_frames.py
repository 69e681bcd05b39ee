"""Frame interpolation and super-resolution (genmodels/video/{frames,task_frames,config_frames}.py):
the baselines and the low-res operator on hand cases, the zero-initialised residual that makes an
untrained model its baseline, short runs through the trainer, bad configs by name."""

import json
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from conftest import compose

from genmodels.train.config import ConfigError, to_object
from genmodels.train.trainer import Trainer, build_task
from genmodels.video.frames import (
    ResidualUNet,
    bicubic_upsample,
    crossfade,
    downsample,
    middle_triplets,
)
from genmodels.video.task_frames import image_scores

pytestmark = pytest.mark.video

FAST_TRAINER = ["trainer.batch_size=4", "trainer.max_steps=2", "trainer.scheduler.warmup_steps=1",
                "trainer.progress=false", "trainer.eval_every=1", "trainer.log_every=1",
                "trainer.ckpt_every=100", "trainer.threads=1"]
#: runs small enough for the default suite: seconds
FAST_INTERP = ["experiment=interp_digits", "model.width=4", "data.frames=6", "data.val_clips=4",
               "data.test_clips=4", "model.n_figure_items=2", *FAST_TRAINER]
FAST_SR = ["experiment=sr_digits_x2", "model.width=4", "model.eval_images=16", "model.fd_images=0",
           "model.n_figure_items=2", *FAST_TRAINER]


# ----------------------------------------------------------------------------- baselines, operators
def test_crossfade_by_hand():
    prev = torch.tensor([[[[0.0, 1.0], [0.5, 0.2]]]])
    nxt = torch.tensor([[[[1.0, 1.0], [0.0, 0.6]]]])
    assert torch.allclose(crossfade(prev, nxt), torch.tensor([[[[0.5, 1.0], [0.25, 0.4]]]]))
    with pytest.raises(ValueError, match="^next:"):
        crossfade(prev, nxt[..., :1])
    with pytest.raises(ValueError, match="^prev:"):
        crossfade(prev[0], nxt[0])


def test_middle_triplets():
    frames = torch.arange(2 * 4, dtype=torch.float32).view(2, 4, 1, 1, 1)
    prev, mid, nxt = middle_triplets(frames)
    assert prev.flatten().tolist() == [0, 1, 4, 5]
    assert mid.flatten().tolist() == [1, 2, 5, 6]
    assert nxt.flatten().tolist() == [2, 3, 6, 7]
    with pytest.raises(ValueError, match="^frames:"):
        middle_triplets(frames[:, :2])


def test_downsample_is_the_block_mean_by_hand():
    x = torch.arange(16, dtype=torch.float64).view(1, 1, 4, 4)
    want = torch.tensor([[[[(0 + 1 + 4 + 5) / 4, (2 + 3 + 6 + 7) / 4],
                           [(8 + 9 + 12 + 13) / 4, (10 + 11 + 14 + 15) / 4]]]], dtype=torch.float64)
    assert torch.equal(downsample(x, 2), want)
    assert torch.equal(downsample(x, 4), x.mean().view(1, 1, 1, 1))
    with pytest.raises(ValueError, match="^factor:"):
        downsample(x, 3)
    with pytest.raises(ValueError, match="^factor:"):
        downsample(x, 0)
    with pytest.raises(ValueError, match="^x:"):
        downsample(x[0], 2)


def test_bicubic_baseline_is_f_interpolate():
    torch.manual_seed(0)
    low = torch.rand(3, 1, 7, 7)
    up = bicubic_upsample(low, 4)
    assert up.shape == (3, 1, 28, 28)
    assert torch.equal(up, F.interpolate(low, size=(28, 28), mode="bicubic", align_corners=False))
    flat = torch.full((1, 1, 4, 4), 0.3)                       # a constant stays constant
    torch.testing.assert_close(bicubic_upsample(flat, 2), torch.full((1, 1, 8, 8), 0.3))
    with pytest.raises(ValueError, match="^factor:"):
        bicubic_upsample(low, 0)


@pytest.mark.parametrize("levels", [0, 1, 2])
def test_untrained_model_is_its_baseline(levels):
    torch.manual_seed(0)
    net = ResidualUNet(2, 1, width=4, levels=levels)
    x, base = torch.rand(3, 2, 8, 8), torch.rand(3, 1, 8, 8)
    assert torch.equal(net(x, base), base)
    assert net.residual(x).abs().max() == 0
    net.out.weight.data.normal_()                               # after a step it is not
    assert not torch.equal(net(x, base), base)


def test_model_arguments_are_checked_by_name():
    with pytest.raises(ValueError, match="^width:"):
        ResidualUNet(2, 1, width=0)
    with pytest.raises(ValueError, match="^levels:"):
        ResidualUNet(2, 1, levels=-1)
    net = ResidualUNet(2, 1, width=4, levels=2)
    with pytest.raises(ValueError, match="^x:"):
        net(torch.rand(1, 3, 8, 8), torch.rand(1, 1, 8, 8))      # channels
    with pytest.raises(ValueError, match="^x:"):
        net(torch.rand(1, 2, 6, 6), torch.rand(1, 1, 6, 6))      # 6 not a multiple of 4
    with pytest.raises(ValueError, match="^base:"):
        net(torch.rand(1, 2, 8, 8), torch.rand(1, 2, 8, 8))


def test_image_scores():
    torch.manual_seed(0)
    truth = torch.rand(4, 1, 12, 12, dtype=torch.float64)
    noise = 0.1 * torch.randn_like(truth)
    s = image_scores(truth + noise, truth)
    torch.testing.assert_close(torch.tensor(s["psnr"]), 10 * torch.log10(1 / noise.pow(2).mean()),
                               check_dtype=False)
    assert image_scores(truth, truth)["ssim"] == pytest.approx(1.0)
    assert "ssim" not in image_scores(truth[..., :8, :8], truth[..., :8, :8].clone() + 0.1)
    with pytest.raises(ValueError, match="^pred:"):
        image_scores(truth[:2], truth)


# ----------------------------------------------------------------------------- the tasks
def test_interp_draw_is_a_pure_function_of_seed_and_step():
    task = build_task(to_object(compose(FAST_INTERP)), torch.device("cpu"))
    a, b, c = task.draw(3), task.draw(3), task.draw(4)
    assert a["prev"].shape == (4, 1, 24, 24)
    assert all(torch.equal(a[k], b[k]) for k in a) and not torch.equal(a["middle"], c["middle"])


def test_untrained_tasks_score_their_baselines():
    """Zero residual: the model's scores equal the baseline's, gain 0."""
    task = build_task(to_object(compose(FAST_INTERP)), torch.device("cpu"))
    out = task.evaluate("val")
    assert out["psnr"] == pytest.approx(out["psnr_crossfade"]) and out["psnr_gain"] == pytest.approx(0)
    assert out["ssim"] == pytest.approx(out["ssim_crossfade"])
    task = build_task(to_object(compose(FAST_SR)), torch.device("cpu"))
    out = task.evaluate("val")
    assert out["psnr"] == pytest.approx(out["psnr_bicubic"]) and "ssim" not in out   # 8x8: no SSIM


def test_doubled_clip_keeps_the_observed_frames():
    task = build_task(to_object(compose(FAST_INTERP)), torch.device("cpu"))
    clip = task.data.test.frames[0]                                  # T = 6 -> 5 frames
    rows = task.doubled(clip)
    assert set(rows) == {"truth", "half rate", "cross-fade", "model"}
    for r in rows.values():
        assert r.shape == (5, 1, 24, 24) and torch.equal(r[0::2], clip[0:5:2])
    torch.testing.assert_close(rows["cross-fade"][1], (clip[0] + clip[2]) / 2)
    assert torch.equal(rows["half rate"][3], clip[2])
    with pytest.raises(ValueError, match="^clip:"):
        task.doubled(clip[:2])


def _run(tmp_path, over, cli=False):
    """Train through the trainer (in this process, or through ``genmodels-train`` when ``cli``)."""
    if cli:
        cmd = [sys.executable, "-m", "genmodels.train.cli", *over, f"hydra.run.dir={tmp_path}"]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
        assert proc.returncode == 0, proc.stderr[-2000:]
    else:
        Trainer(to_object(compose(over)), tmp_path).fit()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    return json.loads((tmp_path / "results.json").read_text())["test"]


@pytest.mark.train
def test_interp_two_steps_through_the_trainer(tmp_path):
    test = _run(tmp_path, FAST_INTERP)
    for k in ("psnr", "ssim", "psnr_crossfade", "ssim_crossfade", "psnr_gain"):
        assert k in test
    for name in ("interpolation.png", "doubled.gif"):
        assert (tmp_path / "figures" / name).stat().st_size > 0
    from PIL import Image
    with Image.open(tmp_path / "figures" / "doubled.gif") as gif:
        assert gif.n_frames == 5


@pytest.mark.train
def test_sr_two_steps_through_genmodels_train(tmp_path):
    test = _run(tmp_path, FAST_SR, cli=True)
    assert {"psnr", "psnr_bicubic", "psnr_gain"} <= set(test)
    assert (tmp_path / "figures" / "superres.png").stat().st_size > 0


@pytest.mark.train
@pytest.mark.slow
def test_sr_digits_with_fd(tmp_path):
    test = _run(tmp_path, [*FAST_SR, "model.eval_images=64", "model.fd_images=64"])
    assert test["fd_images"] == 64 and test["fd"] >= 0 and test["fd_bicubic"] >= 0 and test["fd_real"] >= 0


@pytest.mark.parametrize("factor", [2, 4])
def test_sr_fashion_builds_its_upscaler(factor):
    from genmodels.data.images import FASHION_MNIST_DEFAULT_DIR
    if not os.path.isdir(FASHION_MNIST_DEFAULT_DIR):
        pytest.skip("Fashion-MNIST is not installed")
    over = [f"experiment=sr_fashion_x{factor}", *FAST_TRAINER, "trainer.max_steps=1", "trainer.figures=false",
            "model.width=4", "model.eval_images=16", "model.fd_images=0", "data.limit=64", "data.val_size=32",
            ]
    cfg = to_object(compose(over))
    task = build_task(cfg, torch.device("cpu"))
    x = task.data.test[:2]
    low, up, model = task.upscale(x)
    assert low.shape == (2, 1, 28 // factor, 28 // factor) and up.shape == model.shape == x.shape
    assert torch.equal(model, up)


@pytest.mark.parametrize("experiment", ["interp_digits", "sr_fashion_x2", "sr_fashion_x4", "sr_digits_x2"])
def test_experiments_compose(experiment):
    cfg = to_object(compose([f"experiment={experiment}"]))
    assert cfg.trainer.threads == 1
    if experiment.startswith("sr_"):
        assert cfg.model.factor == int(experiment[-1])


@pytest.mark.parametrize("override, key", [
    ("model.loss=l3", "model.loss"),
    ("model.width=0", "model.width"),
    ("model.levels=4", "model.levels"),            # 16 does not divide the 24 canvas
    ("data.frames=2", "data.frames"),
    ("data=digits", "data"),
    ("model.gif_fps=0", "model.gif_fps"),
])
def test_bad_interp_config_values_fail_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        to_object(compose(["experiment=interp_digits", override]))


@pytest.mark.parametrize("experiment, override, key", [
    ("sr_fashion_x2", "model.factor=3", "model.factor"),
    ("sr_fashion_x2", "model.factor=1", "model.factor"),
    ("sr_fashion_x4", "model.levels=3", "model.levels"),
    ("sr_fashion_x2", "model.fd_images=1", "model.fd_images"),
    ("sr_fashion_x2", "data=moving_digits", "data"),
    ("sr_digits_x2", "model.eval_images=0", "model.eval_images"),
])
def test_bad_sr_config_values_fail_naming_the_key(experiment, override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        to_object(compose([f"experiment={experiment}", override]))
