"""The diffusion task: Algorithm 1 training and Algorithm 2 / DDIM / Euler–Maruyama sampling through
the trainer, exact resume (EMA included), the SDE's noise parametrisation of the score, the EMA
update, the 2-D toy data, and a few genmodels-train steps of every diffusion experiment."""

import json
import math
import os
import shutil
import subprocess
import sys

import pytest
import torch

from conftest import compose
from genmodels.data.images import FASHION_MNIST_DEFAULT_DIR
from genmodels.data.toy2d import gaussian_mixture_2d, mixture_centers
from genmodels.diffusion.models import MLPDenoiser
from genmodels.diffusion.sde import score_matching_loss
from genmodels.diffusion.task import DiffusionModel, vp_sde_std
from genmodels.train.config import ConfigError, to_object
from genmodels.train.trainer import Trainer, build_task

pytestmark = [pytest.mark.diffusion, pytest.mark.ddpm]

TINY = ["model.base_channels=8", "model.channel_mults=[1,2]", "model.timesteps=20",
        "model.sample_steps=5", "model.hidden=16", "model.n_layers=1", "model.fd_samples=20",
        "model.n_figure_samples=4", "trainer.batch_size=16", "trainer.max_steps=3",
        "trainer.scheduler.warmup_steps=1", "trainer.progress=false", "trainer.threads=1",
        "trainer.log_every=1", "trainer.eval_every=2", "trainer.ckpt_every=100",
        "trainer.figures=false"]
TIMING = ("sample_s_per_image", "sample_cpu_s_per_image")


def _fit(out, overrides):
    trainer = Trainer(to_object(compose([*TINY, *overrides])), out)
    return trainer, trainer.fit()


def _untimed(d):
    return {k: v for k, v in d.items() if k not in TIMING and k != "train_time_s"}


@pytest.mark.parametrize("experiment, figures", [
    ("ddpm_digits", ["samples.png", "denoising_chain.png"]),
    ("sde_digits", ["samples.png", "denoising_chain.png"]),
    ("ddpm_toy2d", ["toy2d_diffusion.png"]),
    ("ddpm_fashion", []),
])
def test_diffusion_experiments_train_a_few_steps(experiment, figures, tmp_path, monkeypatch):
    extra = [f"experiment={experiment}", "trainer.figures=" + ("true" if figures else "false")]
    if experiment == "ddpm_toy2d":
        extra += ["data.n_train=64", "data.n_val=32", "data.n_test=32"]
    if experiment == "ddpm_fashion":
        if not os.path.isdir(FASHION_MNIST_DEFAULT_DIR):
            pytest.skip("Fashion-MNIST is not installed")
        monkeypatch.setenv("GENMODELS_CACHE", str(tmp_path / "cache"))   # a yardstick of 300 images
        extra += ["data.limit=300", "data.val_size=100"]
    _, res = _fit(tmp_path, extra)
    test = res["test"]
    assert math.isfinite(test["loss"]) and test["fd"] >= 0 and test["fd_samples"] == 20
    assert 0 <= test["class_entropy"] <= math.log(10) + 1e-9
    rows = [json.loads(l) for l in open(tmp_path / "metrics.jsonl")]
    assert "val" in [r["split"] for r in rows] and "loss" in rows[0]
    for name in figures + (["loss_curves.png"] if figures else []):
        assert (tmp_path / "figures" / name).stat().st_size > 0


def test_ddpm_resume_after_halt_equals_uninterrupted_run(tmp_path):
    run = ["experiment=ddpm_digits", "trainer.max_steps=6", "trainer.ckpt_every=2"]
    full, full_res = _fit(tmp_path / "full", run)
    halted, res = _fit(tmp_path / "split", run + ["trainer.halt_after=3"])
    assert res is None and halted.step == 3
    resumed, resumed_res = _fit(tmp_path / "split", run)
    assert _untimed(resumed_res["test"]) == _untimed(full_res["test"])
    for (n, p), (_, q) in zip(full.task.model.state_dict().items(), resumed.task.model.state_dict().items()):
        assert torch.equal(p, q), n                              # the EMA copy included
    assert any(k.startswith("ema.") for k in full.task.model.state_dict())

    def rows(path):
        return [_untimed(json.loads(l)) for l in open(path)]
    assert rows(tmp_path / "split/metrics.jsonl") == rows(tmp_path / "full/metrics.jsonl")


def test_ema_update_by_hand():
    net = torch.nn.Linear(3, 2)
    model = DiffusionModel(net, ema_decay=0.9)
    ema0 = [p.detach().clone() for p in model.ema.parameters()]
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    model.update_ema(step=1000)                                  # warm-up over: d = 0.9
    for e0, e, p in zip(ema0, model.ema.parameters(), net.parameters()):
        torch.testing.assert_close(e, 0.9 * e0 + 0.1 * p)
    model.update_ema(step=0)                                     # warm-up: d = min(0.9, 1/10)
    for e, p in zip(model.ema.parameters(), net.parameters()):
        assert not e.requires_grad
    assert DiffusionModel(torch.nn.Linear(3, 2), ema_decay=0.0).ema is None


def test_vp_sde_std_closed_form(f64):
    t = torch.tensor([1e-3, 0.25, 0.5, 1.0])
    integral = 0.1 * t + 0.5 * (20.0 - 0.1) * t ** 2            # ∫_0^t β(s) ds
    torch.testing.assert_close(vp_sde_std(t, 0.1, 20.0), (1 - torch.exp(-integral)).sqrt(),
                               atol=1e-12, rtol=0)


def test_sde_score_parametrisation_is_noise_regression(f64, gen):
    # s_θ = −net/σ turns σ²‖s_θ + ε/σ‖² into ‖ε − net(x_t, t)‖² (written out here by hand)
    cfg = to_object(compose(["experiment=ddpm_toy2d", "model.process=sde", *TINY[:7]]))
    task = build_task(cfg, torch.device("cpu"))
    net = MLPDenoiser(2, hidden=16, n_layers=1, time_scale=1000.0)
    x0 = torch.randn(8, 2, generator=gen)
    t = torch.rand(8, generator=gen) * 0.9 + 0.05
    eps = torch.randn(8, 2, generator=gen)
    integral = 0.1 * t + 0.5 * (20.0 - 0.1) * t ** 2
    a, sigma = torch.exp(-0.5 * integral)[:, None], (1 - torch.exp(-integral)).sqrt()[:, None]
    x_t = a * x0 + sigma * eps
    expected = ((eps - net(x_t, t)) ** 2).mean()
    got = score_matching_loss(task._score_fn(net), x0, t=t, noise=eps)
    torch.testing.assert_close(got, expected, atol=1e-10, rtol=0)


@pytest.mark.parametrize("process", ["ddpm", "sde"])
def test_the_drawn_batch_trains_through_the_spec_loss(process):
    """``draw`` takes t and ε from the SPEC functions' own draw (ddpm_draw, score_matching_draw):
    the step's loss on the drawn batch is bit-for-bit the loss that draws them itself."""
    from genmodels.diffusion.ddpm import ddpm_loss
    cfg = to_object(compose(["experiment=ddpm_toy2d", f"model.process={process}", *TINY[:9]]))
    task = build_task(cfg, torch.device("cpu"))
    torch.manual_seed(5)
    batch = task.draw(3)
    assert {k: v.shape[0] for k, v in batch.items()} == {"x0": 16, "t": 16, "noise": 16}
    got = task.loss(task.model.net, batch["x0"], batch["t"], batch["noise"])
    torch.manual_seed(5)
    if process == "ddpm":
        want = ddpm_loss(task.model.net, batch["x0"], task.schedule)
    else:
        m = cfg.model
        want = score_matching_loss(task._score_fn(task.model.net), batch["x0"], m.beta_min,
                                   m.beta_max)
    assert torch.equal(got, want)


def test_toy2d_mixture_matches_its_definition():
    d = gaussian_mixture_2d(n_train=40_000, n_val=10, n_test=10, modes=8, radius=2.0, std=0.15, seed=3)
    centers = mixture_centers(8, 2.0)
    torch.testing.assert_close(centers.norm(dim=1), torch.full((8,), 2.0))
    for k in range(8):                                           # Monte Carlo: mean and std per mode
        pts = d.train[d.train_labels == k]
        assert (pts.mean(0) - centers[k]).abs().max() < 0.01
        assert abs(pts.std(0).mean().item() - 0.15) < 0.01
    counts = torch.bincount(d.train_labels, minlength=8).float()
    assert (counts / counts.sum() - 1 / 8).abs().max() < 0.01
    idx, dist = d.nearest_mode(centers + 0.01)
    assert torch.equal(idx, torch.arange(8))
    again = gaussian_mixture_2d(n_train=40_000, n_val=10, n_test=10, modes=8, radius=2.0, std=0.15, seed=3)
    assert torch.equal(again.test, d.test)
    with pytest.raises(ValueError, match="std"):
        gaussian_mixture_2d(std=0.0)


def test_bad_diffusion_configs_name_the_key():
    with pytest.raises(ConfigError, match="model.sample_steps"):
        to_object(compose(["experiment=ddpm_digits", "model.sampler=ddim", "model.timesteps=10",
                                 "model.sample_steps=20"]))
    with pytest.raises(ConfigError, match="model.process"):
        to_object(compose(["experiment=ddpm_digits", "model.process=flow"]))
    with pytest.raises(ValueError, match="model.arch"):
        build_task(to_object(compose(["experiment=ddpm_digits", "model.arch=mlp"])), torch.device("cpu"))


def test_genmodels_train_command_runs_ddpm_toy2d(tmp_path):
    exe = shutil.which("genmodels-train")
    cmd = [exe] if exe else [sys.executable, "-m", "genmodels.train.cli"]
    args = ["experiment=ddpm_toy2d", *[o for o in TINY if "channel" not in o],
            "data.n_train=64", "data.n_val=32", "data.n_test=32", f"hydra.run.dir={tmp_path}"]
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["step"] == 3 and {"fd", "class_entropy", "off_mode"} <= set(res["test"])
