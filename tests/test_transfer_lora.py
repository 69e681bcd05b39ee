"""LoRA (genmodels.transfer.lora) against independent references: F.linear with the explicit
weight W + (α/r)·B A, finite differences (gradcheck), the wrapped nn.Linear itself, and the merged
weights; the adapters on the Transformer's raw attention matrices; the fine-tuning option."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from conftest import compose, randn64
from genmodels.train.config import ConfigError, to_object
from genmodels.transfer import (LoRALinear, apply_lora, lora_linear, lora_parameters, merge_lora,
                                unmerge_lora)
from genmodels.transformer import GPT, MaskedEncoder

pytestmark = pytest.mark.transfer

TOL = dict(rtol=1e-10, atol=1e-12)


def explicit(x, W, b, A, B, alpha):
    """The adapted layer written with its full weight matrix W + (α/r)·B A."""
    return F.linear(x, W + (alpha / A.shape[0]) * (B @ A), b)


@pytest.mark.exercise("transfer.lora_linear")
@pytest.mark.parametrize("lead, d_in, d_out, r, alpha, bias", [
    ((5,), 7, 4, 2, 16.0, True),
    ((2, 3), 6, 9, 3, 1.0, False),
    ((), 8, 8, 1, -0.5, True),
    ((4,), 3, 5, 3, 12.0, True),
])
def test_lora_linear_equals_the_explicit_weight(f64, lead, d_in, d_out, r, alpha, bias):
    x, W = randn64(*lead, d_in, seed=1), randn64(d_out, d_in, seed=2)
    b = randn64(d_out, seed=3) if bias else None
    A, B = randn64(r, d_in, seed=4), randn64(d_out, r, seed=5)
    got = lora_linear(x, W, b, A, B, alpha)
    assert got.shape == (*lead, d_out)
    torch.testing.assert_close(got, explicit(x, W, b, A, B, alpha), **TOL)
    # B = 0 (the initialisation): the frozen layer exactly
    torch.testing.assert_close(lora_linear(x, W, b, A, torch.zeros_like(B), alpha),
                               F.linear(x, W, b), rtol=0, atol=0)


@pytest.mark.exercise("transfer.lora_linear")
def test_lora_linear_gradients_match_finite_differences(f64):
    x, W, b = randn64(3, 4, seed=1), randn64(5, 4, seed=2), randn64(5, seed=3)
    A, B = randn64(2, 4, seed=4), randn64(5, 2, seed=5)
    for t in (x, W, b, A, B):
        t.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda *a: lora_linear(*a, 3.0), (x, W, b, A, B))


@pytest.mark.exercise("transfer.lora_linear")
def test_lora_linear_small_case(small_case):
    x = torch.tensor([[1.0, 2.0, -1.0]], dtype=torch.float64)
    W = torch.tensor([[1.0, 0.0, 2.0], [0.0, -1.0, 1.0]], dtype=torch.float64)
    b = torch.tensor([0.5, -0.5], dtype=torch.float64)
    A = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]], dtype=torch.float64)   # r = 2
    B = torch.tensor([[1.0, 0.0], [2.0, -1.0]], dtype=torch.float64)
    # by hand: x Wᵀ + b = [-1+0.5, -3-0.5] = [-0.5, -3.5]; x Aᵀ = [3, 1]; (x Aᵀ) Bᵀ = [3, 5];
    # α/r = 4/2 = 2  ->  [-0.5 + 6, -3.5 + 10]
    small_case(("x [1,3], W [2,3], b [2], A [2,3], B [2,2], alpha 4 (by hand)", [[5.5, 6.5]],
                lambda: lora_linear(x, W, b, A, B, 4.0)))


@pytest.mark.parametrize("call, name", [
    (lambda x, W, b, A, B: lora_linear(x[:, :3], W, b, A, B, 1.0), "x"),
    (lambda x, W, b, A, B: lora_linear(x, W[None], b, A, B, 1.0), "weight"),
    (lambda x, W, b, A, B: lora_linear(x, W, b[:2], A, B, 1.0), "bias"),
    (lambda x, W, b, A, B: lora_linear(x, W, b, A[:, :3], B, 1.0), "A"),
    (lambda x, W, b, A, B: lora_linear(x, W, b, A[:0], B[:, :0], 1.0), "A"),
    (lambda x, W, b, A, B: lora_linear(x, W, b, A, B[:, :1], 1.0), "B"),
    (lambda x, W, b, A, B: lora_linear(x, W, b, A, B.T, 1.0), "B"),
    (lambda x, W, b, A, B: lora_linear(x, W, b, A, B.float(), 1.0),
     "x: dtypes must match.*B:torch.float32"),
    (lambda x, W, b, A, B: lora_linear(x, W, b, A, B, float("nan")), "alpha"),
    (lambda x, W, b, A, B: lora_linear(x, W, b, A, B, "2"), "alpha"),
    (lambda x, W, b, A, B: lora_linear(x * float("nan"), W, b, A, B, 1.0), "x"),
])
def test_lora_linear_bad_inputs_name_the_argument(f64, call, name):
    x, W, b = randn64(3, 4, seed=1), randn64(5, 4, seed=2), randn64(5, seed=3)
    A, B = randn64(2, 4, seed=4), randn64(5, 2, seed=5)
    with pytest.raises(ValueError, match=f"^{name}"):
        call(x, W, b, A, B)


# --- the module ------------------------------------------------------------------------------

def test_lora_module_starts_as_the_base_layer_and_trains_only_A_and_B(f64):
    torch.manual_seed(0)
    base = nn.Linear(6, 4)
    ref = nn.Linear(6, 4)
    ref.load_state_dict(base.state_dict())
    layer = LoRALinear(base, rank=2, alpha=8.0)
    x = randn64(5, 6, seed=1)
    torch.testing.assert_close(layer(x), ref(x), rtol=0, atol=0)      # B = 0 at init
    assert layer.B.abs().max() == 0 and layer.A.abs().max() > 0
    assert [n for n, p in layer.named_parameters() if p.requires_grad] == ["A", "B"]
    layer(x).pow(2).sum().backward()
    assert base.weight.grad is None and base.bias.grad is None
    assert layer.B.grad.abs().max() > 0
    # at B = 0 the gradient of A is 0 (it flows through B); dL/dB = (α/r) (dL/dy)ᵀ (x Aᵀ)
    dy = 2 * ref(x)
    torch.testing.assert_close(layer.B.grad, 4.0 * dy.T @ (x @ layer.A.detach().T), **TOL)
    torch.testing.assert_close(layer.A.grad, torch.zeros_like(layer.A), rtol=0, atol=0)


def test_lora_module_merge_gives_the_same_outputs_and_unmerge_restores_the_weight(f64):
    torch.manual_seed(1)
    base = nn.Linear(16, 12)
    W0 = base.weight.detach().clone()
    layer = LoRALinear(base, rank=4, alpha=16.0)
    with torch.no_grad():
        layer.B.normal_()
    x = randn64(7, 16, seed=2)
    adapter = layer(x)
    torch.testing.assert_close(adapter, explicit(x, W0, base.bias, layer.A, layer.B, 16.0), **TOL)
    layer.merge()
    assert layer.merged
    torch.testing.assert_close(layer.weight, W0 + 4.0 * layer.B @ layer.A, **TOL)
    merged = layer(x)
    assert (merged - adapter).abs().max().item() < 1e-13     # float64 rounding
    layer.merge()                                            # idempotent
    torch.testing.assert_close(layer(x), merged, rtol=0, atol=0)
    layer.unmerge()
    assert (layer.weight - W0).abs().max().item() < 1e-14
    torch.testing.assert_close(layer(x), adapter, rtol=0, atol=1e-13)


def test_lora_module_bad_inputs():
    with pytest.raises(ValueError, match="^base"):
        LoRALinear(nn.Conv1d(2, 2, 1), 1)
    with pytest.raises(ValueError, match="^rank"):
        LoRALinear(nn.Linear(4, 3), 0)
    with pytest.raises(ValueError, match="^rank"):
        LoRALinear(nn.Linear(4, 3), 4)
    with pytest.raises(ValueError, match="^alpha"):
        LoRALinear(nn.Linear(4, 3), 2, float("inf"))
    with pytest.raises(ValueError, match="^targets"):
        apply_lora(nn.Sequential(nn.Linear(2, 2)), 1, 1.0, ["w_q"])
    with pytest.raises(ValueError, match="^targets"):
        apply_lora(nn.Sequential(nn.Linear(2, 2)), 1, 1.0, "w_q")


# --- adapters on a model's layers ----------------------------------------------------------

def _encoder():
    torch.manual_seed(0)
    return MaskedEncoder(20, 16, n_layer=2, n_head=2, n_embd=16, num_classes=3, dropout=0.0
                         ).double().eval()


def test_apply_lora_on_attention_projections(f64):
    enc = _encoder()
    idx = torch.randint(20, (4, 16), generator=torch.Generator().manual_seed(0))
    before = enc.classify(idx)
    W_q = enc.blocks[0].attn.w_q.detach().clone()
    n_base = sum(p.numel() for p in enc.parameters())
    names = apply_lora(enc, rank=2, alpha=4.0, targets=["w_q", "w_v", "mlm_dense"])
    assert sorted(names) == ["blocks.0.attn.w_q", "blocks.0.attn.w_v", "blocks.1.attn.w_q",
                             "blocks.1.attn.w_v", "mlm_dense"]
    assert isinstance(enc.mlm_dense, LoRALinear)
    trainable = [n for n, p in enc.named_parameters() if p.requires_grad]
    assert all(n.endswith((".A", ".B")) for n in trainable) and len(trainable) == 10
    assert sum(p.numel() for p in lora_parameters(enc)) == 4 * 2 * (16 + 16) + 2 * (16 + 16)
    assert sum(p.numel() for p in enc.parameters()) == n_base + 5 * 2 * 32
    torch.testing.assert_close(enc.classify(idx), before, rtol=0, atol=0)   # B = 0
    # the module reads the adapted matrix: w_q + (α/r) Aᵀ Bᵀ in its x @ w layout
    par = enc.blocks[0].attn.parametrizations.w_q[0]
    with torch.no_grad():
        for p in lora_parameters(enc):
            p.normal_(0, 0.3)
    torch.testing.assert_close(enc.blocks[0].attn.w_q, W_q + 2.0 * par.A.T @ par.B.T, **TOL)
    # gradients reach only the adapters
    (enc.classification_loss(idx, torch.tensor([0, 1, 2, 0]))
     + enc.mlm_logits(idx).square().mean()).backward()       # mlm_dense is in the MLM head
    for n, p in enc.named_parameters():
        assert (p.grad is not None) == n.endswith((".A", ".B")), n
    assert par.A.grad.abs().max() > 0 and par.B.grad.abs().max() > 0
    # merged weights give the adapter's outputs to float64 rounding; unmerge restores W
    adapter, adapter_mlm = enc.classify(idx), enc.mlm_logits(idx)
    assert merge_lora(enc) == 5
    assert (enc.classify(idx) - adapter).abs().max().item() < 1e-12
    assert (enc.mlm_logits(idx) - adapter_mlm).abs().max().item() < 1e-12
    torch.testing.assert_close(enc.blocks[0].attn.parametrizations.w_q.original,
                               W_q + 2.0 * (par.B @ par.A).T, **TOL)
    assert unmerge_lora(enc) == 5
    assert (enc.blocks[0].attn.parametrizations.w_q.original - W_q).abs().max() < 1e-15
    assert (enc.classify(idx) - adapter).abs().max().item() < 1e-12


def test_lora_on_a_gpt_through_both_attention_paths(f64):
    """The adapted GPT gives one loss whether attention runs the formulas or the fused kernel."""
    losses = []
    for use_sdpa in (False, True):
        torch.manual_seed(0)
        m = GPT(11, 8, n_layer=2, n_head=2, n_embd=8, use_sdpa=use_sdpa).double()
        apply_lora(m, 2, 4.0, ["w_q", "w_k", "w_v", "w_o", "w1", "w2"])
        torch.manual_seed(1)
        with torch.no_grad():
            for p in lora_parameters(m):
                p.normal_(0, 0.2)
        idx = torch.randint(11, (2, 8), generator=torch.Generator().manual_seed(0))
        losses.append(m(idx, idx)[1])
    torch.testing.assert_close(losses[0], losses[1], **TOL)


# --- the fine-tuning option ------------------------------------------------------------------

def test_finetune_config_lora_keys():
    cfg = to_object(compose(["experiment=finetune_shakespeare_scratch", "model.lora_rank=7"]))
    assert cfg.model.lora_rank == 7 and list(cfg.model.lora_targets) == ["w_q", "w_v"]
    for bad in (["model.lora_rank=-1"], ["model.lora_rank=4", "model.freeze_encoder=true"],
                ["model.lora_targets=[w_z]"], ["model.lora_targets=[]"]):
        with pytest.raises(ConfigError, match="lora"):
            to_object(compose(["experiment=finetune_shakespeare_scratch", *bad]))


def test_finetune_task_with_lora_trains_only_the_adapters_and_the_head(tmp_path):
    from genmodels.train.trainer import Trainer
    from test_lm_tasks import COMMON, TINY
    from test_text_data import fake_play

    corpus = tmp_path / "tinyshakespeare.txt"
    corpus.write_text(fake_play(60) * 3)
    cfg = to_object(compose(["experiment=finetune_shakespeare_scratch", f"data.path={corpus}",
                             *COMMON, *TINY["finetune_shakespeare_scratch"], "model.lora_rank=2",
                             "model.lora_targets=[w_q,w_k,w_v,w_o]", "trainer.figures=false"]))
    trainer = Trainer(cfg, tmp_path / "run")
    trainer._setup()
    task = trainer.task
    before = {n: p.detach().clone() for n, p in task.model.named_parameters()}
    trained = {n for n, p in task.model.named_parameters() if p.requires_grad}
    assert trained == {f"blocks.0.attn.parametrizations.{w}.0.{m}"
                       for w in ("w_q", "w_k", "w_v", "w_o") for m in "AB"} | {
        "classifier.1.weight", "classifier.1.bias"}
    trainer.fit()                                   # sets up a new task: the same init (seed)
    task = trainer.task
    for n, p in task.model.named_parameters():
        assert torch.equal(p, before[n]) != (n in trained), n        # only those moved
    rows = [r for r in map(__import__("json").loads, open(tmp_path / "run" / "metrics.jsonl"))
            if "trained_fraction" in r]
    n_tr, n_all = task.trainable_fraction()
    assert n_tr == 4 * 2 * 2 * 16 + 16 * 4 + 4 and rows[-1]["trained_fraction"] == n_tr / n_all
