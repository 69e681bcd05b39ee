"""Schemas of the character language models (``model`` group: gpt_char, lstm_char, mlm_char,
finetune_char). Their corpora (tiny Shakespeare, the embedded text, any text file) are data
schemas in ``genmodels/data/config.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

from genmodels.schema import ModelConfig, choice, positive, register_model, unit


# ------------------------------------------------------------------------------ models

def _transformer_problems(cfg, arch: str, positions=("learned", "sinusoidal")):
    """The checks every Transformer schema shares: its arch, sizes, heads, dropout, positions."""
    yield from choice(cfg, "arch", (arch,))
    for name in ("n_layer", "n_head", "n_embd", "d_ff"):
        yield from positive(cfg, name)
    if cfg.n_head > 0 and cfg.n_embd % cfg.n_head:       # (n_head <= 0: reported above)
        yield "n_head", f"must divide n_embd={cfg.n_embd}, got {cfg.n_head}"
    yield from unit(cfg, "dropout", high_open=True)
    yield from choice(cfg, "pos_encoding", positions)
    if ("rope" == cfg.pos_encoding and cfg.n_head > 0 and cfg.n_embd % cfg.n_head == 0
            and (cfg.n_embd // cfg.n_head) % 2):
        yield "pos_encoding", (f"rope rotates pairs: the head width n_embd/n_head = "
                               f"{cfg.n_embd // cfg.n_head} must be even")


@dataclass
class CharLMEval(ModelConfig):
    """Evaluation and sampling settings shared by the character language models."""
    block_size: int = 64             # context length T of the training windows
    eval_windows: int = 2400         # fixed val windows per evaluation (nanoGPT: 200 batches x 12)
    eval_batch: int = 400            # windows per forward pass in evaluation
    sample_chars: int = 600          # characters generated for samples.txt / samples.png
    sample_prompt: str = "\n"        # the prompt of those samples
    sample_temperature: float = 0.8
    sample_top_k: Optional[int] = None

    def problems(self):
        for name in ("block_size", "eval_windows", "eval_batch", "sample_chars",
                     "sample_temperature", "sample_top_k"):
            yield from positive(self, name)


@dataclass
class GPTConfig(CharLMEval):
    """Decoder-only character Transformer (pre-norm blocks, eqs. 2.22-2.27, loss eq. 2.29)."""
    family: str = "gpt"
    arch: str = "gpt"
    n_layer: int = 4
    n_head: int = 4                  # must divide n_embd
    n_embd: int = 128
    d_ff: Optional[int] = None       # FFN width; null: 4 * n_embd
    dropout: float = 0.0
    pos_encoding: str = "learned"    # learned | sinusoidal (eq. 2.22) | rope (rotary positions on each head's queries and keys)
    tie_weights: bool = True         # share the token embedding with the output layer
    bias: bool = True                # biases in the attention projections
    use_sdpa: bool = False           # false: attention through multi_head_attention / scaled_dot_product_attention (eqs. 2.23-2.25) | true: opt-in fused kernel F.scaled_dot_product_attention
    compile: bool = False            # torch.compile the model (slow start; see experiments/)

    def problems(self):
        yield from super().problems()
        yield from _transformer_problems(self, "gpt", ("learned", "sinusoidal", "rope"))


@dataclass
class LSTMLMConfig(CharLMEval):
    """Embedding -> from-scratch LSTM (eqs. 2.16-2.21) -> read-out (eq. 2.15), loss eq. 2.29."""
    family: str = "lstm_lm"
    arch: str = "lstm"
    n_embd: int = 64                 # character embedding width (the LSTM's input size I)
    hidden_size: int = 256           # H
    num_layers: int = 2
    dropout: float = 0.0             # between layers and before the read-out
    impl: str = "cells"              # cells: lstm_cell (eqs. 2.16-2.21) at every step, autograd | bptt: opt-in kernel with the hand-written backward

    def problems(self):
        yield from super().problems()
        yield from choice(self, "arch", ("lstm",))
        for name in ("n_embd", "hidden_size", "num_layers"):
            yield from positive(self, name)
        yield from unit(self, "dropout", high_open=True)
        yield from choice(self, "impl", ("cells", "bptt"))


@dataclass
class EncoderConfig(ModelConfig):
    """A BERT-style character encoder (shared by MLM pre-training and fine-tuning)."""
    max_len: int = 128               # characters per input window / segment
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    d_ff: Optional[int] = None
    dropout: float = 0.1
    pos_encoding: str = "learned"
    use_sdpa: bool = False           # as GPTConfig.use_sdpa
    xavier_attention: bool = True    # Xavier-init w_q, w_k, w_v, w_o (not N(0, 0.02)): leaves the unigram plateau sooner

    def problems(self):
        yield from positive(self, "max_len")
        yield from _transformer_problems(self, "encoder")


@dataclass
class MLMConfig(EncoderConfig):
    """Masked-language-model pre-training of the encoder (eq. 2.28)."""
    family: str = "mlm"
    arch: str = "encoder"
    mask_prob: float = 0.15          # share of positions in M (80 % [MASK], 10 % random, 10 % kept)
    eval_windows: int = 1000         # fixed val windows (and fixed masks) per evaluation
    eval_batch: int = 250

    def problems(self):
        yield from super().problems()
        yield from unit(self, "mask_prob", low_open=True, high_open=True)
        yield from positive(self, "eval_windows")
        yield from positive(self, "eval_batch")


@dataclass
class FinetuneConfig(EncoderConfig):
    """Classify segments (speech -> speaker) with the encoder and a linear head (eq. 2.29)."""
    family: str = "finetune"
    arch: str = "encoder"
    pretrained: Optional[str] = None  # an MLM run: its folder, its last.pt, or outputs/<run_name> (newest run); null: from scratch
    num_classes: int = 8             # the most frequent labels (speakers / sections)
    min_chars: int = 20              # shorter segments are left out
    split_seed: int = 0              # the fixed 80/10/10 split of the segments
    pooling: str = "mean"            # mean over real characters | cls (first position)
    freeze_encoder: bool = False     # train only the head (a linear probe)
    lora_rank: int = 0               # > 0: LoRA (genmodels.transfer.lora): freeze the encoder, train rank-r adapters on lora_targets and the head; 0: full fine-tuning
    lora_alpha: float = 16.0         # the adapters' alpha (update scaled by alpha / rank)
    lora_targets: List[str] = field(default_factory=lambda: ["w_q", "w_v"])  # weights adapted in every block (w_q, w_k, w_v, w_o of attention; w1, w2 of the FFN)

    def problems(self):
        yield from super().problems()
        yield from positive(self, "lora_rank", allow_zero=True)
        yield from positive(self, "lora_alpha")
        if self.lora_rank > 0 and self.freeze_encoder:
            yield "lora_rank", "LoRA and freeze_encoder exclude each other (set one)"
        bad = [t for t in self.lora_targets if t not in ("w_q", "w_k", "w_v", "w_o", "w1", "w2")]
        if bad or not self.lora_targets:
            yield "lora_targets", (f"must be a non-empty subset of w_q, w_k, w_v, w_o, w1, w2, "
                                   f"got {list(self.lora_targets)}")
        if self.lora_alpha != self.lora_alpha or abs(self.lora_alpha) == float("inf"):
            yield "lora_alpha", f"must be finite, got {self.lora_alpha}"
        yield from positive(self, "num_classes")
        yield from positive(self, "min_chars")
        yield from positive(self, "split_seed", allow_zero=True)
        yield from choice(self, "pooling", ("mean", "cls"))
        if self.num_classes < 2:
            yield "num_classes", f"must be >= 2, got {self.num_classes}"


register_model("gpt_schema", GPTConfig, family="gpt", task="genmodels.charlm.task:CharLMTask")
register_model("lstm_lm_schema", LSTMLMConfig, family="lstm_lm",
               task="genmodels.charlm.task:CharLMTask")
register_model("mlm_schema", MLMConfig, family="mlm", task="genmodels.charlm.task:MLMTask")
register_model("finetune_schema", FinetuneConfig, family="finetune",
               task="genmodels.charlm.task:FinetuneTask")
