"""Real genmodels-train runs of every text experiment family (tiny sizes), resume exactness of
the language-model task, fine-tuning from an MLM checkpoint, and genmodels-sample."""

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from conftest import compose
from genmodels.train.config import ConfigError, to_object
from genmodels.train.trainer import Trainer
from test_text_data import fake_play

pytestmark = [pytest.mark.train, pytest.mark.transformer]

COMMON = ["trainer.progress=false", "trainer.threads=1", "trainer.max_steps=12",
          "trainer.log_every=3", "trainer.eval_every=6", "trainer.ckpt_every=4",
          "trainer.batch_size=4", "trainer.scheduler.warmup_steps=2"]
LM = ["model.block_size=16", "model.eval_windows=8", "model.eval_batch=4",
      "model.sample_chars=20"]
TINY = {
    "gpt_shakespeare": LM + ["model.n_layer=1", "model.n_embd=16", "model.n_head=2"],
    "lstm_shakespeare": LM + ["model.n_embd=8", "model.hidden_size=16"],
    "mlm_shakespeare": ["model.max_len=16", "model.n_layer=1", "model.n_embd=16",
                        "model.n_head=2", "model.eval_windows=8", "model.eval_batch=4"],
    "finetune_shakespeare_scratch": ["model.max_len=16", "model.n_layer=1", "model.n_embd=16",
                                     "model.n_head=2", "model.num_classes=4"],
}


_TINY_KEY = {"finetune_shakespeare": "finetune_shakespeare_scratch"}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    path = tmp_path_factory.mktemp("corpus") / "tinyshakespeare.txt"
    path.write_text(fake_play(60) * 3)
    return str(path)


def cfg(experiment, corpus, extra=()):
    return to_object(compose([f"experiment={experiment}", f"data.path={corpus}", *COMMON,
                              *TINY[_TINY_KEY.get(experiment, experiment)],
                              *extra]))


def _rows(path):
    rows = [json.loads(line) for line in open(path)]
    for r in rows:
        r.pop("train_time_s", None)
    return rows


@pytest.mark.parametrize("experiment, figures", [
    ("gpt_shakespeare", ["samples.png", "loss_curves.png"]),
    ("lstm_shakespeare", ["samples.png", "loss_curves.png"]),
    ("mlm_shakespeare", ["mlm_fills.png", "loss_curves.png"]),
    ("finetune_shakespeare_scratch", ["confusion.png", "loss_curves.png"]),
])
def test_each_family_trains_through_the_trainer(tmp_path, corpus, experiment, figures):
    res = Trainer(cfg(experiment, corpus), tmp_path).fit()
    assert res["step"] == 12
    first = res["val"]["loss"]
    assert 0 < first < 10 and all(map(lambda v: v == v, res["test"].values()))
    for f in figures:
        assert (tmp_path / "figures" / f).is_file()
    rows = _rows(tmp_path / "metrics.jsonl")
    assert [r["split"] for r in rows].count("val") == 2          # step 6 and the end
    if "finetune" not in experiment and "mlm" not in experiment:
        assert (tmp_path / "samples.txt").read_text().count("\n") > 2


def test_lm_loss_starts_near_log_vocab(tmp_path, corpus):
    """An untrained LM predicts nearly uniformly: loss ≈ ln V (an independent closed form)."""
    t = Trainer(cfg("gpt_shakespeare", corpus, ["trainer.max_steps=2", "trainer.figures=false"]),
                tmp_path)
    res = t.fit()
    V = t.task.data.vocab_size
    assert abs(res["val"]["loss"] - torch.log(torch.tensor(float(V))).item()) < 0.3


@pytest.mark.parametrize("experiment", ["gpt_shakespeare", "lstm_shakespeare"])
def test_lm_resume_after_halt_equals_uninterrupted(tmp_path, corpus, experiment):
    extra = ["trainer.figures=false"]
    full = Trainer(cfg(experiment, corpus, extra), tmp_path / "full")
    a = full.fit()
    halted = Trainer(cfg(experiment, corpus, extra + ["trainer.halt_after=7"]), tmp_path / "s")
    assert halted.fit() is None
    resumed = Trainer(cfg(experiment, corpus, extra), tmp_path / "s")
    b = resumed.fit()
    assert a["val"] == b["val"] and a["test"] == b["test"]
    for p, q in zip(full.task.model.parameters(), resumed.task.model.parameters()):
        assert torch.equal(p, q)
    assert _rows(tmp_path / "full/metrics.jsonl") == _rows(tmp_path / "s/metrics.jsonl")


def test_finetune_starts_from_the_mlm_encoder(tmp_path, corpus):
    mlm = Trainer(cfg("mlm_shakespeare", corpus, ["trainer.figures=false"]), tmp_path / "mlm")
    mlm.fit()
    ft = cfg("finetune_shakespeare", corpus,
             TINY["finetune_shakespeare_scratch"] + [f"model.pretrained={tmp_path / 'mlm'}",
                                                     "trainer.max_steps=2",
                                                     "trainer.eval_every=0",
                                                     "trainer.figures=false"])
    t = Trainer(ft, tmp_path / "ft")
    t._setup()
    ck = torch.load(tmp_path / "mlm/checkpoints/last.pt", weights_only=False)["model"]
    mine = t.task.model.state_dict()
    assert all(torch.equal(mine[k], v) for k, v in ck.items())   # every encoder tensor copied
    assert t.task.pretrained_from.endswith("last.pt")
    assert Trainer(ft, tmp_path / "ft2").fit()["step"] == 2
    # a different width cannot load: the message names the mismatch
    with pytest.raises(ConfigError, match="n_embd"):
        Trainer(cfg("finetune_shakespeare", corpus,
                    TINY["finetune_shakespeare_scratch"] + ["model.n_embd=8",
                                                            f"model.pretrained={tmp_path / 'mlm'}"]),
                tmp_path / "ft3")._setup()


def test_finetune_without_the_pretrained_run_says_what_to_do(tmp_path, corpus):
    with pytest.raises(ConfigError, match="model.pretrained.*mlm_shakespeare"):
        Trainer(cfg("finetune_shakespeare", corpus,
                    [f"model.pretrained={tmp_path / 'none'}"]), tmp_path)._setup()


def test_genmodels_sample_prints_from_a_checkpoint(tmp_path, corpus, capsys):
    from genmodels.charlm.sample import main

    Trainer(cfg("gpt_shakespeare", corpus, ["trainer.figures=false"]), tmp_path / "run").fit()
    args = [str(tmp_path / "run"), "--prompt", "ALPHA:", "-n", "25", "--top-k", "5",
            "--temperature", "0.7", "--seed", "3", "--num-samples", "2"]
    exe = shutil.which("genmodels-sample")                   # the console script a user types
    cmd = [exe] if exe else [sys.executable, "-m", "genmodels.charlm.sample"]
    proc = subprocess.run([*cmd, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    texts = proc.stdout.strip("\n").split("\n" + "-" * 72 + "\n")
    assert len(texts) == 2 and all(t.startswith("ALPHA:") for t in texts)
    assert all(len(t) == len("ALPHA:") + 25 for t in texts)
    capsys.readouterr()
    assert main(args) == 0
    assert capsys.readouterr().out == proc.stdout                # --seed fixes the draw
    assert main([str(tmp_path / "run" / "checkpoints" / "last.pt"), "--prompt", "\u00e9"]) == 2
    assert "prompt" in capsys.readouterr().err


@pytest.mark.parametrize("experiment", ["gpt_shakespeare", "rlhf_reward_model", "rlhf_ppo"])
def test_missing_corpus_is_a_dataset_error(tmp_path, monkeypatch, experiment):
    """Every text experiment, RLHF's included, looks for tiny Shakespeare the same way and stops
    with the same message when a clone has no ../shared beside it."""
    from genmodels.data.text import DatasetNotFoundError

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("GENMODELS_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("GENMODELS_SHAKESPEARE", raising=False)
    c = to_object(compose([f"experiment={experiment}", "data.download=false"]))
    with pytest.raises(DatasetNotFoundError, match="tinyshakespeare.txt(.|\n)*data.path"):
        Trainer(c, tmp_path / "run")._setup()   # the CLI turns this into exit code 4


@pytest.mark.parametrize("experiment", ["rlhf_reward_model", "rlhf_ppo"])
def test_rlhf_finds_the_corpus_like_every_text_experiment(tmp_path, monkeypatch, experiment):
    """The CLI in a folder with data/tinyshakespeare.txt (one of the places searched) gets past
    the corpus: the first thing it does is pretrain the policy run on it."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "tinyshakespeare.txt").write_text(fake_play(60) * 3)
    env = {k: v for k, v in os.environ.items() if k != "GENMODELS_SHAKESPEARE"}
    env["GENMODELS_CACHE"] = str(tmp_path / "cache")
    quick = {"rlhf_reward_model": ["trainer.batch_size=4", "trainer.scheduler.warmup_steps=0",
                                   "model.min_gap=0.01", "model.samples_per_prompt=2",
                                   "model.n_pairs=100"],
             "rlhf_ppo": ["model.reward_source=human", "model.eval_prompts=4",
                          "model.ppo_batch=4"]}[experiment]
    proc = subprocess.run(
        [sys.executable, "-m", "genmodels.train.cli", f"experiment={experiment}",
         "data.download=false", "model.lm_steps=3", "model.lm_layers=1", "model.lm_embd=16",
         "trainer.max_steps=1", "trainer.eval_every=0",
         "trainer.progress=false", "trainer.figures=false", *quick],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (tmp_path / "outputs/rlhf_assets/policy/checkpoints/last.pt").exists()
