r"""Training and evaluation of a flow-matching model with the generic trainer.

* training step = conditional flow matching (:func:`~genmodels.flow.matching.flow_matching_loss`):
  data x_1 from the batch, t ~ U[0, 1] and x_0 ~ N(0, I) drawn in :meth:`FlowTask.draw`, one
  gradient step on ‖v_θ((1 − t) x_0 + t x_1, t) − (x_1 − x_0)‖²;
* sampling = ``model.sample_steps`` Euler steps of dx/dt = v_θ(x, t) from t = 0 to 1
  (:func:`~genmodels.flow.matching.euler_flow_sample`), one network evaluation per step.

The velocity network is the diffusion family's U-Net (:class:`~genmodels.diffusion.UNet`) with
t ∈ [0, 1] multiplied by ``model.time_scale`` (1000) before its sinusoidal embedding, so the
embedding sees the same range of frequencies as DDPM's integer steps; the exponential moving
average of its weights (:class:`~genmodels.diffusion.task.DiffusionModel`) samples. Images are
scaled from [0, 1] to [−1, 1]; samples are clipped back to [−1, 1] and mapped to [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import torch

from genmodels.diffusion.models import UNet
from genmodels.diffusion.task import DiffusionModel
from genmodels.flow.matching import euler_flow_sample, flow_matching_draw, flow_matching_loss
from genmodels.metrics import sample_quality
from genmodels.plotting import save_image_grid
from genmodels.train.task import Task, batch_indices

__all__ = ["FlowTask"]


class FlowTask(Task):
    progress_metric = "loss"

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        m = cfg.model
        if not hasattr(data, "image_shape"):
            raise ValueError(f"data: flow matching trains the U-Net on images, got data {cfg.data.name!r}")
        self.shape = tuple(data.image_shape)
        net = UNet(self.shape[0], m.base_channels, tuple(m.channel_mults), m.num_groups, m.time_scale)
        self.model = DiffusionModel(net, m.ema_decay).to(device)
        self.train_x = (data.train * 2 - 1).to(device)                # [0, 1] -> [−1, 1]

    def param_groups(self):
        return {"model": list(self.model.net.parameters())}

    # ------------------------------------------------------------------ trainer interface
    def draw(self, step):
        idx = batch_indices(len(self.train_x), self.cfg.trainer.batch_size, step, self.cfg.seed,
                            self.device)
        x1 = self.train_x[idx]
        t, x0 = flow_matching_draw(x1)                                  # t ~ U[0, 1], x_0 ~ N(0, I)
        return {"x1": x1, "t": t, "x0": x0}

    def training_step(self, step, batch, optimize):
        loss = flow_matching_loss(self.model.net, batch["x1"], t=batch["t"], x0=batch["x0"])
        optimize(loss)
        self.model.update_ema(step)
        return {"loss": loss.item()}

    def sample_raw(self, n: int, steps: int | None = None, net=None,
                   generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples in [−1, 1] space (unclipped) from ``steps`` Euler steps (default
        ``model.sample_steps``) of the EMA network (or ``net``)."""
        net = net or self.model.sampling_net
        return euler_flow_sample(net, (n, *self.shape), steps or self.cfg.model.sample_steps,
                                 generator, device=self.device)

    def sample(self, n: int, steps: int | None = None) -> torch.Tensor:
        """Images in [0, 1]."""
        return (self.sample_raw(n, steps).clamp(-1, 1) + 1) / 2

    def evaluate(self, split):
        x, _ = self.data.split(split)
        x = x[:2000].to(self.device) * 2 - 1
        net = self.model.sampling_net
        with torch.no_grad():
            out = {"loss": sum(flow_matching_loss(net, c).item() * len(c) for c in x.split(500)) / len(x)}
        if split == "test" or self.cfg.model.val_fd:
            out.update(sample_quality(self.data, split, self.sample, self.cfg.model.fd_samples))
        return out

    # ------------------------------------------------------------------ figures
    def figures(self, out_dir: Path):
        m = self.cfg.model
        paths = [save_image_grid(self.sample(m.n_figure_samples).cpu(), out_dir / "samples.png",
                                 title=f"samples (Euler, {m.sample_steps} steps"
                                       f"{', EMA weights' if m.ema_decay else ''})")]
        net, states, times = self.model.sampling_net, [], []

        def recording(x, t):                                            # keep every state the net sees
            states.append(x.detach().clone())
            times.append(float(t[0]))
            return net(x, t)

        final = self.sample_raw(8, net=recording)
        keep = sorted({round(i * (len(states) - 1) / 8) for i in range(9)})
        frames = torch.stack([states[i] for i in keep] + [final])      # (frames, 8, C, H, W)
        labels = [f"{times[i]:.2f}" for i in keep] + ["1"]
        imgs = ((frames.clamp(-1, 1) + 1) / 2).transpose(0, 1).reshape(-1, *self.shape)
        paths.append(save_image_grid(imgs.cpu(), out_dir / "flow_chain.png", nrow=frames.shape[0],
                                     title="Euler path x_0 (noise) → x_1, one sample per row;\n"
                                           f"columns: t = {', '.join(labels)}"))
        return paths
