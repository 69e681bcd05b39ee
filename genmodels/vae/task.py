"""Training and evaluation of a VAE with the generic trainer (see ``genmodels.train``)."""

from __future__ import annotations

from pathlib import Path

import torch

from genmodels.metrics import sample_quality
from genmodels.plotting import save_image_grid
from genmodels.train.task import Task, batch_indices
from genmodels.vae.models import ConvVAE, MLPVAE


class VAETask(Task):
    progress_metric = "loss"

    def __init__(self, cfg, data, device):
        super().__init__(cfg, data, device)
        m = cfg.model
        shape = data.image_shape
        if m.arch == "mlp":
            model = MLPVAE(shape, hidden=m.hidden, latent_dim=m.latent_dim, layers=m.layers)
        else:
            model = ConvVAE(shape, channels=m.channels, latent_dim=m.latent_dim, hidden=m.hidden)
        self.model = model.to(device)
        self.train_x = data.train.to(device)

    def draw(self, step):
        idx = batch_indices(len(self.train_x), self.cfg.trainer.batch_size, step, self.cfg.seed,
                            self.device)
        x = self.train_x[idx]
        eps = torch.randn((self.cfg.model.elbo_samples, len(x), self.cfg.model.latent_dim),
                          dtype=x.dtype, device=x.device)          # [L, B, d]
        return {"x": x, "eps": eps.transpose(0, 1)}                 # batch first: [B, L, d]

    def training_step(self, step, batch, optimize):
        x, eps = batch["x"], batch["eps"].transpose(0, 1)           # eps back to [L, B, d]
        elbo, _, mu, logvar = self.model(x, eps=eps)
        loss = -elbo.mean()                    # maximise the ELBO (2.7)
        optimize(loss)
        return {"loss": loss.item()}

    def evaluate(self, split):
        x, _ = self.data.split(split)
        x = x.to(self.device)
        out = {}
        elbos = []
        for chunk in x.split(1024):
            elbos.append(self.model(chunk)[0])
        out["elbo"] = torch.cat(elbos).mean().item()
        if split == "test":                   # the IWAE estimate is costlier: only at the end
            m = self.cfg.model
            x_iw = x if m.iwae_max_images is None else x[:m.iwae_max_images]
            ll = torch.cat([self.model.log_likelihood(c, k=m.iwae_k, chunk=m.eval_chunk)
                            for c in x_iw.split(256)])
            out["nll_iwae"] = -ll.mean().item()
            out["iwae_k"] = m.iwae_k
            out["iwae_images"] = len(x_iw)
            # the sample-quality yardstick shared by every image generator (genmodels.metrics);
            # no timings, so that a rerun or a resumed run repeats these numbers exactly
            out.update(sample_quality(self.data, split, self.model.sample, timing=False))
        return out

    def figures(self, out_dir: Path):
        m, shape = self.cfg.model, self.data.image_shape
        x, _ = self.data.split("test")
        x = x[:16].to(self.device)
        recon = torch.sigmoid(self.model.decode(self.model.encode(x)[0]))
        paths = [save_image_grid(torch.cat([x, recon]).cpu(), out_dir / "reconstructions.png",
                                 nrow=16, title="test images (top) and reconstructions σ(decoder(μ)) (bottom)")]
        paths.append(save_image_grid(self.model.sample(m.n_figure_samples).cpu(),
                                     out_dir / "samples.png", title="samples: σ(decoder(z)), z ~ N(0, I)"))
        # latent traversal: vary one latent dimension at a time from −3σ to +3σ around z = 0
        n_dims, steps = min(m.latent_dim, 8), 9
        vals = torch.linspace(-3, 3, steps, device=self.device)
        z = torch.zeros(n_dims, steps, m.latent_dim, device=self.device)
        for d in range(n_dims):
            z[d, :, d] = vals
        imgs = torch.sigmoid(self.model.decode(z.view(-1, m.latent_dim))).view(-1, *shape)
        paths.append(save_image_grid(imgs.cpu(), out_dir / "latent_traversal.png", nrow=steps,
                                     title="latent traversal: row d varies z_d from −3 to 3",
                                     row_labels=[f"z_{d}" for d in range(n_dims)]))
        return paths
