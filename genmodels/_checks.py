"""Input checks shared by every equation function.

Each check raises ``ValueError`` whose message starts with the argument's name, so a student who
passes a wrong shape learns *which* argument is wrong and what was expected. The checks are cheap
(metadata only) except :func:`check_finite`, which reads the values once.

They are on by default: in tests, exercises and interactive use every call is checked. In a
training loop the same calls repeat with the same shapes thousands of times, so the trainer checks
its first step and then turns them off (:func:`input_checks`), keeping its own NaN stop on the
loss and the gradient: the formula functions then cost what their arithmetic costs.
"""

from __future__ import annotations

import contextlib
from typing import Iterable, Iterator, Sequence

import torch

_ENABLED = True


def checks_enabled() -> bool:
    """Whether the input checks of the formula functions run (True unless switched off)."""
    return _ENABLED


@contextlib.contextmanager
def input_checks(enabled: bool) -> Iterator[None]:
    """Switch the input checks on or off inside a ``with`` block (restored on exit).

    With ``enabled=False`` every ``check_*`` helper returns at once, so a formula function does
    only its arithmetic; a wrong input then fails (or silently computes) as plain PyTorch would.
    """
    global _ENABLED
    before, _ENABLED = _ENABLED, bool(enabled)
    try:
        yield
    finally:
        _ENABLED = before

class NonFiniteError(ValueError):
    """An input holds NaN or ±inf. A ``ValueError``; the trainer turns it into a stop naming the step."""


#: the dtypes the equation functions compute in (SPEC: "float32 or float64"); half precision
#: would overflow exp(logvar), log-sums and schedules silently, so it is refused by name.
_FLOAT_DTYPES = (torch.float32, torch.float64)


def check_tensor(name: str, x, *, ndim: int | Sequence[int] | None = None,
                 min_ndim: int | None = None, floating: bool = True,
                 finite: bool = True) -> torch.Tensor:
    """Check that ``x`` is a tensor (float32/float64 by default, finite by default).

    ``ndim`` is an exact number of dimensions (or a collection of allowed ones); ``min_ndim`` a
    lower bound. Returns ``x`` unchanged so the call can be used inline.
    """
    if not _ENABLED:
        return x
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name}: expected a torch.Tensor, got {type(x).__name__}")
    if floating and x.dtype not in _FLOAT_DTYPES:
        raise ValueError(f"{name}: expected a float32 or float64 tensor, got dtype {x.dtype}")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.dim() not in allowed:
            want = " or ".join(str(a) for a in allowed)
            raise ValueError(f"{name}: expected {want} dimensions, got shape {tuple(x.shape)}")
    if min_ndim is not None and x.dim() < min_ndim:
        raise ValueError(f"{name}: expected at least {min_ndim} dimensions, got shape {tuple(x.shape)}")
    if finite:
        check_finite(name, x)
    return x


def check_finite(name: str, x: torch.Tensor) -> torch.Tensor:
    """Raise if ``x`` holds NaN or ±inf (which would silently poison the result)."""
    if _ENABLED and x.is_floating_point() and x.numel() > 0 and not bool(torch.isfinite(x.detach()).all()):
        n_bad = int((~torch.isfinite(x.detach())).sum())
        raise NonFiniteError(f"{name}: contains {n_bad} NaN/inf value(s)")
    return x


def check_same_shape(names: Sequence[str], *xs: torch.Tensor) -> None:
    """All tensors have one shape; the message lists every name with its shape."""
    if not _ENABLED:
        return
    shapes = [tuple(x.shape) for x in xs]
    if any(s != shapes[0] for s in shapes[1:]):
        listing = ", ".join(f"{n}{list(s)}" for n, s in zip(names, shapes))
        raise ValueError(f"{names[0]}: shapes must match, got {listing}")


def check_same_dtype(names: Sequence[str], *xs: torch.Tensor) -> None:
    if not _ENABLED:
        return
    dtypes = [x.dtype for x in xs]
    if any(d != dtypes[0] for d in dtypes[1:]):
        listing = ", ".join(f"{n}:{d}" for n, d in zip(names, dtypes))
        raise ValueError(f"{names[0]}: dtypes must match, got {listing}")


def check_shape(name: str, x: torch.Tensor, shape: Sequence[int | None]) -> None:
    """``shape`` may contain ``None`` for "any size" in that position."""
    if not _ENABLED:
        return
    ok = x.dim() == len(shape) and all(s is None or s == d for s, d in zip(shape, x.shape))
    if not ok:
        want = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise ValueError(f"{name}: expected shape {want}, got {list(x.shape)}")


def check_positive(name: str, value, *, allow_zero: bool = False) -> None:
    if not _ENABLED:
        return
    _check_number(name, value)
    if value < 0 or (value == 0 and not allow_zero):
        rel = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name}: must be {rel}, got {value}")


def check_range(name: str, value, low, high, *, low_open: bool = False,
                high_open: bool = False) -> None:
    """``low <= value <= high`` with optional open ends; brackets in the message say which."""
    if not _ENABLED:
        return
    _check_number(name, value)
    bad_low = value <= low if low_open else value < low
    bad_high = value >= high if high_open else value > high
    if bad_low or bad_high:
        interval = f"{'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
        raise ValueError(f"{name}: must lie in {interval}, got {value}")


def check_int(name: str, value, *, minimum: int | None = None) -> None:
    if not _ENABLED:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: expected an int, got {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name}: must be >= {minimum}, got {value}")


def check_choice(name: str, value, choices: Iterable) -> None:
    if not _ENABLED:
        return
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name}: must be one of {choices}, got {value!r}")


def _check_number(name: str, value) -> None:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"{name}: expected a number, got a tensor of shape {list(value.shape)}")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{name}: expected a number, got {type(value).__name__}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name}: must be finite, got {value}")


def check_shape_arg(name: str, shape) -> tuple[int, ...]:
    """A shape argument (a sampler's ``shape``): a non-empty tuple / list / ``torch.Size`` of ints
    >= 1; returned as a tuple."""
    if isinstance(shape, torch.Size):
        shape = tuple(shape)
    if not isinstance(shape, (tuple, list)) or len(shape) < 1:
        raise ValueError(f"{name}: expected a non-empty tuple of ints, got {shape!r}")
    for d in shape:
        check_int(name, d, minimum=1)
    return tuple(shape)


def check_callable(name: str, fn) -> None:
    """``fn`` can be called (an ``eps_model``, a ``score_model``, an ``nll_fn``, ...)."""
    if not _ENABLED:
        return
    if not callable(fn):
        raise ValueError(f"{name}: expected a callable, got {type(fn).__name__}")
