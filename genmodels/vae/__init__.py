"""Variational autoencoder: equations 2.5–2.8 (``losses``), vector quantisation (``vq``) and
networks (``models``)."""

from genmodels.vae.losses import (bernoulli_log_likelihood, elbo, gaussian_log_density,
                                  iwae_bound, kl_to_standard_normal, reparameterize)
from genmodels.vae.models import VAE, VQVAE, ConvVAE, MLPVAE
from genmodels.vae.vq import codebook_usage, vector_quantize

__all__ = ["gaussian_log_density", "reparameterize", "kl_to_standard_normal", "elbo",
           "bernoulli_log_likelihood", "iwae_bound", "vector_quantize", "codebook_usage",
           "VAE", "MLPVAE", "ConvVAE", "VQVAE"]
