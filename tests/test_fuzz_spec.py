"""Property-based fuzzing of every formula function: bad input fails early, clearly and by name.

The contract (SPEC.md, "Conventions"): given a bad argument, an equation function raises
``ValueError`` or ``TypeError`` whose message names that argument — never a silent NaN, never an
error from deep inside torch (``RuntimeError``, ``IndexError``, ...), never a hang. A NaN/±inf
entry in an input tensor raises :class:`~genmodels._checks.NonFiniteError` (a ``ValueError``),
which the trainer turns into a stop naming the step.

The harness is a table. Each :class:`Case` holds a *valid call* factory (small float64 tensors,
sizes drawn from a seed; sizes of different roles are drawn from disjoint ranges, so a shape
perturbation never happens to produce another valid shape) and a rule per argument. From a rule,
:func:`perturbations` derives the bad variants of that argument:

* type: ``None`` (unless the argument is optional), a list, a numpy array, a Python float, a str;
* dtype: int64, bool, float16, bfloat16, complex128 (for float tensors), float32 beside float64
  arguments (mismatched dtypes), float for integer tensors, ...;
* shape: one more / one fewer dimension, one dimension grown by 1, one dimension of size 0;
* values: a NaN, +inf or −inf at a random position, values out of range (timesteps ≥ T,
  negative class ids, probabilities outside [0, 1], masks selecting nothing, ...);
* hyperparameters: values drawn by hypothesis from outside their domain (negative β,
  clip ε ≤ 0, γ outside [0, 1], T < 1, non-numbers, NaN).

hypothesis draws the seed of the valid call, the argument and the perturbation. The expected
outcome of most perturbations is "raise, naming the argument"; a few are legitimately valid for
some arguments (a free leading dimension, an empty batch of a per-sample function) and are marked
``either``: raise naming the argument, or return outputs that hold no NaN/inf.

Counts of fuzzed inputs per function are written to ``fuzz_counts.json`` in pytest's base temp
folder (or to ``$GENMODELS_FUZZ_REPORT``) at the end of the module; experiments/reliability.md
reports them. ``pytest -m slow tests/test_fuzz_spec.py`` runs the same harness with 20x more
examples per function.
"""

from __future__ import annotations

import collections
import contextlib
import importlib
import math
import random
import re
import signal
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import write_counts_report
from genmodels._checks import NonFiniteError

pytestmark = pytest.mark.fault

F64 = torch.float64
NAN, INF = float("nan"), float("inf")
DEFAULT_EXAMPLES = 40          # per function in the default run
SLOW_EXAMPLES = 800            # per function in the `slow` run
CALL_TIMEOUT_S = 20            # a call that takes longer counts as a hang

#: fuzzed inputs per function and outcome, filled by the tests, written at module teardown
COUNTS: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)


# ============================================================================== rules
@dataclass
class T:
    """A tensor argument.

    kind: "float" (float64 in the valid call), "int" (class ids, timesteps, levels), "bool".
    optional: None is a valid value. ndims: other numbers of dimensions that are valid.
    free: dimensions (of the valid shape; negative counts from the end) whose size may change
    alone. empty: dimensions that may be 0. upper: the first out-of-range value of an int tensor
    (ids must lie in [0, upper)). bad: extra value perturbations ``label -> fn(x, rnd) -> x``
    that must raise. int_ok / float_ok: a 0/1 integer / float tensor is also a valid mask.
    mixed_ok: a float32 value beside float64 arguments is valid (it is cast, e.g. diffusion
    times). range_ok: ids out of range are valid where they are ignored (targets outside the
    MLM mask).
    """
    kind: str = "float"
    optional: bool = False
    ndims: tuple = ()
    free: tuple = ()
    empty: tuple = ()
    upper: int | None = None
    bad: dict = field(default_factory=dict)
    int_ok: bool = False
    float_ok: bool = False
    mixed_ok: bool = False
    range_ok: bool = False


@dataclass
class H:
    """A hyperparameter (number, string, shape tuple, ...): ``bad`` draws invalid values."""
    bad: st.SearchStrategy


@dataclass
class C:
    """A callable argument (an eps/score model, an nll function): bad ones are non-callables and
    callables whose output has the wrong type, shape or NaNs."""


@dataclass
class O:
    """Any other object argument (a module, a schedule, a dict of tensors): ``bad`` is a list of
    ``label -> fn(valid_kwargs, rnd) -> value`` that must raise."""
    bad: dict


@dataclass
class Case:
    name: str                                   # dotted path, as in docs/equations.md
    make: Callable[[random.Random, torch.Generator], dict]
    args: dict[str, Any]
    call: Callable | None = None                # default: the function at ``name``

    @property
    def same_dtype(self) -> bool:
        """With two or more float tensor arguments, a float32 one beside float64 ones raises."""
        return sum(isinstance(a, T) and a.kind == "float" for a in self.args.values()) >= 2

    def fn(self):
        if self.call is not None:
            return self.call
        module, _, attr = self.name.rpartition(".")
        return getattr(importlib.import_module(module), attr)


# ----------------------------------------------------------------------------- bad values
_JUNK = [NAN, INF, -INF, "1", None, [1.0], object()]


def _floats(lo=None, hi=None):
    return st.floats(min_value=lo, max_value=hi, allow_nan=False, allow_infinity=False)


def bad_unit():
    """Outside [0, 1]."""
    return st.one_of(_floats(-1e6, -1e-9), _floats(1 + 1e-9, 1e6), st.sampled_from(_JUNK))


def bad_open_unit():
    """Outside (0, 1)."""
    return st.one_of(_floats(-1e6, 0.0), _floats(1.0, 1e6), st.sampled_from(_JUNK))


def bad_positive():
    """Not > 0."""
    return st.one_of(_floats(-1e6, 0.0), st.sampled_from(_JUNK))


def bad_nonnegative():
    return st.one_of(_floats(-1e6, -1e-9), st.sampled_from(_JUNK))


def bad_int(minimum):
    return st.one_of(st.integers(-1000, minimum - 1), st.sampled_from([2.5, True, None, "3", NAN]))


def bad_choice():
    return st.one_of(st.text(min_size=0, max_size=8).filter(lambda s: s not in VALID_CHOICES),
                     st.sampled_from([None, 1, True]))


VALID_CHOICES = {"mean", "sum", "none", "posterior", "beta", "auto", "vmap", "loop", "zeros", "random"}


def bad_shape_arg():
    return st.sampled_from([(), (0, 3), (-1, 3), (2.5, 3), None, "2,3", (True, 3), 3])


# ----------------------------------------------------------------------------- perturbations
RAISE, NONFINITE, EITHER = "raise", "nonfinite", "either"


def _dim_ok(dims, i, ndim):
    return i in dims or (i - ndim) in dims


def _set(x, rnd, value):
    y = x.clone()
    if y.numel():
        y.view(-1)[rnd.randrange(y.numel())] = value
    return y


def _set_first(x, value):
    """``x`` with its first element set (the MLM factory always masks position [0, 0])."""
    y = x.clone()
    y.view(-1)[0] = value
    return y


def _grow(x, i):
    return torch.cat([x, x.narrow(i, 0, 1)], dim=i)


def perturbations(rule, x, case: Case) -> dict[str, tuple[Callable, str]]:
    """``label -> (fn(x, rnd) -> bad x, expected outcome)`` for a tensor argument."""
    out = {
        "type:list": (lambda x, r: x.tolist(), RAISE),
        "type:numpy": (lambda x, r: x.numpy(), RAISE),
        "type:float": (lambda x, r: 0.5, RAISE),
        "type:str": (lambda x, r: "tensor", RAISE),
        "type:none": (lambda x, r: None, EITHER if rule.optional else RAISE),
        "shape:add_dim": (lambda x, r: x.unsqueeze(0),
                          EITHER if x.dim() + 1 in rule.ndims else RAISE),
    }
    if x.dim() >= 1:
        out["shape:drop_dim"] = (lambda x, r: x[0], EITHER if x.dim() - 1 in rule.ndims else RAISE)
    for i in range(x.dim()):
        out[f"shape:grow{i}"] = (lambda x, r, i=i: _grow(x, i),
                                 EITHER if _dim_ok(rule.free, i, x.dim()) else RAISE)
        out[f"shape:empty{i}"] = (lambda x, r, i=i: x.narrow(i, 0, 0),
                                  EITHER if _dim_ok(rule.empty, i, x.dim()) else RAISE)
    if rule.kind == "float":
        for v, label in ((NAN, "nan"), (INF, "+inf"), (-INF, "-inf")):
            out[f"value:{label}"] = (lambda x, r, v=v: _set(x, r, v), NONFINITE)
        for dt in (torch.int64, torch.bool, torch.float16, torch.bfloat16, torch.complex128):
            out[f"dtype:{dt}"] = (lambda x, r, dt=dt: x.to(dt), RAISE)
        out["dtype:float32"] = (lambda x, r: x.float(),
                                RAISE if case.same_dtype and not rule.mixed_ok else EITHER)
    elif rule.kind == "int":
        out["dtype:float64"] = (lambda x, r: x.to(F64), RAISE)
        out["dtype:bool"] = (lambda x, r: x.bool(), RAISE)
        out["value:negative"] = (lambda x, r: _set(x, r, -1), EITHER if rule.range_ok else RAISE)
        if rule.upper is not None:
            out["value:too_big"] = (lambda x, r: _set(x, r, rule.upper),
                                    EITHER if rule.range_ok else RAISE)
    elif rule.kind == "bool":
        out["dtype:float64"] = (lambda x, r: x.to(F64), EITHER if rule.float_ok else RAISE)
        out["dtype:int64"] = (lambda x, r: x.long(), EITHER if rule.int_ok else RAISE)
    for label, fn in rule.bad.items():
        out[f"value:{label}"] = (fn, RAISE)
    return out


def callable_perturbations():
    return {
        "type:none": lambda kw, r: None,
        "type:int": lambda kw, r: 3,
        "returns:list": lambda kw, r: (lambda x, t: x.tolist()),
        "returns:wrong_shape": lambda kw, r: (lambda x, t: x[..., :-1]),
        "returns:extra_dim": lambda kw, r: (lambda x, t: x.unsqueeze(0)),
        "returns:nan": lambda kw, r: (lambda x, t: torch.full_like(x, NAN)),
        "returns:int": lambda kw, r: (lambda x, t: x.long()),
    }


# ============================================================================== the table
CASES: dict[str, Case] = {}


def case(name, *, call=None, **args):
    def register(make):
        CASES[name] = Case(name, make, args, call)
        return make
    return register


def randn(g, *shape):
    return torch.randn(*shape, generator=g, dtype=F64)


def sizes(rng):
    """B ∈ {2, 3}, D ∈ {4, 5}, E ∈ {6, 7}, F ∈ {8, 9}: disjoint, so no perturbation of one size
    produces another."""
    return rng.choice((2, 3)), rng.choice((4, 5)), rng.choice((6, 7)), rng.choice((8, 9))


# ----------------------------------------------------------------------------- RL
ANY = tuple(range(-4, 4))


@case("genmodels.rl.discounted_return", rewards=T(ndims=(1, 3), free=ANY, empty=ANY), gamma=H(bad_unit()))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(rewards=randn(g, B, D), gamma=rng.random())


@case("genmodels.rl.rewards_to_go", rewards=T(ndims=(1, 3), free=ANY, empty=ANY), gamma=H(bad_unit()))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(rewards=randn(g, B, D), gamma=rng.random())


@case("genmodels.rl.preference_loss", r_chosen=T(), r_rejected=T())
def _(rng, g):
    B = sizes(rng)[0]
    return dict(r_chosen=randn(g, B), r_rejected=randn(g, B))


@case("genmodels.rl.dpo_loss", logp_chosen=T(), logp_rejected=T(), ref_logp_chosen=T(),
      ref_logp_rejected=T(), beta=H(bad_positive()))
def _(rng, g):
    B = sizes(rng)[0]
    return dict(logp_chosen=randn(g, B), logp_rejected=randn(g, B), ref_logp_chosen=randn(g, B),
                ref_logp_rejected=randn(g, B), beta=0.01 + rng.random())


@case("genmodels.rl.kl_shaped_rewards", scores=T(), logp_policy=T(), logp_ref=T(),
      beta=H(bad_nonnegative()),
      mask=T(kind="bool", optional=True, int_ok=True,
             bad={"row_without_true": lambda m, r: torch.zeros_like(m)}))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    mask = torch.ones(B, D, dtype=torch.bool)
    mask[0, rng.randrange(1, D):] = False
    return dict(scores=randn(g, B), logp_policy=randn(g, B, D), logp_ref=randn(g, B, D),
                beta=rng.random(), mask=mask)


@case("genmodels.rl.probability_ratio", logp_new=T(), logp_old=T())
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(logp_new=randn(g, B, D), logp_old=randn(g, B, D))


@case("genmodels.rl.ppo_clip_objective", logp_new=T(), logp_old=T(), advantages=T(),
      clip_eps=H(bad_positive()))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(logp_new=randn(g, B, D), logp_old=randn(g, B, D), advantages=randn(g, B, D),
                clip_eps=0.05 + 0.3 * rng.random())


@case("genmodels.rl.gae", rewards=T(), values=T(), last_value=T(),
      dones=T(kind="bool", int_ok=True, float_ok=True, bad={"not_0_or_1": lambda d, r: d.long() * 2 + 1}),
      gamma=H(bad_unit()), lam=H(bad_unit()))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(rewards=randn(g, D, B), values=randn(g, D, B),
                dones=torch.rand(D, B, generator=g) < 0.3, last_value=randn(g, B),
                gamma=rng.random(), lam=rng.random())


# ----------------------------------------------------------------------------- transfer
@case("genmodels.transfer.cross_entropy", logits=T(free=(1,)),
      targets=T(kind="int", bad={"too_big": lambda y, r: _set(y, r, 100)}))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(logits=randn(g, B, D), targets=torch.randint(0, D, (B,), generator=g))


def _soft_targets_bad():
    return {"negative": lambda y, r: _set(y, r, -0.5), "row_sum_not_1": lambda y, r: y * 2}


@case("genmodels.transfer.cross_entropy[soft]", logits=T(), targets=T(bad=_soft_targets_bad()),
      call=lambda logits, targets: importlib.import_module(
          "genmodels.transfer").cross_entropy(logits, targets))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(logits=randn(g, B, D), targets=torch.softmax(randn(g, B, D), -1))


def _model(rng, g):
    torch.manual_seed(rng.randrange(1000))
    return torch.nn.Linear(4, 3).double()


def _sgd(params, lr):
    from genmodels.transfer import sgd_update
    return sgd_update(params, lr)


@case("genmodels.transfer.sgd_update", call=_sgd, lr=H(bad_positive()),
      params=O({"not_tensors": lambda kw, r: [1.0, 2.0], "none": lambda kw, r: None,
                "nan_grad": lambda kw, r: _with_grad(NAN), "inf_grad": lambda kw, r: _with_grad(INF),
                "int": lambda kw, r: 3}))
def _(rng, g):
    p = randn(g, 3).requires_grad_()
    p.grad = randn(g, 3)
    return dict(params=[p], lr=0.1)


def _with_grad(v):
    p = torch.zeros(3, dtype=F64, requires_grad=True)
    p.grad = torch.full((3,), v, dtype=F64)
    return [p]


def _nll(model, x, y):
    return torch.nn.functional.cross_entropy(model(x), y, reduction="none")


def _fisher(model, batches, nll_fn):
    from genmodels.transfer import fisher_diagonal
    return fisher_diagonal(model, batches, nll_fn, method="loop")


@case("genmodels.transfer.fisher_diagonal", call=_fisher,
      model=O({"none": lambda kw, r: None, "function": lambda kw, r: _nll,
               "no_params": lambda kw, r: torch.nn.Identity()}),
      batches=O({"empty": lambda kw, r: [], "not_pairs": lambda kw, r: [torch.zeros(2, 4)],
                 "mismatched_batch": lambda kw, r: [(torch.zeros(2, 4, dtype=F64),
                                                     torch.zeros(3, dtype=torch.long))],
                 "none": lambda kw, r: None, "scalar_x": lambda kw, r: [(torch.tensor(1.0),
                                                                        torch.tensor(1))]}),
      nll_fn=O({"none": lambda kw, r: None, "int": lambda kw, r: 3,
                "wrong_shape": lambda kw, r: (lambda m, x, y: _nll(m, x, y).sum()),
                "nan": lambda kw, r: (lambda m, x, y: _nll(m, x, y) * NAN)}))
def _(rng, g):
    B = sizes(rng)[0]
    return dict(model=_model(rng, g), nll_fn=_nll,
                batches=[(randn(g, B, 4), torch.randint(0, 3, (B,), generator=g))])


def _ewc(model, anchor_params, fisher, lam):
    from genmodels.transfer import ewc_penalty
    return ewc_penalty(model, anchor_params, fisher, lam=lam)


def _edit(d, fn):
    return {k: fn(v) for k, v in d.items()}


@case("genmodels.transfer.ewc_penalty", call=_ewc, lam=H(bad_nonnegative()),
      model=O({"none": lambda kw, r: None, "dict": lambda kw, r: dict(kw["model"].named_parameters())}),
      anchor_params=O({"missing_key": lambda kw, r: {},
                       "wrong_shape": lambda kw, r: _edit(kw["anchor_params"], lambda v: v[:1]),
                       "wrong_dtype": lambda kw, r: _edit(kw["anchor_params"], lambda v: v.float()),
                       "nan": lambda kw, r: _edit(kw["anchor_params"], lambda v: v * NAN),
                       "not_tensor": lambda kw, r: _edit(kw["anchor_params"], lambda v: v.tolist()),
                       "none": lambda kw, r: None}),
      fisher=O({"unknown_key": lambda kw, r: {"nope": torch.ones(1, dtype=F64)},
                "negative": lambda kw, r: _edit(kw["fisher"], lambda v: -v - 1),
                "wrong_shape": lambda kw, r: _edit(kw["fisher"], lambda v: v[None]),
                "inf": lambda kw, r: _edit(kw["fisher"], lambda v: v + INF),
                "not_tensor": lambda kw, r: _edit(kw["fisher"], lambda v: 1.0),
                "none": lambda kw, r: None, "list": lambda kw, r: list(kw["fisher"].values())}))
def _(rng, g):
    model = _model(rng, g)
    anchor = {k: v.detach() + 0.1 * randn(g, *v.shape) for k, v in model.named_parameters()}
    fisher = {k: randn(g, *v.shape).abs() for k, v in model.named_parameters()}
    return dict(model=model, anchor_params=anchor, fisher=fisher, lam=rng.random())


# ----------------------------------------------------------------------------- VAE
@case("genmodels.vae.gaussian_log_density", z=T(empty=(0,)), mu=T(empty=(0,)), logvar=T(empty=(0,)))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(z=randn(g, B, D), mu=randn(g, B, D), logvar=randn(g, B, D))


@case("genmodels.vae.reparameterize", mu=T(empty=(0,)), logvar=T(empty=(0,)),
      eps=T(optional=True, ndims=(3,), empty=(0,)))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(mu=randn(g, B, D), logvar=randn(g, B, D), eps=randn(g, B, D))


@case("genmodels.vae.kl_to_standard_normal", mu=T(empty=(0,)), logvar=T(empty=(0,)))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(mu=randn(g, B, D), logvar=randn(g, B, D))


@case("genmodels.vae.vector_quantize", z_e=T(ndims=(1, 3), free=(0,)), codebook=T(free=(0,)),
      beta=H(bad_nonnegative()))
def _(rng, g):
    B, D, E, _ = sizes(rng)
    return dict(z_e=randn(g, B, D), codebook=randn(g, E, D), beta=rng.random())


@case("genmodels.vae.codebook_usage", indices=T(kind="int", upper=5, ndims=(0, 2), free=ANY),
      num_codes=H(bad_int(1)))
def _(rng, g):
    B = sizes(rng)[0]
    return dict(indices=torch.randint(0, 5, (B,), generator=g), num_codes=5)


_PIXELS = {"above_one": lambda x, r: _set(x, r, 1.5), "negative": lambda x, r: _set(x, r, -0.5)}


@case("genmodels.vae.elbo", x=T(bad=_PIXELS, empty=(0,)), logits=T(ndims=(3,), empty=(0,)),
      mu=T(empty=(0,)), logvar=T(empty=(0,)))
def _(rng, g):
    B, D, E, _ = sizes(rng)
    return dict(x=torch.rand(B, E, generator=g, dtype=F64), logits=randn(g, B, E),
                mu=randn(g, B, D), logvar=randn(g, B, D))


@case("genmodels.vae.iwae_bound", x=T(bad=_PIXELS), logits=T(), z=T(), mu=T(), logvar=T())
def _(rng, g):
    B, D, E, K = sizes(rng)
    return dict(x=torch.rand(B, E, generator=g, dtype=F64), logits=randn(g, K, B, E),
                z=randn(g, K, B, D), mu=randn(g, B, D), logvar=randn(g, B, D))


# ----------------------------------------------------------------------------- GAN
@case("genmodels.gan.gan_value", real_logits=T(free=(0,)), fake_logits=T(free=(0,)))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(real_logits=randn(g, B), fake_logits=randn(g, D))


@case("genmodels.gan.discriminator_loss", real_logits=T(free=(0,)), fake_logits=T(free=(0,)))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(real_logits=randn(g, B), fake_logits=randn(g, D))


@case("genmodels.gan.generator_loss", fake_logits=T(free=(0,)),
      saturating=H(st.sampled_from(["yes", 1, 0, None, 1.0])))
def _(rng, g):
    return dict(fake_logits=randn(g, sizes(rng)[0]), saturating=rng.random() < 0.5)


# ----------------------------------------------------------------------------- diffusion
def _schedule(rng, T_steps=None):
    from genmodels.diffusion import NoiseSchedule, linear_beta_schedule
    return NoiseSchedule(linear_beta_schedule(T_steps or rng.choice((10, 11)), 1e-3, 0.2, dtype=F64))


def _eps_model(x, t):
    return 0.1 * x


def _bad_schedule():
    return O({"none": lambda kw, r: None, "betas": lambda kw, r: kw["schedule"].betas,
              "str": lambda kw, r: "linear"})


def _timesteps(rng, g, B, T_steps):
    return torch.randint(0, T_steps, (B,), generator=g)


@case("genmodels.diffusion.linear_beta_schedule", T=H(bad_int(1)), beta_start=H(bad_open_unit()),
      beta_end=H(bad_open_unit()))
def _(rng, g):
    return dict(T=rng.randrange(1, 20), beta_start=1e-4, beta_end=0.02)


@case("genmodels.diffusion.cosine_beta_schedule", T=H(bad_int(1)), s=H(bad_nonnegative()))
def _(rng, g):
    return dict(T=rng.randrange(1, 20), s=0.008)


@case("genmodels.diffusion.NoiseSchedule",
      betas=T(free=(0,), bad={"zero": lambda b, r: _set(b, r, 0.0), "one": lambda b, r: _set(b, r, 1.0),
                   "negative": lambda b, r: _set(b, r, -0.1)}))
def _(rng, g):
    return dict(betas=torch.linspace(1e-3, 0.2, rng.choice((4, 5)), dtype=F64))


def _diffusion_x_args(*names, noise=True):
    args = {n: T() for n in names}
    args["t"] = T(kind="int", upper=10)
    args["schedule"] = _bad_schedule()
    if noise:
        args["noise"] = T(optional=True)
    return args


@case("genmodels.diffusion.q_step", **_diffusion_x_args("x_prev"))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(x_prev=randn(g, B, D), t=_timesteps(rng, g, B, 10), schedule=_schedule(rng, 10),
                noise=randn(g, B, D))


@case("genmodels.diffusion.q_sample", **_diffusion_x_args("x0"))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(x0=randn(g, B, D), t=_timesteps(rng, g, B, 10), schedule=_schedule(rng, 10),
                noise=randn(g, B, D))


@case("genmodels.diffusion.q_posterior", **_diffusion_x_args("x0", "x_t", noise=False))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(x0=randn(g, B, D), x_t=randn(g, B, D), t=_timesteps(rng, g, B, 10),
                schedule=_schedule(rng, 10))


@case("genmodels.diffusion.p_mean_variance", eps_model=C(),
      **{**_diffusion_x_args("x_t", noise=False), "x_t": T(free=(1,))},
      variance=H(bad_choice()))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(eps_model=_eps_model, x_t=randn(g, B, D), t=_timesteps(rng, g, B, 10),
                schedule=_schedule(rng, 10), variance=rng.choice(("posterior", "beta")))


@case("genmodels.diffusion.ddpm_loss", eps_model=C(),
      **{**_diffusion_x_args("x0"), "t": T(kind="int", upper=10, optional=True)},
      reduction=H(bad_choice()))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(eps_model=_eps_model, x0=randn(g, B, D), t=_timesteps(rng, g, B, 10),
                schedule=_schedule(rng, 10), noise=randn(g, B, D),
                reduction=rng.choice(("mean", "sum", "none")))


@case("genmodels.diffusion.ddpm_sample", eps_model=C(), shape=H(bad_shape_arg()),
      schedule=_bad_schedule(), variance=H(bad_choice()))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(eps_model=_eps_model, shape=(B, D), schedule=_schedule(rng, 4),
                variance=rng.choice(("posterior", "beta")))


@case("genmodels.diffusion.ddim_sample", eps_model=C(), shape=H(bad_shape_arg()),
      schedule=_bad_schedule(), steps=H(st.one_of(bad_int(1), st.integers(11, 100))),
      eta=H(bad_unit()))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(eps_model=_eps_model, shape=(B, D), schedule=_schedule(rng, 10),
                steps=rng.randrange(1, 6), eta=rng.random())


_TIME = {"negative": lambda t, r: _set(t, r, -0.5), "above_one": lambda t, r: _set(t, r, 1.5)}


@case("genmodels.diffusion.vp_sde_marginal", x0=T(), t=T(bad=_TIME, mixed_ok=True), noise=T(optional=True),
      beta_min=H(bad_positive()), beta_max=H(st.one_of(bad_positive(), _floats(0.0, 0.09))))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(x0=randn(g, B, D), t=torch.rand(B, generator=g, dtype=F64), noise=randn(g, B, D),
                beta_min=0.1, beta_max=20.0)


@case("genmodels.diffusion.score_matching_loss", score_model=C(), x0=T(),
      t=T(optional=True, bad=_TIME, mixed_ok=True), noise=T(optional=True), beta_min=H(bad_positive()),
      beta_max=H(st.one_of(bad_positive(), _floats(0.0, 0.09))), eps=H(bad_open_unit()),
      reduction=H(bad_choice()))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(score_model=_eps_model, x0=randn(g, B, D), t=0.01 + 0.99 * torch.rand(B, generator=g, dtype=F64),
                noise=randn(g, B, D), beta_min=0.1, beta_max=20.0, eps=1e-5, reduction="mean")


@case("genmodels.diffusion.euler_maruyama_sample", score_model=C(), shape=H(bad_shape_arg()),
      steps=H(bad_int(1)), beta_min=H(bad_positive()), beta_max=H(bad_positive()),
      eps=H(bad_open_unit()))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(score_model=_eps_model, shape=(B, D), steps=rng.randrange(1, 5), beta_min=0.1,
                beta_max=20.0, eps=1e-3)


# ----------------------------------------------------------------------------- RNN
@case("genmodels.rnn.rnn_cell", x_t=T(), h_prev=T(), W_ih=T(), W_hh=T(), b_h=T(),
      activation=H(st.sampled_from([None, "tanh", 3])))
def _(rng, g):
    B, I, H_, _ = sizes(rng)
    return dict(x_t=randn(g, B, I), h_prev=randn(g, B, H_), W_ih=randn(g, H_, I),
                W_hh=randn(g, H_, H_), b_h=randn(g, H_), activation=torch.tanh)


@case("genmodels.rnn.rnn_output", h_t=T(ndims=(1, 3), free=(0,), empty=(0,)), W_ho=T(), b_o=T())
def _(rng, g):
    B, H_, O_, _ = sizes(rng)
    return dict(h_t=randn(g, B, H_), W_ho=randn(g, O_, H_), b_o=randn(g, O_))


_LSTM_NAMES = ("W_f", "b_f", "W_i", "b_i", "W_C", "b_C", "W_o", "b_o")


@case("genmodels.rnn.lstm_cell", x_t=T(), h_prev=T(), c_prev=T(), **{n: T() for n in _LSTM_NAMES})
def _(rng, g):
    B, I, H_, _ = sizes(rng)
    kw = dict(x_t=randn(g, B, I), h_prev=randn(g, B, H_), c_prev=randn(g, B, H_))
    for n in _LSTM_NAMES:
        kw[n] = randn(g, H_, H_ + I) if n.startswith("W") else randn(g, H_)
    return kw


def _rnn_module(kind, I, H_):
    from genmodels.rnn import LSTM, RNN
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return (RNN if kind == "rnn" else LSTM)(I, H_).double()


@case("genmodels.rnn.RNN", call=lambda x, state, I, H_: _rnn_module("rnn", I, H_)(x, state),
      x=T(free=(1,)), state=T(optional=True, ndims=(3,)))
def _(rng, g):
    B, I, H_, L = sizes(rng)
    return dict(x=randn(g, B, L, I), state=randn(g, B, H_), I=I, H_=H_)


@case("genmodels.rnn.LSTM", call=lambda x, h, c, I, H_: _rnn_module("lstm", I, H_)(x, (h, c)),
      x=T(free=(1,)), h=T(optional=True, ndims=(3,)), c=T(optional=True, ndims=(3,)))
def _(rng, g):
    B, I, H_, L = sizes(rng)
    return dict(x=randn(g, B, L, I), h=randn(g, B, H_), c=randn(g, B, H_), I=I, H_=H_)


# ----------------------------------------------------------------------------- Transformer
@case("genmodels.transformer.sinusoidal_positional_encoding", seq_len=H(bad_int(1)),
      d_model=H(bad_int(1)))
def _(rng, g):
    return dict(seq_len=rng.randrange(1, 20), d_model=rng.randrange(1, 20))


def _causal(Lq, Lk):
    return torch.ones(Lq, Lk, dtype=torch.bool).tril()


@case("genmodels.transformer.scaled_dot_product_attention",
      q=T(ndims=(2, 4)), k=T(), v=T(free=(-1,), empty=(-1,)),
      mask=T(kind="bool", optional=True, ndims=(1, 3, 4),
             bad={"row_without_true": lambda m, r: torch.zeros_like(m)}))
def _(rng, g):
    B, D, E, _ = sizes(rng)
    return dict(q=randn(g, B, E, D), k=randn(g, B, E, D), v=randn(g, B, E, D + 1), mask=_causal(E, E))


@case("genmodels.transformer.fast_attention.fast_attention",
      q=T(ndims=(2, 4)), k=T(ndims=(2, 4)), v=T(ndims=(2, 4), free=(-1,), empty=(-1,)),
      mask=T(kind="bool", optional=True, ndims=(1, 3, 4),
             bad={"row_without_true": lambda m, r: torch.zeros_like(m)}))
def _(rng, g):
    B, D, E, _ = sizes(rng)
    return dict(q=randn(g, B, E, D), k=randn(g, B, E, D), v=randn(g, B, E, D + 1), mask=_causal(E, E))


def _mha(query, key, value, w_q, w_k, w_v, w_o, num_heads, mask):
    from genmodels.transformer import multi_head_attention
    return multi_head_attention(query, key, value, w_q, w_k, w_v, w_o, num_heads, mask)


@case("genmodels.transformer.multi_head_attention", call=_mha, query=T(),
      key=T(), value=T(), w_q=T(), w_k=T(), w_v=T(), w_o=T(),
      num_heads=H(st.one_of(bad_int(1), st.sampled_from([3, 5, 7]))),
      mask=T(kind="bool", optional=True, ndims=(1, 3, 4),
             bad={"row_without_true": lambda m, r: torch.zeros_like(m)}))
def _(rng, g):
    B, _, E, _ = sizes(rng)
    d, h = rng.choice(((4, 2), (8, 4), (8, 2)))
    kw = dict(query=randn(g, B, E, d), key=randn(g, B, E, d), value=randn(g, B, E, d),
              num_heads=h, mask=_causal(E, E))
    for n in ("w_q", "w_k", "w_v", "w_o"):
        kw[n] = randn(g, d, d)
    return kw


@case("genmodels.transformer.seq2seq.cross_attention", x=T(free=(1,)), memory=T(), w_q=T(),
      w_k=T(), w_v=T(), w_o=T(),
      num_heads=H(st.one_of(bad_int(1), st.sampled_from([3, 5, 7]))),
      memory_mask=T(kind="bool", optional=True,
                    bad={"row_without_true": lambda m, r: torch.zeros_like(m)}))
def _(rng, g):
    B, _, E, _ = sizes(rng)
    d, h = rng.choice(((4, 2), (8, 4), (8, 2)))
    mask = torch.ones(B, E + 1, dtype=torch.bool)
    mask[:, -1] = False                                  # the source's last frame is padding
    kw = dict(x=randn(g, B, E, d), memory=randn(g, B, E + 1, d), num_heads=h, memory_mask=mask)
    for n in ("w_q", "w_k", "w_v", "w_o"):
        kw[n] = randn(g, d, d)
    return kw


@case("genmodels.transformer.position_wise_ffn", x=T(ndims=(1, 3), free=(0,), empty=(0,)),
      w1=T(), b1=T(), w2=T(), b2=T())
def _(rng, g):
    B, D, F_, _ = sizes(rng)
    return dict(x=randn(g, B, D), w1=randn(g, D, F_), b1=randn(g, F_), w2=randn(g, F_, D), b2=randn(g, D))


@case("genmodels.transformer.next_token_distribution", h=T(ndims=(1, 3), free=(0,), empty=(0,)),
      w=T(), b=T())
def _(rng, g):
    B, D, V, _ = sizes(rng)
    return dict(h=randn(g, B, D), w=randn(g, D, V), b=randn(g, V))


@case("genmodels.transformer.masked_lm_loss", logits=T(free=(2,)),
      targets=T(kind="int", upper=6, range_ok=True,
                bad={"masked_negative": lambda t, r: _set_first(t, -1),
                     "masked_too_big": lambda t, r: _set_first(t, 6)}),
      mask=T(kind="bool", bad={"none_masked": lambda m, r: torch.zeros_like(m)}),
      reduction=H(bad_choice()))
def _(rng, g):
    B, L, _, _ = sizes(rng)
    mask = torch.rand(B, L, generator=g) < 0.5
    mask[0, 0] = True
    return dict(logits=randn(g, B, L, 6), targets=torch.randint(0, 6, (B, L), generator=g),
                mask=mask, reduction="mean")


@case("genmodels.transformer.task_loss", logits=T(free=(-1,)), targets=T(kind="int", upper=6),
      reduction=H(bad_choice()))
def _(rng, g):
    B, L, _, _ = sizes(rng)
    return dict(logits=randn(g, B, L, 6), targets=torch.randint(0, 6, (B, L), generator=g),
                reduction=rng.choice(("mean", "sum", "none")))


# ----------------------------------------------------------------------------- audio
SR = 8000


@case("genmodels.audio.mfcc", signal=T(ndims=(1, 3), free=ANY, empty=(0,)),
      sample_rate=H(bad_positive()), n_mfcc=H(st.one_of(bad_int(1), st.integers(17, 40))),
      n_fft=H(bad_int(2)), hop_length=H(st.one_of(bad_int(1), st.integers(65, 200))),
      n_mels=H(bad_int(1)), fmin=H(st.one_of(bad_nonnegative(), _floats(4000.0, 1e6))),
      fmax=H(st.one_of(_floats(4000.001, 1e6), _floats(-1e6, 0.0), st.sampled_from([NAN, "x"]))))
def _(rng, g):
    B = sizes(rng)[0]
    return dict(signal=randn(g, B, rng.randrange(200, 400)), sample_rate=SR, n_mfcc=8, n_fft=64,
                hop_length=16, n_mels=16, fmin=0.0, fmax=None)


@case("genmodels.audio.mel_filterbank", sample_rate=H(bad_positive()), n_fft=H(bad_int(2)),
      n_mels=H(bad_int(1)), fmin=H(st.one_of(bad_nonnegative(), _floats(4000.0, 1e6))),
      fmax=H(st.one_of(_floats(4000.001, 1e6), _floats(-1e6, 0.0), st.sampled_from([NAN, "x"]))))
def _(rng, g):
    return dict(sample_rate=SR, n_fft=rng.choice((32, 64)), n_mels=rng.randrange(1, 16),
                fmin=0.0, fmax=None)


_UNIT_AUDIO = {"above_one": lambda x, r: _set(x, r, 1.5), "below_minus_one": lambda x, r: _set(x, r, -2.0)}


@case("genmodels.audio.mu_law_encode", x=T(ndims=(1, 3), free=ANY, empty=ANY, bad=_UNIT_AUDIO),
      channels=H(bad_int(2)))
def _(rng, g):
    B, N, _, _ = sizes(rng)
    return dict(x=torch.rand(B, N, generator=g, dtype=F64) * 2 - 1, channels=rng.choice((16, 256)))


@case("genmodels.audio.mu_law_compress", x=T(ndims=(1, 3), free=ANY, empty=ANY, bad=_UNIT_AUDIO),
      channels=H(bad_int(2)))
def _(rng, g):
    B, N, _, _ = sizes(rng)
    return dict(x=torch.rand(B, N, generator=g, dtype=F64) * 2 - 1, channels=rng.choice((16, 256)))


@case("genmodels.audio.mu_law_expand", y=T(ndims=(1, 3), free=ANY, empty=ANY, bad=_UNIT_AUDIO),
      channels=H(bad_int(2)))
def _(rng, g):
    B, N, _, _ = sizes(rng)
    return dict(y=torch.rand(B, N, generator=g, dtype=F64) * 2 - 1, channels=rng.choice((16, 256)))


@case("genmodels.audio.wavenet.causal_conv1d", x=T(free=(0, 2)), weight=T(free=(0, 2)),
      bias=T(optional=True), dilation=H(bad_int(1)))
def _(rng, g):
    B, C, N, O_ = sizes(rng)
    return dict(x=randn(g, B, C, N), weight=randn(g, O_, C, rng.choice((2, 3))), bias=randn(g, O_),
                dilation=rng.choice((1, 2, 4)))


@case("genmodels.audio.wavenet.gated_activation", z=T(ndims=(2, 3, 4), free=(0, -1), empty=ANY))
def _(rng, g):
    B, D, N, _ = sizes(rng)
    return dict(z=randn(g, B, 2 * D, N))


@case("genmodels.audio.mu_law_decode", q=T(kind="int", upper=16, ndims=(1, 3), free=ANY, empty=ANY),
      channels=H(bad_int(2)))
def _(rng, g):
    B, N, _, _ = sizes(rng)
    return dict(q=torch.randint(0, 16, (B, N), generator=g), channels=16)


@case("genmodels.audio.spectral_subtraction", noisy=T(ndims=(3,), free=(-1,)),
      noise=T(ndims=(1,), free=(-1,)), n_fft=H(bad_int(2)),
      hop_length=H(st.one_of(bad_int(1), st.integers(33, 100))), alpha=H(bad_nonnegative()),
      floor=H(bad_unit()))
def _(rng, g):
    B = sizes(rng)[0]
    return dict(noisy=randn(g, B, rng.randrange(200, 300)), noise=randn(g, B, rng.randrange(100, 150)),
                n_fft=64, hop_length=16, alpha=1.0, floor=0.0)


@case("genmodels.audio.si_sdr", estimate=T(), reference=T())
def _(rng, g):
    B, _, _, _ = sizes(rng)
    N = rng.randrange(50, 100)
    return dict(estimate=randn(g, B, N), reference=randn(g, B, N))


@case("genmodels.audio.mel_cepstral_distortion", c1=T(), c2=T())
def _(rng, g):
    B, D, E, _ = sizes(rng)
    return dict(c1=randn(g, B, D, E), c2=randn(g, B, D, E))


@case("genmodels.audio.log_spectral_distance", estimate=T(), reference=T(), n_fft=H(bad_int(2)),
      hop_length=H(st.one_of(bad_int(1), st.integers(33, 100))))
def _(rng, g):
    B = sizes(rng)[0]
    N = rng.randrange(100, 200)
    return dict(estimate=randn(g, B, N), reference=randn(g, B, N), n_fft=32, hop_length=8)


@case("genmodels.audio.permutation_invariant_si_sdr", estimates=T(), references=T())
def _(rng, g):
    B, _, _, _ = sizes(rng)
    S, N = rng.choice((2, 3)), rng.randrange(50, 100)
    return dict(estimates=randn(g, B, S, N), references=randn(g, B, S, N))


@case("genmodels.audio.mix_at_snr", signal=T(), noise=T(),
      snr_db=H(st.sampled_from([NAN, INF, -INF, "10", None, [1.0], object()])))
def _(rng, g):
    B = sizes(rng)[0]
    N = rng.randrange(50, 100)
    return dict(signal=randn(g, B, N), noise=randn(g, B, N), snr_db=rng.uniform(-5, 5))


@case("genmodels.audio.colored_noise",
      shape=H(st.sampled_from([(2,), (0, 8), (-1, 8), (2, 1), (2.5, 8), (2, 8.0), None, "2,8", (True, 8)])),
      exponent=H(st.sampled_from([NAN, INF, -INF, "1", None, [1.0, 2.0, 3.0]])))
def _(rng, g):
    return dict(shape=(sizes(rng)[0], rng.randrange(8, 64)), exponent=rng.uniform(0, 2))


# ----------------------------------------------------------------------------- metrics
def _psd(rng, g, d):
    a = randn(g, d + 2, d)
    return a.T @ a / (d + 2)


_NOT_SYMMETRIC = {"not_symmetric": lambda a, r: a + torch.triu(torch.ones_like(a), 1)}


@case("genmodels.metrics.sqrtm_psd", a=T(bad=_NOT_SYMMETRIC))
def _(rng, g):
    return dict(a=_psd(rng, g, sizes(rng)[1]))


@case("genmodels.metrics.frechet_distance", mu1=T(), sigma1=T(bad=_NOT_SYMMETRIC), mu2=T(),
      sigma2=T(bad=_NOT_SYMMETRIC))
def _(rng, g):
    D = sizes(rng)[1]
    return dict(mu1=randn(g, D), sigma1=_psd(rng, g, D), mu2=randn(g, D), sigma2=_psd(rng, g, D))


@case("genmodels.metrics.class_coverage_entropy", labels=T(kind="int", upper=5, free=(0,)),
      num_classes=H(bad_int(1)))
def _(rng, g):
    B = sizes(rng)[0]   # the empty-batch walk's batch axis; `free` grows it in the fuzz
    return dict(labels=torch.randint(0, 5, (B,), generator=g), num_classes=5)


# ----------------------------------------------------------------------------- beyond the chapter
def _velocity_model(x, t):
    return 0.5 * x + t.reshape(-1, *([1] * (x.dim() - 1)))


@case("genmodels.flow.flow_interpolant", x0=T(ndims=(1, 3)), x1=T(ndims=(1, 3)), t=T(mixed_ok=True))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(x0=randn(g, B, D), x1=randn(g, B, D), t=torch.rand(B, generator=g, dtype=F64))


@case("genmodels.flow.flow_matching_loss", velocity_model=C(), x1=T(ndims=(1, 3)),
      t=T(optional=True, mixed_ok=True), x0=T(optional=True))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(velocity_model=_velocity_model, x1=randn(g, B, D),
                t=torch.rand(B, generator=g, dtype=F64), x0=randn(g, B, D))


@case("genmodels.flow.euler_flow_sample", velocity_model=C(), shape=H(bad_shape_arg()),
      steps=H(bad_int(1)))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(velocity_model=_velocity_model, shape=(B, D), steps=rng.randrange(1, 6),
                dtype=F64)


_NOT_A_NUMBER = st.sampled_from([NAN, INF, -INF, "1", None, [1.0], object()])


@case("genmodels.diffusion.classifier_free_guidance", eps_cond=T(ndims=(1, 3)),
      eps_uncond=T(ndims=(1, 3)), guidance_scale=H(bad_nonnegative()))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(eps_cond=randn(g, B, D), eps_uncond=randn(g, B, D),
                guidance_scale=rng.choice((0.0, 1.0, 3.0)))


def _class_net(x, t, y):
    return 0.1 * x + 0.01 * y.to(x.dtype).reshape(-1, *([1] * (x.dim() - 1)))


def _guided(net, y, guidance_scale, null_label, x_t, t):
    from genmodels.diffusion import guided_eps_model
    return guided_eps_model(net, y, guidance_scale, null_label)(x_t, t)


@case("genmodels.diffusion.guided_eps_model", call=_guided,
      net=O({"none": lambda kw, r: None, "int": lambda kw, r: 3}),
      y=T(kind="int", range_ok=True), guidance_scale=H(bad_nonnegative()),
      null_label=H(st.one_of(bad_int(0), st.sampled_from([2.5, None, "5"]))))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    return dict(net=_class_net, y=torch.randint(0, 5, (B,), generator=g),
                guidance_scale=rng.choice((0.0, 1.0, 2.5)), null_label=5, x_t=randn(g, B, D),
                t=torch.randint(0, 10, (B,), generator=g))


@case("genmodels.transformer.rotary_embedding", x=T(ndims=(2, 4), free=(0,), empty=(0, 2),
                                                     bad={"odd_width": lambda x, r: x[..., :-1]}),
      positions=O({"wrong_length": lambda kw, r: torch.arange(kw["x"].shape[-2] + 1),
                   "two_dims": lambda kw, r: kw["positions"][None], "nan": lambda kw, r:
                   kw["positions"].double().index_fill(0, torch.tensor([0]), NAN),
                   "bool": lambda kw, r: kw["positions"] > 0, "list": lambda kw, r: [0, 1],
                   "str": lambda kw, r: "0"}),
      base=H(bad_positive()))
def _(rng, g):
    B, _, E, _ = sizes(rng)
    return dict(x=randn(g, B, E, 4), positions=torch.arange(E), base=10000.0)


@case("genmodels.transfer.lora_linear", x=T(ndims=(1, 3), free=(0,), empty=(0,)),
      weight=T(), bias=T(optional=True), A=T(free=(0,)), B=T(), alpha=H(_NOT_A_NUMBER))
def _(rng, g):
    B_, D, E, F_ = sizes(rng)
    r = rng.choice((1, 2))
    return dict(x=randn(g, B_, D), weight=randn(g, E, D), bias=randn(g, E), A=randn(g, r, D),
                B=randn(g, E, r), alpha=rng.choice((1.0, 8.0)))


def _lora_model(rng, g):
    from genmodels.transformer.modules import MultiHeadAttention
    torch.manual_seed(rng.randrange(1000))
    return MultiHeadAttention(8, 2).double()


def _apply_lora(model, rank, alpha, targets):
    from genmodels.transfer import apply_lora
    names = apply_lora(model, rank, alpha, targets)
    x = torch.randn(2, 3, 8, dtype=F64)
    return names, model(x)


@case("genmodels.transfer.apply_lora", call=_apply_lora,
      model=O({"none": lambda kw, r: None, "function": lambda kw, r: _apply_lora}),
      rank=H(bad_int(1)), alpha=H(_NOT_A_NUMBER),
      targets=O({"no_match": lambda kw, r: ("nothing_here",), "str": lambda kw, r: 3,
                 "empty": lambda kw, r: ()}))
def _(rng, g):
    return dict(model=_lora_model(rng, g), rank=rng.choice((1, 2, 4)), alpha=rng.choice((1.0, 4.0)),
                targets=("w_q", "w_v"))


# ----------------------------------------------------------------------------- speech and video measures
def _conv_lstm_args():
    return {"x_t": T(), "h_prev": T(), "c_prev": T(),
            **{n: T() for n in ("W_f", "b_f", "W_i", "b_i", "W_C", "b_C", "W_o", "b_o")}}


@case("genmodels.video.conv_lstm_cell", **_conv_lstm_args())
def _(rng, g):
    B, D, E, F_ = sizes(rng)
    C, K, k = D - 2, D - 1, 3
    kw = dict(x_t=randn(g, B, C, E, F_), h_prev=randn(g, B, K, E, F_), c_prev=randn(g, B, K, E, F_))
    for gate in "fiCo":
        kw[f"W_{gate}"] = 0.3 * randn(g, K, K + C, k, k)
        kw[f"b_{gate}"] = 0.1 * randn(g, K)
    return kw


@case("genmodels.video.psnr", x=T(ndims=(3,)), y=T(ndims=(3,)), data_range=H(bad_positive()))
def _(rng, g):
    B, D, _, _ = sizes(rng)
    x = torch.rand(B, D, generator=g, dtype=F64)
    return dict(x=x, y=x + 0.1 * randn(g, B, D), data_range=1.0)


@case("genmodels.video.ssim", x=T(), y=T(), data_range=H(bad_positive()))
def _(rng, g):
    B, D, E, F_ = sizes(rng)
    x = torch.rand(B, D - 2, E + 6, F_ + 4, generator=g, dtype=F64)
    return dict(x=x, y=(x + 0.1 * randn(g, *x.shape)).clamp(0, 1), data_range=1.0)


_NOT_SEQUENCES = {"int": lambda kw, r: 3, "none": lambda kw, r: None, "bytes": lambda kw, r: b"ab",
                  "set": lambda kw, r: {1, 2}, "float": lambda kw, r: 0.5}


@case("genmodels.speech.edit_distance", hyp=O(_NOT_SEQUENCES), ref=O(_NOT_SEQUENCES))
def _(rng, g):
    return dict(hyp="".join(rng.choice("abc") for _ in range(rng.randrange(6))),
                ref="".join(rng.choice("abc") for _ in range(rng.randrange(6))))


@case("genmodels.speech.character_error_rate",
      hyps=O({"str": lambda kw, r: "abc", "ints": lambda kw, r: [1, 2], "none": lambda kw, r: None,
              "one_more": lambda kw, r: kw["hyps"] + ["x"]}),
      refs=O({"str": lambda kw, r: "abc", "empty_total": lambda kw, r: [""] * len(kw["hyps"]),
              "one_fewer": lambda kw, r: kw["refs"][:-1], "none": lambda kw, r: None}))
def _(rng, g):
    n = rng.randrange(1, 4)
    return dict(hyps=["".join(rng.choice("ab") for _ in range(rng.randrange(4))) for _ in range(n)],
                refs=["".join(rng.choice("ab") for _ in range(rng.randrange(1, 5))) for _ in range(n)])


@case("genmodels.speech.tts.length_regulator", h=T(free=(2,), empty=(2,)),
      durations=T(kind="int"))
def _(rng, g):
    B, D, E, _ = sizes(rng)
    durations = torch.randint(0, 4, (B, D), generator=g)
    durations[:, 0] = 1                                   # every sequence has a frame
    return dict(h=randn(g, B, D, E), durations=durations)


@case("genmodels.speech.alignment.dtw", cost=T(free=(0, 1)))
def _(rng, g):
    _, D, E, _ = sizes(rng)
    return dict(cost=randn(g, D, E).abs())


@case("genmodels.speech.alignment.dtw_mel_cepstral_distortion", c_est=T(free=(1,)), c_ref=T(free=(1,)))
def _(rng, g):
    _, D, E, F = sizes(rng)
    return dict(c_est=randn(g, D, E), c_ref=randn(g, D, F))


@case("genmodels.audio.griffinlim.griffin_lim",
      magnitude=T(ndims=(2, 4), free=(0, -1), empty=(0,),
                  bad={"negative": lambda x, r: _set(x, r, -1.0)}),
      n_fft=H(bad_int(2)), hop_length=H(st.one_of(bad_int(1), st.integers(33, 200))),
      n_iter=H(bad_int(1)), momentum=H(st.one_of(_floats(-1e6, -1e-9), _floats(10.001, 1e6),
                                                 st.sampled_from([NAN, "x", None]))),
      init=H(bad_choice()))
def _(rng, g):
    B, _, _, F = sizes(rng)
    return dict(magnitude=randn(g, B, 17, F).abs(), n_fft=32, hop_length=8, n_iter=3,
                momentum=rng.choice((0.0, 0.99)), init="zeros")


# ============================================================================== the harness
@contextlib.contextmanager
def _time_limit(seconds):
    """A call that runs longer than ``seconds`` is a hang (SIGALRM; main thread, POSIX)."""
    def on_alarm(signum, frame):
        raise TimeoutError(f"call did not return within {seconds} s")
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def _tensors(out):
    if isinstance(out, torch.Tensor):
        yield out
    elif isinstance(out, (tuple, list)):
        for o in out:
            yield from _tensors(o)
    elif isinstance(out, dict):
        for o in out.values():
            yield from _tensors(o)


def _assert_clean_output(out, what):
    for t in _tensors(out):
        if t.is_floating_point() and t.numel():
            assert bool(torch.isfinite(t).all()), f"{what}: returned a NaN/inf output silently"
    if isinstance(out, float):
        assert math.isfinite(out), f"{what}: returned {out} silently"


def _names(msg: str, arg: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(arg)}(?!\w)", msg) is not None


def _valid_kwargs(c: Case, seed: int) -> dict:
    rng = random.Random(seed)
    g = torch.Generator().manual_seed(seed)
    return c.make(rng, g)


def _call(c: Case, kwargs: dict):
    with _time_limit(CALL_TIMEOUT_S):
        return c.fn()(**kwargs)


def _draw_perturbation(data, c: Case, kwargs: dict):
    """(argument, label, bad value, expected outcome)."""
    arg = data.draw(st.sampled_from(sorted(c.args)), label="argument")
    rule, value = c.args[arg], kwargs.get(arg)
    rnd = random.Random(data.draw(st.integers(0, 2 ** 16), label="position"))
    if isinstance(rule, H):
        return arg, "hyper", data.draw(rule.bad, label="bad value"), RAISE
    if isinstance(rule, O):
        label = data.draw(st.sampled_from(sorted(rule.bad)), label="perturbation")
        return arg, label, rule.bad[label](kwargs, rnd), RAISE
    if isinstance(rule, C):
        options = callable_perturbations()
        label = data.draw(st.sampled_from(sorted(options)), label="perturbation")
        return arg, label, options[label](kwargs, rnd), RAISE
    options = perturbations(rule, value, c)
    label = data.draw(st.sampled_from(sorted(options)), label="perturbation")
    fn, expect = options[label]
    return arg, label, fn(value, rnd), expect


def _check_perturbed_call(c: Case, data):
    kwargs = _valid_kwargs(c, data.draw(st.integers(0, 10 ** 6), label="seed"))
    arg, label, bad, expect = _draw_perturbation(data, c, kwargs)
    kwargs[arg] = bad
    what = f"{c.name}({arg}: {label} = {_short(bad)})"
    COUNTS[c.name]["inputs"] += 1
    try:
        out = _call(c, kwargs)
    except (ValueError, TypeError) as e:
        # a shape that disagrees with another argument's may be reported under either name
        names = c.args if label.startswith("shape:") else [arg]
        assert any(_names(str(e), a) for a in names), \
            f"{what}: {type(e).__name__} does not name {arg!r}: {e}"
        if expect == NONFINITE:
            assert isinstance(e, NonFiniteError), f"{what}: expected NonFiniteError, got {e!r}"
        COUNTS[c.name]["raised"] += 1
        return
    except Exception as e:  # noqa: BLE001 - the point: any other error is a failure
        raise AssertionError(f"{what}: crashed with {type(e).__name__}: {e}") from e
    assert expect == EITHER, f"{what}: accepted the bad input and returned {_short(out)}"
    _assert_clean_output(out, what)
    COUNTS[c.name]["valid_variant"] += 1


def _short(v) -> str:
    if isinstance(v, torch.Tensor):
        return f"tensor{list(v.shape)} {v.dtype}"
    if isinstance(v, np.ndarray):
        return f"ndarray{list(v.shape)}"
    if isinstance(v, (tuple, list)):
        return f"{type(v).__name__}[{', '.join(_short(x) for x in v[:3])}{', ...' if len(v) > 3 else ''}]"
    return repr(v)[:60]


_SETTINGS = dict(deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                        HealthCheck.filter_too_much])


@pytest.fixture(scope="module", autouse=True)
def _write_counts(tmp_path_factory):
    """At the end of the module, write the per-function counts (and print a one-line summary)."""
    yield
    report = {name: dict(COUNTS[name]) for name in sorted(COUNTS)}
    path = write_counts_report(tmp_path_factory, "GENMODELS_FUZZ_REPORT", "fuzz_counts.json", report)
    total = sum(v.get("inputs", 0) for v in report.values())
    print(f"\nfuzzed {total} bad inputs over {len(report)} functions -> {path}")


def test_every_spec_function_has_a_fuzz_case():
    """Each function of docs/equations.md's tables is fuzzed (modules other than RNN/LSTM and the
    data helpers are left to their own test files)."""
    from conftest import REPO
    rows = {name for line in (REPO / "docs/equations.md").read_text().splitlines()
            if line.startswith("| ") and line.count("|") > 3
            for name in re.findall(r"`(genmodels\.[\w.]+)`", line.split("|")[2])}
    skipped = {"genmodels.metrics.get_yardstick", "genmodels.audio.synthesize_corpus",
               "genmodels.audio.load_wav_folder"}  # datasets: tests/test_bad_inputs.py
    wanted = {r for r in rows if r.rsplit(".", 1)[1][0].islower() and r not in skipped}
    wanted |= {"genmodels.rnn.RNN", "genmodels.rnn.LSTM", "genmodels.diffusion.NoiseSchedule"}
    missing = wanted - {name.split("[")[0] for name in CASES}
    assert not missing, f"no fuzz case for {sorted(missing)}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_valid_call_returns_finite_output(name):
    """The factory of each case is a valid call (else the perturbations would prove nothing)."""
    c = CASES[name]
    for seed in range(3):
        out = _call(c, _valid_kwargs(c, seed))
        _assert_clean_output(out, f"{name} (valid call, seed {seed})")


@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=DEFAULT_EXAMPLES, **_SETTINGS)
@given(data=st.data())
def test_bad_input_fails_clearly_and_names_the_argument(name, data):
    _check_perturbed_call(CASES[name], data)


# ============================================================================== empty batches
# A batch of zero items, given to every function of the table: each argument that carries the
# batch loses all of its items at once (a consistent empty call, unlike the per-argument
# ``shape:empty`` perturbation above). The outcome must be the one docs/equations.md documents
# in its "Empty batches" table: "empty" (outputs with a batch of 0 and nothing else), "raises
# `arg`" (a ValueError naming that argument), or "no batch" (the function has no batch axis).
class _ForcedBatch(random.Random):
    """A ``random.Random`` whose first draw of B (``choice((2, 3))``, see :func:`sizes`) is
    forced: two factories run with B = 2 and B = 3 and otherwise the same draws differ exactly in
    the batch axes."""

    def __init__(self, seed: int, batch: int):
        super().__init__(seed)
        self.batch, self.forced = batch, False

    def choice(self, seq):
        drawn = super().choice(seq)
        if not self.forced and tuple(seq) == (2, 3):
            self.forced = True
            return self.batch
        return drawn


def _emptied(a, b):
    """``a`` (a B = 2 value) with every axis that is 2 in ``a`` and 3 in ``b`` cut to 0 items;
    tensors, tuples of ints (a ``shape`` argument) and lists / tuples / dicts of them. Returns
    ``(value, whether anything was cut)``."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dim() == b.dim():
        axes = [i for i in range(a.dim()) if (a.shape[i], b.shape[i]) == (2, 3)]
        return (a.narrow(axes[0], 0, 0), True) if axes else (a, False)
    if isinstance(a, tuple) and isinstance(b, tuple) and len(a) == len(b) \
            and all(type(v) is int for v in a + b):
        cut = [0 if (x, y) == (2, 3) else x for x, y in zip(a, b)]
        return tuple(cut), tuple(cut) != a
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)) and len(a) == len(b):
        pairs = [_emptied(x, y) for x, y in zip(a, b)]
        return type(a)(v for v, _ in pairs), any(c for _, c in pairs)
    if isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        pairs = {k: _emptied(a[k], b[k]) for k in a}
        return {k: v for k, (v, _) in pairs.items()}, any(c for _, c in pairs.values())
    return a, False


def _empty_batch_call(c: Case) -> tuple[dict, list[str]]:
    """The valid call of ``c`` with a batch of zero items, and the arguments that were cut."""
    def make(batch):
        return c.make(_ForcedBatch(0, batch), torch.Generator().manual_seed(0))
    two, three = make(2), make(3)
    kwargs, cut = {}, []
    for k, v in two.items():
        kwargs[k], changed = _emptied(v, three.get(k))
        if changed:
            cut.append(k)
    return kwargs, cut


def empty_batch_outcome(name: str) -> str:
    """What ``CASES[name]`` does with a batch of zero items: "empty", "raises `arg`", "no batch"."""
    c = CASES[name]
    kwargs, cut = _empty_batch_call(c)
    if not cut:
        return "no batch"
    try:
        out = _call(c, kwargs)
    except ValueError as e:
        named = [a for a in cut if _names(str(e), a)]
        assert named, f"{name}: the ValueError for an empty batch names none of {cut}: {e}"
        return f"raises `{named[0]}`"
    except Exception as e:  # noqa: BLE001 - a RuntimeError from inside torch is the defect
        raise AssertionError(f"{name}: an empty batch crashed with {type(e).__name__}: {e}") from e
    tensors = list(_tensors(out))
    assert tensors and all(t.numel() == 0 for t in tensors), \
        f"{name}: an empty batch returned {_short(out)}, not empty outputs"
    return "empty"


def _documented_empty_batches() -> dict[str, str]:
    from conftest import REPO
    text = (REPO / "docs/equations.md").read_text().split("## Empty batches", 1)[1]
    rows = {}
    for line in text.splitlines():
        cells = [x.strip() for x in line.strip().strip("|").split("|")]
        if line.startswith("| `genmodels.") and len(cells) == 2:
            rows[cells[0].strip("`")] = cells[1]
    return rows


def test_every_function_has_a_documented_empty_batch_behaviour():
    documented = _documented_empty_batches()
    assert set(documented) == set(CASES), (
        f"docs/equations.md 'Empty batches' lacks {sorted(set(CASES) - set(documented))}, "
        f"lists unknown {sorted(set(documented) - set(CASES))}")


@pytest.mark.parametrize("name", sorted(CASES))
def test_empty_batch_gives_the_documented_outcome(name):
    """Issue 20: a zero-item batch never crashes inside torch; it returns empty outputs or raises
    ValueError naming the batch argument, as documented, for every function of the table."""
    assert empty_batch_outcome(name) == _documented_empty_batches().get(name)


def test_empty_batch_walk_cuts_the_batch_of_known_cases():
    """The walk finds the batch axes (else every function would be "no batch" and prove nothing):
    a hand-checked sample of cases and the axes it must cut."""
    cut = {n: _empty_batch_call(CASES[n])[1] for n in
           ("genmodels.vae.elbo", "genmodels.rl.gae", "genmodels.diffusion.ddpm_sample",
            "genmodels.transformer.multi_head_attention", "genmodels.metrics.sqrtm_psd")}
    assert cut["genmodels.vae.elbo"] == ["x", "logits", "mu", "logvar"]
    assert set(cut["genmodels.rl.gae"]) == {"rewards", "values", "dones", "last_value"}
    assert cut["genmodels.diffusion.ddpm_sample"] == ["shape"]
    assert set(cut["genmodels.transformer.multi_head_attention"]) >= {"query", "key", "value"}
    assert cut["genmodels.metrics.sqrtm_psd"] == []


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
@settings(max_examples=SLOW_EXAMPLES, **_SETTINGS)
@given(data=st.data())
def test_bad_input_fails_clearly_many_examples(name, data):
    _check_perturbed_call(CASES[name], data)
