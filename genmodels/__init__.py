"""genmodels: generative and sequence models from scratch in PyTorch.

One subpackage per model family (``vae``, ``gan``, ``diffusion``, ``rnn``, ``transformer``,
``rl``, ``transfer``, ``audio``); inside each, one module per equation set whose functions carry
the equation numbers of the methods chapter (see ``docs/equations.md``). ``genmodels.train``
holds the trainer and the Hydra entry point ``genmodels-train``; ``genmodels.data`` the datasets.
"""

__version__ = "0.1.0"
