"""Image-to-video with a motion brush (genmodels/video/{i2v,task_i2v,config_i2v,plots_i2v}.py): the
angle measures on hand-computed cases and on frames moved by known shifts, the crops, the clips,
the guided noise against its formula and through the shared guidance function, a short run
through the trainer, bad configs by name."""

import json
import math

import pytest
import torch
from conftest import compose

import genmodels.diffusion.guidance as guidance
from genmodels.train.config import ConfigError, to_object
from genmodels.train.trainer import Trainer, build_task
from genmodels.video.baselines import shift_frames
from genmodels.video.i2v import (
    DirectionUNet,
    angle_error,
    digit_crops,
    direction_eps_model,
    direction_vector,
    fitted_velocity,
    motion_angle,
    straight_clips,
    tracked_angles,
)
from genmodels.video.task_i2v import other_directions, scale_tag

pytestmark = pytest.mark.video

#: a run small enough for the default suite: seconds
FAST_I2V = ["experiment=i2v_digits", "model.base_channels=8", "model.channel_mults=[1,2]",
            "model.timesteps=50", "model.sample_steps=3", "model.val_sample_clips=4",
            "model.n_figure_clips=2", "data.val_clips=8", "data.test_clips=8",
            "trainer.batch_size=4", "trainer.max_steps=2", "trainer.scheduler.warmup_steps=1",
            "trainer.progress=false", "trainer.eval_every=1", "trainer.log_every=1",
            "trainer.ckpt_every=100", "trainer.threads=1"]


# ----------------------------------------------------------------------------- angles
def test_motion_angle_by_hand():
    d = torch.tensor([[0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [1.0, 0.0], [-1.0, 1.0], [2.0, -2.0]],
                     dtype=torch.float64)                   # (rows, cols): right, up, left, down, ...
    torch.testing.assert_close(motion_angle(d), torch.tensor([0.0, 90.0, 180.0, -90.0, 45.0, -135.0],
                                                             dtype=torch.float64))
    with pytest.raises(ValueError, match="^displacement:"):
        motion_angle(torch.zeros(3, 3))


def test_direction_vector_by_hand():
    u = direction_vector(torch.tensor([0.0, 90.0, 180.0, 225.0], dtype=torch.float64))
    s = math.sqrt(0.5)
    torch.testing.assert_close(u, torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [-s, -s]],
                                               dtype=torch.float64))
    # the displacement a direction asks for, s·(−sin θ, cos θ), has that direction back
    theta = torch.tensor([10.0, 100.0, 200.0, 300.0], dtype=torch.float64)
    rad = torch.deg2rad(theta)
    back = motion_angle(torch.stack([-torch.sin(rad), torch.cos(rad)], -1))
    torch.testing.assert_close(angle_error(back, theta), torch.zeros(4, dtype=torch.float64), atol=1e-9, rtol=0)


def test_angle_error_wraps_by_hand():
    a = torch.tensor([10.0, 180.0, -170.0, 90.0, 359.0, 45.0], dtype=torch.float64)
    b = torch.tensor([350.0, 0.0, 170.0, 90.0, 1.0, 270.0], dtype=torch.float64)
    torch.testing.assert_close(angle_error(a, b), torch.tensor([20.0, 180.0, 20.0, 0.0, 2.0, 135.0],
                                                               dtype=torch.float64))
    torch.testing.assert_close(angle_error(a, torch.tensor(0.0, dtype=torch.float64))[:2],
                               torch.tensor([10.0, 180.0], dtype=torch.float64))     # broadcast


def test_fitted_velocity_by_hand():
    # rows 0, 1, 3 at h = 0, 1, 2: Σ h d_h / Σ h² = (1·1 + 2·3) / (1 + 4) = 7/5; columns exact 2/frame
    c = torch.tensor([[0.0, 5.0], [1.0, 7.0], [3.0, 9.0]], dtype=torch.float64)
    torch.testing.assert_close(fitted_velocity(c), torch.tensor([1.4, 2.0], dtype=torch.float64))
    with pytest.raises(ValueError, match="^centres:"):
        fitted_velocity(c[:1])


def test_known_shifts_give_known_angles():
    """A digit moved by h·(−1, 2) pixels per frame: tracked at atan2(1, 2) = 26.57°; by h·(2, 0): −90°."""
    torch.manual_seed(0)
    canvas = torch.zeros(2, 1, 24, 24, dtype=torch.float64)
    canvas[:, :, 8:14, 6:12] = torch.rand(2, 1, 6, 6, dtype=torch.float64) + 0.1
    steps = [torch.tensor([[-h, 2 * h], [2 * h, 0]]) for h in range(1, 5)]
    frames = torch.stack([shift_frames(canvas, s)[:, 0] for s in steps], 1)   # (2, 4, 24, 24)
    got = tracked_angles(canvas[:, 0], frames)
    torch.testing.assert_close(got, torch.tensor([math.degrees(math.atan2(1, 2)), -90.0],
                                                 dtype=torch.float64))
    with pytest.raises(ValueError, match="^frames:"):
        tracked_angles(canvas[:, 0], frames[:1])


# ----------------------------------------------------------------------------- crops
def test_digit_crops_cut_the_digit_out():
    torch.manual_seed(0)
    img = torch.rand(2, 8, 8) + 0.05                            # full support: the window is unique
    frames = torch.zeros(2, 32, 32)
    frames[0, 3:11, 20:28] = img[0]
    frames[1, 24:32, 0:8] = img[1]
    frames[1, 2, 30] = 0.3                                      # a faint speck far away
    crops = digit_crops(frames, 8)
    assert torch.equal(crops, img)
    # an image with an empty border: every window holding it ties; the one centred on it wins
    glyph = torch.zeros(8, 8)
    glyph[2:6, 3:5] = 1.0                                       # 4×2 block, centre (3.5, 3.5)
    f = torch.zeros(1, 20, 20)
    f[0, 6:14, 9:17] = glyph
    assert torch.equal(digit_crops(f, 8)[0], glyph)
    with pytest.raises(ValueError, match="^size:"):
        digit_crops(frames, 33)


# ----------------------------------------------------------------------------- clips
def test_straight_clips_move_straight_and_stay_inside():
    from genmodels.data.images import load_digits
    d = load_digits()
    clips, angles = straight_clips(d.test, d.test_labels, 64, 7, 32, (1.0, 1.33), seed=3)
    again, angles2 = straight_clips(d.test, d.test_labels, 64, 7, 32, (1.0, 1.33), seed=3)
    assert torch.equal(clips.frames, again.frames) and torch.equal(angles, angles2)
    assert clips.frames.shape == (64, 7, 1, 32, 32) and angles.shape == (64,)
    pos = clips.positions[:, :, 0]                                            # (64, 7, 2)
    assert pos.min() >= 0 and pos.max() <= 32 - 8
    # every frame holds the source image at its drawn position, nothing else
    for i in range(0, 64, 9):
        for t in (0, 6):
            r, c = (int(v) for v in pos[i, t])
            assert torch.equal(clips.frames[i, t, 0, r:r + 8, c:c + 8], d.test[clips.sources[i, 0], 0])
            assert clips.frames[i, t].sum() == pytest.approx(d.test[clips.sources[i, 0]].sum().item(), rel=1e-5)
    # the drawn motion has the requested direction up to the rounding of positions: both ends are
    # rounded by <= 0.5 px per axis, so a true displacement of >= 6 px (six frames of >= 1 px)
    # is off by <= √2 px, which tilts it by at most asin(√2 / 6)
    got = motion_angle((pos[:, -1] - pos[:, 0]).double())
    assert angle_error(got, angles).max() <= math.degrees(math.asin(math.sqrt(2) / 6)) + 1e-6
    assert clips.labels[:, 0].tolist() == d.test_labels[clips.sources[:, 0]].tolist()
    with pytest.raises(ValueError, match="^canvas:"):
        straight_clips(d.test, d.test_labels, 4, 7, 20, (1.0, 1.33))
    with pytest.raises(ValueError, match="^speed:"):
        straight_clips(d.test, d.test_labels, 4, 7, 32, (1.5, 1.0))


def test_other_directions_are_other():
    a = torch.tensor([0.0, 100.0, 350.0, 45.0], dtype=torch.float64)
    torch.testing.assert_close(other_directions(a), torch.tensor([90.0, 280.0, 260.0, 135.0], dtype=torch.float64))
    assert scale_tag(3.0) == "s3" and scale_tag(0.0) == "s0" and scale_tag(1.5) == "s1.5"


# ----------------------------------------------------------------------------- network, guidance
def _net():
    torch.manual_seed(0)
    net = DirectionUNet(3, base_channels=8, channel_mults=(1, 2), num_groups=4).double()
    with torch.no_grad():
        net.null_direction.normal_()                           # ∅ differs from any MLP output
    return net


def test_dropped_directions_do_not_matter():
    net = _net()
    x, key = torch.randn(4, 3, 8, 8, dtype=torch.float64), torch.randn(4, 1, 8, 8, dtype=torch.float64)
    t = torch.tensor([0, 10, 500, 999])
    keep = torch.tensor([True, False, True, False])
    u1, u2 = direction_vector(torch.tensor([0.0, 90.0, 180.0, 270.0], dtype=torch.float64)), \
        direction_vector(torch.tensor([45.0, 45.0, 45.0, 45.0], dtype=torch.float64))
    a, b = net(x, t, key, u1, keep), net(x, t, key, u2, keep)
    assert a.shape == (4, 3, 8, 8)
    torch.testing.assert_close(a[~keep], b[~keep])
    assert not torch.allclose(a[keep], b[keep])
    torch.testing.assert_close(a[~keep], net(x, t, key)[~keep])              # None: ∅ everywhere
    with pytest.raises(ValueError, match="^key:"):
        net(x, t, key[:, :, :4])
    with pytest.raises(ValueError, match="^x:"):
        net(x[:, :2], t, key)
    with pytest.raises(ValueError, match="^keep:"):
        net(x, t, key, u1, keep.long())


@pytest.mark.parametrize("s", [0.0, 1.0, 3.0])
def test_guided_eps_is_the_formula_through_the_shared_function(s, monkeypatch):
    net = _net()
    x, key = torch.randn(3, 3, 8, 8, dtype=torch.float64), torch.randn(3, 1, 8, 8, dtype=torch.float64)
    u = direction_vector(torch.tensor([30.0, 200.0, 310.0], dtype=torch.float64))
    t = torch.tensor([5, 300, 900])
    calls = []
    shared = guidance.classifier_free_guidance

    def spy(*args, **kw):
        calls.append(args[2] if len(args) > 2 else kw["guidance_scale"])
        return shared(*args, **kw)

    monkeypatch.setattr(guidance, "classifier_free_guidance", spy)
    with torch.no_grad():
        got = direction_eps_model(net, key, u, s)(x, t)
        cond = net(x, t, key, u, torch.ones(3, dtype=torch.bool))
        uncond = net(x, t, key, u, torch.zeros(3, dtype=torch.bool))
    torch.testing.assert_close(got, uncond + s * (cond - uncond), rtol=1e-10, atol=1e-10)
    assert calls == ([s] if s not in (0.0, 1.0) else [])        # s = 0, 1: one call, no mixing
    with pytest.raises(ValueError, match="^direction:"):
        direction_eps_model(net, key, u[:2], s)


def _transform_net(k=5, min_gap=0.02):
    torch.manual_seed(0)
    return DirectionUNet(3, base_channels=8, channel_mults=(1, 2), num_groups=4, time_scale=1000.0,
                         output="transform", motion_kernel=k, min_gap=min_gap).double()


def test_transform_moves_the_key_frame_by_one_hot_kernels():
    """A one-hot kernel at (i, j) is a shift by (k//2 − i, k//2 − j) (the convolution is a
    cross-correlation), checked against shift_frames (gathers, zeros in [0, 1] shifted in); the
    mask picks the moved key frame (σ → 1) or the drawn pixels (σ → 0)."""
    k = 5
    net = _transform_net(k)
    torch.manual_seed(1)
    key = torch.rand(2, 1, 9, 9, dtype=torch.float64) * 2 - 1
    pixels = torch.rand(2, 3, 9, 9, dtype=torch.float64) * 2 - 1
    spots = [[(0, 0), (2, 2), (4, 1)], [(1, 3), (3, 0), (2, 4)]]             # (i, j) per clip, frame
    logits = torch.full((2, 3, k * k), -1e4, dtype=torch.float64)
    for b in range(2):
        for h, (i, j) in enumerate(spots[b]):
            logits[b, h, i * k + j] = 1e4
    on = torch.full((2, 3, 9, 9), 1e4, dtype=torch.float64)
    got = net.moved_frames(key, pixels, on, logits.view(2, -1))
    for b in range(2):
        for h, (i, j) in enumerate(spots[b]):
            shift = torch.tensor([[k // 2 - i, k // 2 - j]])
            want = shift_frames((key[b:b + 1] + 1) / 2, shift) * 2 - 1
            torch.testing.assert_close(got[b, h], want[0, 0], rtol=0, atol=1e-12)
    torch.testing.assert_close(net.moved_frames(key, pixels, -on, logits.view(2, -1)), pixels)
    half = net.moved_frames(key, pixels, torch.zeros_like(on), logits.view(2, -1))
    torch.testing.assert_close(half, (got + pixels) / 2)                      # σ(0) = 1/2


def test_match_scores_peak_at_the_true_shift():
    """A frame that is the key frame shifted by (dr, dc) (shift_frames) scores exactly 1 at the
    kernel index of that shift (i, j) = (k//2 − dr, k//2 − dc) and less everywhere else."""
    k = 5
    net = _transform_net(k)
    torch.manual_seed(3)
    key01 = torch.zeros(2, 1, 12, 12, dtype=torch.float64)
    key01[:, :, 4:8, 4:7] = torch.rand(2, 1, 4, 3, dtype=torch.float64) + 0.5
    shifts = [[(0, 0), (2, -1), (-2, 2)], [(1, 1), (-1, 0), (2, 2)]]
    x01 = torch.stack([torch.cat([shift_frames(key01[b:b + 1], torch.tensor([s]))[0] for s in shifts[b]])
                       for b in range(2)])                                     # (2, 3, 12, 12)
    scores = net.match_scores(x01 * 2 - 1, key01 * 2 - 1)
    assert scores.shape == (2, 3, k * k)
    for b in range(2):
        for h, (dr, dc) in enumerate(shifts[b]):
            j = (k // 2 - dr) * k + (k // 2 - dc)
            assert scores[b, h, j].item() == pytest.approx(1.0, abs=1e-12)
            others = torch.cat([scores[b, h, :j], scores[b, h, j + 1:]])
            assert others.max() < 1 - 1e-3


def test_transform_velocity_points_at_the_predicted_frames(monkeypatch):
    """v = (x̂_1 − x_t) / max(1 − t, min_gap): one Euler step of size 1 − t lands on x̂_1."""
    net = _transform_net(min_gap=0.05)
    torch.manual_seed(2)
    x, key = torch.randn(3, 3, 8, 8, dtype=torch.float64), torch.rand(3, 1, 8, 8, dtype=torch.float64)
    x1 = torch.randn(3, 3, 8, 8, dtype=torch.float64)
    monkeypatch.setattr(net, "moved_frames", lambda *a: x1)
    t = torch.tensor([0.0, 0.5, 0.99], dtype=torch.float64)
    with torch.no_grad():
        v = net(x, t, key)
    torch.testing.assert_close(v[:2], (x1[:2] - x[:2]) / (1 - t[:2, None, None, None]))
    torch.testing.assert_close(v[2], (x1[2] - x[2]) / 0.05)                  # 1 − t = 0.01 < min_gap
    torch.testing.assert_close(x[1] + 0.5 * v[1], x1[1])


def test_transform_arguments_are_checked():
    with pytest.raises(ValueError, match="^output:"):
        DirectionUNet(3, base_channels=8, channel_mults=(1, 2), num_groups=4, output="warp")
    with pytest.raises(ValueError, match="^motion_kernel:"):
        DirectionUNet(3, base_channels=8, channel_mults=(1, 2), num_groups=4, output="transform", motion_kernel=4)
    with pytest.raises(ValueError, match="^min_gap:"):
        DirectionUNet(3, base_channels=8, channel_mults=(1, 2), num_groups=4, output="transform", min_gap=1.0)


# ----------------------------------------------------------------------------- the task
def test_draw_is_a_pure_function_of_seed_and_step():
    task = build_task(to_object(compose(FAST_I2V)), torch.device("cpu"))
    clips_a, ang_a = task.clips("train", 4, (0, 3))
    clips_b, ang_b = task.clips("train", 4, (0, 3))
    clips_c, _ = task.clips("train", 4, (0, 4))
    assert torch.equal(clips_a.frames, clips_b.frames) and torch.equal(ang_a, ang_b)
    assert not torch.equal(clips_a.frames, clips_c.frames)
    batch = task.draw(3)
    assert batch["future"].shape == (4, 4, 24, 24) and batch["key"].shape == (4, 1, 24, 24)
    assert batch["future"].min() >= -1 and batch["future"].max() <= 1 and batch["keep"].dtype == torch.bool
    assert batch["t"].is_floating_point() and 0 <= batch["t"].min() and batch["t"].max() <= 1   # flow times
    # the fixed test clips show test images (disjoint from the training images)
    test, _ = task.fixed("test")
    images = task.data.source_images.test
    for i in range(len(test)):
        r, c = (int(v) for v in test.positions[i, 0, 0])
        assert torch.equal(test.frames[i, 0, 0, r:r + 8, c:c + 8], images[test.sources[i, 0], 0])


@pytest.mark.train
@pytest.mark.parametrize("output", ["direct", "transform"])
def test_two_steps_through_the_trainer(tmp_path, output):
    Trainer(to_object(compose([*FAST_I2V, f"model.output={output}"])), tmp_path).fit()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert {r["split"] for r in rows} == {"train", "val", "test"}
    test = json.loads((tmp_path / "results.json").read_text())["test"]
    for tag in ("s0", "s1", "s3"):
        for k in ("angle_err", "angle_err_std", "angle_err_wrong", "agree", "agree_min", "fd",
                  "speed", "wrong_vs_clip"):
            assert math.isfinite(test[f"{k}_{tag}"]), (k, tag)
        assert all(f"agree_{tag}_h{h}" in test and f"fd_{tag}_h{h}" in test for h in range(1, 5))
        assert 0 <= test[f"angle_err_{tag}"] <= 180
    assert test["angle_err_real"] < 8 and test["agree_real"] == 1.0     # real frames: exact crops
    for name in ("brush_frames.png", "brush.gif", "angle_errors.png", "per_frame.png"):
        assert (tmp_path / "figures" / name).stat().st_size > 0
    from PIL import Image
    with Image.open(tmp_path / "figures" / "brush.gif") as gif:
        assert gif.n_frames == 5                                      # the key frame + 4


@pytest.mark.train
def test_ddpm_process_trains_and_samples(tmp_path):
    """model.process=ddpm: Algorithm 1 and DDIM through the same task (one step, no figures)."""
    over = [*FAST_I2V, "model.process=ddpm", "model.output=direct", "trainer.max_steps=1", "trainer.figures=false",
            "model.guidance_scales=[0.0,2.0]"]
    task = build_task(to_object(compose(over)), torch.device("cpu"))
    batch = task.draw(0)
    assert not batch["t"].is_floating_point() and int(batch["t"].max()) < 50
    key = task.fixed("test")[0].frames[:3, 0, 0]
    frames = task.generate(key, torch.tensor([0.0, 90.0, 180.0], dtype=torch.float64), 2.0)
    assert frames.shape == (3, 4, 24, 24) and 0 <= frames.min() and frames.max() <= 1


def test_experiment_composes():
    cfg = to_object(compose(["experiment=i2v_digits"]))
    assert cfg.trainer.threads == 1 and cfg.data.frames == 5 and cfg.model.family == "video_i2v"
    assert cfg.model.process == "flow" and cfg.model.output == "transform"
    assert sorted(cfg.model.guidance_scales) == [0.0, 1.0, 3.0]


def test_images_are_refused_by_name():
    with pytest.raises(ConfigError, match="^invalid config:\n  data: image-to-video trains on moving clips"):
        to_object(compose(["model=i2v_unet", "data=digits"]))


@pytest.mark.parametrize("override, key", [
    ("data.num_digits=2", "data.num_digits"),
    ("data.canvas=19", "data.canvas"),            # 8 + 2·4·1.5 = 20 needed
    ("model.process=sde", "model.process"),
    ("data.image_size=16", "data.image_size"),
    ("model.guidance_scales=[-1.0]", "model.guidance_scales"),
    ("model.direction_dropout=0.0", "model.direction_dropout"),
    ("model.process=ddpm model.output=direct model.sample_steps=2000", "model.sample_steps"),
    ("model.sample_steps=0", "model.sample_steps"),
    ("model.schedule=cubic", "model.schedule"),
    ("model.output=warp", "model.output"),
    ("model.process=ddpm model.output=transform", "model.output"),
    ("model.motion_kernel=4", "model.motion_kernel"),
    ("model.min_gap=0.0", "model.min_gap"),
    ("model.output=transform model.sample_steps=100", "model.sample_steps"),
])
def test_bad_config_values_fail_naming_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        to_object(compose(["experiment=i2v_digits", *override.split()]))
