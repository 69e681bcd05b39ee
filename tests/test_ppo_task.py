"""PPO as a trainer Task: real training steps, exact resume, the rollout's bookkeeping, configs."""

import json

import numpy as np
import pytest
import torch
from torch.distributions import Categorical

from conftest import compose
from genmodels.rl.agent import ActorCritic
from genmodels.rl.envs import evaluate_policy, make_vec_env
from genmodels.rl.task_ppo import bootstrap_truncated
from genmodels.train.config import ConfigError, to_object
from genmodels.train.trainer import Trainer

pytestmark = pytest.mark.rl

TINY = ["experiment=ppo_cartpole", "model.num_envs=4", "model.num_steps=16",
        "model.num_minibatches=2", "model.update_epochs=2", "model.eval_episodes=3",
        "trainer.max_steps=6", "trainer.log_every=1", "trainer.ckpt_every=2",
        "trainer.progress=false", "trainer.figures=false"]
#: wall-clock metrics: differ between two otherwise identical runs
TIMING = {"sps", "wall_s", "train_time_s", "solved_time_s"}


def _train(out_dir, extra=()):
    trainer = Trainer(to_object(compose(TINY + list(extra))), out_dir)
    return trainer, trainer.fit()


def _metrics(path):
    rows = [json.loads(line) for line in open(path)]
    return [{k: v for k, v in r.items() if k not in TIMING} for r in rows]


def test_training_steps_log_ppo_diagnostics_and_evaluate(tmp_path):
    trainer, res = _train(tmp_path)
    rows = [r for r in _metrics(tmp_path / "metrics.jsonl") if r["split"] == "train"]
    assert len(rows) == 6
    for key in ("approx_kl", "clip_frac", "entropy", "value_loss", "return_mean", "env_steps"):
        assert all(np.isfinite(r[key]) for r in rows), key
    # one step = one rollout of 4 envs x 16 steps; autoreset steps are not counted
    assert 6 * 4 * 15 <= rows[-1]["env_steps"] <= 6 * 4 * 16
    assert 0 <= rows[-1]["clip_frac"] <= 1 and rows[-1]["approx_kl"] >= 0
    assert res["test"]["episodes"] == 3 and 8 <= res["test"]["return_mean"] <= 500
    paths = trainer.task.figures(tmp_path / "figures")
    assert [p.name for p in paths] == ["episodic_return.png"] and paths[0].exists()


def test_linear_lr_annealing_comes_from_the_trainer(tmp_path):
    _train(tmp_path)
    lrs = [r["lr"] for r in _metrics(tmp_path / "metrics.jsonl") if r["split"] == "train"]
    peak = 2.5e-3
    assert lrs == pytest.approx([peak * (1 - k / 6) for k in range(6)])


def test_resume_after_halt_equals_uninterrupted_run(tmp_path):
    """The vector env (physics state, counters, RNG) travels in the checkpoint: exact resume."""
    full, full_res = _train(tmp_path / "full")
    halted, res = _train(tmp_path / "split", ["trainer.halt_after=3"])
    assert res is None
    resumed, resumed_res = _train(tmp_path / "split")
    for p, q in zip(full.task.model.parameters(), resumed.task.model.parameters()):
        assert torch.equal(p, q)
    assert resumed.task.episodes == full.task.episodes
    assert resumed.task.global_step == full.task.global_step
    assert _metrics(tmp_path / "split/metrics.jsonl") == _metrics(tmp_path / "full/metrics.jsonl")
    assert {k: v for k, v in resumed_res["test"].items() if k not in TIMING} == \
        {k: v for k, v in full_res["test"].items() if k not in TIMING}


def test_episode_bookkeeping_counts_every_valid_step(tmp_path):
    """CartPole pays 1 per step, so finished returns + returns in progress = env steps."""
    trainer, _ = _train(tmp_path, ["model.num_steps=64", "trainer.max_steps=2"])
    task = trainer.task
    finished = sum(r for _, r in task.episodes)
    assert finished + task.ep_return.sum() == pytest.approx(task.global_step)
    assert all(8 <= r <= 500 for _, r in task.episodes)     # CartPole's shortest episode is 8
    assert len(task.episodes) > 0


@pytest.mark.parametrize("vectorization", ["sync", "vector_entry_point"])
def test_both_vectorizations_train(tmp_path, vectorization):
    _, res = _train(tmp_path, [f"model.vectorization={vectorization}", "trainer.max_steps=2"])
    assert res["step"] == 2


def test_bootstrap_truncated_by_hand():
    rewards = torch.tensor([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0]])
    trunc = torch.tensor([[False, False], [True, False], [False, True]])
    values = torch.tensor([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]])
    last = torch.tensor([0.7, 0.8])
    out = bootstrap_truncated(rewards, trunc, values, last, gamma=0.9)
    expect = torch.tensor([[1.0, 1.0], [1.0 + 0.9 * 0.5, 1.0], [1.0, 1.0 + 0.9 * 0.8]])
    assert torch.allclose(out, expect)
    with pytest.raises(ValueError, match="gamma"):
        bootstrap_truncated(rewards, trunc, values, last, gamma=1.5)
    with pytest.raises(ValueError, match="last_value"):
        bootstrap_truncated(rewards, trunc, values, last[:1], gamma=0.9)
    with pytest.raises(ValueError, match="truncated"):
        bootstrap_truncated(rewards, trunc[:2], values, last, gamma=0.9)


def test_actor_critic_log_probs_and_entropy_match_categorical(gen):
    torch.manual_seed(0)
    net = ActorCritic(4, 3, hidden=16)
    obs = torch.randn(10, 4, generator=gen)
    actions = torch.randint(0, 3, (10,), generator=gen)
    logp, ent, v = net.evaluate_actions(obs, actions)
    dist = Categorical(logits=net.actor(obs))
    assert torch.allclose(logp, dist.log_prob(actions), atol=1e-6)
    assert torch.allclose(ent, dist.entropy(), atol=1e-6)
    assert v.shape == (10,)
    a, lp, _ = net.act(obs, greedy=True)
    assert torch.equal(a, net.actor(obs).argmax(-1))
    assert torch.allclose(lp, dist.log_prob(a), atol=1e-6)


def test_sampled_actions_follow_the_policy():
    """Monte-Carlo: action frequencies of act() match softmax(logits)."""
    torch.manual_seed(0)
    net = ActorCritic(2, 3, hidden=8)
    with torch.no_grad():
        net.actor[-1].weight.mul_(100)                       # a non-uniform policy
    obs = torch.ones(20000, 2)
    a, _, _ = net.act(obs)
    freq = torch.bincount(a, minlength=3).float() / len(a)
    p = torch.softmax(net.actor(obs[:1]), -1)[0]
    assert torch.allclose(freq, p.detach(), atol=0.015)


def test_evaluation_is_a_fixed_seed_function_of_the_policy():
    torch.manual_seed(0)
    net = ActorCritic(4, 2)
    a = evaluate_policy(net, "CartPole-v1", 4, seed=3)
    b = evaluate_policy(net, "CartPole-v1", 4, seed=3)
    assert a.shape == (4,) and np.array_equal(a, b)


def test_make_vec_env_rejects_continuous_actions_and_bad_arguments():
    with pytest.raises(ValueError, match="env_id"):
        make_vec_env("Pendulum-v1", 2, "sync")
    with pytest.raises(ValueError, match="num_envs"):
        make_vec_env("CartPole-v1", 0)
    with pytest.raises(ValueError, match="vectorization"):
        make_vec_env("CartPole-v1", 2, "threads")


@pytest.mark.parametrize("override, key", [
    ("model.clip_eps=0", "model.clip_eps"),
    ("model.gamma=1.5", "model.gamma"),
    ("model.gae_lambda=-0.1", "model.gae_lambda"),
    ("model.num_minibatches=7", "model.num_minibatches"),
    ("model.vectorization=threads", "model.vectorization"),
    ("model.ent_coef=-1", "model.ent_coef"),
    ("model.reward_scale=0", "model.reward_scale"),
])
def test_bad_ppo_config_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        to_object(compose(["experiment=ppo_cartpole", override]))


def test_resume_of_a_sync_vector_env_restarts_episodes_with_a_warning(tmp_path):
    extra = ["model.vectorization=sync"]
    with pytest.warns(UserWarning, match="not saved"):
        _train(tmp_path, extra + ["trainer.halt_after=2"])
    with pytest.warns(UserWarning, match="every episode restarts"):
        trainer, res = _train(tmp_path, extra)
    assert res["step"] == 6 and trainer.task.global_step > 0
