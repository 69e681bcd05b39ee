"""The flow-matching task and the class-conditional (classifier-free guidance) DDPM task through the
trainer: a few steps of each experiment, the drawn batch trains through the SPEC loss, label
dropout, guided sampling with the yardstick's class accuracy, exact resume, bad configs."""

import json
import math
import os

import pytest
import torch

from conftest import compose
from genmodels.data.images import FASHION_MNIST_DEFAULT_DIR
from genmodels.diffusion.ddpm import ddpm_loss
from genmodels.flow import flow_matching_loss
from genmodels.train.config import ConfigError, to_object
from genmodels.train.task import batch_indices
from genmodels.train.trainer import Trainer, build_task

pytestmark = [pytest.mark.flow, pytest.mark.diffusion, pytest.mark.train]

TINY = ["model.base_channels=8", "model.channel_mults=[1,2]", "model.sample_steps=4",
        "model.fd_samples=20", "model.n_figure_samples=4", "trainer.batch_size=16",
        "trainer.max_steps=3", "trainer.scheduler.warmup_steps=1", "trainer.progress=false",
        "trainer.threads=1", "trainer.log_every=1", "trainer.eval_every=2",
        "trainer.ckpt_every=100", "trainer.figures=false"]
GUIDED = ["model.timesteps=20"]
TIMING = ("sample_s_per_image", "sample_cpu_s_per_image")


def _fit(out, overrides):
    trainer = Trainer(to_object(compose([*TINY, *overrides])), out)
    return trainer, trainer.fit()


@pytest.mark.slow                             # ~15 s: the first run trains the digits yardstick
@pytest.mark.parametrize("experiment, extra, figures", [
    ("flow_digits", [], ["samples.png", "flow_chain.png"]),
    ("cfg_digits", GUIDED, ["samples_s0.png", "samples_s1.png", "samples_s3.png"]),
    ("flow_fashion", ["data.limit=300", "data.val_size=100"], ["samples.png", "flow_chain.png"]),
])
def test_experiments_train_a_few_steps(experiment, extra, figures, tmp_path, monkeypatch):
    if experiment == "flow_fashion":
        if not os.path.isdir(FASHION_MNIST_DEFAULT_DIR):
            pytest.skip("Fashion-MNIST is not installed")
        monkeypatch.setenv("GENMODELS_CACHE", str(tmp_path / "cache"))   # a yardstick of 300 images
    _, res = _fit(tmp_path, [f"experiment={experiment}", "trainer.figures=true", *extra])
    test = res["test"]
    assert math.isfinite(test["loss"]) and test["fd"] >= 0 and test["fd_samples"] == 20
    assert 0 <= test["class_entropy"] <= math.log(10) + 1e-9
    if experiment == "cfg_digits":
        assert 0 <= test["class_accuracy"] <= 1 and round(test["class_accuracy"] * 20) == pytest.approx(test["class_accuracy"] * 20, abs=1e-5)
    rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
    assert "val" in [r["split"] for r in rows]
    for name in figures + ["loss_curves.png"]:
        assert (tmp_path / "figures" / name).stat().st_size > 0


def test_flow_batch_trains_through_the_spec_loss():
    """``draw`` takes t and x0 from flow_matching_draw: the step's loss on the drawn batch is
    bit-for-bit the loss that draws them itself from the same RNG state."""
    task = build_task(to_object(compose(["experiment=flow_digits", *TINY])), torch.device("cpu"))
    torch.manual_seed(5)
    batch = task.draw(3)
    assert {k: v.shape[0] for k, v in batch.items()} == {"x1": 16, "t": 16, "x0": 16}
    assert batch["x1"].min() >= -1 and batch["x1"].max() <= 1          # images scaled to [−1, 1]
    got = flow_matching_loss(task.model.net, batch["x1"], t=batch["t"], x0=batch["x0"])
    torch.manual_seed(5)                     # the batch's images come from their own generator
    want = flow_matching_loss(task.model.net, batch["x1"])
    assert torch.equal(got, want)


def test_flow_sampler_takes_the_requested_number_of_network_calls():
    task = build_task(to_object(compose(["experiment=flow_digits", *TINY])), torch.device("cpu"))
    calls = []
    net = task.model.sampling_net
    x = task.sample_raw(3, steps=7, net=lambda x, t: (calls.append(float(t[0])), net(x, t))[1])
    assert x.shape == (3, 1, 8, 8)
    assert calls == pytest.approx([i / 7 for i in range(7)])


def test_flow_resume_after_halt_equals_uninterrupted_run(tmp_path):
    run = ["experiment=flow_digits", "trainer.max_steps=6", "trainer.ckpt_every=2"]
    full, full_res = _fit(tmp_path / "full", run)
    halted, res = _fit(tmp_path / "split", run + ["trainer.halt_after=3"])
    assert res is None and halted.step == 3
    resumed, resumed_res = _fit(tmp_path / "split", run)
    drop = lambda d: {k: v for k, v in d.items() if k not in TIMING}
    assert drop(resumed_res["test"]) == drop(full_res["test"])
    for (n, p), (_, q) in zip(full.task.model.state_dict().items(), resumed.task.model.state_dict().items()):
        assert torch.equal(p, q), n


def test_guided_task_drops_labels_at_the_configured_rate_and_trains_through_ddpm_loss():
    cfg = to_object(compose(["experiment=cfg_digits", *TINY, *GUIDED, "trainer.batch_size=400",
                             "model.label_dropout=0.25"]))
    task = build_task(cfg, torch.device("cpu"))
    torch.manual_seed(0)
    batch = task.draw(0)
    null = task.num_classes
    dropped = (batch["y"] == null).float().mean().item()
    assert task.model.net.null_label == null == 10
    assert abs(dropped - 0.25) < 0.07                           # binomial sd ≈ 0.022
    # the labels that are kept are the images' own (the batch's indices, recomputed)
    idx = batch_indices(len(task.train_x), 400, 0, cfg.seed, torch.device("cpu"))
    assert torch.equal(batch["x0"], task.train_x[idx])
    kept = batch["y"] != null
    assert torch.equal(batch["y"][kept], task.train_y[idx][kept])
    net = task.model.net
    want = ddpm_loss(lambda x, t: net(x, t, batch["y"]), batch["x0"], task.schedule, t=batch["t"],
                     noise=batch["noise"])
    got = task.conditional_loss(net, batch["x0"], batch["y"], batch["t"], batch["noise"])
    assert torch.equal(got, want)
    no_drop = build_task(to_object(compose(["experiment=cfg_digits", *TINY, *GUIDED,
                                            "model.label_dropout=0"])), torch.device("cpu"))
    assert (no_drop.draw(0)["y"] < null).all()


def test_guided_sampling_asks_for_balanced_classes_and_scores_them():
    cfg = to_object(compose(["experiment=cfg_digits", *TINY, *GUIDED]))
    task = build_task(cfg, torch.device("cpu"))
    seen = []
    net = task.model.sampling_net
    spy = lambda x, t, y: (seen.append(y.clone()), net(x, t, y))[1]
    task.sample_raw(12, net=spy, guidance_scale=2.0, steps=3)
    assert len(seen) == 3                                        # one doubled call per step
    assert seen[0].tolist() == [k % 10 for k in range(12)] + [10] * 12
    seen.clear()
    task.sample_raw(12, net=spy, guidance_scale=0.0, steps=3)
    assert seen[0].tolist() == [10] * 12                         # s = 0: unconditional only
    q = task.guided_quality("test", 20, guidance_scale=1.0)
    assert 0 <= q["class_accuracy"] <= 1 and q["fd_samples"] == 20


def test_bad_configs_name_the_key():
    with pytest.raises(ConfigError, match="model.label_dropout"):
        to_object(compose(["experiment=cfg_digits", "model.label_dropout=1.0"]))
    with pytest.raises(ConfigError, match="model.guidance_scale"):
        to_object(compose(["experiment=cfg_digits", "model.guidance_scale=-1"]))
    with pytest.raises(ConfigError, match="model.process"):
        to_object(compose(["experiment=cfg_digits", "model.process=sde"]))
    with pytest.raises(ConfigError, match="model.sample_steps"):
        to_object(compose(["experiment=flow_digits", "model.sample_steps=0"]))
    with pytest.raises(ValueError, match="data"):
        build_task(to_object(compose(["experiment=flow_digits", "data=toy2d"])), torch.device("cpu"))
