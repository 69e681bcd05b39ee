"""Moving digits (genmodels/video/data.py): a pure function of the seed, digits that stay on the
canvas and bounce, ground-truth positions that match the drawn frames, splits disjoint by source
image, and arguments checked by name."""

import os

import numpy as np
import pytest
import torch

from conftest import compose
from genmodels.data.images import FASHION_MNIST_DEFAULT_DIR, load_digits
from genmodels.errors import DatasetNotFoundError
from genmodels.train.config import ConfigError, to_object
from genmodels.video.data import MovingDigits, _trajectories, load_moving_digits, render_clips

pytestmark = pytest.mark.video


@pytest.fixture(scope="module")
def digits():
    return load_digits()


@pytest.fixture(scope="module")
def moving(digits):
    return MovingDigits(digits, frames=12, canvas=20, num_digits=1, val_clips=16, test_clips=32)


def test_clips_are_a_pure_function_of_the_seed(digits):
    a = render_clips(digits.train, digits.train_labels, 8, 10, 24, 2, seed=3)
    b = render_clips(digits.train, digits.train_labels, 8, 10, 24, 2, seed=3)
    c = render_clips(digits.train, digits.train_labels, 8, 10, 24, 2, seed=4)
    for name in ("frames", "positions", "centres", "sources", "labels"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert not torch.equal(a.frames, c.frames)
    m1 = MovingDigits(digits, frames=6, val_clips=4, test_clips=4, seed=1)
    m2 = MovingDigits(digits, frames=6, val_clips=4, test_clips=4, seed=1)
    assert torch.equal(m1.test.frames, m2.test.frames)
    assert torch.equal(m1.sample("train", 5, (0, 7)).frames, m2.sample("train", 5, (0, 7)).frames)
    assert not torch.equal(m1.sample("train", 5, (0, 7)).frames, m1.sample("train", 5, (0, 8)).frames)
    assert not torch.equal(m1.sample("train", 5, (0, 7)).frames, m1.sample("train", 5, (1, 7)).frames)


def test_digits_stay_inside_and_bounce(digits):
    """Fast digits over a long clip: every drawn corner lies in [0, canvas − 8], each frame holds
    the whole digit (its total intensity), and the motion reverses exactly at the walls."""
    canvas, T = 16, 60
    clips = render_clips(digits.train, digits.train_labels, 20, T, canvas, 1, speed=(2.0, 3.5), seed=0)
    assert clips.positions.min() >= 0 and clips.positions.max() <= canvas - 8
    mass = clips.frames.sum(dim=(2, 3, 4))                                  # (N, T)
    want = digits.train[clips.sources[:, 0]].sum(dim=(1, 2, 3))
    torch.testing.assert_close(mass, want[:, None].expand_as(mass), rtol=1e-5, atol=1e-4)
    # continuous trajectories equal the straight line p0 + t·v folded into [0, span] (a mirror
    # at each wall): the closed form of constant velocity with elastic bounces
    n, D, span = 50, 2, 8.0
    traj = _trajectories(np.random.default_rng(0), n, T, D, np.array([span, span]), (0.5, 3.0))
    rng = np.random.default_rng(0)                  # the same draws, in the same order
    p0 = rng.uniform(0, span, size=(n, D, 2))
    angle = rng.uniform(0, 2 * np.pi, size=(n, D))
    s = rng.uniform(0.5, 3.0, size=(n, D))
    v = np.stack([s * np.sin(angle), s * np.cos(angle)], -1)
    line = p0[:, None] + np.arange(T)[None, :, None, None] * v[:, None]
    folded = span - np.abs(span - np.mod(line, 2 * span))
    np.testing.assert_allclose(traj, folded, atol=1e-9)
    assert ((line < 0) | (line > span)).any()            # the case does bounce


def test_positions_match_the_frames(digits):
    """The drawn crop at ``positions`` is the source image, and the centre of mass of a
    one-digit frame is ``centres``."""
    clips = render_clips(digits.val, digits.val_labels, 10, 15, 24, 1, seed=5)
    f = clips.frames[:, :, 0]                                               # (N, T, H, W)
    rows = torch.arange(24.0)
    mass = f.sum(dim=(2, 3))
    com = torch.stack([(f.sum(3) * rows).sum(2), (f.sum(2) * rows).sum(2)], -1) / mass[..., None]
    torch.testing.assert_close(com, clips.centres[:, :, 0], rtol=0, atol=1e-4)
    for i in range(10):
        for t in range(15):
            r, c = clips.positions[i, t, 0].long().tolist()
            assert torch.equal(f[i, t, r:r + 8, c:c + 8], digits.val[clips.sources[i, 0], 0])
    assert torch.equal(clips.labels[:, 0], digits.val_labels[clips.sources[:, 0]])


def test_two_digits_overlap_by_maximum(digits):
    clips = render_clips(digits.train, digits.train_labels, 6, 5, 24, 2, seed=1)
    for i in range(6):
        canvas = torch.zeros(24, 24)
        for d in range(2):
            r, c = clips.positions[i, 0, d].long().tolist()
            canvas[r:r + 8, c:c + 8] = torch.maximum(canvas[r:r + 8, c:c + 8],
                                                     digits.train[clips.sources[i, d], 0])
        assert torch.equal(clips.frames[i, 0, 0], canvas)


def test_splits_are_disjoint_by_source_image(moving, digits):
    """A test clip's digit is a test image, and never one of the training images."""
    flat = {s: getattr(digits, s).flatten(1) for s in ("train", "val", "test")}

    def crops(clips):
        out = []
        for i in range(len(clips)):
            r, c = clips.positions[i, 0, 0].long().tolist()
            out.append(clips.frames[i, 0, 0, r:r + 8, c:c + 8].flatten())
        return torch.stack(out)

    def member(x, pool):                               # which rows of x appear in pool
        return (x[:, None] == pool[None]).all(-1).any(-1)

    test_crops, val_crops = crops(moving.test), crops(moving.val)
    train_crops = crops(moving.sample("train", 64, (0, 0)))
    assert member(test_crops, flat["test"]).all() and not member(test_crops, flat["train"]).any()
    assert member(val_crops, flat["val"]).all() and not member(val_crops, flat["train"]).any()
    assert member(train_crops, flat["train"]).all()
    assert not member(train_crops, flat["test"]).any() and not member(train_crops, flat["val"]).any()


@pytest.mark.parametrize("kwargs, name", [
    (dict(n=-1), "n"), (dict(frames=0), "frames"), (dict(canvas=8), "canvas"),
    (dict(num_digits=0), "num_digits"), (dict(speed=(2.0, 1.0)), "speed"),
    (dict(speed=(0.0, 1.0)), "speed"), (dict(seed=-3), "seed"), (dict(frames=2.5), "frames"),
])
def test_render_refuses_bad_arguments_by_name(digits, kwargs, name):
    args = dict(images=digits.train, labels=digits.train_labels, n=2, frames=3, canvas=24)
    with pytest.raises(ValueError, match=f"^{name}:"):
        render_clips(**{**args, **kwargs})


def test_bad_images_labels_and_splits_are_named(digits, moving):
    with pytest.raises(ValueError, match="^images:"):
        render_clips(digits.train[:, 0], digits.train_labels, 2, 3, 24)
    with pytest.raises(ValueError, match="^labels:"):
        render_clips(digits.train, digits.train_labels[:5], 2, 3, 24)
    with pytest.raises(ValueError, match="^split:"):
        moving.sample("training", 2, 0)
    with pytest.raises(ValueError, match="^seed:"):
        moving.sample("train", 2, (0, -1))
    with pytest.raises(ValueError, match="^source:"):
        load_moving_digits("mnist")
    with pytest.raises(ValueError, match="^canvas:"):
        load_moving_digits(canvas=8, val_clips=1, test_clips=1)


def test_data_config_composes_and_checks_values():
    cfg = to_object(compose(["data=moving_digits"]))
    assert (cfg.data.name, cfg.data.canvas, cfg.data.frames) == ("moving_digits", 24, 20)
    for override, key in [("data.canvas=8", "data.canvas"), ("data.speed=[2,1]", "data.speed"),
                          ("data.source=mnist", "data.source"), ("data.num_digits=0", "data.num_digits"),
                          ("data.image_size=0", "data.image_size")]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            to_object(compose(["data=moving_digits", override]))


def test_fashion_variant(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="apt-get install dataset-fashion-mnist"):
        load_moving_digits("fashion_mnist", path=str(tmp_path), canvas=32, image_size=14)
    if not os.path.isdir(FASHION_MNIST_DEFAULT_DIR):
        pytest.skip("Fashion-MNIST is not installed")
    m = load_moving_digits("fashion_mnist", frames=4, canvas=32, image_size=14, val_clips=3, test_clips=3)
    assert m.test.frames.shape == (3, 4, 1, 32, 32) and m.name == "moving_fashion_mnist"
    assert m.test.positions.max() <= 32 - 14
