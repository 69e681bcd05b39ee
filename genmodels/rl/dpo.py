r"""Direct preference optimisation (DPO, Rafailov et al., 2023): RLHF without a reward model.

The KL-regularised RLHF objective max_π E[r(x, y)] − β KL(π ‖ π_ref) has the closed-form optimum
π*(y|x) ∝ π_ref(y|x) exp(r(x, y)/β), so a policy defines an *implicit reward*
r̂(x, y) = β log π(y|x)/π_ref(y|x) (up to a term in x alone). Putting r̂ into the Bradley–Terry
loss of eq. 2.2 cancels that term and trains the policy on the comparisons directly:

    L_DPO = −E log σ( β [ (log π(y_c|x) − log π_ref(y_c|x)) − (log π(y_r|x) − log π_ref(y_r|x)) ] )

Each log-probability is the sum over the completion's tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genmodels._checks import check_positive, check_same_dtype, check_same_shape, check_tensor

__all__ = ["dpo_loss"]

_NAMES = ("logp_chosen", "logp_rejected", "ref_logp_chosen", "ref_logp_rejected")


def dpo_loss(logp_chosen: torch.Tensor, logp_rejected: torch.Tensor,
             ref_logp_chosen: torch.Tensor, ref_logp_rejected: torch.Tensor,
             beta: float) -> torch.Tensor:
    r"""The DPO loss, −mean log σ(β·((log π_c − log π_ref,c) − (log π_r − log π_ref,r))).

    Args:
        logp_chosen, logp_rejected: ``[B]`` log π(y|x) of the preferred / the other completion
            under the policy being trained (sums over the completion's tokens).
        ref_logp_chosen, ref_logp_rejected: ``[B]`` the same under the frozen reference π_ref.
        beta: β > 0, the strength of the implicit KL penalty (small β: the policy may move far
            from π_ref). As β → 0 the loss tends to log 2 whatever the log-probabilities.
    Returns ``[]``; finite for any finite inputs (log-sigmoid, never log of a sigmoid). An empty
    batch is refused naming ``logp_chosen`` (the mean would be over nothing).
    """
    tensors = (logp_chosen, logp_rejected, ref_logp_chosen, ref_logp_rejected)
    for name, t in zip(_NAMES, tensors):
        check_tensor(name, t)
    check_same_shape(_NAMES, *tensors)
    check_same_dtype(_NAMES, *tensors)
    if logp_chosen.numel() == 0:
        raise ValueError("logp_chosen: cannot average over an empty batch")
    check_positive("beta", beta)
    # >>> exercise rl.dpo_loss: DPO
    # what: the DPO loss −mean log σ(β·(policy-vs-reference log-ratio of chosen − of rejected))
    # hint: each log-ratio is log π − log π_ref of the same completion; the chosen one's minus the
    #   rejected one's, times β, goes into −logsigmoid (as eq. 2.2 with r̂ = β log π/π_ref).
    # mistake: `(logp_chosen - ref_logp_chosen) - (logp_rejected - ref_logp_rejected)` -> `(logp_chosen - ref_logp_chosen) - (ref_logp_rejected - logp_rejected)`
    margin = (logp_chosen - ref_logp_chosen) - (logp_rejected - ref_logp_rejected)
    return -F.logsigmoid(beta * margin).mean()
    # <<< exercise rl.dpo_loss
