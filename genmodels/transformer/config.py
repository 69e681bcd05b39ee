"""Schemas of the Transformer family (``model`` group: gpt_char, mlm_char, finetune_char) and of
the character text corpora (``data`` group: shakespeare, embedded_text, text_file).

The text data schemas live here because configs are discovered from ``genmodels/<pkg>/config.py``;
the RNN language model (``genmodels/rnn/config.py``) uses the same corpora.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from omegaconf import MISSING

from genmodels.train.config import (DataConfig, ModelConfig, choice, positive, register_data,
                                    register_model, unit)


# ------------------------------------------------------------------------------ data
@dataclass
class ShakespeareConfig(DataConfig):
    """Tiny Shakespeare (1,115,394 characters): a file, the cache, or a download."""
    name: str = "shakespeare"
    path: Optional[str] = None       # the file (or its folder); null: search, then download (genmodels/data/text.py)
    cache_dir: Optional[str] = None  # where a download goes; null: $GENMODELS_CACHE or ~/.cache/genmodels
    download: bool = True            # try the canonical URL when no file is found
    val_fraction: float = 0.1        # the last 10 % of the text is held out (val = test)

    def problems(self):
        yield from unit(self, "val_fraction", low_open=True, high_open=True)


@dataclass
class EmbeddedTextConfig(DataConfig):
    """The Python Language Reference topics that ship with CPython: ~460 KB, always offline."""
    name: str = "embedded_text"
    val_fraction: float = 0.1

    def problems(self):
        yield from unit(self, "val_fraction", low_open=True, high_open=True)


@dataclass
class TextFileConfig(DataConfig):
    """Any UTF-8 text file as a character corpus (no labelled segments: no fine-tuning)."""
    name: str = "text_file"
    path: str = MISSING
    val_fraction: float = 0.1

    def problems(self):
        yield from unit(self, "val_fraction", low_open=True, high_open=True)


def _shakespeare(cfg: ShakespeareConfig):
    from genmodels.data.text import load_shakespeare
    return load_shakespeare(cfg.path, cfg.cache_dir, cfg.download, cfg.val_fraction)


def _embedded(cfg: EmbeddedTextConfig):
    from genmodels.data.text import load_embedded_corpus
    return load_embedded_corpus(cfg.val_fraction)


def _text_file(cfg: TextFileConfig):
    from pathlib import Path

    from genmodels.data.text import DatasetNotFoundError, load_text_file
    if not Path(cfg.path).expanduser().is_file():
        raise DatasetNotFoundError(f"data.path: no text file at {cfg.path}")
    return load_text_file(Path(cfg.path).expanduser(), val_fraction=cfg.val_fraction)


register_data("shakespeare_schema", ShakespeareConfig, "shakespeare", _shakespeare)
register_data("embedded_text_schema", EmbeddedTextConfig, "embedded_text", _embedded)
register_data("text_file_schema", TextFileConfig, "text_file", _text_file)


# ------------------------------------------------------------------------------ models
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
    pos_encoding: str = "learned"    # learned | sinusoidal (eq. 2.22)
    tie_weights: bool = True         # share the token embedding with the output layer
    bias: bool = True                # biases in the attention projections
    use_sdpa: bool = True            # fused attention kernel (false: the from-scratch eq. 2.23)
    compile: bool = False            # torch.compile the model (slow start; see experiments/)

    def problems(self):
        yield from super().problems()
        yield from choice(self, "arch", ("gpt",))
        for name in ("n_layer", "n_head", "n_embd", "d_ff"):
            yield from positive(self, name)
        if self.n_head > 0 and self.n_embd % self.n_head:       # (n_head <= 0: reported above)
            yield "n_head", f"must divide n_embd={self.n_embd}, got {self.n_head}"
        yield from unit(self, "dropout", high_open=True)
        yield from choice(self, "pos_encoding", ("learned", "sinusoidal"))


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
    use_sdpa: bool = True
    xavier_attention: bool = True    # Xavier-init w_q, w_k, w_v, w_o (not N(0, 0.02)): leaves the unigram plateau sooner

    def problems(self):
        yield from choice(self, "arch", ("encoder",))
        for name in ("max_len", "n_layer", "n_head", "n_embd", "d_ff"):
            yield from positive(self, name)
        if self.n_head > 0 and self.n_embd % self.n_head:       # (n_head <= 0: reported above)
            yield "n_head", f"must divide n_embd={self.n_embd}, got {self.n_head}"
        yield from unit(self, "dropout", high_open=True)
        yield from choice(self, "pos_encoding", ("learned", "sinusoidal"))


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

    def problems(self):
        yield from super().problems()
        yield from positive(self, "num_classes")
        yield from positive(self, "min_chars")
        yield from positive(self, "split_seed", allow_zero=True)
        yield from choice(self, "pooling", ("mean", "cls"))
        if self.num_classes < 2:
            yield "num_classes", f"must be >= 2, got {self.num_classes}"


register_model("gpt_schema", GPTConfig, family="gpt", task="genmodels.transformer.task:GPTTask")
register_model("mlm_schema", MLMConfig, family="mlm", task="genmodels.transformer.task:MLMTask")
register_model("finetune_schema", FinetuneConfig, family="finetune",
               task="genmodels.transformer.task:FinetuneTask")
