import os

import pytest
import torch

# Tests run on 2-core CI machines: keep torch from oversubscribing.
torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture
def f64():
    """Run a test in float64 (formula checks to 1e-10), restoring the default afterwards."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield torch.float64
    torch.set_default_dtype(old)


@pytest.fixture
def gen():
    """A seeded CPU generator so random test inputs are the same on every run."""
    return torch.Generator().manual_seed(1234)
