r"""Low-rank adaptation (LoRA; Hu et al., 2021), beyond the chapter.

Fine-tuning changes a pretrained weight ``W [out, in]`` by ``ΔW``; LoRA keeps ``W`` frozen and
learns ``ΔW`` as a product of two thin matrices, ``ΔW = (α/r)·B A`` with ``A [r, in]``,
``B [out, r]`` and a rank ``r ≪ min(in, out)``:

.. math:: h = x W^\top + b + \frac{\alpha}{r}\, x A^\top B^\top

Only ``A`` and ``B`` train: ``r·(in + out)`` numbers instead of ``in·out``. ``B`` starts at zero,
so the adapted model starts as the pretrained one; ``A`` starts random (here Kaiming-uniform, as
``nn.Linear`` and the reference implementation ``loralib``), so ``B``'s gradient ``∝ x Aᵀ`` is not
zero. ``α/r`` makes the learning rate roughly independent of ``r``. After training, ``ΔW`` can be
*merged* into ``W`` (``W ← W + (α/r)BA``): the layer then costs nothing extra; *unmerging*
subtracts it again.

* :func:`lora_linear` — the formula (the SPEC function).
* :class:`LoRALinear` — wraps an ``nn.Linear`` (frozen ``W``, ``b``), forward through
  :func:`lora_linear`; ``merge()`` / ``unmerge()``.
* :class:`LoRAWeight` — the same adapter for a raw weight matrix used as ``x @ w`` (``w [in,
  out]``), as :class:`~genmodels.transformer.modules.MultiHeadAttention` stores ``w_q``, ``w_k``,
  ``w_v``, ``w_o``. It is a ``torch.nn.utils.parametrize`` parametrization: the module keeps
  reading ``self.w_q`` and gets the adapted matrix, computed by :func:`lora_linear` applied to
  the identity (row i of ``I Wᵀ + (α/r) I Aᵀ Bᵀ`` is the adapted layer's output for the unit
  input ``e_i``; multiplying by the identity is exact), so the gradient reaches ``A`` and ``B``
  through the one implementation of the formula.
* :func:`apply_lora` — freeze a model and adapt the named weights of its layers;
  :func:`merge_lora`, :func:`unmerge_lora`, :func:`lora_parameters` act on every adapter in it.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from genmodels._checks import (_check_number, check_int, check_same_dtype, check_shape,
                               check_tensor, checks_enabled)

__all__ = ["lora_linear", "LoRALinear", "LoRAWeight", "apply_lora", "merge_lora", "unmerge_lora",
           "lora_parameters"]


def lora_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                A: torch.Tensor, B: torch.Tensor, alpha: float) -> torch.Tensor:
    r"""A linear layer with a low-rank adapter: ``x Wᵀ + b + (α/r)·x Aᵀ Bᵀ``.

    Args:
        x: ``[..., in]``. weight: ``W [out, in]`` (``nn.Linear``'s layout). bias: ``[out]`` or
            None. A: ``[r, in]``. B: ``[out, r]``. alpha: α, a finite number (r is A's rows).

    Returns:
        ``[..., out]``.
    """
    check_tensor("x", x, min_ndim=1)
    check_tensor("weight", weight, ndim=2)
    out_f, in_f = weight.shape
    if x.shape[-1] != in_f:
        raise ValueError(f"x: last dimension must be in={in_f} (weight is {list(weight.shape)}), "
                         f"got shape {list(x.shape)}")
    check_tensor("A", A, ndim=2)
    r = A.shape[0]
    if r < 1:
        raise ValueError(f"A: rank r (its rows) must be >= 1, got shape {list(A.shape)}")
    check_shape("A", A, [r, in_f])
    check_tensor("B", B, ndim=2)
    check_shape("B", B, [out_f, r])
    names, tensors = ["x", "weight", "A", "B"], [x, weight, A, B]
    if bias is not None:
        check_tensor("bias", bias, ndim=1)
        check_shape("bias", bias, [out_f])
        names.append("bias")
        tensors.append(bias)
    check_same_dtype(names, *tensors)
    if checks_enabled():
        _check_number("alpha", alpha)
    # >>> exercise transfer.lora_linear: LoRA (Hu et al.)
    # what: a linear layer with a low-rank adapter x Wᵀ + b + (α/r)·x Aᵀ Bᵀ
    # hint: r is the number of rows of A; the adapter's path is x → x Aᵀ [..., r] → (x Aᵀ) Bᵀ
    #   [..., out], scaled by α/r (not α), added to the frozen layer F.linear(x, W, b).
    # mistake: `scaling = alpha / r` -> `scaling = alpha`
    scaling = alpha / r
    frozen = F.linear(x, weight, bias)            # (..., out): x Wᵀ + b
    down = x @ A.T                                # (..., r):   x Aᵀ
    return frozen + scaling * (down @ B.T)        # (..., out): + (α/r) x Aᵀ Bᵀ
    # <<< exercise transfer.lora_linear


def _check_rank_alpha(rank, alpha, in_f: int, out_f: int) -> None:
    check_int("rank", rank, minimum=1)
    if rank > min(in_f, out_f):
        raise ValueError(f"rank: must be <= min(in, out) = {min(in_f, out_f)}, got {rank}")
    _check_number("alpha", alpha)


class _Adapter(nn.Module):
    """``A [r, in]`` (Kaiming-uniform, as nn.Linear) and ``B [out, r]`` (zeros): ΔW starts at 0."""

    def _init_adapter(self, in_f: int, out_f: int, rank: int, alpha: float, like: torch.Tensor):
        self.rank, self.alpha, self.merged = rank, float(alpha), False
        self.A = nn.Parameter(torch.empty(rank, in_f, dtype=like.dtype, device=like.device))
        self.B = nn.Parameter(torch.zeros(out_f, rank, dtype=like.dtype, device=like.device))
        nn.init.kaiming_uniform_(self.A, a=math.sqrt(5))

    def delta(self) -> torch.Tensor:
        """``ΔW = (α/r)·B A``, ``[out, in]``, the update ``merge`` adds to ``W``: the adapter's
        term of :func:`lora_linear` applied to the identity (W = 0, no bias), transposed."""
        out_f, in_f = self.B.shape[0], self.A.shape[1]
        eye = torch.eye(in_f, dtype=self.A.dtype, device=self.A.device)
        zero = torch.zeros(out_f, in_f, dtype=self.A.dtype, device=self.A.device)
        return lora_linear(eye, zero, None, self.A, self.B, self.alpha).T


class LoRALinear(_Adapter):
    """``nn.Linear`` with a LoRA adapter: ``forward(x) = lora_linear(x, W, b, A, B, α)``.

    ``W`` and ``b`` are the wrapped layer's tensors, frozen (``requires_grad=False``); ``A`` and
    ``B`` are the only trainable parameters. ``merge()`` adds ``(α/r)BA`` to ``W`` (forward is
    then ``F.linear(x, W, b)``, no extra cost; A and B get no gradient while merged);
    ``unmerge()`` subtracts it again.
    """

    def __init__(self, base: nn.Linear, rank: int, alpha: float = 1.0):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise ValueError(f"base: expected an nn.Linear, got {type(base).__name__}")
        _check_rank_alpha(rank, alpha, base.in_features, base.out_features)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight, self.bias = base.weight, base.bias
        for p in (self.weight, self.bias):
            if p is not None:
                p.requires_grad_(False)
        self._init_adapter(base.in_features, base.out_features, rank, alpha, base.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.merged:
            return F.linear(x, self.weight, self.bias)
        return lora_linear(x, self.weight, self.bias, self.A, self.B, self.alpha)

    @torch.no_grad()
    def merge(self) -> None:
        """``W ← W + (α/r)BA`` (no-op if already merged)."""
        if not self.merged:
            self.weight.add_(self.delta())
            self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """``W ← W − (α/r)BA`` (no-op if not merged): ``W`` is restored to rounding."""
        if self.merged:
            self.weight.sub_(self.delta())
            self.merged = False

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"rank={self.rank}, alpha={self.alpha}, merged={self.merged}")


class LoRAWeight(_Adapter):
    """Parametrization of a raw weight ``w [in, out]`` used as ``x @ w``: returns the adapted
    ``w + (α/r)·Aᵀ Bᵀ`` (``A [r, in]``, ``B [out, r]``), computed as
    ``lora_linear(I_in, wᵀ, None, A, B, α)``. Register it with :func:`apply_lora` (or
    ``parametrize.register_parametrization(module, name, LoRAWeight(...))``); the frozen ``w`` is
    then ``module.parametrizations[name].original``."""

    def __init__(self, in_features: int, out_features: int, rank: int, alpha: float = 1.0,
                 like: torch.Tensor | None = None):
        super().__init__()
        _check_rank_alpha(rank, alpha, in_features, out_features)
        like = torch.empty(0) if like is None else like
        self.in_features, self.out_features = in_features, out_features
        self._init_adapter(in_features, out_features, rank, alpha, like)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        if self.merged:
            return w
        eye = torch.eye(self.in_features, dtype=w.dtype, device=w.device)   # (in, in)
        return lora_linear(eye, w.T, None, self.A, self.B, self.alpha)      # (in, out)

    def merge_into(self, original: torch.Tensor) -> None:
        with torch.no_grad():
            if not self.merged:
                original.add_(self.delta().T)          # w [in, out] += ((α/r) B A)ᵀ
                self.merged = True

    def unmerge_from(self, original: torch.Tensor) -> None:
        with torch.no_grad():
            if self.merged:
                original.sub_(self.delta().T)
                self.merged = False


def apply_lora(model: nn.Module, rank: int, alpha: float,
               targets: tuple[str, ...] | list[str] = ("w_q", "w_k", "w_v", "w_o")
               ) -> list[str]:
    """Freeze every parameter of ``model`` and put a LoRA adapter on each weight named in
    ``targets``: a child ``nn.Linear`` with that attribute name becomes a :class:`LoRALinear`,
    a 2-D parameter with that name (``x @ w`` layout, e.g. MultiHeadAttention's ``w_q``) gets a
    :class:`LoRAWeight` parametrization. Returns the adapted names (``"blocks.0.attn.w_q"``, …);
    raises ValueError naming ``targets`` if none matched. Unfreeze a new head yourself."""
    if not isinstance(model, nn.Module):
        raise ValueError(f"model: expected an nn.Module, got {type(model).__name__}")
    check_int("rank", rank, minimum=1)
    _check_number("alpha", alpha)
    if not isinstance(targets, (list, tuple)) or not targets:
        raise ValueError(f"targets: expected a non-empty list of attribute names, got {targets!r}")
    for p in model.parameters():
        p.requires_grad_(False)
    adapted = []
    for mod_name, module in list(model.named_modules()):
        if isinstance(module, (LoRALinear, _Adapter)) or parametrize.is_parametrized(module):
            continue
        prefix = f"{mod_name}." if mod_name else ""
        for name, child in list(module.named_children()):
            if name in targets and isinstance(child, nn.Linear):
                setattr(module, name, LoRALinear(child, rank, alpha))
                adapted.append(prefix + name)
        for name, p in list(module.named_parameters(recurse=False)):
            if name in targets and p.dim() == 2:
                in_f, out_f = p.shape
                parametrize.register_parametrization(
                    module, name, LoRAWeight(in_f, out_f, rank, alpha, like=p), unsafe=True)
                adapted.append(prefix + name)
    if not adapted:
        raise ValueError(f"targets: no nn.Linear child or 2-D parameter of the model is named "
                         f"{list(targets)}")
    return adapted


def _adapters(model: nn.Module):
    """``(adapter, frozen weight)`` pairs of every LoRA adapter in ``model``."""
    for module in model.modules():
        if isinstance(module, LoRALinear):
            yield module, module.weight
        if parametrize.is_parametrized(module):
            for plist in module.parametrizations.values():
                for par in plist:
                    if isinstance(par, LoRAWeight):
                        yield par, plist.original


def lora_parameters(model: nn.Module) -> list[nn.Parameter]:
    """Every adapter's ``A`` and ``B``."""
    return [t for a, _ in _adapters(model) for t in (a.A, a.B)]


def merge_lora(model: nn.Module) -> int:
    """Fold every adapter into its frozen weight (``W ← W + (α/r)BA``); returns how many."""
    n = 0
    for a, w in _adapters(model):
        a.merge() if isinstance(a, LoRALinear) else a.merge_into(w)
        n += 1
    return n


def unmerge_lora(model: nn.Module) -> int:
    """Undo :func:`merge_lora` (``W ← W − (α/r)BA``); returns how many adapters."""
    n = 0
    for a, w in _adapters(model):
        a.unmerge() if isinstance(a, LoRALinear) else a.unmerge_from(w)
        n += 1
    return n
