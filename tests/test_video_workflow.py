"""The chapter's video project in miniature (genmodels/video/workflow.py, genmodels/train/runs.py):
the prompt parser on hand cases, the chain on three tiny trained runs (the still is what the
still model samples for that digit with that seed, pasted unchanged as the key frame; the doubled
clip keeps every frame and inserts the interpolation model's middles), the command and its errors
naming the option."""

import math

import pytest
import torch
from conftest import compose

from genmodels.train.config import to_object
from genmodels.train.runs import load_run
from genmodels.train.trainer import Trainer
from genmodels.video import workflow
from genmodels.video.workflow import animate, parse_prompt

pytestmark = pytest.mark.video

TRAIN = ["trainer.batch_size=4", "trainer.max_steps=2", "trainer.scheduler.warmup_steps=1",
         "trainer.progress=false", "trainer.eval_every=2", "trainer.log_every=1",
         "trainer.ckpt_every=100", "trainer.threads=1", "trainer.figures=false"]
RUNS = {
    "still": ["experiment=cfg_digits", "model.base_channels=8", "model.channel_mults=[1,2]",
              "model.sample_steps=4", "model.timesteps=20", "model.fd_samples=20",
              "model.n_figure_samples=4", *TRAIN],
    "video": ["experiment=i2v_digits", "model.base_channels=8", "model.channel_mults=[1,2]",
              "model.sample_steps=3", "model.val_sample_clips=4", "data.val_clips=8",
              "data.test_clips=8", *TRAIN],
    "interp": ["experiment=interp_digits", "model.width=4", "data.frames=6", "data.val_clips=4",
               "data.test_clips=4", *TRAIN],
}


@pytest.mark.parametrize("prompt, digit, angle", [
    ("a seven moving up and to the right", 7, 45.0),
    ("7, left", 7, 180.0),
    ("Two going DOWN-LEFT", 2, 225.0),
    ("a three", 3, None),
    ("zero: up, then down, right", 0, 0.0),                 # up and down cancel
    ("the 9 goes down", 9, 270.0),
])
def test_parse_prompt_by_hand(prompt, digit, angle):
    assert parse_prompt(prompt) == (digit, angle)


@pytest.mark.parametrize("prompt", ["nothing here", "a 7 and a 3", "17 up", ""])
def test_parse_prompt_needs_exactly_one_digit(prompt):
    with pytest.raises(ValueError, match="^prompt:"):
        parse_prompt(prompt)
    with pytest.raises(ValueError, match="^prompt:"):
        parse_prompt(None)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = {}
    for name, over in RUNS.items():
        d = tmp_path_factory.mktemp(name)
        Trainer(to_object(compose(over)), d).fit()
        out[name] = d
    return out


@pytest.fixture(scope="module")
def tasks(runs):
    return (load_run(runs["still"], "guided_diffusion"), load_run(runs["video"], "video_i2v"),
            load_run(runs["interp"], "video_interp"))


def test_the_chain_keeps_the_still_and_every_frame(tasks):
    still_task, video_task, interp_task = tasks
    res = animate("a four moving up", still_task, video_task, interp_task, seed=3)
    assert res["digit"] == 4 and res["angle"] == pytest.approx(90.0)
    g = torch.Generator().manual_seed(3)
    x = still_task.sample_raw(1, labels=torch.tensor([4]), guidance_scale=3.0, generator=g)
    torch.testing.assert_close(res["still"], ((x.clamp(-1, 1) + 1) / 2)[0, 0])   # the same draw
    frames, doubled = res["frames"], res["doubled"]
    F, canvas = video_task.F, video_task.data.canvas
    assert frames.shape == (F + 1, canvas, canvas) and doubled.shape == (2 * F + 1, canvas, canvas)
    c = (canvas - 8) // 2
    assert torch.equal(frames[0, c:c + 8, c:c + 8], res["still"])                  # pasted unchanged
    assert frames[0].sum() == pytest.approx(float(res["still"].sum()))            # and nothing else
    assert torch.equal(doubled[::2], frames)                                      # every frame kept
    mids = interp_task.predictions(frames[:-1, None], frames[1:, None])["model"][:, 0]
    torch.testing.assert_close(doubled[1::2], mids)
    assert 0 <= float(doubled.min()) and float(doubled.max()) <= 1
    res2 = animate("a four", still_task, video_task, None, direction=90.0, seed=3)
    assert torch.equal(res2["frames"], frames) and res2["doubled"] is None         # same seed, same clip


def test_bad_arguments_are_named(tasks):
    still_task, video_task, interp_task = tasks
    with pytest.raises(ValueError, match="^prompt: .*names no direction"):
        animate("a four", still_task, video_task)
    with pytest.raises(ValueError, match="^direction:"):
        animate("a four", still_task, video_task, direction=math.nan)
    with pytest.raises(ValueError, match="^guidance:"):
        animate("a four up", still_task, video_task, guidance=-1)
    with pytest.raises(ValueError, match="^seed:"):
        animate("a four up", still_task, video_task, seed=-2)
    with pytest.raises(ValueError, match="^--still-run:"):
        animate("a four up", video_task, video_task)
    with pytest.raises(ValueError, match="^--interp-run:"):
        animate("a four up", still_task, video_task, still_task)


def test_the_command_writes_the_clip_and_names_a_wrong_run(runs, tmp_path, capsys):
    out = tmp_path / "clip.gif"
    assert workflow.main(["a six moving left", "--still-run", str(runs["still"]), "--video-run",
                          str(runs["video"]), "--interp-run", str(runs["interp"]), "--out", str(out)]) == 0
    assert out.stat().st_size > 0 and (tmp_path / "clip_stages.png").stat().st_size > 0
    from PIL import Image
    with Image.open(out) as gif:
        assert gif.n_frames == 2 * 4 + 1                                          # the doubled clip
    assert "digit 6, towards 180°" in capsys.readouterr().out
    assert workflow.main(["a six left", "--still-run", str(runs["video"]), "--video-run",
                          str(runs["video"]), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("genmodels-animate: --still-run: ") and "'video_i2v' run" in err
    assert workflow.main(["a six left", "--still-run", str(tmp_path / "nowhere"), "--video-run",
                          str(runs["video"]), "--out", str(out)]) == 2
    assert capsys.readouterr().err.startswith("genmodels-animate: --still-run: no checkpoint")
    assert workflow.main(["a six left", "--still-run", str(runs["still"]), "--video-run",
                          str(runs["video"]), "--out", str(tmp_path / "clip.png")]) == 2
    assert "--out:" in capsys.readouterr().err
