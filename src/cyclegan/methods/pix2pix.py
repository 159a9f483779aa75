"""pix2pix (Isola et al., CVPR 2017): a conditional GAN trained on *paired* images, the upper bound
of the CycleGAN paper's comparisons (Sec. 5.1.3, Tables 1-3).

Names: `g_ab` is G: A -> B (official netG); `d_b` (official netD) is a conditional PatchGAN that
judges an (a, b) pair stacked along the channels: real (a, b) against (a, G(a)).

    L_G = lambda_gan GAN(D(a, G(a)), real) + lambda_l1 |G(a) - b|_1   (lambda_gan = 1; 0: L1 alone)
    L_D = 0.5 [GAN(D(a, b), real) + GAN(D(a, G(a)), fake)]

With `data.direction=BtoA` (the official `--direction BtoA`, e.g. facades labels -> photo) the roles
swap: `g_ab` (the checkpoint name stays) maps b to a, and `d_b` judges (b, a) pairs against (b, G(b));
the translation is `fake_a` and the method translates BtoA.

As in the official `pix2pix_model.py`, the discriminator steps first and there is no image pool.
The paper's settings (the `pix2pix` preset): U-Net 256, batch norm, dropout, vanilla GAN, lambda_l1 = 100.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..config import Config
from ..losses import gan_loss
from ..nn import init_weights, with_channels
from .base import (
    GeneratorOutputs, Method, discriminator_from_config, generator_from_config, write_official_generators,
)
from .registry import register_method


@register_method("pix2pix")
class Pix2Pix(Method):
    """Holds g_ab and the conditional discriminator d_b; computes their losses."""

    one_way = True  # learns data.direction
    discriminator_first = True  # the official order: update D, then G against the updated D
    uses_pool = False
    paired = True
    gan_modes = ("lsgan", "vanilla", "hinge")

    def __init__(self, cfg: Config, g_ab: nn.Module, d_b: nn.Module) -> None:
        super().__init__(cfg)
        self.g_ab, self.d_b = g_ab, d_b
        self.loss_cfg = cfg.loss

    @classmethod
    def from_config(cls, cfg: Config) -> Pix2Pix:
        model = cfg.model
        ca, cb = model.channels_a, model.channels_b
        if cfg.data.direction == "BtoA":
            ca, cb = cb, ca  # the generator's input and output channels
        nets = [generator_from_config(cfg, ca, cb), discriminator_from_config(cfg, ca + cb)]
        for net in nets:
            init_weights(net, model.init_type, model.init_gain)
        return cls(cfg, *nets)

    def networks(self) -> dict[str, nn.Module]:
        return {"g_ab": self.g_ab, "d_b": self.d_b}

    @property
    def generators(self) -> list[nn.Module]:
        return [self.g_ab]

    @property
    def discriminators(self) -> list[nn.Module]:
        return [self.d_b]

    def translate(self, real_a: torch.Tensor, real_b: torch.Tensor) -> GeneratorOutputs:
        if self.forward_direction:
            return GeneratorOutputs(fake_b=self.g_ab(real_a))
        return GeneratorOutputs(fake_a=self.g_ab(real_b))

    def _roles(self, real_a: torch.Tensor, real_b: torch.Tensor, fake_a: torch.Tensor | None,
               fake_b: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(source, target, translation) of the learned direction."""
        return (real_a, real_b, fake_b) if self.forward_direction else (real_b, real_a, fake_a)

    def judge(self, source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """The conditional discriminator's patch scores for the pair (source, target)."""
        return self.d_b(torch.cat([source, target.to(source.dtype)], dim=1))

    def generator_losses(self, real_a: torch.Tensor, real_b: torch.Tensor, t: GeneratorOutputs) -> dict[str, torch.Tensor]:
        c = self.loss_cfg
        source, target, fake = self._roles(real_a, real_b, t.fake_a, t.fake_b)
        losses = {"g_gan": gan_loss(self.judge(source, fake), True, c.gan_mode, for_discriminator=False) * c.lambda_gan}
        if c.lambda_l1 > 0:
            losses["g_l1"] = F.l1_loss(fake.float(), target.float()) * c.lambda_l1
        losses["total"] = sum(losses.values())
        return losses

    def discriminator_losses(
        self, real_a: torch.Tensor, real_b: torch.Tensor, fake_a: torch.Tensor | None, fake_b: torch.Tensor | None
    ) -> dict[str, torch.Tensor]:
        mode = self.loss_cfg.gan_mode
        source, target, fake = self._roles(real_a, real_b, fake_a, fake_b)
        d_fake = gan_loss(self.judge(source, fake.detach()), False, mode)
        d_real = gan_loss(self.judge(source, target), True, mode)
        return {"d_fake": d_fake, "d_real": d_real, "total": 0.5 * (d_fake + d_real)}

    def translator(self, direction: str) -> nn.Module:
        self.check_direction(direction)
        ca, cb = self.cfg.model.channels_a, self.cfg.model.channels_b
        return with_channels(self.g_ab, ca, cb) if self.forward_direction else with_channels(self.g_ab, cb, ca)

    def export_official(self, folder: Path, *, suffix: str = ".pth") -> list[Path]:
        """`latest_net_G.pth`, the official pix2pix name."""
        return write_official_generators({"G": self.g_ab}, folder, suffix=suffix)
