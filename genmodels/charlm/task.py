"""The character-LM stack's training tasks, shared by the GPT, the LSTM and the encoder.

* :class:`CharLMTask` — any character language model with GPT's interface: random windows of
  the training text (a pure function of seed and step), next-character loss (eq. 2.29), val loss
  in nats per character on fixed windows, ``samples.txt`` and ``samples.png`` at the end. The
  model comes from :data:`LANGUAGE_MODELS` (family → builder): the decoder-only Transformer
  (``gpt``) or the LSTM (``lstm_lm``); ``genmodels-sample`` and RLHF build through it too.
* :class:`MLMTask` — masked-language-model pre-training of :class:`MaskedEncoder` (eq. 2.28).
* :class:`FinetuneTask` — classification of labelled segments (which speaker says a speech) with
  the encoder and a linear head (eq. 2.29), from an MLM checkpoint or from scratch.
  ``model.lora_rank > 0`` fine-tunes with LoRA instead (:func:`genmodels.transfer.lora.apply_lora`:
  the encoder frozen, rank-r adapters on ``model.lora_targets``, the head trained).

Special ids of the encoder tasks: the corpus's characters are ``0 … V−1``, ``[MASK] = V`` and
``[PAD] = V + 1``, so an MLM checkpoint loads into the fine-tuning model unchanged.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import torch

from genmodels.charlm.lstm import CharLSTM
from genmodels.data.text import decode, fixed_windows, labelled_splits, random_windows
from genmodels.errors import ConfigError
from genmodels.train.checkpoint import resolve_checkpoint
from genmodels.train.task import Task, batch_indices
from genmodels.transfer.lora import apply_lora
from genmodels.transformer.losses import masked_lm_loss, task_loss
from genmodels.transformer.modules import GPT, MaskedEncoder, mask_tokens

__all__ = ["CharLMTask", "MLMTask", "FinetuneTask", "LANGUAGE_MODELS", "build_gpt",
           "build_lstm_lm", "build_encoder", "write_samples"]


def _check_vocab(state: dict, chars: list[str], what: str) -> None:
    saved = state.get("chars")
    if saved is not None and list(saved) != list(chars):
        raise ConfigError(f"data: the corpus's vocabulary ({len(chars)} characters) differs from "
                          f"the one {what} was trained with ({len(saved)})")


def write_samples(texts: list[str], title: str, out_dir: Path, stem: str = "samples"
                  ) -> list[Path]:
    """``<stem>.txt`` in the run folder and ``figures/<stem>.png`` (the text, typeset)."""
    from genmodels.plotting import plt, save_figure  # Agg backend, set once there

    out_dir.mkdir(parents=True, exist_ok=True)
    txt = out_dir.parent / f"{stem}.txt"
    sep = "\n" + "-" * 72 + "\n"
    txt.write_text(title + sep + sep.join(texts) + "\n")
    shown = []
    for t in texts[:2]:
        lines = []
        for raw in t.splitlines()[:22]:
            lines += textwrap.wrap(raw, 90, replace_whitespace=False) or [""]
        shown.append("\n".join(lines[:22]))
    body = ("\n" + "─" * 60 + "\n").join(shown)
    n_lines = body.count("\n") + 3
    fig = plt.figure(figsize=(9, 0.19 * n_lines + 0.6))
    fig.text(0.02, 0.98, title, va="top", ha="left", fontsize=10, weight="bold")
    fig.text(0.02, 0.985 - 0.5 / (0.19 * n_lines + 0.6), body, va="top", ha="left",
             family="monospace", fontsize=8)
    png = out_dir / f"{stem}.png"
    save_figure(fig, png, dpi=110, tight=False)
    return [png]


# ------------------------------------------------------------------------------ language models
def build_gpt(m, vocab_size: int) -> GPT:
    return GPT(vocab_size, m.block_size, m.n_layer, m.n_head, m.n_embd, dropout=m.dropout,
               pos_encoding=m.pos_encoding, tie_weights=m.tie_weights, bias=m.bias,
               use_sdpa=m.use_sdpa, d_ff=m.d_ff)


def build_lstm_lm(m, vocab_size: int) -> CharLSTM:
    return CharLSTM(vocab_size, m.n_embd, m.hidden_size, m.num_layers, dropout=m.dropout,
                    impl=m.impl)


#: model family → ``builder(model_cfg, vocab_size)``: the character language models that
#: :class:`CharLMTask`, ``genmodels-sample`` and RLHF's policy are built from
LANGUAGE_MODELS = {"gpt": build_gpt, "lstm_lm": build_lstm_lm}


class CharLMTask(Task):
    """Next-character prediction on a :class:`~genmodels.data.text.CharCorpus`."""

    progress_metric = "loss"

    @staticmethod
    def build_model(m, vocab_size: int) -> torch.nn.Module:
        return LANGUAGE_MODELS[m.family](m, vocab_size)

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        self.chars = list(data.chars)
        self.model = self.build_model(cfg.model, data.vocab_size).to(device)
        self.forward = self.model
        if getattr(cfg.model, "compile", False):
            self.forward = torch.compile(self.model)
        self._eval = {}

    def draw(self, step):
        m, t = self.cfg.model, self.cfg.trainer
        x, y = random_windows(self.data.train, m.block_size, t.batch_size, step, self.cfg.seed,
                              self.device)  # (B, T) each
        return {"x": x, "y": y}

    def training_step(self, step, batch, optimize):
        x, y = batch["x"], batch["y"]
        _, loss = self.forward(x, y)  # eq. 2.29: mean −log P(x_{t+1} | x_≤t)
        optimize(loss)
        return {"loss": loss.item()}

    def eval_windows(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The same ``eval_windows`` windows of the split at every evaluation."""
        if split not in self._eval:
            m = self.cfg.model
            self._eval[split] = fixed_windows(self.data.split(split), m.block_size,
                                              m.eval_windows)
        return self._eval[split]

    def evaluate(self, split):
        x, y = self.eval_windows(split)
        total, n = 0.0, 0
        for xb, yb in zip(x.split(self.cfg.model.eval_batch), y.split(self.cfg.model.eval_batch)):
            _, loss = self.model(xb.to(self.device), yb.to(self.device))
            total += loss.item() * yb.numel()
            n += yb.numel()
        loss = total / n
        return {"loss": loss, "bits_per_char": loss / math.log(2)}

    def state_dict(self):
        return {"chars": self.chars}

    def load_state_dict(self, state):
        _check_vocab(state, self.chars, "the checkpoint")

    def figures(self, out_dir: Path):
        m = self.cfg.model
        prompt = m.sample_prompt or "\n"
        stoi = {c: i for i, c in enumerate(self.chars)}
        prompt = "".join(c for c in prompt if c in stoi) or self.chars[0]
        idx = torch.tensor([[stoi[c] for c in prompt]] * 2, device=self.device)
        g = torch.Generator(device=self.device).manual_seed(self.cfg.seed)
        out = self.model.generate(idx, m.sample_chars, temperature=m.sample_temperature,
                                  top_k=m.sample_top_k, generator=g)
        texts = [decode(self.chars, row) for row in out.cpu()]
        title = (f"{self.cfg.run_name}: samples at temperature {m.sample_temperature}"
                 f"{'' if m.sample_top_k is None else f', top-k {m.sample_top_k}'} "
                 f"after {self.cfg.trainer.max_steps} steps (prompt {prompt!r})")
        return write_samples(texts, title, out_dir)


# ------------------------------------------------------------------------------ MLM (eq. 2.28)
def build_encoder(m, vocab_size: int, num_classes: int | None = None) -> MaskedEncoder:
    """The encoder over ``vocab_size + 2`` ids (characters, [MASK], [PAD]).

    With ``xavier_attention`` the attention projections get Xavier-uniform weights instead of
    GPT's N(0, 0.02). Why: a masked position's own input is [MASK], so the encoder can only beat
    the unigram loss (3.31 nats on tiny Shakespeare) by attending to its neighbours; with
    N(0, 0.02) projections every attention score starts at ≈ 0, attention is uniform and the
    gradient that would make it positional is tiny. Measured (experiments/mlm_shakespeare): with
    N(0, 0.02) the 4-layer encoder was still at 3.08 nats after 900 steps; on a toy task (copy
    the twin of a doubled token) Xavier leaves the plateau at step ~200, N(0, 0.02) not by 300.
    """
    enc = MaskedEncoder(vocab_size + 2, m.max_len, m.n_layer, m.n_head, m.n_embd,
                        dropout=m.dropout, num_classes=num_classes,
                        pooling=getattr(m, "pooling", "mean"), pos_encoding=m.pos_encoding,
                        pad_id=vocab_size + 1, use_sdpa=m.use_sdpa, d_ff=m.d_ff)
    if m.xavier_attention:
        for block in enc.blocks:
            block.attn.reset_parameters()      # Xavier-uniform w_q, w_k, w_v, w_o; zero biases
    return enc


class MLMTask(Task):
    """BERT-style pre-training: windows of ``max_len`` characters, 15 % of them in M."""

    progress_metric = "loss"

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        self.chars = list(data.chars)
        V = data.vocab_size
        self.mask_id, self.pad_id = V, V + 1
        self.model = build_encoder(cfg.model, V).to(device)
        self._eval = {}

    def _corrupt(self, x: torch.Tensor, seed: int):
        g = torch.Generator().manual_seed(seed)
        return mask_tokens(x.cpu(), self.mask_id, self.data.vocab_size, self.cfg.model.mask_prob,
                           generator=g)  # corrupted, targets, M: (B, L) each

    def draw(self, step):
        m = self.cfg.model
        x, _ = random_windows(self.data.train, m.max_len, self.cfg.trainer.batch_size, step,
                              self.cfg.seed)
        corrupted, targets, M = self._corrupt(x, self.cfg.seed * 1_000_003 + step + 77)
        return {"corrupted": corrupted, "targets": targets, "M": M}

    def training_step(self, step, batch, optimize):
        # under torchrun the loss is a mean over this process's masked positions, so N processes
        # weight the processes' positions alike, not exactly as one would
        corrupted, targets, M = batch["corrupted"], batch["targets"], batch["M"]
        loss = self.model.mlm_loss(corrupted.to(self.device), targets.to(self.device),
                                   M.to(self.device))  # eq. 2.28, mean over M
        optimize(loss)
        return {"loss": loss.item()}

    def eval_batch(self, split):
        """Fixed val windows with a fixed corruption: the same M at every evaluation."""
        m = self.cfg.model
        if split not in self._eval:
            x, _ = fixed_windows(self.data.split(split), m.max_len, m.eval_windows)
            self._eval[split] = self._corrupt(x, 4242)
        return self._eval[split]

    def evaluate(self, split):
        m = self.cfg.model
        corrupted, targets, M = self.eval_batch(split)
        total, correct, n = 0.0, 0, 0
        for c, t, mm in zip(*(z.split(m.eval_batch) for z in (corrupted, targets, M))):
            c, t, mm = c.to(self.device), t.to(self.device), mm.to(self.device)
            logits = self.model.mlm_logits(c)
            total += masked_lm_loss(logits, t, mm, reduction="sum").item()
            correct += int((logits.argmax(-1)[mm] == t[mm]).sum())
            n += int(mm.sum())
        return {"loss": total / n, "masked_accuracy": correct / n}

    def state_dict(self):
        return {"chars": self.chars}

    def load_state_dict(self, state):
        _check_vocab(state, self.chars, "the checkpoint")

    def figures(self, out_dir: Path):
        corrupted, targets, M = self.eval_batch("val")
        c, t, mm = corrupted[:4].to(self.device), targets[:4], M[:4]
        pred = self.model.mlm_logits(c).argmax(-1).cpu()
        texts = []
        for i in range(len(c)):
            shown = "".join("_" if mm[i, j] else self.chars[int(t[i, j])]
                            for j in range(t.shape[1]))
            filled = "".join(self.chars[int(pred[i, j])] if mm[i, j] else self.chars[int(t[i, j])]
                             for j in range(t.shape[1]))
            right = int((pred[i][mm[i]] == t[i][mm[i]]).sum())
            texts.append(f"input (M shown as _):\n{shown}\n\nfilled in by the model "
                         f"({right}/{int(mm[i].sum())} right):\n{filled}\n\noriginal:\n"
                         f"{decode(self.chars, t[i])}")
        return write_samples(texts, f"{self.cfg.run_name}: masked characters filled in (val)",
                             out_dir, stem="mlm_fills")


# ------------------------------------------------------------------------------ fine-tuning (2.29)
class FinetuneTask(Task):
    """Which speaker (or section) a segment comes from: encoder + mean pooling + linear head."""

    progress_metric = "loss"
    ddp_find_unused_parameters = True     # the encoder's MLM head is unused here

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        m = cfg.model
        self.chars = list(data.chars)
        V = data.vocab_size
        if not data.segments:
            raise ConfigError(f"data: the {data.name} corpus has no labelled segments to "
                              f"fine-tune on (use data=shakespeare or data=embedded_text)")
        self.splits = labelled_splits(data, m.num_classes, m.max_len, pad_id=V + 1,
                                      min_chars=m.min_chars, split_seed=m.split_seed)
        self.model = build_encoder(m, V, num_classes=m.num_classes).to(device)
        self.pretrained_from = None
        if m.pretrained:
            self._load_pretrained(m.pretrained)
        if m.freeze_encoder:
            for name, p in self.model.named_parameters():
                p.requires_grad_(name.startswith("classifier."))
        self.lora = None
        if m.lora_rank > 0:
            # frozen encoder + rank-r adapters (lora_linear) on lora_targets; the new head trains
            self.lora = apply_lora(self.model, m.lora_rank, m.lora_alpha, list(m.lora_targets))
            for p in self.model.classifier.parameters():
                p.requires_grad_(True)

    def _load_pretrained(self, path: str) -> None:
        try:
            ckpt_path = resolve_checkpoint(path)
        except FileNotFoundError as e:
            raise ConfigError(f"model.pretrained: {e} (train experiment=mlm_shakespeare first)"
                              ) from None
        from genmodels.train.checkpoint import load_checkpoint
        ckpt = load_checkpoint(ckpt_path)                  # weights_only: runs no code
        family = ckpt["config"]["model"]["family"]
        if family != "mlm":
            raise ConfigError(f"model.pretrained: {ckpt_path} is a {family!r} run, not an MLM run")
        _check_vocab(ckpt.get("task", {}), self.chars, f"the pretrained encoder {ckpt_path}")
        arch = ("max_len", "n_layer", "n_head", "n_embd", "d_ff", "pos_encoding")
        diff = [f"{k}: {ckpt['config']['model'][k]!r} there, {getattr(self.cfg.model, k)!r} here"
                for k in arch if ckpt["config"]["model"][k] != getattr(self.cfg.model, k)]
        if diff:
            raise ConfigError("model: the architecture differs from the pretrained encoder's ("
                              + "; ".join(diff) + ")")
        missing, unexpected = self.model.load_state_dict(ckpt["model"], strict=False)
        assert not unexpected and all(k.startswith("classifier.") for k in missing), (
            missing, unexpected)
        self.pretrained_from = str(ckpt_path)

    def draw(self, step):
        _, _, y = self.splits.train
        return {"idx": batch_indices(len(y), self.cfg.trainer.batch_size, step, self.cfg.seed)}

    def training_step(self, step, batch, optimize):
        ids, mask, y = self.splits.train
        idx = batch["idx"]
        loss = self.model.classification_loss(ids[idx].to(self.device), y[idx].to(self.device),
                                              mask[idx].to(self.device))  # eq. 2.29
        optimize(loss)
        return {"loss": loss.item()}

    def _logits(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask, y = self.splits.split(split)
        logits = torch.cat([self.model.classify(i.to(self.device), k.to(self.device)).cpu()
                            for i, k in zip(ids.split(256), mask.split(256))])
        return logits, y

    def trainable_fraction(self) -> tuple[int, int]:
        """``(trained, total)`` parameter counts of the fine-tuning model."""
        ps = list(self.model.parameters())
        return sum(p.numel() for p in ps if p.requires_grad), sum(p.numel() for p in ps)

    def evaluate(self, split):
        logits, y = self._logits(split)
        trained, total = self.trainable_fraction()
        return {"loss": task_loss(logits, y).item(),
                "trained_fraction": trained / total,
                "accuracy": (logits.argmax(-1) == y).float().mean().item(),
                "chance": (torch.bincount(y, minlength=self.cfg.model.num_classes).max()
                           / len(y)).item()}

    def state_dict(self):
        return {"chars": self.chars, "classes": self.splits.classes}

    def load_state_dict(self, state):
        _check_vocab(state, self.chars, "the checkpoint")

    def figures(self, out_dir: Path):
        from genmodels.plotting import plt, save_figure  # Agg backend, set once there

        logits, y = self._logits("test")
        K = self.cfg.model.num_classes
        cm = torch.zeros(K, K)
        for t, p in zip(y.tolist(), logits.argmax(-1).tolist()):
            cm[t, p] += 1
        acc = (cm.diag().sum() / cm.sum()).item()
        fig, ax = plt.subplots(figsize=(6.5, 5.5))
        ax.imshow((cm / cm.sum(1, keepdim=True).clamp_min(1)).numpy(), cmap="Blues", vmin=0, vmax=1)
        for i in range(K):
            for j in range(K):
                ax.text(j, i, int(cm[i, j]), ha="center", va="center", fontsize=7)
        names = [c.title()[:14] for c in self.splits.classes]
        ax.set_xticks(range(K), names, rotation=45, ha="right", fontsize=7)
        ax.set_yticks(range(K), names, fontsize=7)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        src = "MLM-pretrained encoder" if self.pretrained_from else "from scratch"
        ax.set_title(f"{self.cfg.run_name} ({src}): test accuracy {acc:.1%}", fontsize=9)
        path = out_dir / "confusion.png"
        save_figure(fig, path, dpi=110)
        return [path]
