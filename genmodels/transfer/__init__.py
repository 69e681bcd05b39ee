"""Transfer learning and elastic weight consolidation (section 2.2.2).

- ``finetune``: the target-task loss L_T (:func:`cross_entropy`) and the update θ' = θ − α∇L_T
  (:func:`sgd_update`).
- ``ewc``: the Fisher diagonal Ω (:func:`fisher_diagonal`) and the penalty R(θ)
  (:func:`ewc_penalty`).
- ``lora``: low-rank adaptation (beyond the chapter): :func:`lora_linear`, the wrapper
  :class:`LoRALinear`, the parametrization :class:`LoRAWeight` for raw ``x @ w`` matrices,
  :func:`apply_lora`, :func:`merge_lora` / :func:`unmerge_lora`.

The experiments ``ewc_split`` / ``ewc_permuted`` (``genmodels.transfer.task``) train task A, then
task B by plain fine-tuning, an L2 pull to the task-A weights, and EWC, on a
:class:`MultiHeadMLP`.
"""

from genmodels.transfer.ewc import ewc_penalty, fisher_diagonal
from genmodels.transfer.finetune import cross_entropy, sgd_update
from genmodels.transfer.lora import (LoRALinear, LoRAWeight, apply_lora, lora_linear,
                                     lora_parameters, merge_lora, unmerge_lora)
from genmodels.transfer.models import MultiHeadMLP

__all__ = ["cross_entropy", "sgd_update", "fisher_diagonal", "ewc_penalty", "MultiHeadMLP",
           "lora_linear", "LoRALinear", "LoRAWeight", "apply_lora", "merge_lora", "unmerge_lora",
           "lora_parameters"]
