"""RLHF in miniature: the scripted human, the preference file, the reward model, both tasks."""

import json
import math

import pytest
import torch

from conftest import compose
from test_text_data import fake_play
from genmodels.rl.preferences import ScriptedHuman, read_preferences, write_preferences
from genmodels.rl.reward_model import RewardModel, pad_right
from genmodels.rl.rlhf import preference_loss
from genmodels.train.checkpoint import load_checkpoint
from genmodels.train.config import ConfigError, to_object
from genmodels.train.trainer import Trainer, build_task

pytestmark = pytest.mark.rl

VOCAB = {"the", "king", "is", "good", "and", "my", "lord", "a", "love", "i", "thee"}


def test_scripted_human_scores_by_hand():
    h = ScriptedHuman(["love", "king"], VOCAB)
    # "the", "king", "is" judged; the last word "goo" may be cut off and is not judged
    assert h.words("Now ", "the king is goo") == ["the", "king", "is"]
    assert h.score("Now ", "the king is goo") == pytest.approx(1.0 + 1)
    # repeating a keyword earns nothing more; a keyword inside a word does not count
    assert h.score("x ", "love love love ") == pytest.approx(1.0 + 1)
    assert h.keywords_used("x ", "kingly gloves ") == set()
    # gibberish around a keyword: fluency 1/3 < 0.5, the keyword does not count
    assert h.score("x ", "love qzx vvb ") == pytest.approx(1 / 3)
    # a word continuing the prompt is judged whole: "ki" + "ng" = "king"
    assert h.words("the ki", "ng is ") == ["king", "is"]


def test_preference_file_round_trip_and_format_errors(tmp_path):
    recs = [{"prompt": "To be", "chosen": " or not", "rejected": "xq zz"}]
    path = write_preferences(tmp_path / "p.jsonl", recs)
    assert read_preferences(path) == recs
    (tmp_path / "bad.jsonl").write_text(json.dumps({"prompt": "a", "chosen": "b"}) + "\n")
    with pytest.raises(ValueError, match="rejected"):
        read_preferences(tmp_path / "bad.jsonl")


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_reward_model_ignores_right_padding(pooling):
    torch.manual_seed(0)
    rm = RewardModel(10, 16, 1, 2, 16, pooling=pooling)
    torch.nn.init.normal_(rm.head.weight)
    seqs = [torch.randint(0, 10, (n,)) for n in (5, 9, 3)]
    idx, lengths = pad_right(seqs, 16)
    r = rm(idx, lengths)
    for i, s in enumerate(seqs):                      # reference: each sequence alone, unpadded
        assert torch.allclose(r[i], rm(s[None])[0], atol=1e-5)


def test_reward_model_learns_a_synthetic_preference():
    """R_θ fitted with preference_loss (eq. 2.2) separates held-out pairs: chosen strings hold
    the word 'love', rejected ones do not."""
    text = "abcdefghijklmnopqrstuvwxyz "

    def encode(s):
        return torch.tensor([text.index(c) for c in s])
    g = torch.Generator().manual_seed(0)
    letters = "bcdfghjkmnpqrstwxyz "

    def rand(n):
        return "".join(letters[i] for i in torch.randint(0, len(letters), (n,), generator=g))

    def pair():
        base, k = rand(12), int(torch.randint(0, 8, (1,), generator=g))
        return base[:k] + "love" + base[k + 4:], rand(12)

    pairs = [pair() for _ in range(400)]
    chosen = torch.stack([encode(c) for c, _ in pairs])
    rejected = torch.stack([encode(r) for _, r in pairs])
    torch.manual_seed(0)
    rm = RewardModel(len(text), 12, 1, 2, 32, pooling="mean")
    opt = torch.optim.Adam(rm.parameters(), lr=3e-3)
    for step in range(150):
        idx = torch.randint(0, 300, (32,), generator=g)
        loss = preference_loss(rm(chosen[idx]), rm(rejected[idx]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        acc = (rm(chosen[300:]) > rm(rejected[300:])).float().mean().item()
    assert acc >= 0.95


@pytest.fixture(scope="module", autouse=True)
def _corpus(tmp_path_factory):
    """A small fake play as the run's corpus (``data.path``): RLHF reads its text through the
    data group, like every text experiment."""
    path = tmp_path_factory.mktemp("corpus") / "tinyshakespeare.txt"
    path.write_text(fake_play(60) * 3)
    TINY.append(f"data.path={path}")
    yield
    TINY.pop()


TINY = ["model.lm_steps=20", "model.lm_layers=1", "model.lm_embd=32", "model.block_size=24",
        "model.prompt_len=8", "model.completion_len=10", "model.n_pairs=40", "model.min_gap=0.1",
        "trainer.progress=false", "trainer.eval_every=0"]


def test_rlhf_pipeline_end_to_end(tmp_path):
    work = tmp_path / "assets"
    rm_run = tmp_path / "rm"
    common = TINY + [f"model.workdir={work}"]
    cfg = to_object(compose(["experiment=rlhf_reward_model", "trainer.max_steps=10",
                             "trainer.batch_size=8", "trainer.scheduler.warmup_steps=2",
                             "trainer.figures=true"] + common))
    res = Trainer(cfg, rm_run).fit()
    # stage 1 is an ordinary trainer run: checkpoint, metrics, results at lm_steps
    policy_run = work / "policy"
    assert load_checkpoint(policy_run / "checkpoints/last.pt")["step"] == 20
    assert json.loads((policy_run / "results.json").read_text())["step"] == 20
    assert [json.loads(x)["split"] for x in open(policy_run / "metrics.jsonl")][-2:] == ["val", "test"]
    prefs = read_preferences(work / "preferences.jsonl")
    assert len(prefs) == 40 and all(p["score_chosen"] > p["score_rejected"] for p in prefs)
    assert 0 <= res["test"]["pairwise_accuracy"] <= 1 and res["test"]["pairs"] >= 1
    assert (rm_run / "figures" / "reward_margins.png").exists()

    cfg = to_object(compose(["experiment=rlhf_ppo", "trainer.max_steps=3", "model.ppo_batch=8",
                             "model.eval_prompts=8", "trainer.figures=true", "trainer.log_every=1",
                             f"model.reward_ckpt={rm_run / 'checkpoints/last.pt'}"] + common))
    trainer = Trainer(cfg, tmp_path / "ppo")
    res = trainer.fit()
    for key in ("rm_score", "kl_ref", "human_score", "ref_rm_score"):
        assert key in res["test"]
    rows = [json.loads(line) for line in open(tmp_path / "ppo" / "metrics.jsonl")]
    train = [r for r in rows if r["split"] == "train"]
    assert len(train) == 3 and all("kl_ref" in r and "approx_kl" in r for r in train)
    assert (tmp_path / "ppo/figures/reward_vs_kl.png").exists()
    assert "before" in (tmp_path / "ppo/figures/samples_before_after.md").read_text()
    # the reference policy stays frozen while the policy moves
    ref = trainer.task.ref
    pol = trainer.task.model["policy"]
    assert all(not p.requires_grad for p in ref.parameters())
    assert any(not torch.equal(p, q) for p, q in zip(ref.parameters(), pol.parameters()))


def test_adaptive_kl_beta_follows_the_controller_and_survives_resume(tmp_path):
    """With model.kl_target the β used at each PPO step follows Ziegler et al.'s recurrence from
    the KL measured at the step before (recomputed here from the logged values), and a run
    halted after 2 steps and resumed logs the same β at step 3 as an uninterrupted run."""
    work = tmp_path / "assets"
    common = TINY + [f"model.workdir={work}", "model.reward_source=human", "model.ppo_batch=8",
                     "model.eval_prompts=8", "trainer.log_every=1", "trainer.ckpt_every=1",
                     "model.kl_target=0.5", "model.kl_beta=0.2", "model.kl_gain=0.5"]

    def run(out, steps, halt=None):
        over = ["experiment=rlhf_ppo", f"trainer.max_steps={steps}"] + common
        if halt:
            over.append(f"trainer.halt_after={halt}")
        Trainer(to_object(compose(over)), out).fit()
        return [json.loads(x) for x in open(out / "metrics.jsonl")]

    rows = [r for r in run(tmp_path / "full", 3) if r["split"] == "train"]
    beta = 0.2
    for r in rows:
        assert r["kl_beta"] == pytest.approx(beta, rel=1e-12)
        beta *= 1 + 0.5 * min(max(r["kl_ref"] / 0.5 - 1, -0.2), 0.2)
    run(tmp_path / "resumed", 3, halt=2)
    again = [r for r in run(tmp_path / "resumed", 3) if r["split"] == "train"]
    assert again[-1]["step"] == 3 and again[-1]["kl_beta"] == pytest.approx(rows[-1]["kl_beta"],
                                                                              rel=1e-12)


@pytest.mark.parametrize("detach", [True, False])
def test_value_loss_reaches_the_policy_trunk_only_when_not_detached(tmp_path, detach):
    from genmodels.rl.task_rlhf import RLHFPPOTask
    cfg = to_object(compose(["experiment=rlhf_ppo", "model.reward_source=human",
                             f"model.workdir={tmp_path}", f"model.detach_value_trunk={str(detach).lower()}"]
                            + TINY))
    task = build_task(cfg, torch.device("cpu"))
    assert isinstance(task, RLHFPPOTask)
    seq = torch.randint(0, task.corpus.vocab_size, (3, cfg.model.prompt_len + cfg.model.completion_len))
    task.model.zero_grad(set_to_none=True)                # pre-training left its gradients
    torch.nn.init.normal_(task.model["value"].weight)     # a zero head passes no gradient back
    _, v = task._logp_values(task.model["policy"], seq, task.model["value"])
    v.square().sum().backward()
    assert task.model["value"].weight.grad.abs().sum() > 0
    trunk = [p.grad for p in task.model["policy"].parameters()]
    assert all(g is None for g in trunk) if detach else any(g is not None and g.abs().sum() > 0
                                                            for g in trunk)


def test_preference_file_is_rebuilt_when_its_settings_change(tmp_path):
    """A JSONL made with other settings (n_pairs 40) is not reused for a run asking for 60; a
    JSONL without the settings sidecar (the user's own labels) is used as it is."""
    from genmodels.rl.task_rlhf import RewardModelTask
    work = tmp_path / "assets"

    def task(n_pairs):
        cfg = to_object(compose(["experiment=rlhf_reward_model", "trainer.batch_size=8"] + TINY
                                + [f"model.workdir={work}", f"model.n_pairs={n_pairs}"]))
        task = build_task(cfg, torch.device("cpu"))
        assert isinstance(task, RewardModelTask)
        return task

    assert len(task(40).records) == 40
    assert len(task(60).records) == 60
    (work / "preferences.meta.json").unlink()             # now it looks like the user's own file
    assert len(task(40).records) == 60


def test_missing_reward_checkpoint_is_explained(tmp_path):
    cfg = to_object(compose(["experiment=rlhf_ppo", f"model.workdir={tmp_path}",
                             f"model.reward_ckpt={tmp_path / 'none.pt'}"] + TINY))
    with pytest.raises(FileNotFoundError, match="rlhf_reward_model"):
        Trainer(cfg, tmp_path / "run").fit()


@pytest.mark.parametrize("override, key", [
    ("model.kl_beta=-0.1", "model.kl_beta"),
    ("model.clip_eps=0", "model.clip_eps"),
    ("model.gamma=2", "model.gamma"),
    ("model.ppo_minibatches=3", "model.ppo_minibatches"),
    ("model.completion_len=100", "model.block_size"),
    ("model.keywords=[]", "model.keywords"),
    ("model.samples_per_prompt=1", "model.samples_per_prompt"),
    ("model.rm_pooling=max", "model.rm_pooling"),
    ("model.kl_target=-1", "model.kl_target"),
    ("model.kl_gain=0", "model.kl_gain"),
    ("model.kl_target=4 model.kl_beta=0", "model.kl_beta"),
])
def test_bad_rlhf_config_values_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        to_object(compose(["experiment=rlhf_ppo", *override.split()]))


def test_held_out_splits_keep_each_prompt_in_one_split():
    from genmodels.rl.task_rlhf import split_by_group
    recs = [{"prompt": f"p{g}", "chosen": "a", "rejected": "b", "group": g}
            for g in range(50) for _ in range(3)] + [{"prompt": "x", "chosen": "a", "rejected": "b"}]
    parts = split_by_group(recs)
    seen = {}
    for name, idx in parts.items():
        for i in idx.tolist():
            assert seen.setdefault(recs[i]["prompt"], name) == name or recs[i]["prompt"] == "x"
    assert sorted(torch.cat(list(parts.values())).tolist()) == list(range(len(recs)))
    assert len(parts["test"]) >= 3 and len(parts["train"]) > len(parts["val"])


def test_policy_run_is_reused_checked_and_can_be_named(tmp_path):
    """The policy is an ordinary trainer run: a second task reuses it (no retraining), one asking
    for another architecture is refused naming model.policy, and model.policy=<run folder> takes
    any gpt run as the policy."""
    from genmodels.rl.task_rlhf import RewardModelTask
    work = tmp_path / "assets"

    def task(*extra):
        cfg = to_object(compose(["experiment=rlhf_reward_model", "trainer.batch_size=8"] + TINY
                                + [f"model.workdir={work}", *extra]))
        return build_task(cfg, torch.device("cpu"))

    first = task()
    assert isinstance(first, RewardModelTask)
    ckpt = work / "policy" / "checkpoints" / "last.pt"
    stamp = ckpt.stat().st_mtime_ns
    second = task()
    assert ckpt.stat().st_mtime_ns == stamp                       # reused, not retrained
    for p, q in zip(first.policy.parameters(), second.policy.parameters()):
        assert torch.equal(p, q)
    with pytest.raises(ConfigError, match=r"^model\.policy: .*n_embd"):
        task("model.lm_embd=16", "model.n_pairs=40")
    named = task(f"model.policy={work / 'policy'}", f"model.workdir={tmp_path / 'other'}")
    for p, q in zip(first.policy.parameters(), named.policy.parameters()):
        assert torch.equal(p, q)
    with pytest.raises(ConfigError, match=r"^model\.policy: no checkpoint"):
        task(f"model.policy={tmp_path / 'nothing'}")


def test_dpo_task_trains_the_policy_on_the_comparisons(tmp_path):
    """The rlhf_dpo experiment, tiny: it reuses the RLHF assets (policy run, preference file),
    its completion log-probabilities equal a token-by-token recomputation, training moves the
    policy away from the frozen reference, and evaluation reports rlhf_ppo's measures."""
    work = tmp_path / "assets"
    cfg = to_object(compose(["experiment=rlhf_dpo", "trainer.max_steps=6", "trainer.batch_size=8",
                             "trainer.scheduler.warmup_steps=0", "model.eval_prompts=8",
                             "trainer.figures=true", f"model.workdir={work}"] + TINY))
    trainer = Trainer(cfg, tmp_path / "dpo")
    res = trainer.fit()
    task = trainer.task
    for key in ("pairwise_accuracy", "kl_ref", "human_score", "ref_human_score", "fluency"):
        assert key in res["test"] and math.isfinite(res["test"][key])
    assert (work / "preferences.jsonl").exists() and (work / "policy/checkpoints/last.pt").exists()
    assert all(not p.requires_grad for p in task.ref.parameters())
    pol = task.model["policy"]
    assert any(not torch.equal(p, q) for p, q in zip(task.ref.parameters(), pol.parameters()))
    # the completion log-probability, one token at a time (the prompt's tokens are not counted)
    i = int(task.split_idx["train"][0])
    row, start, end = task.chosen[i], int(task.chosen_start[i]), int(task.chosen_len[i])
    with torch.no_grad():
        want = sum(torch.log_softmax(pol(row[None, :t])[0][0, -1], -1)[row[t]].item()
                   for t in range(start, end))
        got = task._completion_logp(pol, row[None], task.chosen_start[i:i + 1],
                                    task.chosen_len[i:i + 1]).item()
    assert got == pytest.approx(want, abs=1e-4)
    assert "before" in (tmp_path / "dpo/figures/samples_before_after.md").read_text()
    assert json.loads((tmp_path / "dpo/results.json").read_text())["step"] == 6
