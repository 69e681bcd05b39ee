"""A faithful re-implementation of nanoGPT's model.py and train.py loop (karpathy/nanoGPT), used
as the reference of the benchmark. Written from its public description, not copied:

* model: token + learned position embeddings, pre-norm blocks ``x + attn(ln_1(x))``,
  ``x + mlp(ln_2(x))``; one fused ``c_attn`` projection to q, k, v;
  ``F.scaled_dot_product_attention(is_causal=True)``; MLP 4x with GELU; LayerNorm and Linear
  without bias (``bias=False``, train.py's default); weight tying; N(0, 0.02) init with the
  residual projections ``c_proj`` at 0.02/sqrt(2 n_layer);
* optimiser: AdamW, weight decay only on >= 2-d tensors, betas (0.9, 0.99);
* schedule: linear warm-up ``lr * (it+1)/(warmup+1)``, cosine to ``min_lr`` at ``lr_decay_iters``;
* loop: iterations 0..max_iters inclusive, batches of random windows from ``torch.randint``,
  estimate_loss every ``eval_interval`` iterations with ``eval_iters`` batches per split, grad
  clip 1.0.

The documented CPU recipe for shakespeare_char (nanoGPT README, "I only have a macbook"):
``python train.py config/train_shakespeare_char.py --device=cpu --compile=False --eval_iters=20
--log_interval=1 --block_size=64 --batch_size=12 --n_layer=4 --n_head=4 --n_embd=128
--max_iters=2000 --lr_decay_iters=2000 --dropout=0.0``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class NanoConfig:
    block_size: int = 64
    vocab_size: int = 65
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    dropout: float = 0.0
    bias: bool = False
    # train.py / config/train_shakespeare_char.py with the CPU command line
    batch_size: int = 12
    max_iters: int = 2000
    lr_decay_iters: int = 2000
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    beta1: float = 0.9
    beta2: float = 0.99
    weight_decay: float = 0.1
    grad_clip: float = 1.0
    eval_interval: int = 250
    eval_iters: int = 20


class LayerNorm(nn.Module):
    def __init__(self, n, bias):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.bias = nn.Parameter(torch.zeros(n)) if bias else None

    def forward(self, x):
        return F.layer_norm(x, self.weight.shape, self.weight, self.bias, 1e-5)


class CausalSelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_attn = nn.Linear(c.n_embd, 3 * c.n_embd, bias=c.bias)
        self.c_proj = nn.Linear(c.n_embd, c.n_embd, bias=c.bias)
        self.n_head, self.n_embd = c.n_head, c.n_embd

    def forward(self, x):
        B, T, C = x.size()
        q, k, v = self.c_attn(x).split(self.n_embd, dim=2)
        q = q.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, C // self.n_head).transpose(1, 2)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.c_proj(y)


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c_fc = nn.Linear(c.n_embd, 4 * c.n_embd, bias=c.bias)
        self.c_proj = nn.Linear(4 * c.n_embd, c.n_embd, bias=c.bias)

    def forward(self, x):
        return self.c_proj(F.gelu(self.c_fc(x)))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.ln_1, self.attn = LayerNorm(c.n_embd, c.bias), CausalSelfAttention(c)
        self.ln_2, self.mlp = LayerNorm(c.n_embd, c.bias), MLP(c)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class NanoGPT(nn.Module):
    def __init__(self, c: NanoConfig):
        super().__init__()
        self.c = c
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.block_size, c.n_embd)
        self.h = nn.ModuleList(Block(c) for _ in range(c.n_layer))
        self.ln_f = LayerNorm(c.n_embd, c.bias)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.wte.weight = self.lm_head.weight  # weight tying
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, 0.0, 0.02 / math.sqrt(2 * c.n_layer))

    @staticmethod
    def _init(m):
        if isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Embedding):
            nn.init.normal_(m.weight, 0.0, 0.02)

    def forward(self, idx, targets=None):
        T = idx.shape[1]
        x = self.wte(idx) + self.wpe(torch.arange(T, device=idx.device))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1),
                                   ignore_index=-1)
        return logits, loss

    def configure_optimizers(self):
        params = [p for p in self.parameters() if p.requires_grad]
        decay = [p for p in params if p.dim() >= 2]
        no_decay = [p for p in params if p.dim() < 2]
        return torch.optim.AdamW([{"params": decay, "weight_decay": self.c.weight_decay},
                                  {"params": no_decay, "weight_decay": 0.0}],
                                 lr=self.c.learning_rate, betas=(self.c.beta1, self.c.beta2))


def get_lr(it: int, c: NanoConfig) -> float:
    if it < c.warmup_iters:
        return c.learning_rate * (it + 1) / (c.warmup_iters + 1)
    if it > c.lr_decay_iters:
        return c.min_lr
    ratio = (it - c.warmup_iters) / (c.lr_decay_iters - c.warmup_iters)
    return c.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (c.learning_rate - c.min_lr)


def get_batch(data: torch.Tensor, c: NanoConfig):
    ix = torch.randint(len(data) - c.block_size, (c.batch_size,))
    x = torch.stack([data[i:i + c.block_size] for i in ix])
    y = torch.stack([data[i + 1:i + 1 + c.block_size] for i in ix])
    return x, y


def train(train_data: torch.Tensor, val_data: torch.Tensor, c: NanoConfig, seed: int = 1337,
          log=print) -> dict:
    """nanoGPT's loop; returns its last estimate_loss, timings and the model."""
    torch.manual_seed(seed)
    model = NanoGPT(c)
    opt = model.configure_optimizers()

    @torch.no_grad()
    def estimate_loss():
        model.eval()
        out = {}
        for split, data in (("train", train_data), ("val", val_data)):
            losses = torch.zeros(c.eval_iters)
            for k in range(c.eval_iters):
                losses[k] = model(*get_batch(data, c))[1].item()
            out[split] = losses.mean().item()
        model.train()
        return out

    t_start = time.perf_counter()
    eval_time, history, last = 0.0, [], None
    for it in range(c.max_iters + 1):
        lr = get_lr(it, c)
        for g in opt.param_groups:
            g["lr"] = lr
        if it % c.eval_interval == 0:
            t0 = time.perf_counter()
            last = estimate_loss()
            eval_time += time.perf_counter() - t0
            history.append({"iter": it, **last, "wall_s": time.perf_counter() - t_start})
            log(f"  nanoGPT iter {it}: train {last['train']:.4f}, val {last['val']:.4f}, "
                f"{time.perf_counter() - t_start:.1f} s")
        x, y = get_batch(train_data, c)
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), c.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
    wall = time.perf_counter() - t_start
    return {"model": model, "last_estimate": last, "history": history, "wall_s": wall,
            "train_s": wall - eval_time}
