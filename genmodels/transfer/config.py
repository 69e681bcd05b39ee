"""Schema of the transfer-learning family for the Hydra ``model`` group (configs/model/ewc_mlp.yaml).

One run of family ``ewc`` trains task A for ``steps_a`` trainer steps, then task B for the
remaining ``trainer.max_steps − steps_a`` steps three ways from the same task-A weights and the
same batches: plain fine-tuning, an L2 pull to the task-A weights, and EWC (section 2.2.2).
"""

from __future__ import annotations

from dataclasses import dataclass

from genmodels.train.config import ModelConfig, choice, positive, register_model


@dataclass
class EWCConfig(ModelConfig):
    family: str = "ewc"
    arch: str = "mlp"
    split: str = "classes"        # classes: A = digits 0–4, B = 5–9 (one head per task) | permuted: A = digits, B = the same digits with a fixed pixel permutation (one shared 10-way head)
    hidden: int = 256             # width of the shared trunk's hidden layers
    layers: int = 2               # hidden layers of the shared trunk
    steps_a: int = 500            # trainer steps on task A; the rest of trainer.max_steps are task B
    ewc_lambda: float = 1e6       # λ of EWC: L_B + λ Σ_i ½ Ω_i (θ_i − θ*_i)²
    l2_lambda: float = 0.1        # λ of the L2 baseline: L_B + λ Σ_i ½ (θ_i − θ*_i)² (Ω = 1)
    fisher_samples: int = 0       # task-A training samples for the Fisher (0: all of them)
    curve_every: int = 25         # record accuracy on A and B every N steps of task B (figure)
    permutation_seed: int = 7     # the fixed pixel permutation of task B (split=permuted)

    def problems(self):
        yield from choice(self, "arch", ("mlp",))
        yield from choice(self, "split", ("classes", "permuted"))
        for name in ("hidden", "layers", "steps_a", "curve_every"):
            yield from positive(self, name)
        for name in ("ewc_lambda", "l2_lambda", "fisher_samples", "permutation_seed"):
            yield from positive(self, name, allow_zero=True)

    def run_problems(self, cfg):
        if self.steps_a >= cfg.trainer.max_steps:
            yield "model.steps_a", (f"{self.steps_a} must be below trainer.max_steps "
                                    f"({cfg.trainer.max_steps}): the steps after it train task B")


register_model("ewc_schema", EWCConfig, family="ewc", task="genmodels.transfer.task:EWCTask")
