r"""GAN objectives, eqs. 2.9–2.11 (Goodfellow et al., 2014).

The discriminator returns a *logit* ``l``; its probability is ``D = σ(l)``. Every log below is
computed from the logit with ``logsigmoid`` so that no value or gradient overflows, whatever the
logit (finite at ±200 and beyond):

    log D(x)          = log σ(l)  = logsigmoid(l)
    log(1 − D(G(z)))  = log σ(−l) = logsigmoid(−l)        (since 1 − σ(l) = σ(−l))

Shapes: ``real_logits`` is ``[B_real]`` and ``fake_logits`` is ``[B_fake]`` (the two batch sizes
may differ: the two expectations of 2.9 are estimated separately). Every objective is a 0-dim
tensor in the logits' dtype.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from genmodels._checks import check_same_dtype, check_tensor

__all__ = ["gan_value", "discriminator_loss", "generator_loss"]


def _check_logits(name: str, logits: torch.Tensor) -> torch.Tensor:
    check_tensor(name, logits, ndim=1)
    if logits.numel() == 0:
        raise ValueError(f"{name}: expected a non-empty batch, got shape {list(logits.shape)}")
    return logits


def gan_value(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    r"""Eq. 2.9, the minimax value  V(D, G) = E_x[log D(x)] + E_z[log(1 − D(G(z)))].

    Args:
        real_logits: ``[B_real]`` discriminator logits on data samples x.
        fake_logits: ``[B_fake]`` discriminator logits on generated samples G(z).

    Returns:
        0-dim tensor: mean log σ(real_logits) + mean log σ(−fake_logits). Always ≤ 0.
    """
    _check_logits("real_logits", real_logits)
    _check_logits("fake_logits", fake_logits)
    check_same_dtype(("real_logits", "fake_logits"), real_logits, fake_logits)
    # >>> exercise gan.value: eq. 2.9
    # what: the minimax value V(D, G) = mean log D(x) + mean log(1 − D(G(z)))
    # hint: D = σ(logit): log D = logsigmoid(l) and log(1 − D) = logsigmoid(−l); average each batch
    #   separately.
    # mistake: `F.logsigmoid(-fake_logits)    # log(1 − D(G(z)))` -> `F.logsigmoid(fake_logits)    # log(1 − D(G(z)))`
    log_d_real = F.logsigmoid(real_logits)               # log D(x)
    log_one_minus_d_fake = F.logsigmoid(-fake_logits)    # log(1 − D(G(z)))
    return log_d_real.mean() + log_one_minus_d_fake.mean()
    # <<< exercise gan.value


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    r"""Eq. 2.10 as a loss: −V(D, G), so that *descending* it is the discriminator's ascent step.

    Equals the binary cross-entropy with label 1 on real and 0 on fake samples, each averaged
    over its own batch and the two added. Shapes as :func:`gan_value`; returns a 0-dim tensor ≥ 0.
    """
    # >>> exercise gan.discriminator_loss: eq. 2.10
    # what: the discriminator's loss −V(D, G)
    # hint: the discriminator ASCENDS V; as a loss to descend, return −V.
    # mistake: `return -gan_value(real_logits, fake_logits)` -> `return gan_value(real_logits, fake_logits)`
    # uses: gan.value
    return -gan_value(real_logits, fake_logits)
    # <<< exercise gan.discriminator_loss


def generator_loss(fake_logits: torch.Tensor, saturating: bool = True) -> torch.Tensor:
    r"""Eq. 2.11, the generator's objective, to be MINIMISED by G.

    * ``saturating=True`` (as printed):  mean log(1 − D(G(z))) = mean logsigmoid(−l).
      Its gradient vanishes when D confidently rejects the fakes (l ≪ 0), early in training.
    * ``saturating=False`` (the "non-saturating" heuristic of the same paper):
      −mean log D(G(z)) = −mean logsigmoid(l), whose gradient is large exactly then.

    Args:
        fake_logits: ``[B]`` discriminator logits on generated samples.
        saturating: which of the two forms to return.

    Returns:
        0-dim tensor in the logits' dtype.
    """
    _check_logits("fake_logits", fake_logits)
    if not isinstance(saturating, bool):
        raise ValueError(f"saturating: expected a bool, got {type(saturating).__name__}")
    # >>> exercise gan.generator_loss: eq. 2.11
    # what: the generator's loss, saturating mean log(1 − D(G(z))) or non-saturating −mean log D(G(z))
    # hint: saturating: mean logsigmoid(−l); non-saturating: −mean logsigmoid(l).
    # mistake: `return -log_d_fake.mean()` -> `return log_d_fake.mean()`
    if saturating:
        log_one_minus_d_fake = F.logsigmoid(-fake_logits)   # log(1 − D(G(z)))
        return log_one_minus_d_fake.mean()
    log_d_fake = F.logsigmoid(fake_logits)                  # log D(G(z))
    return -log_d_fake.mean()
    # <<< exercise gan.generator_loss
