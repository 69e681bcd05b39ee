"""Variational autoencoder: equations 2.5–2.8 (``losses``) and networks (``models``)."""

from genmodels.vae.losses import (bernoulli_log_likelihood, elbo, gaussian_log_density,
                                  iwae_bound, kl_to_standard_normal, reparameterize)
from genmodels.vae.models import VAE, ConvVAE, MLPVAE

__all__ = ["gaussian_log_density", "reparameterize", "kl_to_standard_normal", "elbo",
           "bernoulli_log_likelihood", "iwae_bound", "VAE", "MLPVAE", "ConvVAE"]
