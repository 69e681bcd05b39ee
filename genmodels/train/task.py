"""The interface between the generic :class:`~genmodels.train.trainer.Trainer` and a model family.

A family implements a :class:`Task`: it builds its model from the config, draws the global batch
of a step, takes one training step on the batch it is given (calling ``optimize(loss, group)``
for each optimiser step it makes, so a GAN can alternate discriminator and generator steps),
evaluates on a split, and draws its own figures. Everything generic — seeding, devices,
optimisers, LR schedules, clipping, logging, checkpoints, resume, NaN detection, data
parallelism — lives in the trainer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Protocol

import torch
from torch import nn

from genmodels.errors import ConfigError
from genmodels.train import dist

__all__ = ["Task", "Optimize", "batch_indices"]


class Optimize(Protocol):
    def __call__(self, loss: torch.Tensor, group: str = "model") -> None: ...


class Task:
    """Base class of a family's training code. Subclasses set ``self.model`` in ``__init__``.

    A training step is two calls: ``draw(step)``, the *global* batch (``trainer.batch_size``
    items, or ``batch_key``'s count), then ``training_step(step, batch, optimize)``. ``draw`` makes
    every random or per-item choice of the step — indices, windows, noise, masks, timesteps —
    exactly as one process would, and returns them as tensors with the batch dimension first.
    The trainer passes ``training_step`` this process's contiguous share of every tensor (all of
    it in one process; :func:`genmodels.train.dist.take_share`), so that N processes under
    torchrun see the batch and the noise of one. A task therefore never shards its batch nor
    knows the number of processes; what it splits itself at construction (PPO's environments)
    it splits with :meth:`share`. Randomness that ``training_step`` still draws (dropout, PPO's
    rollouts and minibatch shuffles) is drawn after ``draw``'s, in each process.
    """

    model: nn.Module
    #: the metric shown in the progress bar
    progress_metric: str = "loss"
    #: the config value that sets the size of ``draw``'s batch (named when it does not split
    #: evenly over the processes)
    batch_key: str = "trainer.batch_size"
    #: True when a training step may leave parameters of an optimiser group without gradient
    #: (DDP must then look for them; see genmodels.train.dist.wrap_group)
    ddp_find_unused_parameters: bool = False

    def __init__(self, cfg, data: Any, device: torch.device):
        self.cfg, self.data, self.device = cfg, data, device

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """One optimiser is made per group, all from ``trainer.optim``."""
        return {"model": [p for p in self.model.parameters() if p.requires_grad]}

    def draw(self, step: int) -> dict[str, torch.Tensor]:
        """The global batch of ``step``: tensors whose first dimension is the batch (none for a
        task that makes its own data, such as PPO's rollouts)."""
        return {}

    def training_step(self, step: int, batch: dict[str, torch.Tensor],
                      optimize: Optimize) -> dict[str, float]:
        """One step on ``batch``, this process's share of :meth:`draw`'s; returns the logs."""
        raise NotImplementedError

    def share(self, n: int, key: str) -> range:
        """This process's contiguous part of ``n`` items that the processes split among
        themselves (``range(n)`` in one process); ``key`` names the config value of ``n``."""
        return dist.share_range(n, key)

    def evaluate(self, split: str) -> dict[str, float]:
        """Metrics on ``split`` ("val" during training, "test" at the end)."""
        return {}

    def figures(self, out_dir: Path) -> list[Path]:
        """The family's own figures (sample grids, reconstructions, ...); returns the paths."""
        return []

    def state_dict(self) -> dict[str, Any]:
        """State beyond the model's parameters that a resume needs (optional)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pass


def batch_indices(n: int, batch_size: int, step: int, seed: int,
                  device: torch.device | str = "cpu", key: str = "trainer.batch_size"
                  ) -> torch.Tensor:
    """Indices of the minibatch used at ``step``: epochs of shuffled data, without replacement.

    A pure function of ``(n, batch_size, step, seed)``: the permutation of epoch e comes from a
    generator seeded with (seed, e), so a resumed run draws exactly the batches an uninterrupted
    one would, with no sampler state to save. A batch never straddles two epochs: the last
    ``n % batch_size`` items of each permutation are skipped that epoch. A batch larger than the
    data is a config error naming ``key`` (exit 2 from ``genmodels-train``); tasks that draw
    random windows or clips with replacement accept any batch size.
    """
    if batch_size > n:
        raise ConfigError(f"{key}: {batch_size} exceeds the {n} training items; use a batch of "
                          f"at most that many")
    per_epoch = n // batch_size
    epoch, pos = divmod(step, per_epoch)
    g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    perm = torch.randperm(n, generator=g)
    return perm[pos * batch_size:(pos + 1) * batch_size].to(device)
