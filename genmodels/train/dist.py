"""Data-parallel training under ``torchrun``: the process group, DDP, and each rank's share.

    torchrun --nproc_per_node=2 -m genmodels.train.cli experiment=vae_digits

torchrun starts N copies of the trainer and sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in
each; :func:`init_from_env` joins them into a process group (gloo on CPU, NCCL on GPUs, one GPU
per process: ``cuda:LOCAL_RANK``). Without those variables everything here is a no-op and the
trainer runs as a single process.

How N processes reproduce one process:

* **the same random stream everywhere**: every rank is seeded with the same seed, and the
  trainer has the task draw the *global* batch (indices, noise, masks: ``trainer.batch_size`` of
  everything; :meth:`~genmodels.train.task.Task.draw`) exactly as a single process would, then
  hands the task its contiguous slice (:func:`take_share`). A step of N processes therefore sees
  the same global batch, the same noise, as a step of one process. Tasks never shard nor see N;
  what they split themselves (PPO's environments) they split with :func:`share_range`;
* **gradients averaged by DDP**: the loss of a rank is the mean over its 1/N of the batch; DDP's
  reducer all-reduces and averages the gradients in buckets during ``backward``, so every rank
  holds the gradient of the global-batch mean, and the identical optimiser steps keep the
  replicas identical.

Where N processes are not exactly one: randomness drawn inside a model's forward (dropout) comes
from each rank's copy of the common stream, so the ranks' dropout masks coincide instead of
continuing one another; BatchNorm normalises by each rank's share on CPU (on GPUs the trainer
converts it to ``SyncBatchNorm``); a loss that is a mean over a varying count (MLM's masked
positions) weights the ranks' items alike; PPO and RLHF-PPO ranks roll out their own share of
the environments / prompts (see those tasks).

Why the DDP module here is an identity on the loss (:class:`LossSync`): families compute their
losses by calling submodules directly (``model.discriminator(x)``, ``model.net(x, t)``,
``model.mlm_loss(...)``), which would bypass a DDP-wrapped model's ``forward``; and a GAN takes
several optimiser steps, over different parameter groups, per training step. DDP needs exactly
one thing from ``forward``: to be called once before each ``backward``, to arm its reducer and —
with ``find_unused_parameters`` — to find from the output which parameters the graph used. So
the trainer wraps each optimiser group's parameters in one DDP instance and passes each loss
through it just before ``backward``; the gradient all-reduce (bucketing, overlap with backward,
untouched ``.grad`` of parameters no rank used) is DDP's own. BatchNorm running statistics are
buffers, not parameters: each rank keeps its own, and rank 0's are saved and evaluated.

A process that fails (a NaN loss on its share, a bad config) exits with its error; torchrun then
stops the others, which would otherwise wait in the next all-reduce.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["DistContext", "env_world_size", "init_from_env", "rank", "world_size",
           "share_range", "take_share", "all_mean", "LossSync", "wrap_group", "mean_logs",
           "broadcast_object"]


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: ``rank`` of ``world_size``, and whether it made the group."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    owns_group: bool = False        # init_from_env created the process group (and destroys it)

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        """Wait for every rank (a no-op in one process)."""
        if self.distributed and dist.is_initialized():
            dist.barrier()

    def close(self) -> None:
        """Destroy the process group if :func:`init_from_env` created it."""
        if self.owns_group and dist.is_initialized():
            dist.destroy_process_group()


def env_world_size() -> int:
    """``WORLD_SIZE`` as torchrun sets it (1 when not launched by torchrun).

    Inside a submitit job of several tasks (``hydra/launcher=slurm`` with ``tasks_per_node`` or
    ``nodes`` above 1) the variables are first exported from SLURM's, by submitit's own helper,
    so that each task is one rank (one GPU per task: ``cuda:LOCAL_RANK``).
    """
    if "WORLD_SIZE" not in os.environ and "SUBMITIT_EXECUTOR" in os.environ:
        from submitit.helpers import TorchDistributedEnvironment

        env = TorchDistributedEnvironment()
        if env.world_size > 1:
            env.export(set_cuda_visible_devices=False)
    return int(os.environ.get("WORLD_SIZE", "1"))


def init_from_env(use_cuda: bool) -> DistContext:
    """Join the process group described by torchrun's ``RANK``/``WORLD_SIZE``/``LOCAL_RANK``.

    A single process (no ``WORLD_SIZE``, or 1) gets the default context and no group; a group that
    the caller already initialised is used as it is (and left to the caller to destroy).
    """
    if dist.is_available() and dist.is_initialized():
        return DistContext(dist.get_rank(), dist.get_world_size(),
                           int(os.environ.get("LOCAL_RANK", "0")))
    n = env_world_size()
    if n <= 1:
        return DistContext()
    local_rank = int(os.environ["LOCAL_RANK"])
    if use_cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, owns_group=True)


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def share_range(n: int, key: str = "trainer.batch_size") -> range:
    """This process's contiguous part of ``n`` items split over the processes: rank r of N takes
    items ``[r·n/N, (r+1)·n/N)`` (all of ``range(n)`` in a single process). ``key`` names the
    config value that sets ``n``, for the error when it does not split evenly."""
    size = world_size()
    if n % size:
        raise ValueError(f"{key}: a global batch of {n} does not split evenly over {size} "
                         f"processes; make it a multiple of {size}")
    k = n // size
    return range(rank() * k, (rank() + 1) * k)


def take_share(batch: dict[str, torch.Tensor],
               key: str = "trainer.batch_size") -> dict[str, torch.Tensor]:
    """This process's share of a global batch (:meth:`Task.draw <genmodels.train.task.Task.draw>`):
    the same contiguous rows (:func:`share_range`) of every tensor along dim 0, the batch
    dimension, which all tensors must share. In a single process the batch itself."""
    sizes = set()
    for name, x in batch.items():
        if not isinstance(x, torch.Tensor) or x.dim() == 0:
            raise TypeError(f"batch[{name!r}]: expected a tensor with the batch dimension first, "
                            f"got {type(x).__name__ if not isinstance(x, torch.Tensor) else 'a 0-dim tensor'}")
        sizes.add(x.shape[0])
    if len(sizes) > 1:
        raise ValueError(f"batch: every tensor must have the batch dimension first, got dim-0 "
                         f"sizes {({k: v.shape[0] for k, v in batch.items()})}")
    if not batch or world_size() == 1:
        return batch
    part = share_range(sizes.pop(), key)
    return {k: v[part.start:part.stop] for k, v in batch.items()}


def all_mean(x: torch.Tensor) -> torch.Tensor:
    """The mean of ``x`` over the ranks (``x`` itself in a single process); for decisions that
    every rank must take alike, such as PPO's early stop on the KL divergence."""
    if world_size() == 1:
        return x
    y = x.detach().clone()
    dist.all_reduce(y, op=dist.ReduceOp.SUM)
    return y / world_size()


def mean_logs(logs: dict[str, float]) -> dict[str, float]:
    """Each logged training value averaged over the ranks that report it.

    With equal shares, the mean of the ranks' batch means is the global-batch mean, so a logged
    loss equals the one-process value. (Counts that a rank keeps on its own, such as PPO's
    episodes, become per-rank averages.) Ranks may report different keys, hence the gather.
    """
    if world_size() == 1:
        return logs
    everyone: list[Any] = [None] * world_size()
    dist.all_gather_object(everyone, logs)
    keys = list(dict.fromkeys(k for d in everyone for k in d))
    return {k: sum(d[k] for d in everyone if k in d) / sum(k in d for d in everyone) for k in keys}


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (``obj`` itself in a single process)."""
    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


class LossSync(nn.Module):
    """Holds one optimiser group's parameters (the task's own tensors, not copies); its
    ``forward`` returns the loss unchanged. Wrapped in DDP, calling it on a loss arms DDP's
    gradient all-reduce for that loss's ``backward`` (see the module docstring)."""

    def __init__(self, params: list[nn.Parameter]):
        super().__init__()
        self.params = nn.ParameterList(params)

    def forward(self, loss: torch.Tensor) -> torch.Tensor:
        return loss


def wrap_group(params: list[nn.Parameter], device: torch.device,
               find_unused_parameters: bool = False) -> nn.parallel.DistributedDataParallel:
    """DDP over one optimiser group. Constructing it broadcasts rank 0's parameter values, so the
    replicas start identical. With ``find_unused_parameters`` (a task whose steps leave some
    parameters unused, such as EWC's other task head) DDP finds them from the loss's graph and
    leaves their ``.grad`` untouched, as one process does; it costs a graph traversal per step,
    hence off by default (DDP then stops with an error naming an unused parameter)."""
    module = LossSync([p for p in params if p.requires_grad])
    return nn.parallel.DistributedDataParallel(
        module, device_ids=[device.index] if device.type == "cuda" else None,
        find_unused_parameters=find_unused_parameters)
