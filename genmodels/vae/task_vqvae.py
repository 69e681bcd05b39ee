"""Training and evaluation of a VQ-VAE with the generic trainer (see ``genmodels.train``).

Loss per batch: the reconstruction term (Bernoulli negative log-likelihood, the mean over pixels)
plus the VQ term of :func:`~genmodels.vae.vq.vector_quantize` (codebook + β · commitment).
Reported: reconstruction in nats per image and MSE per pixel, and the codebook's usage on the
split (perplexity of the chosen codes, dead codes). Without a prior over the code grid (a
PixelCNN or a Transformer over indices, not part of this task) a VQ-VAE is an autoencoder: it
reconstructs, it does not sample.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from genmodels.plotting import save_figure, save_image_grid
from genmodels.train.task import Task, batch_indices
from genmodels.vae.models import VQVAE
from genmodels.vae.vq import codebook_usage


class VQVAETask(Task):
    progress_metric = "loss"

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        m = cfg.model
        self.model = VQVAE(data.image_shape, channels=m.channels, code_dim=m.code_dim,
                           num_codes=m.num_codes, downsample=m.downsample, beta=m.beta).to(device)
        self.train_x = data.train.to(device)
        if m.codebook_init == "data":      # before training; a resumed run loads its codebook
            g = torch.Generator().manual_seed(cfg.seed)
            pick = torch.randperm(len(self.train_x), generator=g)[:256]
            self.model.init_codebook_from(self.train_x[pick.to(device)], generator=g)

    def draw(self, step):
        idx = batch_indices(len(self.train_x), self.cfg.trainer.batch_size, step, self.cfg.seed,
                            self.device)
        return {"x": self.train_x[idx]}

    def training_step(self, step, batch, optimize):
        x = batch["x"]
        logits, indices, vq_loss = self.model(x)
        recon = F.binary_cross_entropy_with_logits(logits, x)           # mean over pixels
        loss = recon + vq_loss
        optimize(loss)
        return {"loss": loss.item(), "recon": recon.item(), "vq": vq_loss.item()}

    @torch.no_grad()
    def _run(self, split):
        x, _ = self.data.split(split)
        x = x.to(self.device)
        nll, sq, codes = [], [], []
        for chunk in x.split(512):
            logits, idx, _ = self.model(chunk)
            nll.append(F.binary_cross_entropy_with_logits(logits, chunk, reduction="none")
                       .flatten(1).sum(1))
            sq.append((torch.sigmoid(logits) - chunk).pow(2).flatten(1).mean(1))
            codes.append(idx.reshape(-1))
        return x, torch.cat(nll), torch.cat(sq), torch.cat(codes)

    def evaluate(self, split):
        _, nll, sq, codes = self._run(split)
        perplexity, dead = codebook_usage(codes, self.cfg.model.num_codes)
        return {"recon_nats": nll.mean().item(), "mse": sq.mean().item(),
                "perplexity": perplexity, "dead_codes": dead}

    def figures(self, out_dir: Path):
        m = self.cfg.model
        x, _, _, codes = self._run("test")
        x = x[:m.n_figure_images]
        with torch.no_grad():
            recon = torch.sigmoid(self.model(x)[0])
        paths = [save_image_grid(torch.cat([x, recon]).cpu(), out_dir / "reconstructions.png",
                                 nrow=len(x), title="test images (top), VQ-VAE reconstructions "
                                                    "(bottom)")]
        import matplotlib.pyplot as plt

        counts = torch.bincount(codes.cpu(), minlength=m.num_codes)
        order = counts.argsort(descending=True)
        fig, ax = plt.subplots(figsize=(7, 3))
        ax.bar(range(m.num_codes), (counts[order] / counts.sum()).numpy(), width=1.0)
        perplexity, dead = codebook_usage(codes, m.num_codes)
        ax.set(xlabel="code (most used first)", ylabel="share of test latents",
               title=f"codebook usage on test: perplexity {perplexity:.1f} of K = {m.num_codes}, "
                     f"{dead} dead")
        paths.append(save_figure(fig, out_dir / "codebook_usage.png"))
        return paths
