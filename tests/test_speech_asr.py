"""Speech recognition (issue 21): the encoder–decoder Transformer (causal decoder, cross-attention
against torch's), greedy and beam decoding, greedy CTC decoding, the bidirectional LSTM's
per-length reversal, a few training steps of each experiment through the trainer, bad configs."""

import json
import math

import pytest
import torch
import torch.nn.functional as F

from conftest import compose
from genmodels.speech.asr import (BOS, EOS, LSTMCTC, CharVocab, ConvModule, TransformerASR,
                                  beam_search,
                                  beam_search_nbest, ctc_greedy_decode, ctc_prefix_extend,
                                  ctc_prefix_log_prob, ctc_prefix_start, ctc_rescore,
                                  greedy_decode, joint_beam_search, joint_beam_search_nbest,
                                  time_stretch)
from genmodels.train.config import ConfigError, to_object
from genmodels.train.trainer import Trainer, build_task
from genmodels.transformer.seq2seq import EncoderDecoderTransformer, cross_attention

pytestmark = [pytest.mark.speech]

#: a corpus of 6 voices and 20 phrases (about a second to render) and a tiny model
TINY_DATA = ["data.voices=6", "data.val_voices=1", "data.test_voices=1", "data.sentences=20",
             "data.val_sentences=4", "data.test_sentences=4", "data.voices_per_sentence=1"]
TINY = [*TINY_DATA, "trainer.max_steps=2", "trainer.batch_size=4", "trainer.eval_every=1",
        "trainer.log_every=1", "trainer.scheduler.warmup_steps=1", "trainer.progress=false",
        "trainer.threads=1", "trainer.ckpt_every=100", "model.max_decode_chars=12",
        "model.d_model=32", "model.d_ff=64", "model.enc_layers=1", "model.dec_layers=1",
        "model.lstm_hidden=16", "model.lstm_layers=1"]


def test_decoder_is_causal_and_sees_the_source():
    torch.manual_seed(0)
    model = EncoderDecoderTransformer(5, 11, d_model=16, num_heads=2, enc_layers=1,
                                      dec_layers=2).eval()
    src = torch.randn(2, 7, 5)
    tgt = torch.randint(0, 11, (2, 6))
    out = model(src, None, tgt)
    changed = tgt.clone()
    changed[:, 4] = (tgt[:, 4] + 1) % 11                    # a future token for positions 0-3
    out2 = model(src, None, changed)
    assert torch.allclose(out[:, :4], out2[:, :4], atol=1e-6)
    assert not torch.allclose(out[:, 4:], out2[:, 4:], atol=1e-4)
    src2 = src.clone()
    src2[:, -1] += 1.0                                      # every position sees the whole source
    assert not torch.allclose(model(src2, None, tgt)[:, 0], out[:, 0], atol=1e-5)


def test_padding_frames_of_the_source_are_ignored():
    torch.manual_seed(1)
    model = EncoderDecoderTransformer(3, 9, d_model=16, num_heads=4).eval()
    src, tgt = torch.randn(1, 5, 3), torch.randint(0, 9, (1, 4))
    padded = torch.cat([src, torch.randn(1, 3, 3)], dim=1)
    mask = torch.tensor([[True] * 5 + [False] * 3])
    assert torch.allclose(model(src, None, tgt), model(padded, mask, tgt), atol=1e-5)


def test_cross_attention_checks_name_the_argument():
    x, mem, w = torch.randn(1, 2, 4), torch.randn(1, 3, 4), torch.eye(4)
    with pytest.raises(ValueError, match="memory"):
        cross_attention(x, torch.randn(1, 3, 5), w, w, w, w, 2)
    with pytest.raises(ValueError, match="memory_mask"):
        cross_attention(x, mem, w, w, w, w, 2, torch.ones(1, 3))
    with pytest.raises(ValueError, match="memory_mask"):
        cross_attention(x, mem, w, w, w, w, 2, torch.zeros(1, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="num_heads"):
        cross_attention(x, mem, w, w, w, w, 3)
    with pytest.raises(ValueError, match="x"):
        cross_attention(torch.randn(2, 4), mem, w, w, w, w, 2)


def _random_asr():
    torch.manual_seed(3)
    model = TransformerASR(6, 10, d_model=16, num_heads=2, enc_layers=1, dec_layers=1,
                           d_ff=32, subsample=2).eval()
    x, lengths = torch.randn(3, 20, 6), torch.tensor([20, 15, 9])
    memory, mask = model.encode(x, lengths)
    return lambda prefix, rows: model.next_log_probs(prefix, rows, memory, mask)


def test_beam_width_one_is_greedy():
    fn = _random_asr()
    greedy = greedy_decode(fn, 3, max_len=12)
    assert beam_search(fn, 3, max_len=12, beam_width=1) == greedy
    assert beam_search(fn, 3, max_len=12, beam_width=1, length_penalty=0.0) == greedy
    assert all(len(g) <= 12 for g in greedy)


def _tiny_lm(prefix, rows):
    """Tokens 0 pad, 1 bos, 2 eos, 3 'a', 4 'b'. After bos: a 0.6, b 0.4; after 'a': eos, a and
    b at 1/3 each; after 'b': eos 0.98. Greedy says 'a' (p = 0.6 / 3 = 0.2), the best is 'b'
    (p = 0.39)."""
    table = {(BOS,): [0, 0, 0, 0.6, 0.4], (BOS, 3): [0, 0, 1 / 3, 1 / 3, 1 / 3],
             (BOS, 4): [0, 0, 0.98, 0.01, 0.01]}
    rows_p = [table.get(tuple(p.tolist()), [0, 0, 0.9, 0.05, 0.05]) for p in prefix]
    return torch.tensor(rows_p).clamp_min(1e-12).log()


def test_beam_search_finds_what_greedy_misses():
    assert greedy_decode(_tiny_lm, 1, max_len=5)[0][0] == 3
    assert beam_search(_tiny_lm, 1, max_len=5, beam_width=2, length_penalty=0.0) == [[4]]
    assert beam_search(_tiny_lm, 2, max_len=5, beam_width=3) == [[4], [4]]


def _hashed_lm(prefix, rows):
    """A fixed random model over pad, bos, eos, 'a', 'b': the next-token log-probabilities are a
    function of the prefix alone (pad and bos never follow)."""
    out = []
    for p in prefix.tolist():
        g = torch.Generator().manual_seed(hash(tuple(p)) % 2**31)
        logits = torch.randn(5, generator=g, dtype=torch.float64) * 2
        logits[:2] = -1e9
        out.append(logits.log_softmax(-1))
    return torch.stack(out)


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_a_wide_beam_finds_the_exhaustive_optimum(alpha):
    import itertools
    max_len, best = 4, None
    for n in range(max_len + 1):                       # every sequence of n letters, then eos
        for letters in itertools.product([3, 4], repeat=n):
            toks = [BOS, *letters] + ([EOS] if n < max_len else [])
            total = sum(float(_hashed_lm(torch.tensor([toks[:i]]), None)[0, toks[i]])
                        for i in range(1, len(toks)))
            score = total / (len(toks) - 1) ** alpha
            if best is None or score > best[0]:
                best = (score, list(letters))
    assert beam_search(_hashed_lm, 1, max_len=max_len, beam_width=64,
                       length_penalty=alpha) == [best[1]]


def test_nbest_is_sorted_and_ctc_rescoring_can_overrule_the_decoder():
    nbest = beam_search_nbest(_tiny_lm, 1, max_len=5, beam_width=4)[0]
    assert nbest[0][0] == [4] and [3] in [toks for toks, _ in nbest]
    norm = [s / (len(t) + 1) for t, s in nbest]
    assert norm == sorted(norm, reverse=True)
    assert nbest[0][1] == pytest.approx(math.log(0.4) + math.log(0.98))
    frames = F.one_hot(torch.tensor([0, 3, 3, 0]), 5).double() * 20   # CTC says "a", surely
    assert ctc_rescore(nbest, frames.log_softmax(-1), 0.0) == [4]
    assert ctc_rescore(nbest, frames.log_softmax(-1), 0.5) == [3]
    with pytest.raises(ValueError, match="ctc_weight"):
        ctc_rescore(nbest, frames.log_softmax(-1), 1.5)


# ---------------------------------------------------------------- joint CTC/attention decoding
def _collapse(path):
    out, prev = [], None
    for c in path:
        if c != prev and c != 0:
            out.append(c)
        prev = c
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_ctc_prefix_score_is_the_sum_over_paths_that_start_with_the_prefix(seed):
    """Brute force: all V^T paths of 5 frames over blank, bos, eos, 'a', 'b'; ψ(prefix) sums those
    whose collapse begins with the prefix, the complete score those whose collapse is it."""
    import itertools
    T, V = 5, 5
    lp = torch.randn(T, V, generator=torch.Generator().manual_seed(seed),
                     dtype=torch.float64).mul(2).log_softmax(-1)
    paths = list(itertools.product(range(V), repeat=T))
    logp = torch.stack([lp[torch.arange(T), torch.tensor(p)].sum() for p in paths])
    for prefix in ([3], [4], [3, 3], [3, 4, 3], [4, 4, 4], [3, 4, 4, 3]):
        starts = [i for i, p in enumerate(paths) if _collapse(p)[:len(prefix)] == prefix]
        is_it = [i for i, p in enumerate(paths) if _collapse(p) == prefix]
        assert ctc_prefix_log_prob(lp, prefix) == pytest.approx(
            float(torch.logsumexp(logp[starts], 0)), abs=1e-10)
        assert ctc_prefix_log_prob(lp, [*prefix, EOS]) == pytest.approx(
            float(torch.logsumexp(logp[is_it], 0)), abs=1e-10)
    assert ctc_prefix_log_prob(lp, []) == 0.0


@pytest.mark.parametrize("T, n", [(1, 1), (6, 3), (40, 12)])
def test_the_complete_prefix_score_is_minus_ctc_loss(T, n):
    g = torch.Generator().manual_seed(T)
    lp = torch.randn(T, 9, generator=g, dtype=torch.float64).log_softmax(-1)
    labels = (torch.randint(3, 9, (n,), generator=g)).tolist()
    labels[-1] = labels[0]                                 # a repeat when n > 1
    ref = -F.ctc_loss(lp[:, None], torch.tensor(labels), torch.tensor([T]), torch.tensor([n]),
                      blank=0, reduction="sum")
    assert ctc_prefix_log_prob(lp, [*labels, EOS]) == pytest.approx(float(ref), abs=1e-9)
    assert ctc_prefix_log_prob(lp, labels) >= float(ref) - 1e-12    # ψ(y) ≥ p(y is all)


def test_ctc_prefix_frames_past_a_length_change_nothing():
    lp = torch.randn(2, 7, 6, generator=torch.Generator().manual_seed(5),
                     dtype=torch.float64).log_softmax(-1)
    frames, g_n, g_b = ctc_prefix_start(lp, torch.tensor([7, 4]))
    psi, _, _ = ctc_prefix_extend(frames, g_n, g_b, torch.tensor([-1, -1]))
    short, s_n, s_b = ctc_prefix_start(lp[1:, :4])
    psi_short, _, _ = ctc_prefix_extend(short, s_n, s_b, torch.tensor([-1]))
    assert torch.allclose(psi[1], psi_short[0]) and psi[1, 0] == float("-inf")
    assert float(psi[1, EOS]) == pytest.approx(float(lp[1, :4, 0].sum()))   # ∅: all blank


def _ctc_frames(B=3, T=10, V=10, seed=7):
    return torch.randn(B, T, V, generator=torch.Generator().manual_seed(seed)).log_softmax(-1)


@pytest.mark.parametrize("beam_width, alpha", [(1, 1.0), (3, 0.0), (3, 1.0)])
def test_joint_search_with_no_ctc_weight_is_the_attention_beam(beam_width, alpha):
    fn, lengths = _random_asr(), torch.tensor([10, 8, 5])
    assert joint_beam_search_nbest(fn, _ctc_frames(), lengths, max_len=12, beam_width=beam_width,
                                   ctc_weight=0.0, length_penalty=alpha) \
        == beam_search_nbest(fn, 3, max_len=12, beam_width=beam_width, length_penalty=alpha)


def test_joint_search_scores_its_hypotheses_as_stated():
    """Each finished hypothesis' score is λ log p_CTC(y) + (1 − λ) Σ log p_att (computed again
    here from the model and ctc_loss), and a batch decodes as its sources one by one."""
    fn, frames, lengths, lam = _random_asr(), _ctc_frames().double(), torch.tensor([10, 8, 5]), 0.6
    batch = joint_beam_search_nbest(fn, frames, lengths, max_len=12, beam_width=3, ctc_weight=lam)
    for b in range(3):
        alone = joint_beam_search_nbest(lambda p, r, b=b: fn(p, torch.full_like(r, b)),
                                        frames[b:b + 1, :int(lengths[b])], max_len=12,
                                        beam_width=3, ctc_weight=lam)[0]
        assert [t for t, _ in alone] == [t for t, _ in batch[b]]
        toks, score = batch[b][0]
        full = [BOS, *toks, EOS]
        with torch.no_grad():
            att = sum(float(fn(torch.tensor([full[:i]]), torch.tensor([b]))[0, full[i]])
                      for i in range(1, len(full)))
        ctc = ctc_prefix_log_prob(frames[b, :int(lengths[b])], [*toks, EOS])
        assert score == pytest.approx(lam * ctc + (1 - lam) * att, abs=1e-6)


def test_joint_search_follows_the_ctc_head_where_the_decoder_is_unsure():
    """The tiny LM prefers 'b' (p 0.39) over 'a' (p 0.2); frames that surely say 'a a' make the
    joint search say 'a a', the plain beam not."""
    frames = (F.one_hot(torch.tensor([3, 0, 3, 0]), 5).double() * 30).log_softmax(-1)[None]
    assert beam_search(_tiny_lm, 1, max_len=5, beam_width=3) == [[4]]
    assert joint_beam_search(_tiny_lm, frames, max_len=5, beam_width=3, ctc_weight=0.5) \
        == [[3, 3]]


def test_joint_search_checks_its_inputs():
    frames = _ctc_frames(1)
    with pytest.raises(ValueError, match="ctc_weight"):
        joint_beam_search(_tiny_lm, frames, ctc_weight=1.5)
    with pytest.raises(ValueError, match="ctc_log_probs"):
        joint_beam_search(_tiny_lm, frames[0])
    with pytest.raises(ValueError, match="lengths"):
        joint_beam_search(_tiny_lm, frames, torch.tensor([11]))
    with pytest.raises(ValueError, match="next_log_probs"):
        joint_beam_search("model", frames)
    with pytest.raises(ValueError, match="prefix"):
        ctc_prefix_log_prob(frames[0], [0, 3])
    with pytest.raises(ValueError, match="last"):
        f, n, b = ctc_prefix_start(frames)
        ctc_prefix_extend(f, n, b, torch.tensor([1.0]))


def test_decoders_check_their_inputs():
    with pytest.raises(ValueError, match="beam_width"):
        beam_search(_tiny_lm, 1, beam_width=0)
    with pytest.raises(ValueError, match="length_penalty"):
        beam_search(_tiny_lm, 1, length_penalty=-1.0)
    with pytest.raises(ValueError, match="next_log_probs"):
        greedy_decode("model", 1)
    with pytest.raises(ValueError, match="max_len"):
        greedy_decode(_tiny_lm, 1, max_len=0)
    with pytest.raises(ValueError, match="length"):
        ctc_greedy_decode(torch.zeros(3, 4), 5)


def test_model_pieces_check_their_inputs():
    from genmodels.speech.asr import ConvSubsampler, asr_features, lengths_mask
    with pytest.raises(ValueError, match="audio"):
        asr_features(torch.zeros(2, 800), 8000)
    with pytest.raises(ValueError, match="lengths"):
        lengths_mask(torch.tensor([1.5, 2.0]))
    with pytest.raises(ValueError, match="subsample"):
        ConvSubsampler(4, 8, subsample=3)
    model = EncoderDecoderTransformer(3, 7, d_model=8, num_heads=2, max_tgt_len=5)
    with pytest.raises(ValueError, match="src"):
        model.encode(torch.randn(1, 4, 5))
    with pytest.raises(ValueError, match="tgt"):
        model.decode(torch.tensor([[1, 9]]), torch.randn(1, 4, 8))
    with pytest.raises(ValueError, match="tgt"):
        model.decode(torch.ones(1, 6, dtype=torch.long), torch.randn(1, 4, 8))
    with pytest.raises(ValueError, match="num_heads"):
        EncoderDecoderTransformer(3, 7, d_model=8, num_heads=3)


@pytest.mark.parametrize("kernel", [3, 5, 7])
def test_the_front_end_sees_3k_minus_2_frames_centred_on_its_position(kernel):
    from genmodels.speech.asr import ConvSubsampler
    torch.manual_seed(kernel)
    front = ConvSubsampler(4, 6, subsample=4, kernel=kernel).double()
    x = torch.randn(1, 40, 4, dtype=torch.float64, requires_grad=True)
    y, n = front(x, torch.tensor([40]))
    assert y.shape == (1, 10, 6) and n.tolist() == [10]
    y[0, 5].sum().backward()                                   # position 5 sits on frame 4 × 5
    seen = (x.grad[0].abs().sum(1) > 0).nonzero().flatten().tolist()
    r = 3 * (kernel // 2)
    assert seen == list(range(20 - r, 20 + r + 1)) and len(seen) == 3 * kernel - 2
    for bad in (4, 0):
        with pytest.raises(ValueError, match="kernel"):
            ConvSubsampler(4, 6, subsample=4, kernel=bad)


def test_ctc_greedy_merges_repeats_and_drops_blanks():
    path = [0, 3, 3, 0, 3, 4, 4, 0, 0]                       # blank a a blank a b b blank blank
    lp = F.one_hot(torch.tensor(path), 5).double().log_softmax(-1)
    assert ctc_greedy_decode(lp) == [3, 3, 4]
    assert ctc_greedy_decode(lp, 3) == [3]
    vocab = CharVocab(" ab")
    assert vocab.decode([BOS, *vocab.encode("ab a"), EOS]) == "ab a" and len(vocab) == 6
    with pytest.raises(ValueError, match="text"):
        vocab.encode("abc")


def test_bidirectional_lstm_ignores_padding():
    torch.manual_seed(4)
    model = LSTMCTC(5, 7, hidden=8, layers=2, subsample=1).eval()
    x = torch.randn(1, 9, 5)
    padded = torch.cat([x, torch.randn(1, 4, 5)], dim=1)
    a, _ = model(x, torch.tensor([9]))
    b, n = model(padded, torch.tensor([9]))
    assert int(n) == 9 and torch.allclose(a, b[:, :9], atol=1e-6)
    c, _ = model(torch.cat([x[:, :8], x[:, 8:] + 1], 1), torch.tensor([9]))
    assert not torch.allclose(a[:, 0], c[:, 0], atol=1e-6)   # the first frame sees the last


@pytest.mark.parametrize("experiment, keys", [
    ("asr_speech", {"loss", "cer", "cer_beam", "cer_ctc_head", "cer_beam_ctc", "cer_joint"}),
    ("asr_conformer", {"loss", "cer", "cer_beam", "cer_ctc_head", "cer_beam_ctc", "cer_joint",
                       "lm_nll", "cer_joint_lm"}),
    ("asr_lstm_ctc", {"loss", "cer", "lm_nll", "cer_lm"})])
def test_experiments_train_a_few_steps(experiment, keys, tmp_path):
    trainer = Trainer(to_object(compose([f"experiment={experiment}", *TINY])), tmp_path)
    res = trainer.fit()
    assert set(res["test"]) == keys and set(res["val"]) == keys       # val at the end: beam too
    assert all(math.isfinite(v) and v >= 0 for v in res["test"].values())
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    vals = [r for r in rows if r["split"] == "val"]
    assert len(vals) == 2 and "cer_beam" not in vals[0]               # during training: greedy
    if experiment != "asr_lstm_ctc":
        assert (tmp_path / "figures" / "cross_attention.png").stat().st_size > 0


def test_the_drawn_batch_is_a_function_of_the_step():
    task = build_task(to_object(compose(["experiment=asr_lstm_ctc", *TINY])), torch.device("cpu"))
    a, b = task.draw(3), task.draw(3)
    assert torch.equal(a["idx"], b["idx"]) and torch.equal(a["u"], b["u"])
    x, lengths = task._features("train", a["idx"].tolist())
    masked = task._mask(x, lengths, a["u"])
    assert (masked == 0).any() and masked.shape == x.shape


@pytest.mark.parametrize("rate", [0.85, 1.0, 1.15, 2.5])
def test_time_stretch_is_linear_interpolation_between_first_and_last_frame(rate):
    np = pytest.importorskip("numpy")
    x = torch.randn(37, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    y = time_stretch(x, rate)
    n = round(37 / rate)
    grid = np.linspace(0, 36, n)                         # output frame j sits at j (T − 1)/(n − 1)
    ref = np.stack([np.interp(grid, np.arange(37), x[:, d].numpy()) for d in range(5)], 1)
    assert y.shape == (n, 5) and y.dtype == torch.float64
    assert np.allclose(y.numpy(), ref, atol=1e-12)
    assert time_stretch(x[:1], 0.5).shape == (2, 5) and time_stretch(x[:1], 9.0).shape == (1, 5)
    for bad, name in [((x[0], 1.1), "feats"), ((x, 0.0), "rate"), ((x, -1.0), "rate")]:
        with pytest.raises(ValueError, match=name):
            time_stretch(*bad)


def test_speed_perturbation_draws_rates_per_item_and_leaves_the_masks_alone():
    cfg = to_object(compose(["experiment=asr_lstm_ctc", *TINY, "model.speed_perturb=0.2"]))
    task = build_task(cfg, torch.device("cpu"))
    plain = build_task(to_object(compose(["experiment=asr_lstm_ctc", *TINY, "model.speed_perturb=0"])),
                       torch.device("cpu"))
    a = task.draw(3)
    assert torch.equal(a["u"], plain.draw(3)["u"]) and "rates" not in plain.draw(3)
    assert a["rates"].shape == a["idx"].shape and ((a["rates"] - 1).abs() <= 0.2).all()
    assert torch.equal(a["rates"], task.draw(3)["rates"])
    idx = a["idx"].tolist()
    _, stretched = task._features("train", idx, a["rates"])
    _, lengths = task._features("train", idx)
    assert stretched.tolist() == [max(1, round(int(n) / float(r)))
                                  for n, r in zip(lengths, a["rates"])]
    assert math.isfinite(task._loss("train", idx, a["u"], a["rates"]).item())


def test_an_upsampled_ctc_head_gives_k_slots_per_position_in_time_order():
    torch.manual_seed(6)
    model = TransformerASR(6, 10, d_model=16, num_heads=2, enc_layers=1, dec_layers=1, d_ff=32,
                           subsample=4, ctc_head=True, ctc_upsample=2).eval()
    memory, mask = model.encode(torch.randn(2, 20, 6), torch.tensor([20, 9]))
    lp = model.ctc_log_probs(memory)
    assert lp.shape == (2, 2 * memory.shape[1], 10)
    assert model.ctc_lengths(mask).tolist() == [10, 6]                  # 2 x ceil(ceil(L/2)/2)
    W, b = model.ctc_head.weight, model.ctc_head.bias                   # (2V, d): slot j rows jV..
    slot1 = (memory[:, 3] @ W[10:].T + b[10:]).log_softmax(-1)          # position 3, 2nd slot
    assert torch.allclose(lp[:, 7], slot1, atol=1e-6)
    assert torch.allclose(lp.exp().sum(-1), torch.ones(2, lp.shape[1]), atol=1e-6)
    with pytest.raises(ValueError, match="ctc_upsample"):
        TransformerASR(6, 10, d_model=16, num_heads=2, ctc_head=True, ctc_upsample=0)


def test_the_experiment_trains_with_an_upsampled_ctc_head(tmp_path):
    cfg = to_object(compose(["experiment=asr_speech", *TINY, "model.ctc_upsample=2"]))
    res = Trainer(cfg, tmp_path).fit()
    assert {"cer_ctc_head", "cer_joint"} <= set(res["test"])
    assert all(math.isfinite(v) for v in res["test"].values())


def test_cross_entropy_alone_trains_without_the_ctc_head(tmp_path):
    cfg = to_object(compose(["experiment=asr_speech", *TINY, "model.ctc_weight=0"]))
    trainer = Trainer(cfg, tmp_path)
    res = trainer.fit()
    assert set(res["test"]) == {"loss", "cer", "cer_beam"}
    with pytest.raises(ValueError, match="mode"):
        trainer.task.transcribe("test", [0], "joint")


@pytest.mark.parametrize("override, key", [
    ("model.beam_width=0", "model.beam_width"), ("model.num_heads=3", "model.num_heads"),
    ("model.arch=rnn", "model.arch"), ("model.subsample=3", "model.subsample"),
    ("model.label_smoothing=1.0", "model.label_smoothing"),
    ("model.freq_width=25", "model.freq_width"), ("model.length_penalty=-1", "model.length_penalty"),
    ("model.joint_ctc_weight=1.5", "model.joint_ctc_weight"), ("model.ctc_upsample=0", "model.ctc_upsample"),
    ("model.speed_perturb=1.0", "model.speed_perturb"), ("model.frontend_kernel=4", "model.frontend_kernel"), ("model.speed_perturb=-0.1", "model.speed_perturb"),
    ("model.conv_kernel=4", "model.conv_kernel"), ("model.input_scale=0", "model.input_scale"),
    ("model.inter_ctc_weight=1.0", "model.inter_ctc_weight"),
    (["model.inter_ctc_weight=0.3", "model.inter_ctc_layer=4"], "model.inter_ctc_layer"),
    (["model.inter_ctc_weight=0.3", "model.ctc_weight=0"], "model.inter_ctc_weight"),
])
def test_bad_configs_name_the_key(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        to_object(compose(["experiment=asr_speech",
                           *([override] if isinstance(override, str) else override)]))


def test_the_task_refuses_data_without_transcripts():
    with pytest.raises(ConfigError, match="data"):
        build_task(to_object(compose(["experiment=asr_speech", "data=digits"])),
                   torch.device("cpu"))


def _reference_conv_module(mod, x, key_mask):
    """The Conformer convolution branch written out with explicit sums (float64)."""
    def ln(v, norm):
        mu = v.mean(-1, keepdim=True)
        var = ((v - mu) ** 2).mean(-1, keepdim=True)
        return (v - mu) / torch.sqrt(var + norm.eps) * norm.weight + norm.bias
    h = ln(x, mod.ln) @ mod.pw1.weight.T + mod.pw1.bias
    d = x.shape[-1]
    y = h[..., :d] * torch.sigmoid(h[..., d:]) * key_mask[..., None]        # GLU, padding zeroed
    k = mod.dw.kernel_size[0]
    w, S = mod.dw.weight[:, 0], x.shape[1]                                  # (d, k)
    z = torch.zeros_like(y)
    for s in range(S):
        for j in range(k):
            t = s + j - k // 2
            if 0 <= t < S:
                z[:, s] += w[:, j] * y[:, t]
    z = z + mod.dw.bias
    z = ln(z, mod.ln2)
    return x + (z * torch.sigmoid(z)) @ mod.pw2.weight.T + mod.pw2.bias


@pytest.mark.parametrize("kernel", [1, 3, 7])
def test_the_conv_module_is_the_conformer_branch_written_out(kernel):
    torch.manual_seed(kernel)
    mod = ConvModule(6, kernel, dropout=0.0).double().eval()
    for p in mod.parameters():
        torch.nn.init.normal_(p, std=0.5)
    x = torch.randn(2, 9, 6, dtype=torch.float64)
    key_mask = torch.tensor([[True] * 9, [True] * 6 + [False] * 3])
    torch.testing.assert_close(mod(x, key_mask), _reference_conv_module(mod, x, key_mask),
                               rtol=1e-10, atol=1e-10)


def test_the_conv_module_never_reads_padding():
    torch.manual_seed(0)
    mod = ConvModule(8, 5).eval()
    x = torch.randn(1, 6, 8)
    padded = torch.cat([x, 100 * torch.randn(1, 4, 8)], dim=1)
    mask = torch.tensor([[True] * 6 + [False] * 4])
    torch.testing.assert_close(mod(padded, mask)[:, :6], mod(x, None), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="kernel"):
        ConvModule(8, 4)
    with pytest.raises(ValueError, match="conv_kernel"):
        TransformerASR(6, 10, d_model=16, num_heads=2, conv_kernel=4)
    with pytest.raises(ValueError, match="input_scale"):
        TransformerASR(6, 10, d_model=16, num_heads=2, input_scale=0.0)


def test_a_scaled_source_is_a_scaled_projection():
    torch.manual_seed(2)
    a = EncoderDecoderTransformer(5, 7, d_model=16, num_heads=2, enc_layers=2, src_scale=3.0)
    b = EncoderDecoderTransformer(5, 7, d_model=16, num_heads=2, enc_layers=2)
    b.load_state_dict(a.state_dict())
    with torch.no_grad():
        b.src_proj.weight.mul_(3.0)
        b.src_proj.bias.mul_(3.0)
    a.eval(), b.eval()
    src = torch.randn(2, 6, 5)
    torch.testing.assert_close(a.encode(src), b.encode(src), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="src_scale"):
        EncoderDecoderTransformer(5, 7, d_model=16, num_heads=2, src_scale=0.0)


def test_the_intermediate_output_is_that_of_a_shallower_encoder():
    torch.manual_seed(3)
    deep = EncoderDecoderTransformer(5, 7, d_model=16, num_heads=2, enc_layers=3).eval()
    shallow = EncoderDecoderTransformer(5, 7, d_model=16, num_heads=2, enc_layers=1).eval()
    state = {k: v for k, v in deep.state_dict().items() if not k.startswith("encoder.")
             or k.startswith("encoder.0.")}
    shallow.load_state_dict(state)
    src, mask = torch.randn(2, 6, 5), torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    memory, hidden = deep.encode(src, mask, intermediate=1)
    torch.testing.assert_close(hidden, shallow.encode(src, mask))
    torch.testing.assert_close(memory, deep.encode(src, mask))
    with pytest.raises(ValueError, match="intermediate"):
        deep.encode(src, mask, intermediate=3)


def test_the_intermediate_ctc_term_is_a_weighted_mean_of_the_two_ctc_losses():
    cfg = to_object(compose(["experiment=asr_speech", *TINY, "model.enc_layers=2",
                             "model.inter_ctc_layer=1"]))
    task = build_task(cfg, torch.device("cpu"))
    task.model.eval()
    losses = []
    for v in (0.0, 0.25, 0.5):
        cfg.model.inter_ctc_weight = v
        with torch.no_grad():
            losses.append(float(task._loss("train", [0, 1, 2])))
    assert losses[1] != pytest.approx(losses[0], abs=1e-6)                  # the term is there
    assert losses[2] - losses[1] == pytest.approx(losses[1] - losses[0], abs=1e-5)  # affine in v


def test_the_experiment_trains_with_the_conv_module_and_intermediate_ctc(tmp_path):
    cfg = to_object(compose(["experiment=asr_speech", *TINY, "model.enc_layers=2",
                             "model.conv_kernel=3", "model.inter_ctc_weight=0.3",
                             "model.inter_ctc_layer=1", "model.input_scale=4.0"]))
    trainer = Trainer(cfg, tmp_path)
    res = trainer.fit()
    assert any(isinstance(m, ConvModule) for m in trainer.task.model.modules())
    assert all(math.isfinite(v) for v in res["test"].values())
