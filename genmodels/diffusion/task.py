r"""Training and evaluation of diffusion models with the generic trainer.

``model.process=ddpm`` — Ho et al. (2020), index t ∈ {0, …, T−1} = the paper's step t+1:

* training step = **Algorithm 1**: x_0 from the data, t ~ U{0, …, T−1}, ε ~ N(0, I), one
  gradient step on ‖ε − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t)‖² (:func:`~genmodels.diffusion.ddpm.ddpm_loss`);
* sampling = **Algorithm 2** (:func:`~genmodels.diffusion.ddpm.ddpm_sample`, T network calls)
  or, for fast evaluation, deterministic DDIM on ``sample_steps`` of the T steps
  (:func:`~genmodels.diffusion.ddpm.ddim_sample`), chosen by ``model.sampler``.

``model.process=sde`` — the continuous path (Song et al., 2021), t ∈ [0, 1]:

* training = denoising score matching with weight σ(t)² (:func:`~genmodels.diffusion.sde.score_matching_loss`);
* sampling = Euler–Maruyama on the reverse SDE with ``sample_steps`` steps
  (:func:`~genmodels.diffusion.sde.euler_maruyama_sample`).

The network predicts noise in both cases; for the SDE the score is s_θ(x, t) = −net(x, t)/σ(t),
so that σ² ‖s_θ + ε/σ‖² = ‖ε − net‖²: the same regression as Algorithm 1, in continuous time.

An exponential moving average (EMA) of the weights (``model.ema_decay``) is kept beside the
trained network and used for evaluation and sampling; it is part of the model's state_dict, so
a resumed run continues it exactly. Images are scaled from [0, 1] to [−1, 1]; samples are
clipped back to [−1, 1] and mapped to [0, 1]. The 2-D toy data (``data=toy2d``) is used as is.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path

import torch
from torch import nn

from genmodels.diffusion.ddpm import ddim_sample, ddpm_draw, ddpm_loss, ddpm_sample, q_sample
from genmodels.diffusion.models import MLPDenoiser, UNet
from genmodels.diffusion.schedules import NoiseSchedule, cosine_beta_schedule, linear_beta_schedule
from genmodels.diffusion.sde import (euler_maruyama_sample, score_matching_draw,
                                     score_matching_loss, vp_sde_marginal)
from genmodels.metrics import frechet_distance_from_features, sample_quality
from genmodels.metrics.yardstick import class_coverage_entropy
from genmodels.plotting import save_figure, save_image_grid
from genmodels.train.task import Task, batch_indices
from genmodels.errors import ConfigError

__all__ = ["DiffusionModel", "DiffusionTask", "vp_sde_std"]


def vp_sde_std(t: torch.Tensor, beta_min: float, beta_max: float) -> torch.Tensor:
    """σ(t) of the VP-SDE marginal, ``[B]``: the std that :func:`vp_sde_marginal` returns."""
    zeros = torch.zeros(t.shape[0], 1, dtype=t.dtype, device=t.device)
    _, std = vp_sde_marginal(zeros, t, beta_min, beta_max, noise=zeros)   # (B, 1)
    return std.squeeze(1)


class DiffusionModel(nn.Module):
    """The noise network and (when ``ema_decay > 0``) its EMA copy, which never gets gradients."""

    def __init__(self, net: nn.Module, ema_decay: float):
        super().__init__()
        self.net = net
        self.ema_decay = ema_decay
        self.ema = copy.deepcopy(net).requires_grad_(False) if ema_decay > 0 else None

    @torch.no_grad()
    def update_ema(self, step: int) -> None:
        """θ_ema ← d θ_ema + (1 − d) θ, with d = min(decay, (1 + step)/(10 + step)) (a warm-up so
        the average does not remember the random initialisation for thousands of steps)."""
        if self.ema is None:
            return
        d = min(self.ema_decay, (1 + step) / (10 + step))
        for p_ema, p in zip(self.ema.parameters(), self.net.parameters()):
            p_ema.lerp_(p, 1 - d)
        for b_ema, b in zip(self.ema.buffers(), self.net.buffers()):
            b_ema.copy_(b)

    @property
    def sampling_net(self) -> nn.Module:
        return self.ema if self.ema is not None else self.net


class DiffusionTask(Task):
    progress_metric = "loss"

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        m = cfg.model
        self.is_image = hasattr(data, "image_shape")
        if self.is_image != (m.arch == "unet"):
            raise ConfigError(f"model.arch: {m.arch!r} does not fit data {cfg.data.name!r} "
                             f"(unet is for images, mlp for the 2-D toy data)")
        time_scale = 1000.0 if m.process == "sde" else 1.0     # SDE times in [0, 1] -> [0, 1000]
        if self.is_image:
            self.shape = tuple(data.image_shape)
            net = UNet(self.shape[0], m.base_channels, tuple(m.channel_mults), m.num_groups, time_scale)
            self.train_x = (data.train * 2 - 1).to(device)            # [0, 1] -> [−1, 1]
        else:
            self.shape = tuple(data.point_shape)
            net = MLPDenoiser(self.shape[0], m.hidden, m.time_dim, m.n_layers, time_scale)
            self.train_x = data.train.to(device)
        self.model = DiffusionModel(net, m.ema_decay).to(device)
        if m.process == "ddpm":
            betas = (linear_beta_schedule(m.timesteps, m.beta_start, m.beta_end) if m.schedule == "linear"
                     else cosine_beta_schedule(m.timesteps))
            self.schedule = NoiseSchedule(betas.to(device))

    def param_groups(self):
        return {"model": list(self.model.net.parameters())}

    # ------------------------------------------------------------------ the two processes
    def _score_fn(self, net):
        """s_θ(x, t) = −net(x, t)/σ(t): the network predicts the noise."""
        m = self.cfg.model

        def score(x, t):
            std = vp_sde_std(t, m.beta_min, m.beta_max)
            return -net(x, t) / std.view(-1, *([1] * (x.dim() - 1)))
        return score

    def loss(self, net, x0: torch.Tensor, t: torch.Tensor | None = None,
             noise: torch.Tensor | None = None) -> torch.Tensor:
        """The training loss; ``t`` and ``noise`` are drawn inside when not given."""
        m = self.cfg.model
        if m.process == "ddpm":
            return ddpm_loss(net, x0, self.schedule, t=t, noise=noise)  # Algorithm 1
        return score_matching_loss(self._score_fn(net), x0, m.beta_min, m.beta_max, t=t,
                                   noise=noise)

    def draw_t_noise(self, x0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """t and ε for a batch: the draws of :func:`ddpm_loss` / :func:`score_matching_loss`."""
        if self.cfg.model.process == "ddpm":
            return ddpm_draw(x0, self.schedule)
        return score_matching_draw(x0)

    def sample_raw(self, n: int, net=None, sampler: str | None = None) -> torch.Tensor:
        """``n`` samples in the model's space ([−1, 1] images, unclipped; raw 2-D points)."""
        m = self.cfg.model
        net = net or self.model.sampling_net
        shape = (n, *self.shape)
        if m.process == "sde":
            return euler_maruyama_sample(self._score_fn(net), shape, m.sample_steps, m.beta_min,
                                         m.beta_max, device=self.device)
        if (sampler or m.sampler) == "ddpm":
            return ddpm_sample(net, shape, self.schedule)              # Algorithm 2
        return ddim_sample(net, shape, self.schedule, m.sample_steps, clip_x0=m.clip_x0)

    def sample(self, n: int) -> torch.Tensor:
        """Images in [0, 1] (or raw points for the toy data)."""
        x = self.sample_raw(n)
        return (x.clamp(-1, 1) + 1) / 2 if self.is_image else x

    # ------------------------------------------------------------------ trainer interface
    def draw(self, step):
        idx = batch_indices(len(self.train_x), self.cfg.trainer.batch_size, step, self.cfg.seed,
                            self.device)
        x0 = self.train_x[idx]
        t, noise = self.draw_t_noise(x0)
        return {"x0": x0, "t": t, "noise": noise}

    def training_step(self, step, batch, optimize):
        loss = self.loss(self.model.net, batch["x0"], batch["t"], batch["noise"])
        optimize(loss)
        self.model.update_ema(step)
        return {"loss": loss.item()}

    def evaluate(self, split):
        x, _ = self.data.split(split)
        x = x[:2000].to(self.device)
        x = x * 2 - 1 if self.is_image else x
        net = self.model.sampling_net
        out = {"loss": sum(self.loss(net, c).item() * len(c) for c in x.split(500)) / len(x)}
        if split == "test" or self.cfg.model.val_fd:
            if self.is_image:
                out.update(sample_quality(self.data, split, self.sample, self.cfg.model.fd_samples))
            else:
                out.update(self._toy_quality(split))
        return out

    def _toy_quality(self, split):
        real, _ = self.data.split(split)
        n = len(real) if self.cfg.model.fd_samples is None else min(self.cfg.model.fd_samples, len(real))
        t0, c0 = time.perf_counter(), time.process_time()
        fake = self.sample(n).cpu()
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - c0
        modes, dist = self.data.nearest_mode(fake)
        return {"fd": float(frechet_distance_from_features(fake, real[:n])),   # FD on raw coordinates
                "class_entropy": class_coverage_entropy(modes, self.data.num_classes),
                "off_mode": float((dist > 4 * self.data.std).float().mean()),
                "fd_samples": n, "sample_s_per_image": seconds / n,
                "sample_cpu_s_per_image": cpu_seconds / n}

    # ------------------------------------------------------------------ figures
    def _chain(self, n: int, frames: int = 10):
        """Run the sampler on ``n`` samples, recording the state the network sees at ``frames``
        evenly spaced calls, plus the result: ``(states [frames+1, n, ...], labels)``."""
        m = self.cfg.model
        net = self.model.sampling_net
        calls = {"sde": m.sample_steps, "ddpm": m.timesteps}[m.process]
        sampler = "ddpm" if m.process == "ddpm" else None               # the chain of Algorithm 2
        keep = {round(i * (calls - 1) / (frames - 1)) for i in range(frames)}
        states, labels, counter = [], [], [0]

        def recording(x, t):
            if counter[0] in keep:
                states.append(x.detach().clone())
                labels.append(f"{t[0].item():.2f}" if t.is_floating_point() else f"{t[0].item() + 1}")
            counter[0] += 1
            return net(x, t)

        final = self.sample_raw(n, net=recording, sampler=sampler)
        states.append(final)
        labels.append("x_0")
        return torch.stack(states), labels

    def figures(self, out_dir: Path):
        if not self.is_image:
            return [self._toy_figure(out_dir)]
        m = self.cfg.model
        name = ("DDPM, Algorithm 2" if m.sampler == "ddpm" else f"DDIM, {m.sample_steps} steps") \
            if m.process == "ddpm" else f"VP-SDE, Euler–Maruyama, {m.sample_steps} steps"
        paths = [save_image_grid(self.sample(m.n_figure_samples).cpu(), out_dir / "samples.png",
                                 title=f"samples ({name}, EMA weights)" if m.ema_decay else f"samples ({name})")]
        chain, labels = self._chain(8)                                  # (frames, 8, C, H, W)
        imgs = (chain.clamp(-1, 1) + 1) / 2
        imgs = imgs.transpose(0, 1).reshape(-1, *self.shape)            # row = one sample's chain
        what = "Algorithm 2" if m.process == "ddpm" else "reverse SDE"
        paths.append(save_image_grid(imgs.cpu(), out_dir / "denoising_chain.png", nrow=chain.shape[0],
                                     title=f"denoising chain x_T → x_0 ({what}), one sample per row;\n"
                                           f"columns: t = {', '.join(labels)}"))
        return paths

    def _toy_figure(self, out_dir: Path) -> Path:
        import matplotlib.pyplot as plt

        m = self.cfg.model
        data = self.data.test[:2000]
        fig, axes = plt.subplots(1, 5, figsize=(17, 3.6))
        lim = 3.2

        def scatter(ax, pts, title, color="C0"):
            pts = pts.cpu()
            ax.scatter(pts[:, 0], pts[:, 1], s=2, alpha=0.4, color=color)
            ax.set_title(title, fontsize=9)
            ax.set_xlim(-lim, lim)
            ax.set_ylim(-lim, lim)
            ax.set_aspect("equal")

        scatter(axes[0], data, "data x_0 (8 Gaussians)")
        x0 = data.to(self.device)
        if m.process == "ddpm":
            T = m.timesteps
            for ax, frac in zip(axes[1:4], (0.1, 0.3, 1.0)):
                step = max(0, round(frac * T) - 1)
                t = torch.full((len(x0),), step, dtype=torch.long, device=self.device)
                scatter(ax, q_sample(x0, t, self.schedule), f"noising q(x_t | x_0), t = {step + 1}/{T}", "C1")
        else:
            for ax, tt in zip(axes[1:4], (0.1, 0.3, 1.0)):
                t = torch.full((len(x0),), tt, device=self.device)
                scatter(ax, vp_sde_marginal(x0, t, m.beta_min, m.beta_max)[0], f"noising x_t, t = {tt}", "C1")
        chain, _ = self._chain(300, frames=40)                          # (41, 300, 2)
        chain = chain.cpu()
        ax = axes[4]
        ax.scatter(data[:, 0], data[:, 1], s=1, alpha=0.15, color="gray")
        for i in range(16):                                             # 16 trajectories drawn as lines
            ax.plot(chain[:, i, 0], chain[:, i, 1], lw=0.7, alpha=0.8)
        ax.scatter(chain[0, :, 0], chain[0, :, 1], s=3, color="C1", label="x_T")
        ax.scatter(chain[-1, :, 0], chain[-1, :, 1], s=3, color="C3", label="x_0 (samples)")
        ax.set_xlim(-lim, lim)
        ax.set_ylim(-lim, lim)
        ax.set_aspect("equal")
        ax.legend(fontsize=7, loc="upper right")
        ax.set_title("reverse trajectories x_T → x_0", fontsize=9)
        path = out_dir / "toy2d_diffusion.png"
        save_figure(fig, path, dpi=110)
        return path
