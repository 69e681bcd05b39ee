"""GAN, eqs. 2.9–2.11: the minimax value, the discriminator and generator losses (on logits),
and MLP / DCGAN networks whose discriminators return logits."""

from genmodels.gan.losses import discriminator_loss, gan_value, generator_loss
from genmodels.gan.models import DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator

__all__ = [
    "gan_value", "discriminator_loss", "generator_loss",
    "MLPGenerator", "MLPDiscriminator", "DCGANGenerator", "DCGANDiscriminator",
]
