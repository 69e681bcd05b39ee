"""The shared input checks (``genmodels._checks``): every message starts with the argument's name
and says what was expected and what was given. The family tests reach these checks through the
equation functions; the cases here cover what no equation happens to pass (one-element tensors
as hyperparameters, ``None`` wildcards in a shape, bools where a number is expected)."""

import pytest
import torch

from genmodels._checks import (check_callable, check_choice, check_int, check_positive,
                               check_range, check_shape, check_tensor)


@pytest.mark.parametrize("call, message", [
    (lambda: check_positive("lr", torch.tensor([0.1, 0.2])),
     r"^lr: expected a number, got a tensor of shape \[2\]$"),
    (lambda: check_positive("lr", torch.tensor(-0.5)), r"^lr: must be > 0, got -0.5$"),
    (lambda: check_positive("lr", True), r"^lr: expected a number, got bool$"),
    (lambda: check_positive("lr", "0.1"), r"^lr: expected a number, got str$"),
    (lambda: check_positive("lr", float("nan")), r"^lr: must be finite, got nan$"),
    (lambda: check_range("gamma", None, 0.0, 1.0), r"^gamma: expected a number, got NoneType$"),
    (lambda: check_range("gamma", float("-inf"), 0.0, 1.0), r"^gamma: must be finite, got -inf$"),
    (lambda: check_int("T", 2.0), r"^T: expected an int, got float$"),
    (lambda: check_int("T", True), r"^T: expected an int, got bool$"),
    (lambda: check_choice("method", "fast", ("vmap", "loop")),
     r"^method: must be one of \('vmap', 'loop'\), got 'fast'$"),
    (lambda: check_shape("x", torch.zeros(2, 3), [None, 4]), r"^x: expected shape \[\*, 4\], got \[2, 3\]$"),
    (lambda: check_callable("eps_model", 3), r"^eps_model: expected a callable, got int$"),
    (lambda: check_tensor("x", [1.0, 2.0]), r"^x: expected a torch.Tensor, got list$"),
])
def test_messages(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_valid_values_pass():
    """A one-element tensor is a number; ``None`` in a shape matches any size; callables pass."""
    check_positive("lr", torch.tensor([0.5]))
    check_range("gamma", torch.tensor(1.0), 0.0, 1.0)
    check_shape("x", torch.zeros(2, 3), [None, 3])
    check_callable("fn", len)


def test_input_checks_switch_skips_every_check_and_restores():
    from genmodels._checks import checks_enabled, input_checks
    from genmodels.rnn import lstm_cell

    x, h, c = torch.zeros(2, 3), torch.zeros(2, 4), torch.zeros(2, 4)
    W, b = torch.zeros(4, 7), torch.zeros(4)
    with pytest.raises(ValueError, match="^x_t"):
        lstm_cell(x.float().double(), h, c, W, b, W, b, W, b, W, b)      # dtype mismatch
    nan_x = torch.full((2, 3), float("nan"))
    with pytest.raises(ValueError, match="NaN"):
        lstm_cell(nan_x, h, c, W, b, W, b, W, b, W, b)
    with input_checks(False):
        assert not checks_enabled()
        h_t, _ = lstm_cell(nan_x, h, c, W, b, W, b, W, b, W, b)          # computed, not refused
        assert torch.isnan(h_t).all()
        with pytest.raises(RuntimeError):                                 # plain torch's error
            lstm_cell(torch.zeros(2, 5), h, c, W, b, W, b, W, b, W, b)
        with input_checks(True):
            assert checks_enabled()
        assert not checks_enabled()
    assert checks_enabled()
    with pytest.raises(KeyError):
        with input_checks(False):
            raise KeyError("x")
    assert checks_enabled()                      # restored after an exception too
