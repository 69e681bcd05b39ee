"""The GAN task: alternating D-ascent / G-descent steps (eqs. 2.10, 2.11) that each move only their
own network, the generator-loss switch, and short genmodels-train runs of each GAN experiment."""

import json
import math

import pytest
import torch

from conftest import compose
from genmodels.gan.losses import gan_value
from genmodels.train.config import to_object
from genmodels.train.trainer import Trainer, build_task

pytestmark = pytest.mark.gan

TINY = ["model.z_dim=8", "model.width=8", "model.hidden=32", "model.fd_samples=40",
        "model.n_figure_samples=4", "trainer.batch_size=16", "trainer.progress=false",
        "trainer.threads=1", "trainer.log_every=1", "trainer.ckpt_every=100", "trainer.eval_every=0"]


def _task(overrides):
    cfg = to_object(compose(["experiment=gan_digits", *TINY, *overrides]))
    torch.manual_seed(0)
    return cfg, build_task(cfg, torch.device("cpu"))


class SpyOptimize:
    """An ``optimize`` that applies the update and records which named parameters it changed."""

    def __init__(self, task):
        self.task = task
        self.opts = {g: torch.optim.SGD(ps, lr=0.1) for g, ps in task.param_groups().items()}
        self.calls = []

    def __call__(self, loss, group="model"):
        before = {n: p.detach().clone() for n, p in self.task.model.named_parameters()}
        self.opts[group].zero_grad(set_to_none=True)
        loss.backward()
        self.opts[group].step()
        changed = {n for n, p in self.task.model.named_parameters() if not torch.equal(p, before[n])}
        self.calls.append((group, changed, loss.item()))


@pytest.mark.parametrize("arch, d_steps", [("mlp", 1), ("dcgan", 2)])
def test_alternating_steps_update_only_the_intended_network(arch, d_steps):
    cfg, task = _task([f"model.arch={arch}", f"model.d_steps={d_steps}"])
    d_names = {f"discriminator.{n}" for n, _ in task.model.discriminator.named_parameters()}
    g_names = {f"generator.{n}" for n, _ in task.model.generator.named_parameters()}
    groups = task.param_groups()
    assert set(groups) == {"discriminator", "generator"}
    assert {id(p) for p in groups["discriminator"]} == {id(p) for p in task.model.discriminator.parameters()}
    spy = SpyOptimize(task)
    task.training_step(0, task.draw(0), spy)
    assert [c[0] for c in spy.calls] == ["discriminator"] * d_steps + ["generator"]
    for group, changed, _ in spy.calls:
        own = d_names if group == "discriminator" else g_names
        assert changed and changed <= own, f"{group} step changed {sorted(changed - own)}"
    # the G step leaves no gradient on D (D frozen), the D step none on G (G(z) detached)
    assert all(p.requires_grad for p in task.model.discriminator.parameters())


def test_generator_loss_switch_follows_eq_2_11():
    # saturating: mean log(1 − D(G(z))) ≤ 0;  non-saturating: −mean log D(G(z)) ≥ 0
    for kind, sign in (("saturating", -1), ("non_saturating", 1)):
        _, task = _task([f"model.generator_loss={kind}"])
        spy = SpyOptimize(task)
        task.training_step(0, task.draw(0), spy)
        g_loss = spy.calls[-1][2]
        assert sign * g_loss > 0
    with pytest.raises(ValueError, match="model.generator_loss"):
        to_object(compose(["experiment=gan_digits", "model.generator_loss=wasserstein"]))


def test_discriminator_step_ascends_the_value_on_its_batch():
    # one small D step must raise V(D, G) (eq. 2.9) on the batch it was computed on
    _, task = _task(["model.arch=mlp"])
    G, D = task.model.generator, task.model.discriminator
    x = task.train_x[:16]
    with torch.no_grad():
        fake = task.model.generate(torch.randn(16, task.model.z_dim, generator=torch.Generator().manual_seed(1)))
    before = gan_value(D(x), D(fake)).item()
    opt = torch.optim.SGD(D.parameters(), lr=1e-2)
    from genmodels.gan.losses import discriminator_loss
    opt.zero_grad()
    discriminator_loss(D(x), D(fake)).backward()
    opt.step()
    assert gan_value(D(x), D(fake)).item() > before


@pytest.mark.parametrize("experiment", ["gan_digits", "gan_fashion"])
def test_gan_experiments_train_a_few_steps(experiment, tmp_path, monkeypatch):
    extra = []          # digits: the yardstick cached in ~/.cache/genmodels (trained once, ~5 s)
    if experiment == "gan_fashion":
        monkeypatch.setenv("GENMODELS_CACHE", str(tmp_path / "cache"))   # a yardstick of 300 images
        pytest.importorskip("genmodels.data.images")
        from genmodels.data.images import FASHION_MNIST_DEFAULT_DIR
        import os
        if not os.path.isdir(FASHION_MNIST_DEFAULT_DIR):
            pytest.skip("Fashion-MNIST is not installed")
        extra = ["data.limit=300", "data.val_size=100"]
    cfg = to_object(compose([f"experiment={experiment}", *TINY, "trainer.max_steps=3",
                             "trainer.figures=true", *extra]))
    res = Trainer(cfg, tmp_path / "run").fit()
    test = res["test"]
    assert {"fd", "class_entropy", "d_real", "d_fake", "value"} <= set(test)
    assert test["fd"] > 0 and 0 <= test["class_entropy"] <= math.log(10) + 1e-9
    assert 0 < test["d_real"] < 1 and test["value"] < 0
    rows = [json.loads(l) for l in open(tmp_path / "run/metrics.jsonl")]
    assert {"d_loss", "g_loss", "d_real", "d_fake"} <= set(rows[0])
    for name in ("samples.png", "d_probs.png", "loss_curves.png"):
        assert (tmp_path / "run/figures" / name).exists()
