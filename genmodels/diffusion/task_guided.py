r"""A class-conditional DDPM trained for classifier-free guidance (Ho & Salimans, 2022).

* training step = Algorithm 1 (:func:`~genmodels.diffusion.ddpm.ddpm_loss`) on the noise network
  ε_θ(x_t, t, y): the batch's labels y are replaced by the null label ∅ (= the number of classes)
  with probability ``model.label_dropout``, drawn in :meth:`GuidedDiffusionTask.draw`, so one
  network learns ε_θ(x_t, t, y) and ε_θ(x_t, t, ∅);
* sampling = DDIM on ``model.sample_steps`` steps (or Algorithm 2 with ``model.sampler=ddpm``)
  with the guided ε̃ = ε_θ(·, ∅) + s (ε_θ(·, y) − ε_θ(·, ∅))
  (:func:`~genmodels.diffusion.guidance.classifier_free_guidance`), s = ``model.guidance_scale``;
  each step evaluates the network on the batch doubled (two evaluations per image per step).

The test evaluation draws class-balanced labels (image i asks for class i mod K) and reports,
besides the yardstick's FD, the **class accuracy**: the fraction of generated images that the
yardstick classifier assigns to the class asked for.
"""

from __future__ import annotations

from pathlib import Path

import torch

from genmodels.diffusion.ddpm import ddim_sample, ddpm_loss, ddpm_sample
from genmodels.diffusion.guidance import guided_eps_model
from genmodels.diffusion.models import UNet
from genmodels.diffusion.task import DiffusionModel, DiffusionTask
from genmodels.metrics import sample_quality
from genmodels.metrics.yardstick import get_yardstick
from genmodels.plotting import save_image_grid
from genmodels.train.task import batch_indices

__all__ = ["GuidedDiffusionTask", "balanced_labels"]


def balanced_labels(n: int, num_classes: int, device=None) -> torch.Tensor:
    """``[n]`` labels 0, 1, …, K−1, 0, 1, …: every class asked for ⌊n/K⌋ or ⌈n/K⌉ times."""
    return torch.arange(n, device=device) % num_classes


class GuidedDiffusionTask(DiffusionTask):

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        m = cfg.model
        if not hasattr(data, "num_classes"):
            raise ValueError(f"data: classifier-free guidance needs labelled images, got {cfg.data.name!r}")
        self.num_classes = int(data.num_classes)
        net = UNet(self.shape[0], m.base_channels, tuple(m.channel_mults), m.num_groups,
                   num_classes=self.num_classes)
        self.model = DiffusionModel(net, m.ema_decay).to(device)
        self.train_y = data.train_labels.to(device)

    # ------------------------------------------------------------------ training
    def draw(self, step):
        idx = batch_indices(len(self.train_x), self.cfg.trainer.batch_size, step, self.cfg.seed,
                            self.device)
        x0, y = self.train_x[idx], self.train_y[idx]
        t, noise = self.draw_t_noise(x0)
        drop = torch.rand(len(y), device=self.device) < self.cfg.model.label_dropout
        y = torch.where(drop, torch.full_like(y, self.num_classes), y)   # label dropout: y -> ∅
        return {"x0": x0, "y": y, "t": t, "noise": noise}

    def conditional_loss(self, net, x0, y, t=None, noise=None):
        """Algorithm 1 on ε_θ(·, ·, y): ``y`` may hold the null label."""
        return ddpm_loss(lambda x_t, tt: net(x_t, tt, y), x0, self.schedule, t=t, noise=noise)

    def training_step(self, step, batch, optimize):
        loss = self.conditional_loss(self.model.net, batch["x0"], batch["y"], batch["t"], batch["noise"])
        optimize(loss)
        self.model.update_ema(step)
        return {"loss": loss.item()}

    # ------------------------------------------------------------------ guided sampling
    def sample_raw(self, n: int, net=None, sampler: str | None = None, labels=None,
                   guidance_scale: float | None = None, steps: int | None = None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` guided samples in [−1, 1] space (unclipped) of the classes ``labels [n]``
        (default: class-balanced) at scale s (default ``model.guidance_scale``)."""
        m = self.cfg.model
        net = net or self.model.sampling_net
        labels = balanced_labels(n, self.num_classes, self.device) if labels is None else labels
        s = m.guidance_scale if guidance_scale is None else guidance_scale
        eps_model = guided_eps_model(net, labels.to(self.device), s, self.num_classes)
        shape = (n, *self.shape)
        if (sampler or m.sampler) == "ddpm":
            return ddpm_sample(eps_model, shape, self.schedule, generator)          # Algorithm 2
        return ddim_sample(eps_model, shape, self.schedule, steps or m.sample_steps, generator=generator)

    def sample(self, n: int, labels=None, guidance_scale: float | None = None) -> torch.Tensor:
        """Guided images in [0, 1]."""
        x = self.sample_raw(n, labels=labels, guidance_scale=guidance_scale)
        return (x.clamp(-1, 1) + 1) / 2

    def guided_quality(self, split: str, n: int, guidance_scale: float | None = None) -> dict:
        """The yardstick's FD, KID and class entropy of ``n`` class-balanced guided samples, and
        ``class_accuracy``: the fraction the yardstick classifier assigns to the class asked for."""
        asked, made = [], []

        def generate(k):                      # sample_quality asks for chunks in order
            labels = balanced_labels(sum(len(a) for a in asked) + k, self.num_classes, self.device)[-k:]
            images = self.sample(k, labels=labels, guidance_scale=guidance_scale)
            asked.append(labels.cpu())
            made.append(images.cpu())
            return images

        out = sample_quality(self.data, split, generate, n)
        predicted = get_yardstick(self.data).predict(torch.cat(made))
        out["class_accuracy"] = float((predicted == torch.cat(asked)).float().mean())
        return out

    def evaluate(self, split):
        x, y = self.data.split(split)
        x, y = x[:2000].to(self.device) * 2 - 1, y[:2000].to(self.device)
        net = self.model.sampling_net
        with torch.no_grad():
            out = {"loss": sum(self.conditional_loss(net, xc, yc).item() * len(xc)
                               for xc, yc in zip(x.split(500), y.split(500))) / len(x)}
            if split == "test" or self.cfg.model.val_fd:
                n = 1000 if self.cfg.model.fd_samples is None else self.cfg.model.fd_samples
                out.update(self.guided_quality(split, n))
        return out

    # ------------------------------------------------------------------ figures
    def figures(self, out_dir: Path):
        m = self.cfg.model
        per_class = 8
        labels = torch.arange(self.num_classes, device=self.device).repeat_interleave(per_class)
        paths = []
        for s in sorted({0.0, 1.0, float(m.guidance_scale)}):
            torch.manual_seed(0)              # the same starting noise for every scale
            with torch.no_grad():
                images = self.sample(len(labels), labels=labels, guidance_scale=s)
            name = f"samples_s{s:g}.png"
            paths.append(save_image_grid(images.cpu(), out_dir / name, nrow=per_class,
                                         title=f"guidance scale s = {s:g}: row k asks for class k"))
        return paths
