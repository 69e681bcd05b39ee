"""EWC experiment (section 2.2.2): real trainer steps, λ = 0 equals fine-tuning, splits, configs."""

import pytest
import torch

from conftest import compose
from genmodels.data import load_digits
from genmodels.train.config import ConfigError, to_object
from genmodels.train.trainer import Trainer
from genmodels.transfer.ewc import ewc_penalty
from genmodels.transfer.models import MultiHeadMLP
from genmodels.transfer.task import METHODS, make_tasks

pytestmark = pytest.mark.transfer

TINY = ["experiment=ewc_split", "model.hidden=32", "model.steps_a=15", "model.curve_every=5",
        "trainer.max_steps=30", "trainer.log_every=5", "trainer.ckpt_every=10",
        "trainer.progress=false", "trainer.figures=false"]


def _train(out_dir, extra=()):
    trainer = Trainer(to_object(compose(TINY + list(extra))), out_dir)
    return trainer, trainer.fit()


def test_trains_a_then_b_and_reports_every_method(tmp_path):
    trainer, res = _train(tmp_path)
    for m in METHODS:
        for t in ("A", "B"):
            assert 0 <= res["test"][f"{m}_acc_{t}"] <= 1
    assert 0 <= res["test"]["acc_A_before_B"] <= 1
    assert trainer.task.fisher is not None and trainer.task.curve
    assert trainer.task.figures(tmp_path / "figures")[0].exists()    # forgetting.png
    # the copies are identical after task A, and differ after task B
    nets = trainer.task.model
    assert not torch.equal(nets["finetune"].trunk[0].weight, nets["ewc"].trunk[0].weight)


def test_ewc_with_lambda_zero_is_plain_finetuning(tmp_path):
    trainer, res = _train(tmp_path, ["model.ewc_lambda=0"])
    for p, q in zip(trainer.task.model["finetune"].parameters(),
                    trainer.task.model["ewc"].parameters()):
        assert torch.equal(p, q)
    for t in ("A", "B"):
        assert res["test"][f"ewc_acc_{t}"] == res["test"][f"finetune_acc_{t}"]
        assert res["val"][f"ewc_acc_{t}"] == res["val"][f"finetune_acc_{t}"]


def test_a_large_penalty_keeps_the_weights_near_the_anchor(tmp_path):
    trainer, _ = _train(tmp_path, ["model.ewc_lambda=1e6", "model.l2_lambda=100"])
    task = trainer.task
    drift = {m: sum(((p - task.anchor[k]) ** 2).sum().item()
                    for k, p in task.model[m].trunk.named_parameters(prefix="trunk"))
             for m in METHODS}
    assert drift["ewc"] < drift["finetune"] and drift["l2"] < drift["finetune"]


def test_resume_after_halt_equals_uninterrupted_run(tmp_path):
    full, full_res = _train(tmp_path / "full")
    _train(tmp_path / "split", ["trainer.halt_after=20"])   # halted during task B
    resumed, res = _train(tmp_path / "split")
    assert res["test"] == full_res["test"]
    for p, q in zip(full.task.model.parameters(), resumed.task.model.parameters()):
        assert torch.equal(p, q)


def test_penalties_act_on_the_shared_trunk_and_l2_is_ewc_with_unit_fisher(tmp_path):
    trainer, _ = _train(tmp_path)
    task = trainer.task
    weights = task._l2_weights()
    assert set(weights) == set(task.fisher) == {k for k, _ in
                                                task.model["ewc"].trunk.named_parameters("trunk")}
    net = task.model["l2"]
    by_hand = sum(0.5 * ((dict(net.named_parameters())[k] - task.anchor[k]) ** 2).sum()
                  for k in weights)
    assert torch.allclose(ewc_penalty(net, task.anchor, weights), by_hand)


def test_splits():
    data = load_digits()
    tasks, head, sizes = make_tasks(data, "classes")
    assert sizes == [5, 5] and head == {"A": 0, "B": 1}
    assert tasks["A"]["train"][1].max() <= 4 and tasks["B"]["train"][1].max() <= 4
    assert len(tasks["A"]["test"][0]) + len(tasks["B"]["test"][0]) == len(data.test)
    tasks, head, sizes = make_tasks(data, "permuted", permutation_seed=3)
    xa, ya = tasks["A"]["train"]
    xb, yb = tasks["B"]["train"]
    assert sizes == [10] and head == {"A": 0, "B": 0} and torch.equal(ya, yb)
    assert torch.equal(xa.sort(dim=1).values, xb.sort(dim=1).values)   # same pixels, moved
    assert not torch.equal(xa, xb)


def test_multihead_mlp_heads():
    net = MultiHeadMLP(64, 16, 2, [5, 3])
    x = torch.randn(4, 1, 8, 8)
    assert net(x, 0).shape == (4, 5) and net(x, 1).shape == (4, 3)
    with pytest.raises(ValueError, match="head"):
        net(x, 2)
    with pytest.raises(ValueError, match="head_sizes"):
        MultiHeadMLP(64, 16, 2, [])


def test_steps_a_must_leave_steps_for_b(tmp_path):
    with pytest.raises(ValueError, match="steps_a"):
        _train(tmp_path, ["model.steps_a=30"])


@pytest.mark.parametrize("override, key", [
    ("model.ewc_lambda=-1", "model.ewc_lambda"),
    ("model.l2_lambda=-0.5", "model.l2_lambda"),
    ("model.split=rotated", "model.split"),
    ("model.steps_a=0", "model.steps_a"),
])
def test_bad_ewc_config_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        to_object(compose(["experiment=ewc_split", override]))
