"""GAN networks: shapes, logits out, gradients from the 2.11 loss through D into G."""

import pytest
import torch

from genmodels.gan import (DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator,
                           discriminator_loss, generator_loss)

pytestmark = pytest.mark.gan


def test_mlp_gan_shapes_and_range():
    torch.manual_seed(0)
    G, D = MLPGenerator(z_dim=16, data_dim=64, hidden=32), MLPDiscriminator(data_dim=64, hidden=32)
    x = G(torch.randn(5, 16))
    assert x.shape == (5, 64) and x.abs().max() <= 1
    assert D(x).shape == (5,)
    assert D(torch.randn(5, 1, 8, 8)).shape == (5,)          # images are flattened


@pytest.mark.parametrize("size", [8, 28])
def test_dcgan_shapes(size):
    torch.manual_seed(0)
    G, D = DCGANGenerator(z_dim=16, image_size=size, width=8), DCGANDiscriminator(image_size=size, width=8)
    x = G(torch.randn(4, 16))
    assert x.shape == (4, 1, size, size) and x.abs().max() <= 1
    assert D(x).shape == (4,)


@pytest.mark.parametrize("make", [
    lambda: (MLPGenerator(8, 64, 16), MLPDiscriminator(64, 16)),
    lambda: (DCGANGenerator(8, 8, width=8), DCGANDiscriminator(8, width=8)),
])
def test_gradients_flow_through_the_discriminator_into_the_generator(make):
    torch.manual_seed(0)
    G, D = make()
    fake = G(torch.randn(4, 8))
    fake_logits = D(fake)
    generator_loss(fake_logits, saturating=False).backward()
    for name, p in G.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    real_logits = D(torch.rand_like(fake) * 2 - 1)
    discriminator_loss(real_logits, fake_logits.detach()).backward()
    assert all(p.grad is not None for p in D.parameters())


def test_bad_configurations_and_inputs():
    with pytest.raises(ValueError, match="^image_size:"):
        DCGANGenerator(image_size=30)
    with pytest.raises(ValueError, match="^x:"):
        DCGANDiscriminator(image_size=8)(torch.randn(2, 1, 28, 28))
    with pytest.raises(ValueError, match="^z:"):
        MLPGenerator(z_dim=4)(torch.randn(4))
