r"""Training and evaluation of a GAN with the generic trainer: Goodfellow et al.'s Algorithm 1.

Each trainer step is ``d_steps`` (k) discriminator updates followed by one generator update:

* **D ascent (2.10)**: on a minibatch of data x and fresh noise z, descend
  :func:`~genmodels.gan.losses.discriminator_loss` = −V(D, G), i.e. ascend
  V = mean log D(x) + mean log(1 − D(G(z))); G(z) is computed without gradient, so only D moves.
* **G descent (2.11)**: on fresh noise z, descend :func:`~genmodels.gan.losses.generator_loss`
  — ``model.generator_loss=saturating`` is mean log(1 − D(G(z))) as printed, ``non_saturating``
  is −mean log D(G(z)). D's parameters are frozen (``requires_grad=False``) for this step, so only
  G moves.

The two parameter groups ``discriminator`` and ``generator`` get one optimiser each (made by the
trainer from ``trainer.optim``). Images are scaled from [0, 1] to [−1, 1] to match the tanh output.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from torch import nn

from genmodels.gan.losses import discriminator_loss, gan_value, generator_loss
from genmodels.gan.models import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator
from genmodels.metrics import sample_quality
from genmodels.plotting import save_figure, save_image_grid
from genmodels.train.task import Task, batch_indices
from genmodels.errors import ConfigError

__all__ = ["GAN", "GANTask"]


class GAN(nn.Module):
    """The generator and the discriminator under one module (one state_dict for checkpoints)."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module, image_shape):
        super().__init__()
        self.generator, self.discriminator = generator, discriminator
        self.image_shape = tuple(image_shape)
        self.z_dim = generator.z_dim

    def generate(self, z: torch.Tensor) -> torch.Tensor:
        """G(z) as images ``[B, C, H, W]`` in [−1, 1]."""
        return self.generator(z).view(z.shape[0], *self.image_shape)     # (B, C·H·W) -> (B, C, H, W)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` images in [0, 1]: (G(z) + 1)/2, z ~ N(0, I)."""
        p = next(self.parameters())
        z = torch.randn((n, self.z_dim), generator=generator, dtype=p.dtype, device=p.device)
        return (self.generate(z) + 1) / 2


def build_gan(m, image_shape) -> GAN:
    c, h, w = image_shape
    if m.arch == "mlp":
        g = MLPGenerator(m.z_dim, c * h * w, m.hidden)
        d = MLPDiscriminator(c * h * w, m.hidden)
    else:
        if h != w:
            raise ConfigError(f"model.arch: dcgan needs square images, got {h}×{w}")
        g = DCGANGenerator(m.z_dim, image_size=h, channels=c, width=m.width)
        d = DCGANDiscriminator(image_size=h, channels=c, width=m.width)
    return GAN(g, d, image_shape)


class GANTask(Task):
    progress_metric = "d_loss"

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        if not hasattr(data, "image_shape"):
            raise ConfigError(f"data: the GAN trains on images (digits, fashion_mnist), got {cfg.data.name!r}")
        self.model = build_gan(cfg.model, data.image_shape).to(device)
        self.train_x = (data.train * 2 - 1).to(device)                     # [0, 1] -> [−1, 1]
        self.saturating = cfg.model.generator_loss == "saturating"

    def param_groups(self):
        return {"discriminator": list(self.model.discriminator.parameters()),
                "generator": list(self.model.generator.parameters())}

    def _z(self, n: int) -> torch.Tensor:
        return torch.randn(n, self.model.z_dim, device=self.device)

    def draw(self, step):
        """Data ``x{j}`` and noise ``z{j}`` of the k discriminator steps, noise ``z_g`` of the
        generator step (drawn in the order the steps use them)."""
        bs, k = self.cfg.trainer.batch_size, self.cfg.model.d_steps
        batch = {}
        for j in range(k):
            idx = batch_indices(len(self.train_x), bs, step * k + j, self.cfg.seed, self.device)
            batch[f"x{j}"], batch[f"z{j}"] = self.train_x[idx], self._z(bs)
        batch["z_g"] = self._z(bs)
        return batch

    def training_step(self, step, batch, optimize):
        G, D = self.model.generator, self.model.discriminator
        k = self.cfg.model.d_steps
        # --- k discriminator steps: ascend V(D, G) (eq. 2.10) by descending −V
        for j in range(k):
            x = batch[f"x{j}"]
            with torch.no_grad():                       # G is fixed during D's step
                fake = self.model.generate(batch[f"z{j}"])
            real_logits, fake_logits = D(x), D(fake)
            d_loss = discriminator_loss(real_logits, fake_logits)
            optimize(d_loss, "discriminator")
        # --- one generator step: descend eq. 2.11 (or its non-saturating form); D is fixed
        D.requires_grad_(False)
        try:
            g_fake_logits = D(self.model.generate(batch["z_g"]))
            g_loss = generator_loss(g_fake_logits, saturating=self.saturating)
            optimize(g_loss, "generator")
        finally:
            D.requires_grad_(True)
        return {"d_loss": d_loss.item(), "g_loss": g_loss.item(),
                "d_real": torch.sigmoid(real_logits).mean().item(),   # mean D(x)
                "d_fake": torch.sigmoid(fake_logits).mean().item()}   # mean D(G(z)), before D's update

    def evaluate(self, split):
        x, _ = self.data.split(split)
        x = x.to(self.device)
        D = self.model.discriminator
        real_logits = torch.cat([D(c * 2 - 1) for c in x.split(1000)])
        fake_logits = torch.cat([D(self.model.generate(self._z(len(c)))) for c in x.split(1000)])
        out = {"value": gan_value(real_logits, fake_logits).item(),
               "d_real": torch.sigmoid(real_logits).mean().item(),
               "d_fake": torch.sigmoid(fake_logits).mean().item()}
        out.update(sample_quality(self.data, split, self.model.sample, self.cfg.model.fd_samples))
        return out

    def figures(self, out_dir: Path):
        loss = "saturating log(1 − D(G(z)))" if self.saturating else "non-saturating −log D(G(z))"
        paths = [save_image_grid(self.model.sample(self.cfg.model.n_figure_samples).cpu(),
                                 out_dir / "samples.png",
                                 title=f"GAN samples (G(z)+1)/2, z ~ N(0, I); generator loss: {loss}")]
        paths.append(plot_discriminator_probs(out_dir.parent / "metrics.jsonl", out_dir / "d_probs.png"))
        return [p for p in paths if p is not None]


def plot_discriminator_probs(metrics_path: Path, path: Path) -> Path | None:
    """Mean D(x) and D(G(z)) against step, from the training records of ``metrics.jsonl``."""
    if not metrics_path.exists():
        return None
    import matplotlib.pyplot as plt    # genmodels.plotting has already selected the Agg backend

    rows = [json.loads(line) for line in metrics_path.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if r.get("split") == "train" and "d_real" in r]
    if not rows:
        return None
    steps = [r["step"] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    ax.plot(steps, [r["d_real"] for r in rows], label="mean D(x), real")
    ax.plot(steps, [r["d_fake"] for r in rows], label="mean D(G(z)), fake")
    ax.axhline(0.5, color="gray", lw=0.8, ls="--", label="D = ½ (the equilibrium of 2.9)")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("step")
    ax.set_ylabel("discriminator probability")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    save_figure(fig, path, dpi=110)
    return path
