"""Data-parallel training (genmodels.train.dist): N processes reproduce one process.

* Every family's training step, played as rank 0 and rank 1 of 2, trains on two different halves
  of the global batch (and of its noise) whose losses average to the one-process loss; the halves
  are cut by the trainer (``dist.take_share`` of ``Task.draw``'s batch), never by a task.
* Real ``torchrun --nproc_per_node=2`` runs of ``genmodels-train`` (DDP over gloo on this CPU)
  end with the parameters, logged losses and test metrics of a one-process run with the same
  global batch: the GPT straight through, the VAE halted at step 10 and resumed under DDP.
* ``-m slow``: every other family's experiment, tiny, halted and resumed under torchrun, and the
  RLHF pipeline (reward model, then PPO) under torchrun (~16 min in all on the busy 2-core box).

Tolerance: the runs are float32 (the trainer has no float64 mode). The 2-process gradient is the
average of two half-batch gradients, summed in another order than the one-process batch mean,
so each step differs by float32 rounding (~1e-7 relative); Adam's normalised steps keep that
from growing much over the 20 steps here (measured on the VAE: 2e-7, parameters ~0.4). We allow
``ATOL = 1e-5``, and check that training moved the parameters by over 100× that, so a rank that
skipped the gradient all-reduce (training on its half alone) or the wrong half would fail.
"""

import json
import os
import subprocess
import sys

import pytest
import torch

from conftest import TINY_VAE, compose
from genmodels.train import dist
from genmodels.train.config import to_object
from genmodels.train.trainer import build_task, seed_everything

pytestmark = [pytest.mark.ddp, pytest.mark.train]

ATOL = 1e-5
QUIET = ["trainer.progress=false", "trainer.figures=false", "trainer.threads=1"]
VAE = ["experiment=vae_digits", *TINY_VAE, "model.iwae_k=4", "model.iwae_max_images=64",
       "trainer.batch_size=32", "trainer.max_steps=20", "trainer.log_every=5",
       "trainer.eval_every=10", "trainer.ckpt_every=5", *QUIET]
GPT = ["experiment=gpt_embedded", "model.block_size=16", "model.n_layer=1", "model.n_embd=16",
       "model.n_head=2", "model.d_ff=32", "model.eval_windows=8", "model.eval_batch=4",
       "trainer.batch_size=8", "trainer.max_steps=20", "trainer.log_every=5",
       "trainer.eval_every=0", "trainer.ckpt_every=10", "trainer.scheduler.warmup_steps=2",
       *QUIET]

# ------------------------------------------------------------------------------ every family
AUDIO = ["data.speakers=2", "data.utterances=8", "data.val_utterances=2",
         "data.test_utterances=2", "data.seconds=0.4", "trainer.batch_size=4"]
SHARE_CASES = {
    "vae": ["experiment=vae_digits", *TINY_VAE, "model.elbo_samples=2"],
    # (the MLP GAN: DCGAN's BatchNorm normalises by each rank's own batch statistics on CPU,
    # where torch has no SyncBatchNorm; the trainer converts it to SyncBatchNorm on GPUs)
    "gan": ["experiment=gan_digits", "model.arch=mlp", "model.z_dim=8", "model.hidden=32",
            "model.d_steps=2", "trainer.batch_size=16"],
    "ddpm": ["experiment=ddpm_toy2d", "model.hidden=16", "model.n_layers=1",
             "model.timesteps=20", "trainer.batch_size=16"],
    "sde": ["experiment=ddpm_toy2d", "model.process=sde", "model.hidden=16",
            "model.n_layers=1", "trainer.batch_size=16"],
    "gpt": GPT,
    # (dropout 0: dropout masks are drawn per rank inside the model, not shared, see dist.py)
    "finetune": ["experiment=finetune_embedded_scratch", "model.max_len=16", "model.n_layer=1",
                 "model.n_embd=16", "model.n_head=2", "model.dropout=0", "trainer.batch_size=8"],
    "ewc": ["experiment=ewc_split", "model.hidden=16", "trainer.batch_size=16"],
    "voice_conversion": ["experiment=vc_synthetic", *AUDIO, "model.hidden=8", "model.layers=1"],
    "wavenet": ["experiment=wavenet_synthetic", *AUDIO, "model.residual_channels=4",
                "model.dilation_channels=4", "model.skip_channels=8", "model.n_layers=2",
                "model.cond_hidden=4", "model.segment_frames=4"],
    "denoise": ["experiment=denoise_synthetic", *AUDIO, "model.hidden=8", "model.layers=1",
                "model.test_items=4"],
}


def _step_losses(overrides, monkeypatch, rank=0, world=1):
    """The losses of training step 0 (one per optimiser step), as rank ``rank`` of ``world``."""
    monkeypatch.setattr(dist, "rank", lambda: rank)
    monkeypatch.setattr(dist, "world_size", lambda: world)
    cfg = to_object(compose(overrides))
    seed_everything(cfg.seed)
    task = build_task(cfg, torch.device("cpu"))
    losses = []
    batch = dist.take_share(task.draw(0), task.batch_key)          # what the trainer passes
    task.training_step(0, batch, lambda loss, group="model": losses.append(loss.detach().double()))
    return torch.stack(losses)


@pytest.mark.parametrize("family", list(SHARE_CASES))
def test_each_rank_trains_on_its_half_of_the_global_batch(family, monkeypatch):
    """The ranks' losses differ (each saw other items) and average to the one-process loss
    (losses are batch means, and both halves saw the one-process noise): DDP's averaged
    gradient is then the one-process gradient."""
    overrides = SHARE_CASES[family]
    whole = _step_losses(overrides, monkeypatch)
    half0 = _step_losses(overrides, monkeypatch, rank=0, world=2)
    half1 = _step_losses(overrides, monkeypatch, rank=1, world=2)
    torch.testing.assert_close((half0 + half1) / 2, whole, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(half0, half1, rtol=1e-4, atol=0)


def test_batch_size_must_split_over_the_processes(monkeypatch):
    monkeypatch.setattr(dist, "world_size", lambda: 2)
    with pytest.raises(ValueError, match="trainer.batch_size: a global batch of 3"):
        dist.take_share({"x": torch.zeros(3, 2)})
    with pytest.raises(ValueError, match="model.ppo_batch: a global batch of 5"):
        dist.take_share({"prompts": torch.zeros(5, 2)}, "model.ppo_batch")


def test_share_is_the_contiguous_slice_of_every_tensor(monkeypatch):
    x, eps = torch.arange(12.).view(6, 2), torch.randn(6, 3, 4)
    assert dist.take_share({"x": x}) == {"x": x}                  # one process: the batch itself
    monkeypatch.setattr(dist, "world_size", lambda: 3)
    monkeypatch.setattr(dist, "rank", lambda: 1)
    got = dist.take_share({"x": x, "eps": eps})
    assert torch.equal(got["x"], x[2:4]) and torch.equal(got["eps"], eps[2:4])
    assert dist.share_range(6, "model.num_envs") == range(2, 4)
    assert dist.take_share({}) == {}                              # PPO draws nothing
    # the batch dimension comes first in every tensor (VAE's noise [L, B, d] must be transposed)
    with pytest.raises(ValueError, match="batch dimension first"):
        dist.take_share({"x": x, "eps": eps.transpose(0, 1)})
    with pytest.raises(TypeError, match=r"batch\['n'\]"):
        dist.take_share({"x": x, "n": 3})


def test_ppo_splits_its_environments_without_knowing_the_processes(monkeypatch):
    """Rank r of 2 steps environments r·n … (r+1)·n − 1, reset from seed + r·n (Task.share)."""
    cfg = to_object(compose(["experiment=ppo_cartpole", "model.num_envs=4"]))
    obs = []
    for r in range(2):
        monkeypatch.setattr(dist, "world_size", lambda: 2)
        monkeypatch.setattr(dist, "rank", lambda r=r: r)
        task = build_task(cfg, torch.device("cpu"))
        assert task.num_envs == 2
        obs.append(task.next_obs)
    monkeypatch.setattr(dist, "world_size", lambda: 1)
    monkeypatch.setattr(dist, "rank", lambda: 0)
    whole = build_task(cfg, torch.device("cpu"))
    assert whole.num_envs == 4
    assert not (obs[0] == obs[1]).all()
    monkeypatch.setattr(dist, "world_size", lambda: 3)
    from genmodels.train.config import ConfigError
    with pytest.raises(ConfigError, match="model.num_envs: a global batch of 4"):
        build_task(cfg, torch.device("cpu"))


def test_no_task_shards_or_knows_the_processes():
    """Only genmodels/train/ knows ranks: tasks get their share from the trainer."""
    from conftest import REPO
    offenders = [f"{path.relative_to(REPO)}:{i}" for path in (REPO / "genmodels").rglob("*.py")
                 if "train" not in path.relative_to(REPO / "genmodels").parts[:1]
                 for i, line in enumerate(path.read_text().splitlines(), 1)
                 if any(w in line for w in ("local_share", "world_size", "dist.rank("))]
    assert not offenders


# ------------------------------------------------------------------------------ real torchrun
def _run(out, args, nproc=1):
    """``genmodels-train`` in one process, or under ``torchrun --nproc_per_node=nproc``."""
    launcher = [sys.executable]
    if nproc > 1:
        launcher += ["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    r = subprocess.run([*launcher, "-m", "genmodels.train.cli", *args, f"hydra.run.dir={out}"],
                       capture_output=True, text=True, timeout=240, env=env)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    return r


def _params(out):
    return torch.load(out / "checkpoints" / "last.pt", weights_only=True)["model"]


def _records(out):
    rows = [json.loads(line) for line in open(out / "metrics.jsonl")]
    return [{k: v for k, v in r.items() if not k.endswith("_s")} for r in rows]


def _initial_params(args):
    cfg = to_object(compose(args))
    seed_everything(cfg.seed)
    return build_task(cfg, torch.device("cpu")).model.state_dict()


def _assert_same_run(a, b, args):
    pa, pb = _params(a), _params(b)
    assert pa.keys() == pb.keys()
    init = _initial_params(args)
    moved = max((pa[k].float() - init[k].float()).abs().max().item() for k in pa)
    assert moved > 100 * ATOL
    for k in pa:
        torch.testing.assert_close(pb[k], pa[k], rtol=0, atol=ATOL, msg=k)
    ra, rb = _records(a), _records(b)
    assert [(r["step"], r["split"]) for r in ra] == [(r["step"], r["split"]) for r in rb]
    for x, y in zip(ra, rb):
        assert x.keys() == y.keys()
        for k in x:
            if isinstance(x[k], str):           # "split": pytest >= 9.2 refuses approx on strings
                assert y[k] == x[k], (x["step"], k)
            else:
                assert y[k] == pytest.approx(x[k], rel=1e-4, abs=1e-5), (x["step"], x["split"], k)


@pytest.mark.slow   # 20 s on the 2-core CI machine; test_two_process_gpt_equals_one_process runs by default
def test_two_process_vae_halted_and_resumed_equals_one_process(tmp_path):
    """Steps 1-10 under DDP, a checkpoint, steps 11-20 resumed under DDP: the one-process run."""
    _run(tmp_path / "one", VAE)
    out = tmp_path / "two"
    _run(out, VAE + ["trainer.halt_after=10"], nproc=2)
    assert torch.load(out / "checkpoints" / "last.pt", weights_only=True)["step"] == 10
    r = _run(out, VAE, nproc=2)
    assert "Resuming from" in r.stderr
    assert r.stdout.count("test: elbo=") == 1                 # only rank 0 reports
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one", "two"]  # rank 1: no folder
    _assert_same_run(tmp_path / "one", out, VAE)


def test_two_process_gpt_equals_one_process(tmp_path):
    _run(tmp_path / "one", GPT)
    _run(tmp_path / "two", GPT, nproc=2)
    _assert_same_run(tmp_path / "one", tmp_path / "two", GPT)


# ------------------------------------------------------------------------------ every family (slow)
LM_TINY = ["model.n_layer=1", "model.n_embd=16", "model.n_head=2", "model.eval_windows=8",
           "model.eval_batch=4"]
AUDIO_RUN = [*AUDIO, "model.n_examples=1"]
RLHF_TINY = ["model.lm_steps=20", "model.lm_layers=1", "model.lm_embd=32", "model.block_size=24",
             "model.prompt_len=8", "model.completion_len=10", "model.n_pairs=40",
             "model.min_gap=0.1", "data=embedded_text"]    # (RLHF reads its text through data)
EVERY_FAMILY = {
    "gan_digits": ["model.z_dim=8", "model.width=8", "model.fd_samples=40",
                   "model.n_figure_samples=4", "trainer.batch_size=16"],
    "ddpm_digits": ["model.base_channels=8", "model.channel_mults=[1,2]", "model.timesteps=20",
                    "model.sample_steps=5", "model.fd_samples=20", "model.n_figure_samples=4",
                    "trainer.batch_size=8"],
    "sde_digits": ["model.base_channels=8", "model.channel_mults=[1,2]", "model.sample_steps=5",
                   "model.fd_samples=20", "model.n_figure_samples=4", "trainer.batch_size=8"],
    "lstm_embedded": ["model.block_size=16", "model.n_embd=8", "model.hidden_size=16",
                      "model.eval_windows=8", "model.eval_batch=4", "model.sample_chars=20",
                      "trainer.batch_size=4"],
    "mlm_embedded": [*LM_TINY, "model.max_len=16", "trainer.batch_size=4"],
    "finetune_embedded_scratch": [*LM_TINY[:3], "model.max_len=16", "trainer.batch_size=4"],
    "ewc_split": ["model.hidden=16", "model.steps_a=3", "model.curve_every=2",
                  "trainer.batch_size=16"],
    "ppo_cartpole": ["model.num_envs=4", "model.num_steps=16", "model.num_minibatches=2",
                     "model.update_epochs=2", "model.eval_episodes=2", "model.target_kl=0.5"],
    "vc_synthetic": [*AUDIO_RUN, "model.hidden=8", "model.layers=1", "model.griffin_lim_iters=2"],
    "wavenet_synthetic": [*AUDIO_RUN, *SHARE_CASES["wavenet"][-6:], "model.eval_clips=1",
                          "model.val_clips=2", "model.griffin_lim_iters=2"],
    "separate_synthetic": [*AUDIO_RUN, "model.hidden=8", "model.layers=1", "model.test_items=4"],
    "restore_synthetic": [*AUDIO_RUN, "model.channels=4", "model.depth=1", "model.test_items=4"],
}


@pytest.mark.slow
@pytest.mark.parametrize("experiment", list(EVERY_FAMILY))
def test_every_family_trains_under_torchrun(experiment, tmp_path):
    """Each family's experiment, tiny, under ``torchrun --nproc_per_node=2``: halted at step 2,
    resumed to step 6; rank 0 alone writes metrics, results and figures."""
    args = [f"experiment={experiment}", *EVERY_FAMILY[experiment], "trainer.max_steps=6",
            "trainer.log_every=1", "trainer.eval_every=3", "trainer.ckpt_every=2",
            "trainer.scheduler.warmup_steps=0", "trainer.progress=false", "trainer.threads=1"]
    out = tmp_path / "run"
    _run(out, args + ["trainer.halt_after=2"], nproc=2)
    r = _run(out, args, nproc=2)
    assert "Resuming from" in r.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["step"] == 6 and results["test"]
    assert any((out / "figures").iterdir())
    steps = [row["step"] for row in _records(out) if row["split"] == "train"]
    assert steps == [1, 2, 3, 4, 5, 6]                      # one writer, no duplicates


@pytest.mark.slow
def test_rlhf_pipeline_under_torchrun(tmp_path):
    work = tmp_path / "assets"
    common = [*RLHF_TINY, f"model.workdir={work}", "trainer.progress=false",
              "trainer.eval_every=0", "trainer.threads=1", "trainer.scheduler.warmup_steps=0"]
    _run(tmp_path / "rm", ["experiment=rlhf_reward_model", "trainer.max_steps=4",
                           "trainer.batch_size=8", *common], nproc=2)
    _run(tmp_path / "ppo", ["experiment=rlhf_ppo", "trainer.max_steps=2", "model.ppo_batch=8",
                            "model.eval_prompts=8", "trainer.log_every=1",
                            f"model.reward_ckpt={tmp_path / 'rm/checkpoints/last.pt'}", *common],
         nproc=2)
    assert json.loads((tmp_path / "ppo" / "results.json").read_text())["test"]["rm_score"] is not None


@pytest.mark.parametrize("overrides, key", [
    (TINY_VAE + ["trainer.batch_size=33"], "trainer.batch_size"),
    (["experiment=rlhf_ppo", "model.ppo_batch=9", "model.ppo_minibatches=1", "trainer.batch_size=8"],
     "model.ppo_batch"),
])
def test_uneven_global_batch_is_refused_naming_the_task_batch_key(overrides, key, monkeypatch,
                                                                   tmp_path):
    """Before any data is loaded, a global batch that two processes cannot split is refused with
    the key that sets it: trainer.batch_size, or the task's own (RLHF-PPO's model.ppo_batch)."""
    from genmodels.train.config import ConfigError
    from genmodels.train.trainer import Trainer

    monkeypatch.setattr(dist, "env_world_size", lambda: 2)
    monkeypatch.setattr(dist, "init_from_env", lambda use_cuda: dist.DistContext(0, 2))
    trainer = Trainer(to_object(compose(overrides)), tmp_path)
    with pytest.raises(ConfigError, match=rf"^{key.replace('.', '[.]')}: \d+ is the global batch"):
        trainer._setup()
