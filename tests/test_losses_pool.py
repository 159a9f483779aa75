"""GAN losses, gradient penalty, the image pool and the objective's wiring."""

from __future__ import annotations

import random

import pytest
import torch

from cyclegan.config import Config, LossConfig, ModelConfig
from cyclegan.methods.cyclegan import CycleGAN
from cyclegan.losses import gan_loss, gradient_penalty
from cyclegan.pool import ImagePool


def test_gan_losses_against_their_formulas():
    p = torch.tensor([[-1.0, 0.5], [2.0, 0.0]])
    assert gan_loss(p, True, "lsgan") == pytest.approx(((p - 1) ** 2).mean().item())
    assert gan_loss(p, False, "lsgan") == pytest.approx((p**2).mean().item())
    assert gan_loss(p, True, "vanilla") == pytest.approx(torch.nn.functional.softplus(-p).mean().item())
    assert gan_loss(p, False, "vanilla") == pytest.approx(torch.nn.functional.softplus(p).mean().item())
    assert gan_loss(p, True, "wgangp") == pytest.approx(-p.mean().item())
    assert gan_loss(p, True, "hinge") == pytest.approx(torch.relu(1 - p).mean().item())
    assert gan_loss(p, False, "hinge") == pytest.approx(torch.relu(1 + p).mean().item())
    assert gan_loss(p, True, "hinge", for_discriminator=False) == pytest.approx(-p.mean().item())
    with pytest.raises(ValueError, match="lsgan"):
        gan_loss(p, True, "wasserstein")


def test_gradient_penalty_is_zero_for_a_unit_gradient_critic():
    # D(x) = sum(x * w) with |w| = 1 has gradient norm exactly 1 everywhere.
    w = torch.randn(1, 3, 4, 4)
    w /= w.norm()
    critic = lambda x: (x * w).flatten(1).sum(1)  # noqa: E731
    real, fake = torch.randn(2, 3, 4, 4), torch.randn(2, 3, 4, 4)
    assert gradient_penalty(critic, real, fake).item() == pytest.approx(0.0, abs=1e-8)
    assert gradient_penalty(lambda x: 3 * critic(x), real, fake, weight=1.0).item() == pytest.approx(4.0, rel=1e-5)


def test_pool_fills_then_swaps_half_the_time():
    pool = ImagePool(3, seed=0)
    images = [torch.full((1, 1, 2, 2), float(i)) for i in range(200)]
    for i in range(3):  # filling: returned as is
        assert torch.equal(pool.query(images[i]), images[i])
    swapped = 0
    for i in range(3, 200):
        out = pool.query(images[i])
        if not torch.equal(out, images[i]):
            swapped += 1
            assert out.flatten()[0].item() < i  # a stored, older image
        assert len(pool.images) == 3
    assert 0.4 < swapped / 197 < 0.6
    assert torch.equal(ImagePool(0).query(images[5]), images[5])  # size 0 disables the pool


def test_pool_matches_the_official_image_pool():
    """Replay of the official ImagePool.query on the same random stream (random.uniform(0, 1), then
    random.randint(0, size - 1) when > 0.5): while filling, store and return; once full, either return a
    stored image and store the new one in its place, or return the new image and keep the store."""
    size, seed = 3, 5
    pool, rng, stored = ImagePool(size, seed=seed), random.Random(seed), []
    swaps = 0
    for step in range(40):
        batch = torch.stack([torch.full((1, 2, 2), float(2 * step + j)) for j in range(2)])  # (2, 1, 2, 2)
        expected = []
        for image in batch:
            if len(stored) < size:
                stored.append(image)
                expected.append(image)
            elif rng.uniform(0, 1) > 0.5:
                i = rng.randint(0, size - 1)
                expected.append(stored[i])
                stored[i] = image
                swaps += 1
            else:
                expected.append(image)
        assert torch.equal(pool.query(batch), torch.stack(expected)), step
        assert torch.equal(torch.cat(pool.images), torch.stack(stored)), step
    assert 20 < swaps < 57  # both branches taken (77 draws)


def test_pool_state_round_trip_continues_identically():
    a, b = ImagePool(2, seed=1), ImagePool(2, seed=99)
    for i in range(5):
        a.query(torch.full((1, 1, 1, 1), float(i)))
    b.load_state_dict(a.state_dict())
    for i in range(5, 30):
        x = torch.full((2, 1, 1, 1), float(i))
        assert torch.equal(a.query(x), b.query(x))


@pytest.mark.parametrize("mode", ["lsgan", "vanilla", "wgangp", "hinge"])
@pytest.mark.parametrize("generator", ["resnet_6blocks", "unet_128"])
def test_objective_runs_for_every_loss_and_generator(mode, generator):
    torch.manual_seed(0)
    size = 128 if generator == "unet_128" else 32
    model = CycleGAN.from_config(Config(model=ModelConfig(generator=generator, ngf=4, ndf=4), loss=LossConfig(gan_mode=mode)))
    a, b = torch.rand(1, 3, size, size) * 2 - 1, torch.rand(1, 3, size, size) * 2 - 1
    t = model.translate(a, b)
    g = model.generator_losses(a, b, t)
    assert set(g) == {"g_ab", "g_ba", "cycle_a", "cycle_b", "idt_ab", "idt_ba", "total"}
    g["total"].backward()
    d = model.discriminator_losses(a, b, t.fake_a.detach(), t.fake_b.detach())
    assert torch.isfinite(d["total"]) and set(d) == {"d_a", "d_b", "total"}


def test_identity_loss_off_and_grayscale_domains():
    model = CycleGAN.from_config(Config(
        model=ModelConfig(generator="resnet_6blocks", ngf=4, ndf=4, channels_a=1, channels_b=3),
        loss=LossConfig(lambda_identity=0),
    ))
    a, b = torch.zeros(1, 1, 32, 32), torch.zeros(1, 3, 32, 32)
    t = model.translate(a, b)
    assert t.fake_b.shape == (1, 3, 32, 32) and t.fake_a.shape == (1, 1, 32, 32)
    assert "idt_ab" not in model.generator_losses(a, b, t)
