r"""Training and evaluation of speech recognition with the generic trainer (family ``asr``).

* features: the MFCC frames of every utterance (:func:`~genmodels.speech.asr.asr_features`),
  computed once when the task is built;
* ``draw``: the minibatch indices (epochs of shuffled utterances) and, per item, the uniform
  numbers that place its SpecAugment-style masks (``model.freq_masks`` bands of coefficients and
  ``model.time_masks`` spans of frames set to 0, the normalised mean) and, with
  ``model.speed_perturb`` = s, its speaking rate, uniform in [1 − s, 1 + s]
  (:func:`~genmodels.speech.asr.time_stretch` of its frames, before the masks);
* ``arch=transformer``: teacher-forced cross-entropy (label-smoothed) of
  :class:`~genmodels.speech.asr.TransformerASR`, mixed with ``model.ctc_weight`` × the CTC loss
  of its encoder's per-position classifier (joint CTC–attention training; 0: cross-entropy
  only); evaluation decodes greedily (``cer``) and with
  beam search (``cer_beam``, on test, and on val with ``model.beam_on_val``); with the CTC head,
  ``cer_ctc_head`` is the greedy CTC decoding of that head alone (a diagnostic of the encoder),
  ``cer_beam_ctc`` beam search whose hypotheses are rescored with that head (joint
  CTC/attention n-best rescoring), ``cer_joint`` one-pass joint CTC/attention beam search
  (:func:`~genmodels.speech.asr.joint_beam_search`: the CTC prefix score ranks every extension
  inside the beam, weight ``model.joint_ctc_weight``);
* ``arch=lstm_ctc``: CTC loss of :class:`~genmodels.speech.asr.LSTMCTC`; ``cer`` from greedy CTC
  decoding.
* ``model.lm_weight`` = β > 0 (either arch): a character language model
  (:class:`~genmodels.transformer.modules.GPT`, ``model.lm_*``) over the recogniser's ids trains
  beside it, in its own optimiser group and with a random stream of its own (the recogniser
  trains exactly as without it), on text: the training transcripts and, for the embedded
  corpus, the embedded phrases that are no val/test sentence and share no three words with one
  (:func:`~genmodels.speech.corpus.text_only_phrases`), ``model.lm_per_item`` × the batch per
  step — and decoding adds β·log p_LM
  (shallow fusion, :func:`~genmodels.speech.asr.joint_beam_search`): ``cer_joint_lm`` for the
  Transformer, ``cer_lm`` (CTC prefix beam search) for the LSTM-CTC. It sits in the model as
  ``model.lm``, so checkpoints and :func:`~genmodels.speech.cli.load_run` carry it.

CER is :func:`~genmodels.speech.measures.character_error_rate` against the transcripts.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from genmodels.errors import ConfigError
from genmodels.speech.asr import (BOS, EOS, LSTMCTC, PAD, CharVocab, TransformerASR,
                                  asr_features, beam_search, beam_search_nbest, char_lm_next,
                                  ctc_greedy_decode, ctc_rescore, greedy_decode,
                                  joint_beam_search, time_stretch)
from genmodels.speech.corpus import SPLITS, SpeechTextCorpus, text_only_phrases
from genmodels.speech.measures import character_error_rate
from genmodels.train.task import Task, batch_indices

__all__ = ["ASRTask"]


def _step_generator(seed: int, step: int) -> torch.Generator:
    return torch.Generator().manual_seed((seed * 1_000_003 + step) * 31 + 5)


class ASRTask(Task):
    progress_metric = "loss"

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        if not isinstance(data, SpeechTextCorpus):
            raise ConfigError(f"data: the asr task needs speech with transcripts "
                              f"(data=speech_text or data=speech_folder), got data={cfg.data.name}")
        m = cfg.model
        self.vocab = CharVocab(data.charset)
        self.feats, self.texts = {}, {}
        for split in SPLITS:
            utts = data.utterances(split)
            self.feats[split] = [asr_features(u.audio.float(), data.sample_rate, m.n_mfcc,
                                              m.n_fft, m.hop_length, m.n_mels) for u in utts]
            self.texts[split] = [u.text for u in utts]
        if not self.feats["train"]:
            raise ConfigError("data: the corpus has no training utterance")
        self.targets = [torch.tensor(self.vocab.encode(t)) for t in self.texts["train"]]
        max_frames = max(f.shape[0] for fs in self.feats.values() for f in fs)
        max_chars = max(len(t) for ts in self.texts.values() for t in ts)
        self.max_chars = max(max_chars, m.max_decode_chars) + 2
        #: decoding stops after this many characters: model.max_decode_chars, or 1.5 times the
        #: longest training transcript if that is shorter (a babbling model stops sooner)
        self.decode_limit = min(m.max_decode_chars,
                                int(1.5 * max(len(t) for t in self.texts["train"])) + 1)
        if m.arch == "transformer":
            model = TransformerASR(m.n_mfcc, len(self.vocab), m.d_model, m.num_heads,
                                   m.enc_layers, m.dec_layers, m.d_ff, m.dropout, m.subsample,
                                   max_frames=2 * max_frames, max_chars=self.max_chars,
                                   ctc_head=m.ctc_weight > 0, ctc_upsample=m.ctc_upsample,
                                   frontend_kernel=m.frontend_kernel, input_scale=m.input_scale,
                                   conv_kernel=m.conv_kernel)
        else:
            model = LSTMCTC(m.n_mfcc, len(self.vocab), m.lstm_hidden, m.lstm_layers, m.dropout,
                            m.subsample)
        if m.lm_weight > 0:
            from genmodels.transformer.modules import GPT

            self.lm_texts = self._lm_texts()
            self.lm_ids = self._lm_encode(self.lm_texts)
            # rotary positions: no position table in the checkpoint, so the context limit (the
            # longest text it reads or writes) may differ between corpora
            block = max(self.max_chars + 1, max(len(i) for i in self.lm_ids))
            with torch.random.fork_rng(devices=[]):   # the recogniser's random stream is untouched
                torch.manual_seed(cfg.seed * 7919 + 11)
                model.lm = GPT(len(self.vocab), block, m.lm_layers, m.lm_heads, m.lm_d_model,
                               dropout=m.dropout, pos_encoding="rope")
        self.model = model.to(device)

    def _lm_texts(self) -> list[str]:
        """The language model's text: the training transcripts — text the recogniser reads
        anyway — and, for a ``speech_text`` corpus, the embedded phrases that are no val/test
        sentence and share no three words with one (:func:`text_only_phrases`)."""
        d = self.cfg.data
        texts = set(self.texts["train"])
        if getattr(d, "name", None) == "speech_text":
            texts |= set(text_only_phrases(self.texts["val"] + self.texts["test"], d.min_chars,
                                           d.max_chars))
        return sorted(texts)

    def param_groups(self):
        """The recogniser, and its language model (``model.lm_weight`` > 0) in a group of its
        own: each is clipped and stepped on its own loss."""
        lm = getattr(self.model, "lm", None)
        if lm is None:
            return super().param_groups()
        lm_params = {id(p) for p in lm.parameters()}
        return {"model": [p for p in self.model.parameters()
                          if id(p) not in lm_params and p.requires_grad],
                "lm": [p for p in lm.parameters() if p.requires_grad]}

    # ------------------------------------------------------------------ batches
    def _features(self, split: str, idx, rates=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded features ``[B, T, n_mfcc]`` (zeros after each end) and lengths ``[B]``; with
        ``rates [B]``, each item time-stretched to that speaking rate first."""
        fs = [self.feats[split][i] for i in idx]
        if rates is not None:
            fs = [time_stretch(f, float(r)) for f, r in zip(fs, rates)]
        lengths = torch.tensor([f.shape[0] for f in fs])
        x = torch.nn.utils.rnn.pad_sequence(fs, batch_first=True)
        return x.to(self.device), lengths.to(self.device)

    def _mask(self, x: torch.Tensor, lengths: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Zero ``freq_masks`` coefficient bands and ``time_masks`` frame spans per item; ``u``
        ``[B, freq_masks + time_masks, 2]`` uniform numbers give each mask's width and start."""
        m = self.cfg.model
        _, T, D = x.shape
        keep = torch.ones_like(x, dtype=torch.bool)
        d = torch.arange(D, device=x.device)
        t = torch.arange(T, device=x.device)
        for j in range(m.freq_masks + m.time_masks):
            if j < m.freq_masks:
                w = (u[:, j, 0] * (m.freq_width + 1)).long()                   # 0 … freq_width
                s = (u[:, j, 1] * (D - w + 1)).long()
                band = (d[None] >= s[:, None]) & (d[None] < (s + w)[:, None])  # (B, D)
                keep &= ~band[:, None, :]
            else:
                w = torch.minimum((u[:, j, 0] * (m.time_width + 1)).long(), lengths // 5)
                s = (u[:, j, 1] * (lengths - w + 1)).long()
                span = (t[None] >= s[:, None]) & (t[None] < (s + w)[:, None])  # (B, T)
                keep &= ~span[:, :, None]
        return x * keep

    def draw(self, step):
        m = self.cfg.model
        idx = batch_indices(len(self.targets), self.cfg.trainer.batch_size, step, self.cfg.seed)
        g = _step_generator(self.cfg.seed, step)
        u = torch.rand(len(idx), m.freq_masks + m.time_masks, 2, generator=g)
        batch = {"idx": idx, "u": u}
        if m.speed_perturb:
            batch["rates"] = 1 + m.speed_perturb * (2 * torch.rand(len(idx), generator=g) - 1)
        if m.lm_weight > 0:                      # its own epochs over the text, its own seed
            k = m.lm_per_item
            batch["lm_idx"] = batch_indices(len(self.lm_ids), len(idx) * k, step,
                                            self.cfg.seed + 1, key="model.lm_per_item"
                                            ).reshape(len(idx), k)
        return batch

    def _lm_encode(self, texts: list[str]) -> list[torch.Tensor]:
        """Each text as the language model reads it: ``bos``, its characters, ``eos``."""
        return [torch.tensor([BOS, *self.vocab.encode(t), EOS]) for t in texts]

    def _lm_loss(self, ids: list[torch.Tensor]) -> torch.Tensor:
        """The language model's mean next-character loss (nats) on ``ids`` (each ``bos``, the
        characters, ``eos``)."""
        x = torch.nn.utils.rnn.pad_sequence(ids, batch_first=True, padding_value=PAD)
        y = x[:, 1:].clone()
        y[y == PAD] = -100
        _, loss = self.model.lm(x[:, :-1].to(self.device), y.to(self.device))
        return loss

    def _loss(self, split: str, idx, u=None, rates=None) -> torch.Tensor:
        x, lengths = self._features(split, idx, rates)
        if u is not None:
            x = self._mask(x, lengths, u.to(self.device))
        texts = [self.texts[split][i] for i in idx]
        ids = [torch.tensor(self.vocab.encode(t)) for t in texts]
        if self.cfg.model.arch == "transformer":
            tgt_in = torch.nn.utils.rnn.pad_sequence(
                [F.pad(i, (1, 0), value=BOS) for i in ids], batch_first=True, padding_value=PAD)
            tgt_out = torch.nn.utils.rnn.pad_sequence(
                [F.pad(i, (0, 1), value=EOS) for i in ids], batch_first=True, padding_value=PAD)
            m = self.cfg.model
            inter = m.inter_ctc_layer if m.inter_ctc_weight else 0
            memory, mask, *hidden = self.model.encode(x, lengths, inter)
            logits = self.model.seq2seq.decode(tgt_in.to(self.device), memory, mask)  # (B, L, V)
            loss = F.cross_entropy(logits.flatten(0, 1), tgt_out.to(self.device).flatten(),
                                   ignore_index=PAD, label_smoothing=m.label_smoothing)
            lam = m.ctc_weight
            if lam == 0:
                return loss
            slots = self.model.ctc_lengths(mask)
            ctc = self._ctc(self.model.ctc_log_probs(memory), slots, ids)
            if inter:                            # intermediate CTC: the same head on layer k
                v = m.inter_ctc_weight
                ctc = (1 - v) * ctc + v * self._ctc(self.model.ctc_log_probs(hidden[0]), slots, ids)
            return (1 - lam) * loss + lam * ctc
        log_probs, out_len = self.model(x, lengths)                              # (B, T', V)
        return self._ctc(log_probs, out_len, ids)

    def _ctc(self, log_probs: torch.Tensor, lengths: torch.Tensor, ids: list) -> torch.Tensor:
        """Mean CTC loss per target character (``reduction="mean"``), blank = id 0."""
        return F.ctc_loss(log_probs.transpose(0, 1), torch.cat(ids).to(self.device), lengths,
                          torch.tensor([len(i) for i in ids], device=self.device), blank=PAD,
                          zero_infinity=True)

    def training_step(self, step, batch, optimize):
        loss = self._loss("train", batch["idx"].tolist(), batch["u"], batch.get("rates"))
        optimize(loss)
        logs = {"loss": loss.item()}
        if "lm_idx" in batch:
            # the language model's dropout draws from a stream of its own, seeded by the step:
            # the recogniser trains exactly as it would without it
            with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                torch.manual_seed((self.cfg.seed * 1_000_003 + step) * 31 + 17)
                lm_loss = self._lm_loss([self.lm_ids[i]
                                         for i in batch["lm_idx"].reshape(-1).tolist()])
                optimize(lm_loss, "lm")
            logs["lm_loss"] = lm_loss.item()
        self.steps_done = step + 1
        return logs

    steps_done = 0

    def state_dict(self):
        return {"steps_done": self.steps_done}

    def load_state_dict(self, state):
        self.steps_done = int(state.get("steps_done", 0))

    def _beam_on(self, split: str) -> bool:
        """Beam decoding on test, on val at the end of training (and at every validation with
        ``model.beam_on_val``)."""
        return (split == "test" or self.cfg.model.beam_on_val
                or self.steps_done >= self.cfg.trainer.max_steps)

    # ------------------------------------------------------------------ decoding
    def transcribe(self, split: str, idx: list[int], mode: str = "greedy") -> list[str]:
        """Transcripts of utterances ``idx`` of ``split``. The transformer decodes by ``mode``:
        ``greedy``, ``beam``, ``beam_ctc`` (the beam's hypotheses rescored with the CTC head,
        :func:`~genmodels.speech.asr.ctc_rescore`, weight ``model.rescore_ctc_weight``),
        ``joint`` (one-pass joint CTC/attention beam search,
        :func:`~genmodels.speech.asr.joint_beam_search`, weight ``model.joint_ctc_weight``) or
        ``ctc`` (greedy CTC on its encoder's auxiliary head, a diagnostic); the LSTM-CTC
        baseline by greedy CTC. ``lm`` (a run with ``model.lm_weight`` > 0) adds its language
        model by shallow fusion: the joint search for the Transformer, CTC prefix beam search
        for the LSTM-CTC."""
        m = self.cfg.model
        if mode not in ("greedy", "beam", "beam_ctc", "joint", "ctc", "lm"):
            raise ValueError(f"mode: must be greedy, beam, beam_ctc, joint, ctc or lm, got {mode!r}")
        lm = getattr(self.model, "lm", None)
        if mode == "lm" and lm is None:
            raise ValueError("mode: lm needs a run trained with a language model (model.lm_weight > 0)")
        fusion = {"lm_log_probs": char_lm_next(lm), "lm_weight": m.lm_weight} if mode == "lm" else {}
        x, lengths = self._features(split, idx)
        n = self.decode_limit + 1                                  # characters and <eos>
        if m.arch == "lstm_ctc":
            log_probs, out_len = self.model(x, lengths)
            if mode == "lm":
                out = joint_beam_search(None, log_probs, out_len, BOS, EOS, n, m.beam_width, 1.0,
                                        m.length_penalty, **fusion)
                return [self.vocab.decode(o) for o in out]
            return [self.vocab.decode(ctc_greedy_decode(lp, int(k)))
                    for lp, k in zip(log_probs, out_len)]
        memory, mask = self.model.encode(x, lengths)
        if mode in ("beam_ctc", "joint", "lm") and self.model.ctc_head is None:
            raise ValueError(f"mode: {mode} needs the CTC head (model.ctc_weight > 0)")
        if mode == "ctc":
            return [self.vocab.decode(ctc_greedy_decode(lp, int(n)))
                    for lp, n in zip(self.model.ctc_log_probs(memory),
                                     self.model.ctc_lengths(mask))]

        def next_log_probs(prefix, rows):
            return self.model.next_log_probs(prefix.to(self.device), rows.to(self.device),
                                             memory, mask)

        if mode == "beam":
            out = beam_search(next_log_probs, len(idx), BOS, EOS, n, m.beam_width,
                              m.length_penalty)
        elif mode in ("joint", "lm"):
            out = joint_beam_search(next_log_probs, self.model.ctc_log_probs(memory),
                                    self.model.ctc_lengths(mask), BOS, EOS, n, m.beam_width,
                                    m.joint_ctc_weight, m.length_penalty, **fusion)
        elif mode == "beam_ctc":
            nbest = beam_search_nbest(next_log_probs, len(idx), BOS, EOS, n, m.beam_width,
                                      m.length_penalty)
            lps, lens = self.model.ctc_log_probs(memory), self.model.ctc_lengths(mask)
            out = [ctc_rescore(nb, lp[:int(k)], m.rescore_ctc_weight, m.length_penalty)
                   for nb, lp, k in zip(nbest, lps, lens)]
        else:
            out = greedy_decode(next_log_probs, len(idx), BOS, EOS, n)
        return [self.vocab.decode(o) for o in out]

    def evaluate(self, split):
        m = self.cfg.model
        n = len(self.texts[split])
        if m.eval_utterances is not None:
            n = min(n, m.eval_utterances)
        if n == 0:
            return {}
        chunks = [list(range(i, min(n, i + 32))) for i in range(0, n, 32)]
        refs = self.texts[split][:n]
        loss = sum(self._loss(split, c).item() * len(c) for c in chunks) / n
        out = {"loss": loss,
               "cer": character_error_rate([h for c in chunks for h in self.transcribe(split, c)],
                                           refs)}
        if m.arch == "transformer" and self._beam_on(split):
            hyps = [h for c in chunks for h in self.transcribe(split, c, "beam")]
            out["cer_beam"] = character_error_rate(hyps, refs)
        if m.arch == "transformer" and m.ctc_weight > 0:
            hyps = [h for c in chunks for h in self.transcribe(split, c, "ctc")]
            out["cer_ctc_head"] = character_error_rate(hyps, refs)
            if self._beam_on(split):
                hyps = [h for c in chunks for h in self.transcribe(split, c, "beam_ctc")]
                out["cer_beam_ctc"] = character_error_rate(hyps, refs)
                hyps = [h for c in chunks for h in self.transcribe(split, c, "joint")]
                out["cer_joint"] = character_error_rate(hyps, refs)
        if m.lm_weight > 0:
            out["lm_nll"] = self._lm_loss(self._lm_encode(refs)).item()   # nats per character
            if self._beam_on(split):
                hyps = [h for c in chunks for h in self.transcribe(split, c, "lm")]
                out["cer_joint_lm" if m.arch == "transformer" else "cer_lm"] = \
                    character_error_rate(hyps, refs)
        return out

    # ------------------------------------------------------------------ figures
    def figures(self, out_dir: Path):
        if self.cfg.model.arch != "transformer" or not self.texts["test"]:
            return []
        from genmodels.speech.plots import plot_cross_attention
        layer = self.model.seq2seq.decoder[-1].cross_attn
        layer.keep_weights = True
        try:
            hyp = self.transcribe("test", [0])[0]
            tgt = torch.tensor([[BOS, *self.vocab.encode(hyp)]], device=self.device)
            x, lengths = self._features("test", [0])
            self.model(x, lengths, tgt)
            w = layer.weights[0].mean(0).cpu().numpy()                         # (L, S)
        finally:
            layer.keep_weights = False
        frame_s = self.cfg.model.hop_length * self.cfg.model.subsample / self.data.sample_rate
        return [plot_cross_attention(w, list(hyp) + ["<eos>"], frame_s,
                                     out_dir / "cross_attention.png",
                                     title=f"last decoder layer's cross-attention (mean over "
                                           f"heads), test utterance 0\nref: "
                                           f"{self.texts['test'][0]!r}\nhyp: {hyp!r}")]
