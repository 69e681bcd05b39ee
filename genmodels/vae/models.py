"""VAE networks: an MLP for small images (8×8 digits) and a small conv net for 28×28.

Both map ``x [B, C, H, W]`` to ``(mu, logvar)`` with :meth:`encode` and a latent ``z [..., d]``
to Bernoulli logits ``[..., C, H, W]`` with :meth:`decode`; the equations live in ``losses.py``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from genmodels.vae.losses import elbo, iwae_bound, reparameterize
from genmodels.vae.vq import vector_quantize

__all__ = ["VAE", "MLPVAE", "ConvVAE", "VQVAE"]


class VAE(nn.Module):
    """Shared wiring: encode → reparameterise (2.6) → decode → ELBO (2.7)."""

    latent_dim: int
    image_shape: tuple[int, int, int]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, n_samples: int = 1, eps: torch.Tensor | None = None):
        """Returns ``(elbo [B], logits [L, B, C, H, W], mu, logvar)``; ``eps [L, B, d]`` fixes
        the reparameterisation noise (drawn from N(0, I) when not given)."""
        mu, logvar = self.encode(x)
        if eps is None:
            eps = torch.randn((n_samples, *mu.shape), dtype=mu.dtype, device=mu.device)
        z = reparameterize(mu, logvar, eps)                       # [L, B, d]
        logits = self.decode(z)                                   # [L, B, C, H, W]
        return elbo(x, logits, mu, logvar), logits, mu, logvar

    @torch.no_grad()
    def log_likelihood(self, x: torch.Tensor, k: int = 500, chunk: int = 100) -> torch.Tensor:
        """IWAE estimate of log p(x) with ``k`` importance samples, ``[B]`` nats."""
        mu, logvar = self.encode(x)
        parts = []
        for start in range(0, k, chunk):
            kk = min(chunk, k - start)
            eps = torch.randn((kk, *mu.shape), dtype=mu.dtype, device=mu.device)
            z = reparameterize(mu, logvar, eps)                   # [kk, B, d]
            parts.append(iwae_bound(x, self.decode(z), z, mu, logvar) + math.log(kk))
        # combine the chunks: log (1/k) Σ_k w_k = logsumexp over chunks of log Σ_chunk w − log k
        return torch.logsumexp(torch.stack(parts), dim=0) - math.log(k)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw z ~ N(0, I) and return the decoder's mean image σ(logits), ``[n, C, H, W]``."""
        p = next(self.parameters())
        z = torch.randn((n, self.latent_dim), generator=generator, dtype=p.dtype, device=p.device)
        return torch.sigmoid(self.decode(z))


class MLPVAE(VAE):
    def __init__(self, image_shape=(1, 8, 8), hidden: int = 256, latent_dim: int = 8,
                 layers: int = 2):
        super().__init__()
        self.image_shape = tuple(image_shape)
        self.latent_dim = latent_dim
        n_in = math.prod(self.image_shape)

        def mlp(n_first):
            mods, width = [], n_first
            for _ in range(layers):
                mods += [nn.Linear(width, hidden), nn.SiLU()]
                width = hidden
            return nn.Sequential(*mods)

        self.encoder = mlp(n_in)
        self.to_stats = nn.Linear(hidden, 2 * latent_dim)
        self.decoder = nn.Sequential(mlp(latent_dim), nn.Linear(hidden, n_in))

    def encode(self, x):
        mu, logvar = self.to_stats(self.encoder(x.flatten(1))).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z):
        return self.decoder(z).view(*z.shape[:-1], *self.image_shape)


class ConvVAE(VAE):
    """Two stride-2 convolutions (28→14→7) down, two transposed convolutions up."""

    def __init__(self, image_shape=(1, 28, 28), channels: int = 32, latent_dim: int = 16,
                 hidden: int = 256):
        super().__init__()
        c, h, w = self.image_shape = tuple(image_shape)
        if h % 4 or w % 4:
            raise ValueError(f"image_shape: ConvVAE needs H and W divisible by 4, got {image_shape}")
        self.latent_dim = latent_dim
        self.feat = (2 * channels, h // 4, w // 4)
        n_feat = math.prod(self.feat)
        self.encoder = nn.Sequential(
            nn.Conv2d(c, channels, 4, 2, 1), nn.SiLU(),
            nn.Conv2d(channels, 2 * channels, 4, 2, 1), nn.SiLU(),
            nn.Flatten(), nn.Linear(n_feat, hidden), nn.SiLU(),
            nn.Linear(hidden, 2 * latent_dim))
        self.decoder_fc = nn.Sequential(nn.Linear(latent_dim, hidden), nn.SiLU(),
                                        nn.Linear(hidden, n_feat), nn.SiLU())
        self.decoder_conv = nn.Sequential(
            nn.ConvTranspose2d(2 * channels, channels, 4, 2, 1), nn.SiLU(),
            nn.ConvTranspose2d(channels, c, 4, 2, 1))

    def encode(self, x):
        mu, logvar = self.encoder(x).chunk(2, dim=-1)
        return mu, logvar

    def decode(self, z):
        lead = z.shape[:-1]
        h = self.decoder_fc(z.reshape(-1, self.latent_dim)).view(-1, *self.feat)   # (N, 2c, H/4, W/4)
        return self.decoder_conv(h).view(*lead, *self.image_shape)


class VQVAE(nn.Module):
    """VQ-VAE: a conv encoder to a grid of ``code_dim`` vectors (``downsample`` stride-2 steps:
    8×8 → 4×4 with one), each replaced by its nearest of ``num_codes`` codebook vectors by
    :func:`~genmodels.vae.vq.vector_quantize`, and a conv decoder to Bernoulli logits."""

    def __init__(self, image_shape=(1, 8, 8), channels: int = 64, code_dim: int = 16,
                 num_codes: int = 64, downsample: int = 1, beta: float = 0.25):
        super().__init__()
        c, h, w = self.image_shape = tuple(image_shape)
        if h % 2 ** downsample or w % 2 ** downsample:
            raise ValueError(f"image_shape: {downsample} stride-2 steps need H and W divisible by "
                             f"{2 ** downsample}, got {image_shape}")
        self.num_codes, self.beta = num_codes, beta
        down = [nn.Conv2d(c, channels, 3, 1, 1), nn.SiLU()]
        up = [nn.Conv2d(code_dim, channels, 3, 1, 1), nn.SiLU()]
        for _ in range(downsample):
            down += [nn.Conv2d(channels, channels, 4, 2, 1), nn.SiLU()]
            up += [nn.ConvTranspose2d(channels, channels, 4, 2, 1), nn.SiLU()]
        self.encoder = nn.Sequential(*down, nn.Conv2d(channels, code_dim, 1))
        self.decoder = nn.Sequential(*up, nn.Conv2d(channels, c, 3, 1, 1))
        self.codebook = nn.Parameter(torch.empty(num_codes, code_dim).uniform_(-1 / num_codes,
                                                                               1 / num_codes))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``z_e [B, h, w, code_dim]`` (channels last: one vector per latent position)."""
        return self.encoder(x).permute(0, 2, 3, 1)

    def decode(self, z_q: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, C, H, W]`` of a grid of (quantised) vectors ``[B, h, w, code_dim]``."""
        return self.decoder(z_q.permute(0, 3, 1, 2))

    @torch.no_grad()
    def init_codebook_from(self, x: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """Set the codes to encoder outputs of ``x`` at random positions (a data-dependent start:
        codes far from every encoder output are never chosen and never move)."""
        z = self.encode(x).reshape(-1, self.codebook.shape[1])
        pick = torch.randperm(len(z), generator=generator)[:self.num_codes]
        if len(pick) < self.num_codes:
            raise ValueError(f"x: {len(z)} latent vectors cannot seed {self.num_codes} codes")
        self.codebook.copy_(z[pick.to(z.device)])

    def forward(self, x: torch.Tensor):
        """``(logits [B, C, H, W], indices [B, h, w], vq_loss [])``."""
        z_q, indices, vq_loss = vector_quantize(self.encode(x), self.codebook, self.beta)
        return self.decode(z_q), indices, vq_loss

    @torch.no_grad()
    def decode_indices(self, indices: torch.Tensor) -> torch.Tensor:
        """Logits of a grid of code indices ``[B, h, w]`` (the discrete latent a prior models)."""
        return self.decode(self.codebook[indices])
