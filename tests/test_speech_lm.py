"""Shallow fusion of a character language model into speech recognition (issue 21): the fused
joint search against brute force, CTC prefix beam search without a decoder, the text the language
model may read (no val/test sentence, nor three words of one), and the language model inside the
ASR task (its own optimiser group, resumed exactly, decoded with)."""

import collections
import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import compose
from genmodels.speech.asr import (BOS, EOS, char_lm_next, ctc_greedy_decode,
                                  ctc_prefix_log_prob, joint_beam_search,
                                  joint_beam_search_nbest)
from genmodels.speech.corpus import embedded_sentences, text_only_phrases
from genmodels.train.config import ConfigError, to_object
from genmodels.train.trainer import Trainer
from genmodels.transformer.modules import GPT

pytestmark = [pytest.mark.speech]

TINY = ["data.voices=6", "data.val_voices=1", "data.test_voices=1", "data.sentences=20",
        "data.val_sentences=4", "data.test_sentences=4", "data.voices_per_sentence=1",
        "trainer.max_steps=2", "trainer.batch_size=4", "trainer.eval_every=2",
        "trainer.log_every=1", "trainer.scheduler.warmup_steps=1", "trainer.progress=false",
        "trainer.threads=1", "trainer.ckpt_every=1", "model.max_decode_chars=12",
        "model.d_model=32", "model.d_ff=64", "model.enc_layers=1", "model.dec_layers=1",
        "model.lstm_hidden=16", "model.lstm_layers=1", "model.lm_d_model=16", "model.lm_heads=2",
        "model.lm_layers=1", "model.lm_weight=0.5", "model.eval_utterances=2",
        "trainer.figures=false"]


def _hashed(salt):
    """A fixed random next-token model over pad, bos, eos, 'a', 'b' (ids 0-4): log-probabilities
    a function of the prefix and ``salt`` alone (pad and bos never follow)."""
    def next_log_probs(prefix, rows):
        out = []
        for p in prefix.tolist():
            g = torch.Generator().manual_seed((hash(tuple(p)) + salt) % 2**31)
            logits = torch.randn(5, generator=g, dtype=torch.float64) * 2
            logits[:2] = -1e9
            out.append(logits.log_softmax(-1))
        return torch.stack(out)
    return next_log_probs


def _sum_log_prob(fn, toks):
    return sum(float(fn(torch.tensor([toks[:i]]), torch.tensor([0]))[0, toks[i]])
               for i in range(1, len(toks)))


def _ctc_log_prob(lp, letters):
    """log p_CTC(letters | frames) by torch's ctc_loss (−∞ when the frames cannot hold them)."""
    if not letters:
        return float(lp[:, 0].sum())                        # every frame blank
    nll = F.ctc_loss(lp[:, None], torch.tensor([letters]), torch.tensor([lp.shape[0]]),
                     torch.tensor([len(letters)]), blank=0, reduction="sum")
    return -float(nll)


@pytest.mark.parametrize("lam, beta, alpha", [(0.5, 0.7, 1.0), (0.3, 0.3, 0.0), (0.0, 1.0, 1.0),
                                              (1.0, 0.5, 1.0), (0.5, 0.0, 1.0)])
def test_a_wide_fused_beam_finds_the_exhaustive_optimum(lam, beta, alpha):
    """Every transcript of at most 3 letters scored by hand — (1 − λ) log p_att + λ log p_CTC
    (torch's ctc_loss; the prefix score ψ for the unfinished ones at max_len) + β log p_LM,
    over |y|^α — and the best one is what a beam wider than the tree returns."""
    att, lm, max_len = _hashed(0), _hashed(977), 3
    lp = torch.randn(6, 5, generator=torch.Generator().manual_seed(2),
                     dtype=torch.float64).mul(1.5).log_softmax(-1)
    best = None
    for n in range(max_len + 1):
        for letters in itertools.product([3, 4], repeat=n):
            done = n < max_len
            toks = [BOS, *letters] + ([EOS] if done else [])
            ctc = _ctc_log_prob(lp, list(letters)) if done else \
                ctc_prefix_log_prob(lp, list(letters))
            score = (1 - lam) * _sum_log_prob(att, toks) + lam * ctc + beta * _sum_log_prob(lm, toks)
            score /= (len(toks) - 1) ** alpha
            if best is None or score > best[0]:
                best = (score, list(letters))
    got = joint_beam_search_nbest(att if lam < 1 else None, lp[None], max_len=max_len,
                                  beam_width=64, ctc_weight=lam, length_penalty=alpha,
                                  lm_log_probs=lm, lm_weight=beta)[0]
    assert got[0][0] == best[1]
    assert got[0][1] / (len(best[1]) + (len(best[1]) < max_len)) ** alpha == \
        pytest.approx(best[0], abs=1e-9)


def test_ctc_prefix_beam_search_needs_no_decoder():
    """λ = 1 and no decoder: frames that surely say 'a b a' give it; a language model that
    says 'b' after bos almost surely overrules frames that waver between 'a' and 'b'."""
    sure = (F.one_hot(torch.tensor([3, 0, 4, 4, 0, 3]), 5).double() * 30).log_softmax(-1)
    assert joint_beam_search(None, sure[None], max_len=8, beam_width=3, ctc_weight=1.0) == \
        [ctc_greedy_decode(sure)] == [[3, 4, 3]]
    unsure = torch.tensor([[0.0, -9, -9, 0.1, 0.0]] * 2 + [[0.0, -9, -9, -9, -9]],
                          dtype=torch.float64).log_softmax(-1)

    def likes_b(prefix, rows):
        out = torch.full((len(prefix), 5), -30.0, dtype=torch.float64)
        out[:, 4 if prefix.shape[1] == 1 else EOS] = 0.0
        return out

    assert joint_beam_search(None, unsure[None], max_len=4, beam_width=3, ctc_weight=1.0) == [[3]]
    assert joint_beam_search(None, unsure[None], max_len=4, beam_width=3, ctc_weight=1.0,
                             lm_log_probs=likes_b, lm_weight=1.0) == [[4]]


def test_fusion_checks_its_inputs():
    lp = torch.randn(1, 5, 5).log_softmax(-1)
    with pytest.raises(ValueError, match="next_log_probs"):
        joint_beam_search(None, lp, ctc_weight=0.5)
    with pytest.raises(ValueError, match="lm_log_probs"):
        joint_beam_search(_hashed(0), lp, lm_weight=0.5)
    with pytest.raises(ValueError, match="lm_weight"):
        joint_beam_search(_hashed(0), lp, lm_log_probs=_hashed(1), lm_weight=-0.1)
    with pytest.raises(ValueError, match="lm"):
        char_lm_next("gpt")
    with pytest.raises(ValueError, match="held_out"):
        text_only_phrases("one held out sentence")


def test_char_lm_next_is_the_gpts_next_token_distribution():
    """Against the GPT's own incremental (KV-cache) step, a different code path."""
    torch.manual_seed(0)
    lm = GPT(7, 12, n_layer=2, n_head=2, n_embd=16).eval()
    prefix = torch.tensor([[BOS, 3, 4, 4], [BOS, 5, 6, 3]])
    with torch.no_grad():
        logits, cache = lm.step(prefix[:, :3])
        logits, _ = lm.step(prefix[:, 3:], cache)
        got = char_lm_next(lm)(prefix, torch.tensor([0, 1]))
    assert torch.allclose(got.exp(), logits[:, -1].softmax(-1), atol=1e-6)
    assert torch.allclose(got.exp().sum(-1), torch.ones(2), atol=1e-6)


# ---------------------------------------------------------------- the language model's text
def test_the_language_model_never_reads_a_held_out_sentence_nor_three_words_of_one():
    pool = embedded_sentences(12, 40)
    held = pool[100:160]
    text = text_only_phrases(held, 12, 40)
    assert text and not set(text) & set(held) and set(text) <= set(pool)
    joined = [" " + t + " " for t in text]
    for h in held:                                  # no run of 3 words of a held-out sentence
        w = h.split()
        for i in range(len(w) - 2):
            tri = " " + " ".join(w[i:i + 3]) + " "
            assert not any(tri in t for t in joined), tri
    # a phrase that shares only one word with the held-out ones is kept
    words = {w for h in held for w in h.split()}
    assert any(len(set(t.split()) & words) == 1 for t in text)
    assert text_only_phrases([], 12, 40) == pool
    assert text_only_phrases(held, 12, 40, ngram=1) == [
        t for t in pool if not set(t.split()) & words]
    with pytest.raises(ValueError, match="ngram"):
        text_only_phrases(held, ngram=0)


# ---------------------------------------------------------------- the task
@pytest.mark.parametrize("experiment", ["asr_conformer", "asr_lstm_ctc"])
def test_the_language_model_trains_in_its_own_group_and_resumes_exactly(experiment, tmp_path):
    over = [f"experiment={experiment}", *TINY]
    full = Trainer(to_object(compose(over)), tmp_path / "full")
    res = full.fit()
    task = full.task
    groups = task.param_groups()
    assert set(groups) == {"model", "lm"}
    ids = [{id(p) for p in g} for g in groups.values()]
    assert not ids[0] & ids[1] and ids[0] | ids[1] == {id(p) for p in task.model.parameters()}
    assert {id(p) for p in task.model.lm.parameters()} == ids[1]
    held = set(task.texts["val"]) | set(task.texts["test"])
    assert not set(task.lm_texts) & held and set(task.texts["train"]) <= set(task.lm_texts)
    key = "cer_joint_lm" if experiment == "asr_conformer" else "cer_lm"
    assert math.isfinite(res["test"][key]) and res["test"]["lm_nll"] > 0
    assert Trainer(to_object(compose(over + ["trainer.halt_after=1"])),
                   tmp_path / "split").fit() is None
    resumed = Trainer(to_object(compose(over)), tmp_path / "split")
    assert resumed.fit()["test"] == res["test"]
    for (n, p), (_, q) in zip(full.task.model.named_parameters(),
                              resumed.task.model.named_parameters()):
        assert torch.equal(p, q), n


def test_the_language_model_learns_its_text(tmp_path):
    """Two hundred steps on the text alone take its loss on held-out sentences well below the
    cross-entropy of the text's own character frequencies (counted here, add-one smoothed): it
    has learnt which letters follow which."""
    trainer = Trainer(to_object(compose(["experiment=asr_lstm_ctc", *TINY, "trainer.max_steps=200",
                                         "trainer.eval_every=200", "trainer.ckpt_every=1000",
                                         "trainer.optim.lr=3e-3", "model.lm_d_model=32",
                                         "model.lm_per_item=4"])), tmp_path)
    res = trainer.fit()
    task = trainer.task
    counts = collections.Counter(c for t in task.lm_texts for c in t + "$")    # $: <eos>
    total = sum(counts.values())
    refs = task.texts["test"][:2]                                  # model.eval_utterances=2
    unigram = -sum(math.log((counts[c] + 1) / (total + len(counts))) for t in refs
                   for c in t + "$") / sum(len(t) + 1 for t in refs)
    assert res["test"]["lm_nll"] < unigram - 0.3


def _recogniser(model):
    return {n: p for n, p in model.state_dict().items() if not n.startswith("lm.")}


@pytest.mark.parametrize("experiment", ["asr_conformer", "asr_lstm_ctc"])
def test_the_recogniser_trains_exactly_as_without_its_language_model(experiment, tmp_path):
    """The language model has its own optimiser group and its own random stream: turning it on
    changes no weight of the recogniser and none of its own scores."""
    with_lm = Trainer(to_object(compose([f"experiment={experiment}", *TINY])), tmp_path / "a")
    res = with_lm.fit()
    alone = Trainer(to_object(compose([f"experiment={experiment}", *TINY, "model.lm_weight=0"])),
                    tmp_path / "b")
    res0 = alone.fit()
    a, b = _recogniser(with_lm.task.model), alone.task.model.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert {k: v for k, v in res["test"].items() if "lm" not in k} == res0["test"]


def test_the_task_decodes_with_its_language_model(tmp_path):
    """Mode ``lm`` is the joint search with the task's GPT at weight β, called here by hand; a
    large β changes what it hears, so a mode that dropped the LM would fail."""
    trainer = Trainer(to_object(compose(["experiment=asr_conformer", *TINY,
                                         "model.lm_weight=5"])), tmp_path)
    trainer.fit()
    task, m, idx = trainer.task, trainer.task.cfg.model, [0, 1]
    task.model.eval()
    with torch.no_grad():
        x, lengths = task._features("test", idx)
        memory, mask = task.model.encode(x, lengths)

        def search(**fusion):
            out = joint_beam_search(
                lambda p, r: task.model.next_log_probs(p, r, memory, mask),
                task.model.ctc_log_probs(memory), task.model.ctc_lengths(mask), BOS, EOS,
                task.decode_limit + 1, m.beam_width, m.joint_ctc_weight, m.length_penalty,
                **fusion)
            return [task.vocab.decode(o) for o in out]

        fused = search(lm_log_probs=char_lm_next(task.model.lm), lm_weight=5.0)
        assert task.transcribe("test", idx, "lm") == fused
        assert fused != search() == task.transcribe("test", idx, "joint")


def test_a_run_from_before_the_language_model_resumes(tmp_path):
    """A checkpoint whose stored config predates the ``model.lm_*`` fields resumes when they
    are at their defaults, and is refused, naming the field, when one is not."""
    from genmodels.train.checkpoint import load_checkpoint, save_checkpoint

    over = ["experiment=asr_speech", *(o for o in TINY if not o.startswith("model.lm_"))]
    assert Trainer(to_object(compose(over + ["trainer.halt_after=1"])), tmp_path).fit() is None
    ckpt = tmp_path / "checkpoints" / "last.pt"
    state = load_checkpoint(ckpt)
    for key in [k for k in state["config"]["model"] if k.startswith("lm_")]:
        del state["config"]["model"][key]
    save_checkpoint(ckpt, state)
    with pytest.raises(ConfigError, match="model.lm_layers"):
        Trainer(to_object(compose(over + ["model.lm_layers=3"])), tmp_path).fit()
    assert Trainer(to_object(compose(over)), tmp_path).fit()["step"] == 2


@pytest.mark.parametrize("override, key", [("model.lm_weight=-1", "model.lm_weight"),
                                           ("model.lm_heads=3", "model.lm_heads"),
                                           ("model.lm_per_item=0", "model.lm_per_item")])
def test_bad_language_model_configs_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key):
        to_object(compose(["experiment=asr_conformer", override]))
    with pytest.raises(ConfigError, match="model.lm_weight.*CTC head"):
        to_object(compose(["experiment=asr_conformer", "model.ctc_weight=0"]))
