r"""Speech recognition: MFCC frames → characters, two ways.

**Features** (:func:`asr_features`): MFCCs (eq. 2.30, :func:`~genmodels.audio.features.mfcc`),
normalised per utterance and coefficient to zero mean and unit variance (cepstral mean and
variance normalisation: removes the channel and much of the voice's fixed spectral colour).
A convolutional front-end (:class:`ConvSubsampler`) then halves the frame rate ``log2(subsample)``
times, so the encoder sees ~25 positions per second instead of 100.

**The encoder–decoder Transformer** (:class:`TransformerASR`): the front-end, then
:class:`~genmodels.transformer.seq2seq.EncoderDecoderTransformer`; trained with teacher forcing
(the decoder reads ``<bos> c_1 … c_n`` and predicts ``c_1 … c_n <eos>``, cross-entropy),
optionally plus a CTC loss on a per-position classifier over the encoder output (joint
CTC–attention training, Kim, Hori & Watanabe 2017: the monotonic CTC alignment teaches the
encoder where the characters are long before the decoder's cross-attention finds them);
decoded by :func:`greedy_decode`, :func:`beam_search`, the beam rescored by the CTC head
(:func:`ctc_rescore`) or, best, :func:`joint_beam_search`: one-pass joint CTC/attention beam
search, where the CTC prefix score (:func:`ctc_prefix_extend`) ranks every extension inside the
beam (Watanabe et al. 2017). With ``conv_kernel > 0`` every encoder block is followed by a
:class:`ConvModule`, the Conformer's convolution branch (Gulati et al. 2020; the modern encoder,
``experiment=asr_conformer``, beside the chapter's).

**The baseline** (:class:`LSTMCTC`): the same front-end, a bidirectional LSTM (the rnn family's
:class:`~genmodels.rnn.FastLSTM`, one per direction and layer) and a per-frame classifier over
blank + characters, trained with CTC (``torch.nn.functional.ctc_loss``), decoded by
:func:`ctc_greedy_decode` (best class per frame, repeats merged, blanks dropped).

**Tokens** (:class:`CharVocab`): 0 = padding (and the CTC blank), 1 = ``<bos>``, 2 = ``<eos>``,
then the characters of the corpus charset in order.

**Beam search and length normalisation.** A hypothesis' score is its log-probability
``Σ_t log p(y_t | y_<t, x)``, which only falls as tokens are added, so unnormalised beam search
prefers short transcripts. Finished hypotheses are therefore ranked by
``Σ_t log p / |y|^α`` with ``|y|`` the number of tokens after ``<bos>`` (``<eos>`` included) and
``α = length_penalty`` (0: none, 1: the mean log-probability per token). While searching, the
live hypotheses are ranked by the raw sum (they all have the same length).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from genmodels._checks import check_int, check_range, check_tensor
from genmodels.audio.features import mfcc
from genmodels.rnn.fast import FastLSTM
from genmodels.transformer.seq2seq import EncoderDecoderTransformer

__all__ = ["CharVocab", "asr_features", "time_stretch", "ConvSubsampler", "TransformerASR",
           "LSTMCTC", "ConvModule", "greedy_decode", "beam_search", "beam_search_nbest", "ctc_rescore", "ctc_greedy_decode",
           "ctc_prefix_start", "ctc_prefix_extend", "ctc_prefix_log_prob", "char_lm_next",
           "joint_beam_search", "joint_beam_search_nbest", "lengths_mask"]

PAD, BOS, EOS = 0, 1, 2


class CharVocab:
    """Token ids of a charset: 0 padding / CTC blank, 1 ``<bos>``, 2 ``<eos>``, 3… characters."""

    specials = ("<pad>", "<bos>", "<eos>")

    def __init__(self, charset: str):
        if not isinstance(charset, str) or not charset or len(set(charset)) != len(charset):
            raise ValueError(f"charset: expected a non-empty string of distinct characters, "
                             f"got {charset!r}")
        self.charset = charset
        self.index = {c: i + len(self.specials) for i, c in enumerate(charset)}

    def __len__(self) -> int:
        return len(self.specials) + len(self.charset)

    def encode(self, text: str) -> list[int]:
        if not isinstance(text, str):
            raise ValueError(f"text: expected a str, got {type(text).__name__}")
        bad = sorted(set(text) - set(self.charset))
        if bad:
            raise ValueError(f"text: characters {bad} are not in the charset {self.charset!r}")
        return [self.index[c] for c in text]

    def decode(self, ids) -> str:
        """Characters of ``ids`` (special tokens are skipped)."""
        n = len(self.specials)
        return "".join(self.charset[i - n] for i in (int(j) for j in ids)
                       if n <= i < len(self))


def asr_features(audio: torch.Tensor, sample_rate: int, n_mfcc: int = 20, n_fft: int = 256,
                 hop_length: int = 80, n_mels: int = 40) -> torch.Tensor:
    """MFCC frames of one utterance ``audio [N]``, normalised per coefficient over the
    utterance (zero mean, unit variance): ``[frames, n_mfcc]``."""
    check_tensor("audio", audio, ndim=1)
    c = mfcc(audio, sample_rate, n_mfcc=n_mfcc, n_fft=n_fft, hop_length=hop_length,
             n_mels=n_mels).T                                         # (frames, n_mfcc)
    return (c - c.mean(0)) / (c.std(0) + 1e-5)


def time_stretch(feats: torch.Tensor, rate: float) -> torch.Tensor:
    """Speed perturbation of feature frames ``feats [T, D]``: the utterance said ``rate`` times
    as fast, ``round(T / rate)`` frames (at least 1) linearly interpolated between the first and
    the last frame (Ko et al., 2015, do it on the waveform; on the frames it costs nothing)."""
    check_tensor("feats", feats, ndim=2)
    if not (rate > 0):
        raise ValueError(f"rate: must be > 0, got {rate}")
    n = max(1, int(round(feats.shape[0] / rate)))
    if n == feats.shape[0]:
        return feats
    return F.interpolate(feats.T[None], size=n, mode="linear", align_corners=True)[0].T


def lengths_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """Bool ``[B, max_len]``, True at positions ``< lengths[b]``."""
    check_tensor("lengths", lengths, ndim=1, floating=False)
    if lengths.is_floating_point() or lengths.is_complex() or lengths.dtype == torch.bool:
        raise ValueError(f"lengths: expected an integer tensor, got {lengths.dtype}")
    max_len = int(lengths.max()) if max_len is None else max_len
    return torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]


class ConvSubsampler(nn.Module):
    """``log2(subsample)`` Conv1d layers (odd ``kernel``, stride 2, GELU) from ``in_dim`` to
    ``out_dim`` channels; ``subsample = 1``: one linear map. ``forward(x[B, T, in_dim],
    lengths[B])`` → ``(y[B, T', out_dim], lengths')``, ``T' = ceil(T / 2)`` for each halving
    (padding ``kernel // 2``). Two layers of kernel ``k`` see ``3k − 2`` frames."""

    def __init__(self, in_dim: int, out_dim: int, subsample: int = 4, kernel: int = 3):
        super().__init__()
        check_int("in_dim", in_dim, minimum=1)
        check_int("out_dim", out_dim, minimum=1)
        if subsample not in (1, 2, 4, 8):
            raise ValueError(f"subsample: must be 1, 2, 4 or 8, got {subsample!r}")
        check_int("kernel", kernel, minimum=1)
        if kernel % 2 == 0:
            raise ValueError(f"kernel: must be odd (centred, ceil(T / 2) frames out), got {kernel}")
        self.subsample, n = subsample, subsample.bit_length() - 1
        self.proj = nn.Linear(in_dim, out_dim) if n == 0 else None
        self.convs = nn.ModuleList(
            nn.Conv1d(in_dim if i == 0 else out_dim, out_dim, kernel, 2, kernel // 2)
            for i in range(n))

    def forward(self, x: torch.Tensor, lengths: torch.Tensor):
        check_tensor("x", x, ndim=3)
        if self.proj is not None:
            return self.proj(x), lengths
        y = x.transpose(1, 2)                                              # (B, C, T)
        for conv in self.convs:
            y = F.gelu(conv(y))
            lengths = (lengths - 1) // 2 + 1                                # ceil(L / 2)
        return y.transpose(1, 2), lengths


class ConvModule(nn.Module):
    """The Conformer's convolution branch (Gulati et al. 2020), added after an encoder block:
    ``x + Dropout(W₂ SiLU(LN(DepthwiseConv_k(GLU(W₁ LN(x))))))``; padding positions
    (``key_mask`` False) are zeroed before the depthwise convolution so they never leak into a
    real one. ``forward(x[B, S, d], key_mask[B, S] | None) -> [B, S, d]``."""

    def __init__(self, d_model: int, kernel: int = 15, dropout: float = 0.1):
        super().__init__()
        check_int("d_model", d_model, minimum=1)
        check_int("kernel", kernel, minimum=1)
        if kernel % 2 == 0:
            raise ValueError(f"kernel: must be odd (centred), got {kernel}")
        self.ln = nn.LayerNorm(d_model)
        self.pw1 = nn.Linear(d_model, 2 * d_model)
        self.dw = nn.Conv1d(d_model, d_model, kernel, padding=kernel // 2, groups=d_model)
        self.ln2 = nn.LayerNorm(d_model)
        self.pw2 = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        check_tensor("x", x, ndim=3)
        y = F.glu(self.pw1(self.ln(x)), dim=-1)                            # (B, S, d)
        if key_mask is not None:
            y = y * key_mask[..., None]
        y = self.dw(y.transpose(1, 2)).transpose(1, 2)
        return x + self.drop(self.pw2(F.silu(self.ln2(y))))


class _BlockThenConv(nn.Module):
    """An encoder block followed by a :class:`ConvModule` (``TransformerASR(conv_kernel=k)``)."""

    def __init__(self, block: nn.Module, conv: ConvModule):
        super().__init__()
        self.block, self.conv = block, conv

    def forward(self, x: torch.Tensor, key_mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.conv(self.block(x, key_mask=key_mask), key_mask)


class TransformerASR(nn.Module):
    """Front-end + encoder–decoder Transformer over characters (see the module docstring).

    ``forward(feats[B, T, n_feats], lengths[B], tgt_in[B, L]) -> logits[B, L, V]``;
    ``encode(feats, lengths) -> (memory[B, S, d], memory_mask[B, S])``;
    ``next_log_probs(prefix[N, t], rows[N], memory, memory_mask) -> [N, V]``. With
    ``ctc_head``, ``ctc_log_probs(memory) -> [B, S·k, V]`` is a per-position classifier on the
    encoder output for the auxiliary CTC loss (joint CTC–attention training), giving
    ``k = ctc_upsample`` CTC label slots per encoder position (one linear map to ``k·V`` logits,
    read as ``k`` consecutive slots): at ``subsample = 4`` an encoder position covers 40 ms, and
    CTC needs a slot for every letter, silent ones included, and a blank between doubled letters
    (``ss`` of one /s/), more than 25 slots per second give in fast speech;
    ``ctc_lengths(memory_mask) -> [B]`` are the valid slots. ``input_scale`` multiplies the
    projected front-end output before the sinusoids are added (``src_scale`` of
    :class:`EncoderDecoderTransformer`); ``conv_kernel = k > 0`` puts a :class:`ConvModule`
    (the Conformer's convolution branch, kernel ``k``) after every encoder block: not the
    original architecture, an opt-in (``experiment=asr_conformer``)."""

    def __init__(self, n_feats: int, vocab_size: int, d_model: int = 128, num_heads: int = 4,
                 enc_layers: int = 4, dec_layers: int = 2, d_ff: int = 512, dropout: float = 0.1,
                 subsample: int = 4, max_frames: int = 4096, max_chars: int = 256,
                 ctc_head: bool = False, ctc_upsample: int = 1, frontend_kernel: int = 3,
                 input_scale: float = 1.0, conv_kernel: int = 0):
        super().__init__()
        check_int("max_frames", max_frames, minimum=1)
        check_int("ctc_upsample", ctc_upsample, minimum=1)
        check_int("conv_kernel", conv_kernel, minimum=0)
        if conv_kernel and conv_kernel % 2 == 0:
            raise ValueError(f"conv_kernel: must be 0 (off) or odd, got {conv_kernel}")
        if not input_scale > 0:
            raise ValueError(f"input_scale: must be > 0, got {input_scale!r}")
        self.frontend = ConvSubsampler(n_feats, d_model, subsample, frontend_kernel)
        self.seq2seq = EncoderDecoderTransformer(
            d_model, vocab_size, d_model, num_heads, enc_layers, dec_layers, d_ff, dropout,
            max_src_len=-(-max_frames // subsample), max_tgt_len=max_chars, src_scale=input_scale)
        if conv_kernel:                  # opt-in Conformer-style convolution after each block
            enc = self.seq2seq.encoder
            for i in range(len(enc)):
                enc[i] = _BlockThenConv(enc[i], ConvModule(d_model, conv_kernel, dropout))
        self.vocab_size = vocab_size
        self.ctc_upsample = ctc_upsample
        self.ctc_head = nn.Linear(d_model, vocab_size * ctc_upsample) if ctc_head else None

    def ctc_log_probs(self, memory: torch.Tensor) -> torch.Tensor:
        """Log-probabilities over blank (id 0) + tokens of the ``k = ctc_upsample`` CTC slots of
        every encoder position ``[B, S·k, V]`` (slot ``s·k + j``: position ``s``'s ``j``-th)."""
        if self.ctc_head is None:
            raise ValueError("ctc_head: the model was built without the CTC head")
        check_tensor("memory", memory, ndim=3)
        B, S, _ = memory.shape
        logits = self.ctc_head(memory).reshape(B, S * self.ctc_upsample, self.vocab_size)
        return torch.log_softmax(logits, dim=-1)                               # (B, S·k, V)

    def ctc_lengths(self, memory_mask: torch.Tensor) -> torch.Tensor:
        """Valid CTC slots of each source ``[B]``: ``ctc_upsample`` × its valid positions."""
        return memory_mask.sum(1) * self.ctc_upsample

    def encode(self, feats: torch.Tensor, lengths: torch.Tensor, intermediate: int = 0):
        """``(memory, memory_mask)``; with ``intermediate = k``, ``(memory, memory_mask,
        hidden_k)``: encoder layer ``k``'s output too (intermediate CTC)."""
        x, lengths = self.frontend(feats, lengths)
        mask = lengths_mask(lengths, x.shape[1])
        if intermediate:
            memory, hidden = self.seq2seq.encode(x, mask, intermediate)
            return memory, mask, hidden
        return self.seq2seq.encode(x, mask), mask

    def forward(self, feats, lengths, tgt_in):
        memory, mask = self.encode(feats, lengths)
        return self.seq2seq.decode(tgt_in, memory, mask)

    def next_log_probs(self, prefix: torch.Tensor, rows: torch.Tensor, memory: torch.Tensor,
                       memory_mask: torch.Tensor) -> torch.Tensor:
        """log p(next token | prefix, source ``rows``) ``[N, V]`` (the decoder reruns the whole
        prefix: targets are short)."""
        logits = self.seq2seq.decode(prefix, memory[rows], memory_mask[rows])
        return torch.log_softmax(logits[:, -1].float(), dim=-1)


class _BiLSTMLayer(nn.Module):
    """One bidirectional layer: a :class:`FastLSTM` forward in time and one over each sequence
    reversed within its length; outputs concatenated ``[B, T, 2H]``."""

    def __init__(self, in_dim: int, hidden: int):
        super().__init__()
        self.fwd, self.bwd = FastLSTM(in_dim, hidden), FastLSTM(in_dim, hidden)

    @staticmethod
    def _reverse(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        T = x.shape[1]
        t = torch.arange(T, device=x.device)[None, :]
        idx = torch.where(t < lengths[:, None], lengths[:, None] - 1 - t, t)  # (B, T)
        return x.gather(1, idx[..., None].expand(-1, -1, x.shape[2]))

    def forward(self, x, lengths):
        f, _ = self.fwd(x)
        b, _ = self.bwd(self._reverse(x, lengths))
        return torch.cat([f, self._reverse(b, lengths)], dim=-1)


class LSTMCTC(nn.Module):
    """The baseline: front-end, bidirectional LSTM layers, per-frame classifier (log-softmax).

    ``forward(feats[B, T, n_feats], lengths[B]) -> (log_probs[B, T', V], lengths'[B])``."""

    def __init__(self, n_feats: int, vocab_size: int, hidden: int = 128, layers: int = 2,
                 dropout: float = 0.1, subsample: int = 2):
        super().__init__()
        check_int("hidden", hidden, minimum=1)
        check_int("layers", layers, minimum=1)
        check_int("vocab_size", vocab_size, minimum=2)
        check_range("dropout", dropout, 0.0, 1.0, high_open=True)
        self.frontend = ConvSubsampler(n_feats, hidden, subsample)
        self.layers = nn.ModuleList(_BiLSTMLayer(hidden if i == 0 else 2 * hidden, hidden)
                                    for i in range(layers))
        self.drop = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * hidden, vocab_size)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor):
        x, lengths = self.frontend(feats, lengths)
        for layer in self.layers:
            x = layer(self.drop(x), lengths)
        return torch.log_softmax(self.classifier(self.drop(x)), dim=-1), lengths


NextLogProbs = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _check_decode_args(batch_size, bos, eos, max_len) -> None:
    check_int("batch_size", batch_size, minimum=1)
    check_int("bos", bos, minimum=0)
    check_int("eos", eos, minimum=0)
    check_int("max_len", max_len, minimum=1)


@torch.no_grad()
def greedy_decode(next_log_probs: NextLogProbs, batch_size: int, bos: int = BOS,
                  eos: int = EOS, max_len: int = 100) -> list[list[int]]:
    """The most likely next token at every step, for ``batch_size`` sources at once.

    ``next_log_probs(prefix[N, t], rows[N]) -> [N, V]``: log-probabilities of the next token
    after each prefix (which starts with ``bos``) of source ``rows[i]``. Stops at ``eos`` or
    after ``max_len`` tokens. Returns the tokens of each source, without ``bos`` and ``eos``.
    """
    if not callable(next_log_probs):
        raise ValueError("next_log_probs: expected a callable (prefix, rows) -> log-probs")
    _check_decode_args(batch_size, bos, eos, max_len)
    rows = torch.arange(batch_size)
    prefix = torch.full((batch_size, 1), bos, dtype=torch.long)
    done = torch.zeros(batch_size, dtype=torch.bool)
    out: list[list[int]] = [[] for _ in range(batch_size)]
    for _ in range(max_len):
        live = (~done).nonzero().squeeze(1)
        if len(live) == 0:
            break
        nxt = next_log_probs(prefix[live], rows[live]).argmax(-1).cpu()      # (N,)
        step = torch.full((batch_size, 1), eos, dtype=torch.long)
        step[live, 0] = nxt
        prefix = torch.cat([prefix, step], dim=1)
        for i, tok in zip(live.tolist(), nxt.tolist()):
            if tok == eos:
                done[i] = True
            else:
                out[i].append(tok)
    return out


@torch.no_grad()
def beam_search(next_log_probs: NextLogProbs, batch_size: int, bos: int = BOS, eos: int = EOS,
                max_len: int = 100, beam_width: int = 4, length_penalty: float = 1.0
                ) -> list[list[int]]:
    """Beam search; see :func:`beam_search_nbest`, whose best hypothesis per source this returns
    (tokens without ``bos``/``eos``). ``beam_width = 1`` is :func:`greedy_decode`."""
    return [nbest[0][0] for nbest in beam_search_nbest(next_log_probs, batch_size, bos, eos,
                                                       max_len, beam_width, length_penalty)]


@torch.no_grad()
def beam_search_nbest(next_log_probs: NextLogProbs, batch_size: int, bos: int = BOS,
                      eos: int = EOS, max_len: int = 100, beam_width: int = 4,
                      length_penalty: float = 1.0) -> list[list[tuple[list[int], float]]]:
    """Beam search for ``batch_size`` sources at once (the beams of all sources share each call
    of ``next_log_probs``, as in :func:`greedy_decode`).

    Each step extends every live hypothesis of a source by every token; of the extensions,
    ranked by their summed log-probability, those among the best ``beam_width`` that end in
    ``eos`` are finished, and the best ``beam_width`` others stay live. A source stops when it
    has ``beam_width`` finished hypotheses or nothing live; at ``max_len`` the live ones count
    as finished. Returns, per source, its finished hypotheses ``(tokens, Σ log p)`` (tokens
    without ``bos``/``eos``; the sum includes ``eos``'s term when it ended with one), best first
    by ``Σ log p / |y|^length_penalty`` (``|y|``: tokens after ``bos``, ``eos`` included).
    """
    if not callable(next_log_probs):
        raise ValueError("next_log_probs: expected a callable (prefix, rows) -> log-probs")
    _check_decode_args(batch_size, bos, eos, max_len)
    check_int("beam_width", beam_width, minimum=1)
    check_range("length_penalty", length_penalty, 0.0, 10.0)
    return _beam_engine(next_log_probs, batch_size, bos, eos, max_len, beam_width, length_penalty,
                        [None] * batch_size, lambda rows, hyps, att_total: (att_total, lambda i, c, b: None))


def _beam_engine(next_log_probs: NextLogProbs, batch_size: int, bos: int, eos: int, max_len: int,
                 beam_width: int, length_penalty: float, start_states: list, extend
                 ) -> list[list[tuple[list[int], float]]]:
    """The search loop of :func:`beam_search_nbest` and :func:`joint_beam_search_nbest` (their
    docstrings say what it does). A hypothesis is ``(tokens, α, log p_att, state)``;
    ``extend(rows, hyps, att_total)`` returns the scores α ``[N, V]`` of every extension of the
    live hypotheses ``hyps`` (their summed attention log-probabilities ``att_total [N, V]``) and a
    function ``(i, c, b) -> state`` of the kept extension of hypothesis i by token c (source b).
    Extensions scored −∞ are dropped."""
    live = [[([bos], 0.0, 0.0, start_states[b])] for b in range(batch_size)]
    finished: list[list[tuple[list[int], float]]] = [[] for _ in range(batch_size)]

    def norm(toks: list[int], score: float) -> float:
        return score / (len(toks) - 1) ** length_penalty

    for _ in range(max_len):
        hyps = [(b, h) for b in range(batch_size) for h in live[b]]
        if not hyps:
            break
        prefix = torch.tensor([h[0] for _, h in hyps], dtype=torch.long)
        rows = torch.tensor([b for b, _ in hyps], dtype=torch.long)
        att = next_log_probs(prefix, rows).cpu().double()                      # (N, V)
        att_total = att + torch.tensor([h[2] for _, h in hyps], dtype=torch.float64)[:, None]
        total, state_of = extend(rows, hyps, att_total)                         # α: (N, V)
        V = total.shape[1]
        start = 0
        for b in range(batch_size):
            k = len(live[b])
            if k == 0:
                continue
            block = total[start:start + k].reshape(-1)                        # (k * V,)
            scores, flat = block.topk(min(2 * beam_width, block.numel()))
            new_live = []
            for rank, (score, f) in enumerate(zip(scores.tolist(), flat.tolist())):
                if score == float("-inf"):
                    break
                i, c = start + f // V, f % V
                toks = hyps[i][1][0] + [c]
                if c == eos:
                    if rank < beam_width:
                        finished[b].append((toks, score))
                elif len(new_live) < beam_width:
                    new_live.append((toks, score, float(att_total[i, c]), state_of(i, c, b)))
            start += k
            live[b] = [] if len(finished[b]) >= beam_width else new_live
    out = []
    for b in range(batch_size):
        pool = sorted(finished[b] + [(h[0], h[1]) for h in live[b]], key=lambda ts: -norm(*ts))
        out.append([([t for t in toks[1:] if t != eos], score) for toks, score in pool])
    return out


def ctc_rescore(nbest: list[tuple[list[int], float]], ctc_log_probs: torch.Tensor,
                ctc_weight: float = 0.3, length_penalty: float = 1.0, blank: int = PAD
                ) -> list[int]:
    r"""The best of an n-best list ``[(tokens, log p_att), …]`` of one source by the joint score

    .. math:: \big((1-λ)\log p_\text{att}(y|x) + λ \log p_\text{CTC}(y|x)\big) / (|y|+1)^α

    with ``λ = ctc_weight``, ``α = length_penalty`` and ``log p_CTC`` the CTC log-likelihood of
    the tokens under ``ctc_log_probs [S, V]`` (the source's frames; −∞ for a transcript too long
    for them). ``ctc_weight = 0`` keeps the attention ranking."""
    if not isinstance(nbest, list) or not nbest:
        raise ValueError("nbest: expected a non-empty list of (tokens, log-probability) pairs")
    check_tensor("ctc_log_probs", ctc_log_probs, ndim=2)
    check_range("ctc_weight", ctc_weight, 0.0, 1.0)
    check_range("length_penalty", length_penalty, 0.0, 10.0)
    S = ctc_log_probs.shape[0]
    n = len(nbest)
    targets = torch.tensor([t for toks, _ in nbest for t in toks], dtype=torch.long)
    nll = F.ctc_loss(ctc_log_probs[:, None].expand(S, n, -1).float(), targets,
                     torch.full((n,), S, dtype=torch.long),
                     torch.tensor([len(toks) for toks, _ in nbest]), blank=blank,
                     reduction="none", zero_infinity=False)                  # (n,) −log p_CTC
    scores = [((1 - ctc_weight) * att - ctc_weight * float(c)) / (len(toks) + 1) ** length_penalty
              for (toks, att), c in zip(nbest, nll)]
    return nbest[max(range(n), key=lambda i: scores[i])][0]



# ------------------------------------------------------------------ joint CTC/attention decoding
def ctc_prefix_start(log_probs: torch.Tensor, lengths: torch.Tensor | None = None,
                     blank: int = PAD) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""The CTC forward variables of the empty prefix, for :func:`ctc_prefix_extend`.

    ``log_probs [B, T, V]`` are CTC log-probabilities over blank + tokens, ``lengths [B]`` the
    valid frames of each source (default: all ``T``). Returns ``(frames, γ^n, γ^b)``:
    ``frames [B, T, V]`` float64 with every frame past a source's length made a certain blank
    (log-probability 0 for blank, −∞ for the rest, so the recursions carry the probability at the
    source's own last frame to frame ``T``), and for the empty prefix
    ``γ^n_t = −∞`` and ``γ^b_t = Σ_{τ≤t} log y_τ^{blank}`` ``[B, T]`` (frames 0…t all blank)."""
    check_tensor("log_probs", log_probs, ndim=3)
    B, T, V = log_probs.shape
    check_int("blank", blank, minimum=0)
    if blank >= V:
        raise ValueError(f"blank: must be < the {V} classes, got {blank}")
    lengths = torch.full((B,), T, dtype=torch.long) if lengths is None else lengths.cpu()
    check_tensor("lengths", lengths, ndim=1, floating=False)
    if lengths.shape[0] != B or lengths.is_floating_point() or bool((lengths < 1).any()) \
            or bool((lengths > T).any()):
        raise ValueError(f"lengths: expected {B} integers in 1..{T}, got {lengths.tolist()}")
    frames = log_probs.detach().cpu().double().clone()
    past = ~lengths_mask(lengths, T)                                          # (B, T)
    frames[past] = float("-inf")
    frames[..., blank][past] = 0.0
    gamma_n = torch.full((B, T), float("-inf"), dtype=torch.float64)
    gamma_b = frames[..., blank].cumsum(1)                                    # (B, T)
    return frames, gamma_n, gamma_b


def ctc_prefix_extend(frames: torch.Tensor, gamma_n: torch.Tensor, gamma_b: torch.Tensor,
                      last: torch.Tensor, blank: int = PAD, eos: int = EOS
                      ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    r"""CTC prefix scores of every one-token extension ``h = g·c`` of ``N`` prefixes ``g``
    (Watanabe et al. 2017, "Hybrid CTC/attention", Algorithm 2).

    ``frames [N, T, V]`` (from :func:`ctc_prefix_start`, one row per prefix's source),
    ``γ^n(g), γ^b(g) [N, T]`` the forward variables of ``g`` (log-probability that frames 0…t
    collapse to ``g`` with frame t a token, resp. a blank), ``last [N]`` the last token of ``g``
    (−1 for the empty prefix). With ``y_t^c`` the frame probabilities and
    ``Φ_t = γ^b_t(g) ⊕ [c ≠ last(g)] γ^n_t(g)`` (⊕: log-add; a repeated token needs a blank
    between), the recursions over frames are

    .. math:: γ^n_0(h) = [g = ∅]\, y_0^c,\quad γ^b_0(h) = −∞,\quad
              γ^n_t(h) = (γ^n_{t-1}(h) ⊕ Φ_{t-1})\, y_t^c,\quad
              γ^b_t(h) = (γ^b_{t-1}(h) ⊕ γ^n_{t-1}(h))\, y_t^{blank}

    and the prefix probability (the frames' paths whose collapse *starts with* ``h``) is
    ``ψ(h) = γ^n_0(h) ⊕ ⨁_{t≥1} Φ_{t-1} y_t^c``. For ``c = eos`` the score is the probability
    of ``g`` as the whole transcript, ``γ^n_{T-1}(g) ⊕ γ^b_{T-1}(g)``; ``c = blank`` is −∞.
    Returns ``(ψ [N, V], γ^n(h) [N, T, V], γ^b(h) [N, T, V])``, all log, float64."""
    check_tensor("frames", frames, ndim=3, finite=False)
    N, T, V = frames.shape
    check_tensor("gamma_n", gamma_n, ndim=2, finite=False)
    check_tensor("gamma_b", gamma_b, ndim=2, finite=False)
    for name, g in (("gamma_n", gamma_n), ("gamma_b", gamma_b)):
        if tuple(g.shape) != (N, T):
            raise ValueError(f"{name}: expected shape {(N, T)}, got {tuple(g.shape)}")
    check_tensor("last", last, ndim=1, floating=False)
    if last.shape[0] != N or last.is_floating_point():
        raise ValueError(f"last: expected {N} integer tokens (-1: empty prefix), got {last}")
    check_int("blank", blank, minimum=0)
    check_int("eos", eos, minimum=0)
    if blank >= V or eos >= V or blank == eos:
        raise ValueError(f"eos: blank ({blank}) and eos ({eos}) must be distinct and < {V}")
    neg_inf = torch.tensor(float("-inf"), dtype=torch.float64)
    repeat = torch.arange(V)[None, :] == last[:, None]                         # (N, V)
    # Φ_t = γ^b_t(g) ⊕ [c ≠ last] γ^n_t(g)                                     (N, T, V)
    phi = torch.logaddexp(gamma_b[:, :, None],
                          torch.where(repeat[:, None, :], neg_inf, gamma_n[:, :, None]))
    y = frames                                                                 # y_t^c (N, T, V)
    y_blank = frames[:, :, blank]                                              # (N, T)
    new_n = torch.full((N, T, V), float("-inf"), dtype=torch.float64)
    new_b = torch.full((N, T, V), float("-inf"), dtype=torch.float64)
    empty = (last < 0)[:, None]                                                # (N, 1)
    new_n[:, 0] = torch.where(empty, y[:, 0], neg_inf)                         # [g = ∅] y_0^c
    for t in range(1, T):
        new_n[:, t] = torch.logaddexp(new_n[:, t - 1], phi[:, t - 1]) + y[:, t]
        new_b[:, t] = torch.logaddexp(new_b[:, t - 1], new_n[:, t - 1]) + y_blank[:, t, None]
    # ψ(h) = γ^n_0(h) ⊕ ⨁_{t≥1} Φ_{t-1} y_t^c
    psi = torch.logaddexp(new_n[:, 0], torch.logsumexp(phi[:, :-1] + y[:, 1:], dim=1)) \
        if T > 1 else new_n[:, 0].clone()
    psi[:, eos] = torch.logaddexp(gamma_n[:, -1], gamma_b[:, -1])             # g is the whole text
    psi[:, blank] = float("-inf")
    return psi, new_n, new_b


def ctc_prefix_log_prob(log_probs: torch.Tensor, prefix: list[int], blank: int = PAD,
                        eos: int = EOS) -> float:
    """log ψ of ``prefix`` under one source's CTC output ``log_probs [T, V]``: the log-probability
    of the frames' paths whose collapse starts with ``prefix`` (:func:`ctc_prefix_extend` token
    by token); a last token ``eos`` asks for the tokens before it as the whole transcript (the
    CTC likelihood, ``−ctc_loss``). ``prefix = []`` gives 0."""
    check_tensor("log_probs", log_probs, ndim=2)
    if not isinstance(prefix, list) or not all(isinstance(c, int) for c in prefix):
        raise ValueError(f"prefix: expected a list of token ids, got {prefix!r}")
    if any(c == blank or not 0 <= c < log_probs.shape[1] for c in prefix) \
            or eos in prefix[:-1]:
        raise ValueError(f"prefix: tokens must be in 0..{log_probs.shape[1] - 1}, not blank "
                         f"({blank}), with eos ({eos}) only last; got {prefix}")
    frames, g_n, g_b = ctc_prefix_start(log_probs[None], blank=blank)
    last, psi = torch.tensor([-1]), 0.0
    for c in prefix:
        scores, new_n, new_b = ctc_prefix_extend(frames, g_n, g_b, last, blank, eos)
        psi, g_n, g_b, last = float(scores[0, c]), new_n[..., c], new_b[..., c], torch.tensor([c])
    return psi


@torch.no_grad()
def joint_beam_search_nbest(next_log_probs: NextLogProbs | None, ctc_log_probs: torch.Tensor,
                            ctc_lengths: torch.Tensor | None = None, bos: int = BOS,
                            eos: int = EOS, max_len: int = 100, beam_width: int = 4,
                            ctc_weight: float = 0.3, length_penalty: float = 1.0,
                            blank: int = PAD, lm_log_probs: NextLogProbs | None = None,
                            lm_weight: float = 0.0) -> list[list[tuple[list[int], float]]]:
    r"""One-pass joint CTC/attention beam search (Watanabe et al. 2017) for the ``B`` sources of
    ``ctc_log_probs [B, T, V]`` (their valid frames ``ctc_lengths [B]``).

    As :func:`beam_search_nbest`, but each extension ``h = g·c`` is ranked by

    .. math:: α(h) = λ \log ψ_\text{CTC}(h|x) + (1 − λ) \log p_\text{att}(h|x)

    (``λ = ctc_weight``): the attention decoder's summed log-probability and the CTC prefix
    score (:func:`ctc_prefix_extend`, carried forward incrementally with each hypothesis' forward
    variables). Ending with ``eos`` scores ``g`` as the whole transcript, so a hypothesis that
    stops before the frames' characters are read, or reads characters the frames do not hold,
    is pushed down *during* the search rather than only afterwards (:func:`ctc_rescore`).
    Extensions the CTC head rules out (score −∞: blank, or more tokens than frames allow) are
    dropped. Finished hypotheses are ranked by ``α / |y|^length_penalty`` (``|y|``: tokens after
    ``bos``, ``eos`` included). ``λ = 0`` is :func:`beam_search_nbest`; ``λ = 1`` with
    ``next_log_probs = None`` is CTC prefix beam search (a CTC model alone, such as
    :class:`LSTMCTC`).

    Shallow fusion with a language model: with ``lm_log_probs(prefix[N, t], rows[N]) -> [N, V]``
    (the next-token log-probabilities of a model of text alone, e.g. :func:`char_lm_next` of a
    :class:`~genmodels.transformer.modules.GPT` over the same ids) and ``β = lm_weight > 0``,
    ``β log p_LM(h)`` (its summed log-probability of the hypothesis) is added to ``α(h)``.

    Returns per source its finished hypotheses ``(tokens, α)`` best first (tokens without
    ``bos``/``eos``)."""
    check_tensor("ctc_log_probs", ctc_log_probs, ndim=3)
    batch_size = ctc_log_probs.shape[0]
    if next_log_probs is None and ctc_weight == 1:          # CTC prefix beam search
        V = ctc_log_probs.shape[2]

        def next_log_probs(prefix, rows):
            return torch.zeros(len(prefix), V, dtype=torch.float64)
    if not callable(next_log_probs):
        raise ValueError("next_log_probs: expected a callable (prefix, rows) -> log-probs "
                         "(None only with ctc_weight = 1)")
    _check_decode_args(batch_size, bos, eos, max_len)
    check_int("beam_width", beam_width, minimum=1)
    check_range("ctc_weight", ctc_weight, 0.0, 1.0)
    check_range("length_penalty", length_penalty, 0.0, 10.0)
    check_range("lm_weight", lm_weight, 0.0, 10.0)
    if lm_weight > 0 and not callable(lm_log_probs):
        raise ValueError("lm_log_probs: lm_weight > 0 needs a callable (prefix, rows) -> log-probs")
    frames, g_n, g_b = ctc_prefix_start(ctc_log_probs, ctc_lengths, blank)
    lam, beta = float(ctc_weight), float(lm_weight)

    def extend(rows, hyps, att_total):
        # state of a hypothesis: (log ψ, γ^n [T], γ^b [T], Σ log p_LM)
        total = att_total if lam == 0 else (1 - lam) * att_total
        lm_total = None
        if beta > 0:
            prefix = torch.tensor([h[0] for _, h in hyps], dtype=torch.long)
            lm_total = (lm_log_probs(prefix, rows).cpu().double()
                        + torch.tensor([h[3][3] for _, h in hyps], dtype=torch.float64)[:, None])
            total = total + beta * lm_total
        lm_of = (lambda i, c: 0.0) if lm_total is None else (lambda i, c: float(lm_total[i, c]))
        if lam == 0:
            return total, lambda i, c, b: (0.0, g_n[b], g_b[b], lm_of(i, c))
        last = torch.tensor([h[0][-1] if len(h[0]) > 1 else -1 for _, h in hyps])
        psi, new_n, new_b = ctc_prefix_extend(
            frames[rows], torch.stack([h[3][1] for _, h in hyps]),
            torch.stack([h[3][2] for _, h in hyps]), last, blank, eos)       # (N, V), (N, T, V)
        total = total + lam * psi                                              # α(h)
        return total, lambda i, c, b: (float(psi[i, c]), new_n[i, :, c], new_b[i, :, c],
                                       lm_of(i, c))

    return _beam_engine(next_log_probs, batch_size, bos, eos, max_len, beam_width, length_penalty,
                        [(0.0, g_n[b], g_b[b], 0.0) for b in range(batch_size)], extend)


def joint_beam_search(next_log_probs: NextLogProbs | None, ctc_log_probs: torch.Tensor,
                      ctc_lengths: torch.Tensor | None = None, bos: int = BOS, eos: int = EOS,
                      max_len: int = 100, beam_width: int = 4, ctc_weight: float = 0.3,
                      length_penalty: float = 1.0, blank: int = PAD,
                      lm_log_probs: NextLogProbs | None = None, lm_weight: float = 0.0
                      ) -> list[list[int]]:
    """The best hypothesis per source of :func:`joint_beam_search_nbest` (tokens without
    ``bos``/``eos``)."""
    return [nbest[0][0] if nbest else []
            for nbest in joint_beam_search_nbest(next_log_probs, ctc_log_probs, ctc_lengths, bos,
                                                 eos, max_len, beam_width, ctc_weight,
                                                 length_penalty, blank, lm_log_probs, lm_weight)]


def char_lm_next(lm: nn.Module) -> NextLogProbs:
    """``lm_log_probs`` for :func:`joint_beam_search` from a causal language model ``lm``
    (``lm(idx[N, t]) -> (logits[N, t, V], _)``, e.g. :class:`~genmodels.transformer.modules.GPT`)
    over the recogniser's ids: the log-softmax of its logits after each whole prefix (the
    prefixes of one search step all have the same length). The sources ``rows`` are ignored:
    a language model sees text only."""
    if not isinstance(lm, nn.Module) or next(lm.parameters(), None) is None:
        raise ValueError(f"lm: expected a language model (an nn.Module with parameters), got "
                         f"{type(lm).__name__}")
    device = next(lm.parameters()).device

    def next_log_probs(prefix: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        logits, _ = lm(prefix.to(device))
        return logits[:, -1].float().log_softmax(-1)

    return next_log_probs


def ctc_greedy_decode(log_probs: torch.Tensor, length: int | None = None,
                      blank: int = PAD) -> list[int]:
    """Best path of a CTC output ``log_probs [T, V]`` (its first ``length`` frames): the best
    class per frame, runs of one class merged, blanks dropped."""
    check_tensor("log_probs", log_probs, ndim=2)
    T, V = log_probs.shape
    length = T if length is None else length
    check_int("length", length, minimum=0)
    if length > T:
        raise ValueError(f"length: at most the {T} frames of log_probs, got {length}")
    check_int("blank", blank, minimum=0)
    if blank >= V:
        raise ValueError(f"blank: must be < the {V} classes, got {blank}")
    best = log_probs[:length].argmax(-1).tolist()
    out, prev = [], None
    for c in best:
        if c != prev and c != blank:
            out.append(c)
        prev = c
    return out
