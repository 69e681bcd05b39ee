"""VAE model schemas for the Hydra ``model`` group (configs/model/*_vae.yaml)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from genmodels.train.config import ModelConfig, choice, positive, register_model


@dataclass
class VAEConfig(ModelConfig):
    family: str = "vae"
    arch: str = "mlp"             # mlp | conv
    latent_dim: int = 8
    hidden: int = 256             # width of the fully connected layers
    layers: int = 2               # hidden layers per MLP (mlp only)
    channels: int = 32            # first conv layer's channels (conv only)
    elbo_samples: int = 1         # L in eq. 2.7: decoder samples per input during training
    iwae_k: int = 500             # importance samples for the test NLL estimate
    iwae_max_images: Optional[int] = None  # IWAE on the first N test images only (null: all)
    eval_chunk: int = 100         # importance samples per forward pass in evaluation
    n_figure_samples: int = 64    # images in the sample grid

    def problems(self):
        yield from choice(self, "arch", ("mlp", "conv"))
        for name in ("latent_dim", "hidden", "layers", "channels", "elbo_samples", "iwae_k",
                     "eval_chunk", "n_figure_samples", "iwae_max_images"):
            yield from positive(self, name)


register_model("vae_schema", VAEConfig, family="vae", task="genmodels.vae.task:VAETask")


@dataclass
class VQVAEConfig(ModelConfig):
    family: str = "vqvae"
    arch: str = "conv"
    channels: int = 64            # conv channels of the encoder and decoder
    code_dim: int = 16            # d: the length of each latent vector and code
    num_codes: int = 64           # K: codebook size
    downsample: int = 1           # stride-2 steps (8×8 → 4×4 latent grid with 1)
    beta: float = 0.25            # commitment weight β
    codebook_init: str = "uniform"  # uniform: U(−1/K, 1/K) | data: codes start at encoder outputs
    n_figure_images: int = 16     # test images in the reconstruction figure

    def problems(self):
        yield from choice(self, "arch", ("conv",))
        yield from choice(self, "codebook_init", ("uniform", "data"))
        for name in ("channels", "code_dim", "num_codes", "downsample", "n_figure_images"):
            yield from positive(self, name)
        yield from positive(self, "beta", allow_zero=True)


register_model("vqvae_schema", VQVAEConfig, family="vqvae",
               task="genmodels.vae.task_vqvae:VQVAETask")
