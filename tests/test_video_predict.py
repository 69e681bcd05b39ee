"""Video prediction (genmodels/video/{models,baselines,task}.py): the ConvLSTM predictor's
recurrence against a per-step loop written independently with copied weights, the baselines and
the tracker on hand-made cases, a short run through ``genmodels-train``, bad configs by name."""

import json
import math
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from conftest import compose
from genmodels.train.config import ConfigError, to_object
from genmodels.train.trainer import build_task
from genmodels.video import models as video_models
from genmodels.video.baselines import (centre_of_mass, copy_last, estimate_shift, shift_frames,
                                       shift_last)
from genmodels.video.models import ConvLSTMLayer, ConvLSTMPredictor
from genmodels.video.task import horizon_metrics

pytestmark = pytest.mark.video

#: a run small enough for the default suite: seconds
FAST = ["experiment=video_predict_digits", "model.hidden_channels=[8]", "model.enc_channels=4",
        "model.kernel_size=3", "model.context_frames=4", "model.future_frames=6", "data.frames=10",
        "data.val_clips=8", "data.test_clips=8", "model.n_figure_clips=2", "trainer.batch_size=4",
        "trainer.max_steps=2", "trainer.scheduler.warmup_steps=1", "trainer.progress=false",
        "trainer.eval_every=1", "trainer.log_every=1", "trainer.ckpt_every=100"]


# ----------------------------------------------------------------------------- the recurrence
def _reference_logits(model, frames, context, teacher_forcing):
    """The predictor written out step by step: the gate equations typed here with F.conv2d,
    σ and tanh (not through conv_lstm_cell), the model's own encoder and decoder weights."""
    B, T = frames.shape[:2]
    states = [None] * len(model.layers)
    x, out = frames[:, 0], []
    for t in range(T - 1):
        z = model.encoder(x)
        hs = []
        for li, layer in enumerate(model.layers):
            if states[li] is None:
                zeros = z.new_zeros(B, layer.hidden, *z.shape[-2:])
                states[li] = (zeros, zeros)
            h, c = states[li]
            hx = torch.cat([h, z], 1)
            pad = layer.kernel_size // 2
            f = torch.sigmoid(F.conv2d(hx, layer.W_f, layer.b_f, padding=pad))
            i = torch.sigmoid(F.conv2d(hx, layer.W_i, layer.b_i, padding=pad))
            g = torch.tanh(F.conv2d(hx, layer.W_C, layer.b_C, padding=pad))
            o = torch.sigmoid(F.conv2d(hx, layer.W_o, layer.b_o, padding=pad))
            c = f * c + i * g
            h = o * torch.tanh(c)
            states[li] = (h, c)
            hs.append(h)
            z = h
        logits = model.decoder(torch.cat(hs, 1))
        out.append(logits)
        x = frames[:, t + 1] if (t + 1 < context or teacher_forcing) else torch.sigmoid(logits)
    return torch.stack(out, 1)


@pytest.mark.parametrize("hidden, downsample, kernel", [([4], 2, 3), ([3, 5], 1, 5), ([4, 2], 2, 1)])
@pytest.mark.parametrize("teacher_forcing", [False, True])
def test_recurrence_equals_an_independent_loop(hidden, downsample, kernel, teacher_forcing):
    torch.manual_seed(0)
    model = ConvLSTMPredictor(1, 3, hidden, kernel, downsample).double()
    reference = ConvLSTMPredictor(1, 3, hidden, kernel, downsample).double()
    reference.load_state_dict(model.state_dict())                    # copied weights
    frames = torch.rand(2, 7, 1, 12, 12, dtype=torch.float64)
    got = model(frames, 3, teacher_forcing=teacher_forcing)
    want = _reference_logits(reference, frames, 3, teacher_forcing)
    assert got.shape == (2, 6, 1, 12, 12)
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    pred = model.predict(frames[:, :3], 4)                           # only the context is read
    torch.testing.assert_close(pred, torch.sigmoid(want[:, 2:6]) if not teacher_forcing
                               else torch.sigmoid(_reference_logits(reference, frames, 3, False)[:, 2:6]))


def test_every_step_goes_through_the_spec_cell(monkeypatch):
    calls = []
    real = video_models.conv_lstm_cell

    def counting(*args):
        calls.append(args[0].shape)
        return real(*args)

    monkeypatch.setattr(video_models, "conv_lstm_cell", counting)
    model = ConvLSTMPredictor(1, 4, [6, 5], 3, 2)
    model(torch.rand(3, 8, 1, 16, 16), 5)
    assert len(calls) == 7 * 2                                       # T − 1 steps × 2 layers
    assert calls[0] == (3, 4, 8, 8) and calls[1] == (3, 6, 8, 8)     # layer 2 reads layer 1's h


def test_model_arguments_are_checked_by_name():
    with pytest.raises(ValueError, match="^kernel_size:"):
        ConvLSTMLayer(2, 4, 4)
    with pytest.raises(ValueError, match="^downsample:"):
        ConvLSTMPredictor(1, 4, [4], 3, 3)
    with pytest.raises(ValueError, match="^hidden:"):
        ConvLSTMPredictor(1, 4, [], 3, 2)
    model = ConvLSTMPredictor(1, 4, [4], 3, 2)
    with pytest.raises(ValueError, match="^context:"):
        model(torch.rand(1, 5, 1, 8, 8), 5)
    with pytest.raises(ValueError, match="^horizon:"):
        model.predict(torch.rand(1, 5, 1, 8, 8), 0)
    with pytest.raises(ValueError, match="^frames:"):
        model(torch.rand(5, 1, 8, 8), 2)


def _one_hot_kernel_logits(B, k, dr, dc, big=60.0):
    """Kernel logits whose softmax is (to 1e-26) the one-hot kernel at offset (dr, dc) from the centre."""
    z = torch.zeros(B, k, k, dtype=torch.float64)
    z[:, k // 2 + dr, k // 2 + dc] = big
    return z.view(B, k * k)


@pytest.mark.parametrize("dr, dc", [(0, 0), (1, -2), (-3, 3)])
def test_transform_output_moves_the_frame_by_its_kernel(dr, dc):
    """A one-hot kernel at (dr, dc) with the mask fully open is a shift of the frame by (−dr, −dc)
    with zero fill (conv2d is a cross-correlation), written here with slicing; a closed mask gives
    the decoder's pixels; a half-open one their mean."""
    model = ConvLSTMPredictor(1, 3, [4], 3, 2, output="transform", motion_kernel=7, canvas=10).double()
    x = torch.rand(2, 1, 10, 10, dtype=torch.float64)
    kl = _one_hot_kernel_logits(2, 7, dr, dc)
    want = torch.zeros_like(x)
    H = W = 10
    want[..., max(0, -dr):H - max(0, dr), max(0, -dc):W - max(0, dc)] = \
        x[..., max(0, dr):H - max(0, -dr), max(0, dc):W - max(0, -dc)]
    open_mask = torch.cat([torch.zeros_like(x), torch.full_like(x, 50.0)], 1)   # pixels σ(0) = ½, mask ≈ 1
    got = torch.sigmoid(model.transform(x, open_mask, kl))
    torch.testing.assert_close(got, want.clamp(1e-6, 1 - 1e-6), rtol=0, atol=1e-12)
    closed = torch.cat([torch.full_like(x, 1.3), torch.full_like(x, -50.0)], 1)
    torch.testing.assert_close(torch.sigmoid(model.transform(x, closed, kl)),
                               torch.full_like(x, 1 / (1 + math.exp(-1.3))), rtol=0, atol=1e-12)
    half = torch.cat([torch.zeros_like(x), torch.zeros_like(x)], 1)               # mask ½, pixels ½
    torch.testing.assert_close(torch.sigmoid(model.transform(x, half, kl)),
                               (0.5 * want + 0.25).clamp(1e-6, 1 - 1e-6), rtol=0, atol=1e-12)


def test_transform_recurrence_feeds_its_blended_frame_back():
    """The transform predictor's step, written out: the model's own layers and heads, the frame
    moved by conv2d with each clip's softmax kernel, blended, and fed back after the context."""
    torch.manual_seed(1)
    model = ConvLSTMPredictor(1, 3, [4], 3, 2, output="transform", motion_kernel=5, canvas=12).double()
    frames = torch.rand(2, 6, 1, 12, 12, dtype=torch.float64)
    got = model(frames, 3)
    state, x, want = model.init_state(frames[:, 0]), frames[:, 0], []
    for t in range(5):
        z = model.encoder(x)
        h, c = model.layers[0](z, state[0])
        state = [(h, c)]
        dec = model.decoder(h)
        ker = torch.softmax(model.kernel_head(h), 1).view(2, 1, 5, 5)
        moved = torch.cat([F.conv2d(x[b:b + 1], ker[b:b + 1], padding=2) for b in range(2)])
        m = torch.sigmoid(dec[:, 1:2])
        frame = (m * moved + (1 - m) * torch.sigmoid(dec[:, :1])).clamp(1e-6, 1 - 1e-6)
        want.append(torch.log(frame / (1 - frame)))
        x = frames[:, t + 1] if t + 1 < 3 else frame
    torch.testing.assert_close(got, torch.stack(want, 1), rtol=1e-9, atol=1e-9)


def test_transform_arguments_are_checked_by_name():
    with pytest.raises(ValueError, match="^output:"):
        ConvLSTMPredictor(1, 4, [4], 3, 2, output="flow")
    with pytest.raises(ValueError, match="^motion_kernel:"):
        ConvLSTMPredictor(1, 4, [4], 3, 2, output="transform", motion_kernel=4, canvas=8)
    with pytest.raises(ValueError, match="^canvas:"):
        ConvLSTMPredictor(1, 4, [4], 3, 2, output="transform")


# ----------------------------------------------------------------------------- baselines, tracker
def _dot_clip(T=6, H=9, W=10, start=(1, 2), v=(1, 2)):
    """A 2×1-pixel bar (values 1 and 0.5) moving by ``v`` per frame: [1, T, 1, H, W]."""
    clip = torch.zeros(1, T, 1, H, W, dtype=torch.float64)
    for t in range(T):
        r, c = start[0] + t * v[0], start[1] + t * v[1]
        if 0 <= r < H - 1 and 0 <= c < W:
            clip[0, t, 0, r, c], clip[0, t, 0, r + 1, c] = 1.0, 0.5
    return clip


def test_shift_frames_moves_and_fills_with_zeros():
    x = torch.arange(12.0).view(1, 1, 3, 4)
    got = shift_frames(x, torch.tensor([[1, -1]]))
    want = torch.tensor([[[[0., 0., 0., 0.], [1., 2., 3., 0.], [5., 6., 7., 0.]]]])
    assert torch.equal(got, want)
    assert torch.equal(shift_frames(x, torch.tensor([[0, 0]])), x)
    assert torch.equal(shift_frames(x, torch.tensor([[3, 0]])), torch.zeros_like(x))
    with pytest.raises(ValueError, match="^shifts:"):
        shift_frames(x, torch.tensor([[0.5, 0.0]]))
    with pytest.raises(ValueError, match="^shifts:"):
        shift_frames(x, torch.tensor([[1, 1], [0, 0]]))


def test_baselines_on_a_moving_bar():
    clip = _dot_clip()
    context, future = clip[:, :3], clip[:, 3:]
    assert torch.equal(estimate_shift(context[:, 1], context[:, 2], max_shift=3), torch.tensor([[1, 2]]))
    # within the search range only: a motion of 2 columns is not found with max_shift=1
    assert estimate_shift(context[:, 1], context[:, 2], max_shift=1).abs().max() <= 1
    copy = copy_last(context, 3)
    assert copy.shape == (1, 3, 1, 9, 10) and all(torch.equal(copy[:, h], context[:, 2]) for h in range(3))
    shift = shift_last(context, 3, max_shift=3)
    assert torch.equal(shift, future)                              # constant velocity: exact
    # the tracker: the bar's centre of mass is its top pixel + 1/3 row
    com = centre_of_mass(clip[0, :, 0])
    want = torch.tensor([[1 + t + 1 / 3, 2 + 2 * t] for t in range(4)], dtype=torch.float64)
    torch.testing.assert_close(com[:4], want)
    # the bar leaves the canvas after frame 4 (column 12 > 9): an empty frame is "the centre"
    assert clip[0, 5].sum() == 0 and torch.equal(com[5], torch.tensor([4.0, 4.5], dtype=torch.float64))


def test_baseline_and_tracker_arguments_are_checked_by_name():
    clip = _dot_clip()
    with pytest.raises(ValueError, match="^context:"):
        shift_last(clip[:, :1], 2)
    with pytest.raises(ValueError, match="^horizon:"):
        copy_last(clip, 0)
    with pytest.raises(ValueError, match="^max_shift:"):
        estimate_shift(clip[:, 0], clip[:, 1], max_shift=-1)
    with pytest.raises(ValueError, match="^last:"):
        estimate_shift(clip[:, 0], clip[:, 1, :, :5], max_shift=1)
    with pytest.raises(ValueError, match="^frames:"):
        centre_of_mass(-clip[0, 1])


def test_horizon_metrics():
    """PSNR per horizon pools the clips' squared errors (10·log10(1 / MSE_h)); SSIM 1 and tracker
    error 0 for the truth itself; no tracker without single-digit centres."""
    torch.manual_seed(0)
    truth = torch.rand(3, 4, 1, 12, 12, dtype=torch.float64)
    noise = 0.05 * torch.randn_like(truth) * torch.arange(1, 5, dtype=torch.float64)[None, :, None, None, None]
    pred = truth + noise
    s = horizon_metrics(pred, truth)
    mse = noise.pow(2).mean(dim=(0, 2, 3, 4))                            # (F,)
    torch.testing.assert_close(s["psnr"], 10 * torch.log10(1 / mse))
    assert (s["psnr"].diff() < 0).all() and "track_err" not in s
    centres = centre_of_mass(truth.sum(2))
    same = horizon_metrics(truth.clone(), truth, centres)
    torch.testing.assert_close(same["ssim"], torch.ones(4, dtype=torch.float64))
    torch.testing.assert_close(same["track_err"], torch.zeros(4, dtype=torch.float64), rtol=0, atol=1e-9)
    with pytest.raises(ValueError, match="^pred:"):
        horizon_metrics(pred[:, :3], truth)
    with pytest.raises(ValueError, match="^centres:"):
        horizon_metrics(pred, truth, centres[:, :2])


# ----------------------------------------------------------------------------- the task
def test_draw_is_a_pure_function_of_seed_and_step():
    cfg = to_object(compose(FAST))
    task = build_task(cfg, torch.device("cpu"))
    a, b, c = task.draw(3), task.draw(3), task.draw(4)
    assert a["frames"].shape == (4, 10, 1, 24, 24)
    assert torch.equal(a["frames"], b["frames"]) and not torch.equal(a["frames"], c["frames"])


@pytest.mark.train
def test_two_steps_through_genmodels_train(tmp_path):
    cmd = [sys.executable, "-m", "genmodels.train.cli", *FAST, "trainer.threads=1",
           f"hydra.run.dir={tmp_path}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    results = json.loads((tmp_path / "results.json").read_text())
    test = results["test"]
    for metric in ("psnr", "ssim", "track_err"):
        for suffix in ("", "_copy", "_shift", "_blank"):
            assert f"{metric}{suffix}_h1" in test and f"{metric}{suffix}_h6" in test
    assert 0 <= test["psnr_horizons_beating_both"] <= 6
    assert not any(k.endswith("_h1") for k in results["val"])      # validation logs the means only
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    for name in ("prediction_frames.png", "horizon_metrics.png", "prediction.gif", "tracks.png",
                 "loss_curves.png"):
        assert (tmp_path / "figures" / name).stat().st_size > 0
    from PIL import Image
    with Image.open(tmp_path / "figures" / "prediction.gif") as gif:
        assert gif.n_frames == 10                                   # 4 observed + 6 predicted


@pytest.mark.parametrize("override, key", [
    ("model.future_frames=17", "model.future_frames"),            # 10 + 17 > data.frames = 20
    ("model.kernel_size=4", "model.kernel_size"),
    ("model.downsample=3", "model.downsample"),
    ("model.feedback=zz", "model.feedback"),
    ("model.loss=l1", "model.loss"),
    ("model.output=flow", "model.output"),
    ("model.motion_kernel=6", "model.motion_kernel"),
    ("model.context_frames=1", "model.context_frames"),
    ("model.hidden_channels=[]", "model.hidden_channels"),
    ("data=digits", "data"),
    ("data.canvas=25", "model.downsample"),
])
def test_bad_config_values_fail_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        to_object(compose(["experiment=video_predict_digits", override]))


def test_the_experiment_predicts_10_from_10_by_moving_the_last_frame():
    """10 frames in, 10 out; the transform head, trained with teacher forcing (at test time
    ``predict`` always feeds the predictions back: ``test_transform_recurrence_feeds_its_blended_frame_back``)."""
    cfg = to_object(compose(["experiment=video_predict_digits"]))
    assert (cfg.model.context_frames, cfg.model.future_frames) == (10, 10)
    assert cfg.trainer.threads == 1
    assert (cfg.model.output, cfg.model.feedback) == ("transform", "truth")


def test_moving_fashion_trains_a_step(tmp_path):
    import os

    from genmodels.data.images import FASHION_MNIST_DEFAULT_DIR
    from genmodels.train.trainer import Trainer
    if not os.path.isdir(FASHION_MNIST_DEFAULT_DIR):
        pytest.skip("Fashion-MNIST is not installed")
    over = [*FAST, "data=moving_fashion", "trainer.max_steps=1", "trainer.figures=false"]
    res = Trainer(to_object(compose(over)), tmp_path).fit()
    assert res["test"]["psnr_h6"] > 0 and "track_err_shift_h6" in res["test"]
