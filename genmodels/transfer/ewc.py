"""Elastic weight consolidation (section 2.2.2): the Fisher diagonal Ω and the penalty R(θ).

After training on task A, Ω_i measures how much the likelihood of task A depends on θ_i; while
fine-tuning on task B, R(θ) = Σ_i ½ Ω_i (θ_i − θ*_i)² pulls the important weights back to
their task-A values θ*. Every dict here is keyed like ``model.named_parameters()``.
"""

from __future__ import annotations

import collections.abc
import warnings
from typing import Callable, Iterable, Mapping

import torch
import torch.nn as nn
from torch.func import functional_call, grad, vmap

from genmodels._checks import (check_choice, check_finite, check_positive, check_tensor,
                               checks_enabled)

NLLFn = Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor]


def fisher_diagonal(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
                    nll_fn: NLLFn, *, method: str = "auto") -> dict[str, torch.Tensor]:
    """Ω: the diagonal of the empirical Fisher information,

        Ω_i = (1/N) Σ_{n=1}^{N} (∂ nll_n / ∂θ_i)²,

    the mean over EVERY single sample n of all batches (not over batch means, whose squared
    gradients would be far smaller). nll_n = −log p_θ(y_n | x_n).

    model: the network, at the parameters θ* learnt on the old task (its train/eval mode is left
    as it is: use ``model.eval()`` for a deterministic Fisher).
    batches: an iterable of ``(x [B, ...], y [B, ...])``.
    nll_fn(model, x, y): the per-sample negative log-likelihood ``[B]``.
    method: "vmap" computes per-sample gradients in one pass per batch with
    ``torch.func`` (functional_call + vmap + grad); "loop" calls autograd once per sample;
    "auto" tries vmap and falls back to the loop (with a warning) when the model cannot be
    vmapped (e.g. dropout in train mode, in-place buffer updates).
    Returns ``{name: Ω_name}`` with the shape and dtype of each parameter that requires grad,
    detached.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model: expected an nn.Module, got {type(model).__name__}")
    if not callable(nll_fn):
        raise ValueError("nll_fn: expected a callable nll_fn(model, x, y) -> [B]")
    check_choice("method", method, ("auto", "vmap", "loop"))
    if not isinstance(batches, collections.abc.Iterable) or isinstance(batches, torch.Tensor):
        raise ValueError(f"batches: expected an iterable of (x, y) pairs, got "
                         f"{type(batches).__name__}")
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    if not params:
        raise ValueError("model: has no parameter that requires grad")

    sum_sq = {name: torch.zeros_like(p, memory_format=torch.contiguous_format).detach()
              for name, p in params.items()}
    n_samples = 0
    use_vmap = method in ("auto", "vmap")
    for k, batch in enumerate(batches):
        x, y = _unpack(batch, k)
        if x.shape[0] == 0:  # an empty batch adds no sample (all empty: refused below)
            continue
        if use_vmap:
            try:
                g = _per_sample_grads_vmap(model, params, nll_fn, x, y)
            except (RuntimeError, NotImplementedError) as err:
                if method == "vmap":
                    raise
                warnings.warn(f"fisher_diagonal: torch.func.vmap failed ({err}); falling back to "
                              "one backward pass per sample", RuntimeWarning, stacklevel=2)
                use_vmap = False
        if not use_vmap:
            g = _per_sample_grads_loop(model, params, nll_fn, x, y)
        for name, g_n in g.items():  # g_n: [B, *θ_name.shape]
            check_finite("nll_fn", g_n)
            # >>> exercise transfer.fisher: eq. Ω
            # what: the empirical Fisher diagonal: mean over samples of squared per-sample gradients
            # hint: square each sample's gradient BEFORE summing over the batch, and divide by the
            #   number of samples.
            # mistake: `(g_n.detach() ** 2).sum(dim=0)` -> `g_n.detach().sum(dim=0) ** 2`
            sum_sq[name] += (g_n.detach() ** 2).sum(dim=0)
            # <<< exercise transfer.fisher
        n_samples += x.shape[0]
    if n_samples == 0:
        raise ValueError("batches: contained no samples")
    # >>> exercise transfer.fisher: eq. Ω
    Omega = {name: s / n_samples for name, s in sum_sq.items()}
    return Omega
    # <<< exercise transfer.fisher


def ewc_penalty(model: nn.Module, anchor_params: Mapping[str, torch.Tensor],
                fisher: Mapping[str, torch.Tensor], *, lam: float = 1.0) -> torch.Tensor:
    """R(θ) = λ Σ_i ½ Ω_i (θ_i − θ*_i)²  (λ = ``lam`` = 1 gives the formula as printed).

    Differentiable in θ: ∂R/∂θ_i = λ Ω_i (θ_i − θ*_i).

    model: the network with the current θ. anchor_params: ``{name: θ*}``, fisher:
    ``{name: Ω}``, both keyed like ``model.named_parameters()``; the sum runs over the keys of
    ``fisher`` (a parameter without a Fisher entry, such as a new task head, is free), each of
    which must be a parameter of ``model`` and a key of ``anchor_params`` with the same shape.
    lam: λ ≥ 0. Returns ``[]`` in the parameters' dtype.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model: expected an nn.Module, got {type(model).__name__}")
    check_positive("lam", lam, allow_zero=True)
    for label, d in (("anchor_params", anchor_params), ("fisher", fisher)):
        if not isinstance(d, Mapping):
            raise ValueError(f"{label}: expected a dict keyed like model.named_parameters(), "
                             f"got {type(d).__name__}")
    theta = dict(model.named_parameters())
    terms = []
    for name, Omega_i in fisher.items():
        if name not in theta:
            raise ValueError(f"fisher: key {name!r} is not a parameter of model")
        if name not in anchor_params:
            raise ValueError(f"anchor_params: missing key {name!r}")
        theta_i, theta_star = theta[name], anchor_params[name]
        check_tensor(f"fisher[{name!r}]", Omega_i)
        check_tensor(f"anchor_params[{name!r}]", theta_star)
        for label, t in ((f"anchor_params[{name!r}]", theta_star), (f"fisher[{name!r}]", Omega_i)):
            if t.shape != theta_i.shape:
                raise ValueError(f"{label}: expected shape {list(theta_i.shape)} "
                                 f"(the parameter's), got {list(t.shape)}")
            if t.dtype != theta_i.dtype:
                raise ValueError(f"{label}: expected dtype {theta_i.dtype} (the parameter's), "
                                 f"got {t.dtype}")
        if checks_enabled() and bool((Omega_i.detach() < 0).any()):
            raise ValueError(f"fisher[{name!r}]: Fisher entries must be >= 0")
        # >>> exercise transfer.ewc_penalty: eq. R(θ)
        # what: the EWC penalty λ Σ_i ½ Ω_i (θ_i − θ*_i)²
        # hint: each parameter contributes ½ Ω (θ − θ*)² summed over its entries; do not forget the ½ and λ.
        # mistake: `(0.5 * Omega_i * (theta_i - theta_star) ** 2).sum()` -> `(Omega_i * (theta_i - theta_star) ** 2).sum()`
        terms.append((0.5 * Omega_i * (theta_i - theta_star) ** 2).sum())
        # <<< exercise transfer.ewc_penalty
    if not terms:
        dtype = next(iter(theta.values())).dtype if theta else torch.get_default_dtype()
        return torch.zeros((), dtype=dtype)
    # >>> exercise transfer.ewc_penalty: eq. R(θ)
    R = lam * torch.stack(terms).sum()
    return R
    # <<< exercise transfer.ewc_penalty


# --- per-sample gradients --------------------------------------------------------------------

class _NLL(nn.Module):
    """Wraps ``nll_fn(model, x, y)`` as a module so that ``functional_call`` can swap θ inside."""

    def __init__(self, model: nn.Module, nll_fn: NLLFn):
        super().__init__()
        self.model = model
        self.nll_fn = nll_fn

    def forward(self, x, y):
        return self.nll_fn(self.model, x, y)


def _per_sample_grads_vmap(model, params, nll_fn, x, y) -> dict[str, torch.Tensor]:
    """∂ nll_n/∂θ for every n of the batch at once: vmap over n of grad of a one-sample nll."""
    wrapper = _NLL(model, nll_fn)
    theta = {name: p.detach() for name, p in params.items()}

    def nll_one(theta, x_n, y_n):
        xs, ys = x_n.unsqueeze(0), y_n.unsqueeze(0)  # a batch of one: [1, ...]
        state = {f"model.{name}": p for name, p in theta.items()}  # buffers stay the model's
        nll = functional_call(wrapper, state, (xs, ys))
        _check_nll(nll, 1)
        return nll.sum()

    return vmap(grad(nll_one), in_dims=(None, 0, 0))(theta, x, y)  # {name: [B, *shape]}


def _per_sample_grads_loop(model, params, nll_fn, x, y) -> dict[str, torch.Tensor]:
    """The same per-sample gradients, one autograd call per sample."""
    names, tensors = list(params), list(params.values())
    per_sample = {name: [] for name in names}
    for n in range(x.shape[0]):
        nll = nll_fn(model, x[n:n + 1], y[n:n + 1])
        _check_nll(nll, 1)
        grads = torch.autograd.grad(nll.sum(), tensors, allow_unused=True)
        for name, p, g in zip(names, tensors, grads):
            per_sample[name].append(torch.zeros_like(p) if g is None else g)
    return {name: torch.stack(gs) for name, gs in per_sample.items()}  # {name: [B, *shape]}


def _check_nll(nll, B: int) -> None:
    if not isinstance(nll, torch.Tensor) or tuple(nll.shape) != (B,):
        shape = list(nll.shape) if isinstance(nll, torch.Tensor) else type(nll).__name__
        raise ValueError(f"nll_fn: must return the per-sample NLL, shape [B] = [{B}], got {shape}")


def _unpack(batch, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    if not isinstance(batch, (tuple, list)) or len(batch) != 2:   # a bare tensor would unpack by rows
        raise ValueError(f"batches: item {k} is not an (x, y) pair")
    x, y = batch
    for label, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor) or t.dim() == 0:
            raise ValueError(f"batches: item {k}: {label} must be a tensor with a batch dimension")
    if x.shape[0] != y.shape[0]:
        raise ValueError(f"batches: item {k}: x has {x.shape[0]} samples but y has {y.shape[0]}")
    return x, y
