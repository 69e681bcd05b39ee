"""Sequential training A → B with plain fine-tuning, an L2 pull, and EWC (section 2.2.2).

Three copies of one network (``self.model["finetune"]``, ``["l2"]``, ``["ewc"]``), each with its
own optimiser (the trainer makes one per parameter group), see exactly the same batches:

* steps ``0 … steps_a−1``: every copy minimises L_A, the cross-entropy of task A
  (:func:`~genmodels.transfer.finetune.cross_entropy`); the copies stay identical;
* at step ``steps_a`` the task-A weights θ* are frozen as the anchor and the diagonal Fisher Ω
  of task A is computed (:func:`~genmodels.transfer.ewc.fisher_diagonal`, per-sample gradients
  over the task-A training set);
* steps ``steps_a … max_steps−1``: the copies minimise
    finetune: L_B
    l2:       L_B + λ_L2 Σ_i ½ (θ_i − θ*_i)²          (Ω = 1, :func:`ewc_penalty`)
    ewc:      L_B + λ_EWC Σ_i ½ Ω_i (θ_i − θ*_i)²     (:func:`ewc_penalty`)

With ``ewc_lambda=0`` the ``ewc`` copy takes exactly the steps of ``finetune`` (same numbers).
Evaluation reports the accuracy on A and on B of every copy.

Splits of the embedded 8×8 digits (``data=digits``): ``classes`` — A is digits 0–4, B digits
5–9, one 5-way head per task (the task-incremental "split digits" benchmark; the head of A is
untouched by B, only the shared trunk can drift); ``permuted`` — A is the digits, B the same
digits under a fixed random pixel permutation, one shared 10-way head.
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from genmodels.train.task import Task, batch_indices
from genmodels.transfer.ewc import ewc_penalty, fisher_diagonal
from genmodels.transfer.finetune import cross_entropy
from genmodels.transfer.models import MultiHeadMLP
from genmodels.errors import ConfigError

__all__ = ["EWCTask", "make_tasks"]

METHODS = ("finetune", "l2", "ewc")


def make_tasks(data, split: str, permutation_seed: int = 7):
    """``{"A": {split: (x[N, D], y[N])}, "B": {...}}``, the head of each task, the head sizes."""
    tasks = {"A": {}, "B": {}}
    perm = None
    for name in ("train", "val", "test"):
        x, y = data.split(name)
        x = x.flatten(1)  # (N, 1, 8, 8) -> (N, 64)
        if split == "classes":
            a = y < 5
            tasks["A"][name] = (x[a], y[a])
            tasks["B"][name] = (x[~a], y[~a] - 5)
        else:
            if perm is None:
                g = torch.Generator().manual_seed(permutation_seed)
                perm = torch.randperm(x.shape[1], generator=g)
            tasks["A"][name] = (x, y)
            tasks["B"][name] = (x[:, perm], y)
    if split == "classes":
        return tasks, {"A": 0, "B": 1}, [5, 5]
    return tasks, {"A": 0, "B": 0}, [data.num_classes]


class EWCTask(Task):
    progress_metric = "loss"
    ddp_find_unused_parameters = True     # task A's steps leave task B's head unused, and back

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        m = cfg.model
        if not hasattr(data, "image_shape"):
            raise ConfigError(f"data: the ewc family needs an image dataset (data=digits or "
                              f"fashion_mnist), got {cfg.data.name!r}")
        self.tasks, self.head, head_sizes = make_tasks(data, m.split, m.permutation_seed)
        self.tasks = {k: {s: (x.to(device), y.to(device)) for s, (x, y) in v.items()}
                      for k, v in self.tasks.items()}
        in_dim = self.tasks["A"]["train"][0].shape[1]
        base = MultiHeadMLP(in_dim, m.hidden, m.layers, head_sizes)
        # three identical copies: the same initial weights for every method
        self.model = nn.ModuleDict({k: copy.deepcopy(base) for k in METHODS}).to(device)
        self.anchor: dict[str, torch.Tensor] | None = None
        self.fisher: dict[str, torch.Tensor] | None = None
        self.acc_before_b: dict[str, float] = {}
        self.curve: list[dict] = []

    def param_groups(self):
        return {k: list(self.model[k].parameters()) for k in METHODS}

    def _nll(self, task: str):
        head = self.head[task]
        return lambda net, x, y: F.cross_entropy(net(x, head), y, reduction="none")

    @torch.no_grad()
    def _accuracy(self, net, task: str, split: str) -> float:
        x, y = self.tasks[task][split]
        return (net(x, self.head[task]).argmax(-1) == y).float().mean().item()

    def _consolidate(self) -> None:
        """θ* and Ω of task A, from the (still identical) task-A network."""
        m = self.cfg.model
        net = self.model["ewc"]
        x, y = self.tasks["A"]["train"]
        if m.fisher_samples:
            x, y = x[:m.fisher_samples], y[:m.fisher_samples]
        batches = list(zip(x.split(256), y.split(256)))
        shared = self._shared_keys()
        self.fisher = {k: v for k, v in fisher_diagonal(net, batches, self._nll("A")).items()
                       if k in shared}
        self.anchor = {k: p.detach().clone() for k, p in net.named_parameters() if k in shared}
        self.acc_before_b = {f"acc_A_before_B_{s}": self._accuracy(net, "A", s)
                             for s in ("val", "test")}

    def _shared_keys(self) -> set[str]:
        """The parameters both tasks use, the only ones the penalties act on: the trunk, plus the
        head when it is shared. (A task's own head is left out: B never changes A's head, and a
        zero-gradient penalty term on it would still let Adam's momentum from task A move it.)"""
        heads = {f"heads.{self.head['A']}.", f"heads.{self.head['B']}."}
        shared_head = len(heads) == 1
        return {k for k, _ in self.model["ewc"].named_parameters()
                if shared_head or not any(k.startswith(h) for h in heads)}

    def _l2_weights(self) -> dict[str, torch.Tensor]:
        """Ω = 1 on every shared parameter: the L2 pull of the baseline."""
        return {k: torch.ones_like(v) for k, v in self.anchor.items()}

    def draw(self, step):
        """The batch of task A (steps before ``steps_a``) or of task B."""
        m, bs = self.cfg.model, self.cfg.trainer.batch_size
        if step < m.steps_a:
            x_all, y_all = self.tasks["A"]["train"]
            idx = batch_indices(len(x_all), bs, step, self.cfg.seed, self.device)
        else:
            x_all, y_all = self.tasks["B"]["train"]
            idx = batch_indices(len(x_all), bs, step - m.steps_a, self.cfg.seed + 1, self.device)
        return {"x": x_all[idx], "y": y_all[idx]}

    def training_step(self, step, batch, optimize):
        m = self.cfg.model
        x, y = batch["x"], batch["y"]
        if step < m.steps_a:
            for k in METHODS:
                loss = cross_entropy(self.model[k](x, self.head["A"]), y)  # L_A
                optimize(loss, k)
            return {"loss": loss.item(), "loss_A": loss.item()}

        if self.anchor is None:
            self._consolidate()
        logs = {}
        for k in METHODS:
            net = self.model[k]
            loss_B = cross_entropy(net(x, self.head["B"]), y)  # L_B
            if k == "l2":
                penalty = ewc_penalty(net, self.anchor, self._l2_weights(), lam=m.l2_lambda)
            elif k == "ewc":
                penalty = ewc_penalty(net, self.anchor, self.fisher, lam=m.ewc_lambda)
            else:
                penalty = torch.zeros((), device=self.device)
            loss = loss_B + penalty
            optimize(loss, k)
            logs[f"{k}_loss_B"] = loss_B.item()
            logs[f"{k}_penalty"] = penalty.item()
        logs["loss"] = logs["ewc_loss_B"]
        b_step = step + 1 - m.steps_a
        if b_step == 1 or b_step % m.curve_every == 0:
            row = {"b_step": b_step}
            for k in METHODS:
                row[f"{k}_acc_A"] = self._accuracy(self.model[k], "A", "val")
                row[f"{k}_acc_B"] = self._accuracy(self.model[k], "B", "val")
            self.curve.append(row)
        return logs

    def evaluate(self, split):
        out = {}
        for k in METHODS:
            out[f"{k}_acc_A"] = self._accuracy(self.model[k], "A", split)
            out[f"{k}_acc_B"] = self._accuracy(self.model[k], "B", split)
        if self.acc_before_b:
            out["acc_A_before_B"] = self.acc_before_b[f"acc_A_before_B_{split}"]
        return out

    def figures(self, out_dir: Path):
        from genmodels.plotting import plt, save_figure  # Agg backend, set once there

        m = self.cfg.model
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        if self.curve:
            fig, ax = plt.subplots(figsize=(7, 4))
            colors = {"finetune": "tab:red", "l2": "tab:orange", "ewc": "tab:blue"}
            steps = [r["b_step"] for r in self.curve]
            for k in METHODS:
                ax.plot(steps, [r[f"{k}_acc_A"] for r in self.curve], color=colors[k],
                        label=f"{k}: task A")
                ax.plot(steps, [r[f"{k}_acc_B"] for r in self.curve], color=colors[k], ls="--",
                        label=f"{k}: task B")
            ax.set_xlabel("steps of training on task B")
            ax.set_ylabel("validation accuracy")
            ax.set_title(f"forgetting of task A ({m.split}; λ_EWC={m.ewc_lambda:g}, "
                         f"λ_L2={m.l2_lambda:g})")
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8, ncol=3, loc="lower center")
            p = out_dir / "forgetting.png"
            save_figure(fig, p, dpi=110)
            paths.append(p)
        return paths

    def state_dict(self):
        return {"anchor": self.anchor, "fisher": self.fisher, "acc_before_b": self.acc_before_b,
                "curve": list(self.curve)}

    def load_state_dict(self, state):
        self.anchor, self.fisher = state["anchor"], state["fisher"]
        self.acc_before_b = dict(state["acc_before_b"])
        self.curve = list(state["curve"])
