"""GAN model schemas for the Hydra ``model`` group (configs/model/mlp_gan.yaml, dcgan.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from genmodels.train.config import ModelConfig, choice, positive, register_model


@dataclass
class GANConfig(ModelConfig):
    family: str = "gan"
    arch: str = "mlp"             # mlp | dcgan
    z_dim: int = 64               # dimension of the noise z ~ N(0, I)
    hidden: int = 256             # width of the MLP layers (mlp only)
    width: int = 64               # DCGAN channels (dcgan only)
    generator_loss: str = "non_saturating"  # saturating: eq. 2.11 as printed; non_saturating: −log D(G(z))
    d_steps: int = 1              # k: discriminator ascent steps (2.10) per generator step (2.11)
    fd_samples: Optional[int] = None  # images generated for the yardstick (null: 1000), scored against the held-out split (≤ 2000 images)
    n_figure_samples: int = 64    # images in the sample grid

    def problems(self):
        yield from choice(self, "arch", ("mlp", "dcgan"))
        yield from choice(self, "generator_loss", ("saturating", "non_saturating"))
        for name in ("z_dim", "hidden", "width", "d_steps", "n_figure_samples"):
            yield from positive(self, name)
        if self.fd_samples is not None and self.fd_samples < 2:
            yield "fd_samples", f"must be >= 2 (a covariance needs two samples), got {self.fd_samples}"


register_model("gan_schema", GANConfig, family="gan", task="genmodels.gan.task:GANTask")
