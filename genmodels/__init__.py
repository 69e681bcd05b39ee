"""genmodels: generative and sequence models from scratch in PyTorch.

One subpackage per model family (``vae``, ``gan``, ``diffusion``, ``rnn``, ``transformer``,
``rl``, ``transfer``, ``audio``); inside each, one module per equation set whose functions carry
the equation numbers of the methods chapter (see ``docs/equations.md``). ``genmodels.train``
holds the trainer and the Hydra entry point ``genmodels-train``; ``genmodels.data`` the datasets.
"""

import os as _os

# Intel MKL (PyTorch's CPU BLAS on x86) may pick a code path by the memory alignment of its
# operands, so two runs with the same seed can differ in the last bits on AVX-512 machines (and a
# resumed run no longer equals an uninterrupted one). Conditional Numerical Reproducibility in
# strict mode removes that; it is read at MKL's first call, so it must be set before any matrix
# product. A value the user set is kept.
_os.environ.setdefault("MKL_CBWR", "AUTO,STRICT")

__version__ = "0.1.0"
