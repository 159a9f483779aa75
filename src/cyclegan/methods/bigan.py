"""BiGAN (Donahue et al., ICLR 2017) / ALI (Dumoulin et al., ICLR 2017), adapted as in the CycleGAN
paper (Sec. 5.1.3): instead of a generator z -> x and an encoder x -> z, a mapping G: A -> B and an
inverse F: B -> A, trained against one discriminator on *joint* pairs stacked along the channels.

Names: `g_ab` is G, `g_ba` is F, `d_joint` judges an (a, b) pair: it is trained to tell
(a, G(a)) (label "real") from (F(b), b) (label "fake"), and both mappings are trained to make it
swap the two. At the optimum the joint distributions of (a, G(a)) and (F(b), b) match, so F inverts G.

    L_D = 0.5 [GAN(D(a, G(a)), real) + GAN(D(F(b), b), fake)]
    L_G = GAN(D(a, G(a)), fake) + GAN(D(F(b), b), real)

No image pool (a pooled output would lose its input) and no cycle or identity loss.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..config import Config
from ..losses import gan_loss
from ..nn import init_weights, with_channels
from .base import (
    GeneratorOutputs, Method, discriminator_from_config, generator_from_config, write_official_generators,
)
from .registry import register_method


@register_method("bigan")
class BiGAN(Method):
    """Holds g_ab, g_ba and the joint discriminator d_joint; computes their losses."""

    discriminator_first = False
    uses_pool = False
    gan_modes = ("lsgan", "vanilla")  # the mappings train with swapped labels

    def __init__(self, cfg: Config, g_ab: nn.Module, g_ba: nn.Module, d_joint: nn.Module) -> None:
        super().__init__(cfg)
        self.g_ab, self.g_ba, self.d_joint = g_ab, g_ba, d_joint
        self.loss_cfg = cfg.loss

    @classmethod
    def from_config(cls, cfg: Config) -> BiGAN:
        model = cfg.model
        ca, cb = model.channels_a, model.channels_b
        nets = [generator_from_config(cfg, ca, cb), generator_from_config(cfg, cb, ca),
                discriminator_from_config(cfg, ca + cb)]
        for net in nets:
            init_weights(net, model.init_type, model.init_gain)
        return cls(cfg, *nets)

    def networks(self) -> dict[str, nn.Module]:
        return {"g_ab": self.g_ab, "g_ba": self.g_ba, "d_joint": self.d_joint}

    @property
    def generators(self) -> list[nn.Module]:
        return [self.g_ab, self.g_ba]

    @property
    def discriminators(self) -> list[nn.Module]:
        return [self.d_joint]

    def translate(self, real_a: torch.Tensor, real_b: torch.Tensor) -> GeneratorOutputs:
        return GeneratorOutputs(fake_b=self.g_ab(real_a), fake_a=self.g_ba(real_b))

    def judge(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """The joint discriminator's patch scores for the pair (a, b)."""
        return self.d_joint(torch.cat([a, b.to(a.dtype)], dim=1))

    def generator_losses(self, real_a: torch.Tensor, real_b: torch.Tensor, t: GeneratorOutputs) -> dict[str, torch.Tensor]:
        c = self.loss_cfg
        losses = {  # each mapping wants its pairs taken for the other's
            "g_ab": gan_loss(self.judge(real_a, t.fake_b), False, c.gan_mode) * c.lambda_gan,
            "g_ba": gan_loss(self.judge(t.fake_a, real_b), True, c.gan_mode) * c.lambda_gan,
        }
        losses["total"] = losses["g_ab"] + losses["g_ba"]
        return losses

    def discriminator_losses(
        self, real_a: torch.Tensor, real_b: torch.Tensor, fake_a: torch.Tensor, fake_b: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        mode = self.loss_cfg.gan_mode
        forward = gan_loss(self.judge(real_a, fake_b.detach()), True, mode)
        backward = gan_loss(self.judge(fake_a.detach(), real_b), False, mode)
        return {"d_joint": 0.5 * (forward + backward), "total": 0.5 * (forward + backward)}

    def translator(self, direction: str) -> nn.Module:
        self.check_direction(direction)
        ca, cb = self.cfg.model.channels_a, self.cfg.model.channels_b
        return with_channels(self.g_ab, ca, cb) if direction == "AtoB" else with_channels(self.g_ba, cb, ca)

    def export_official(self, folder: Path, *, suffix: str = ".pth") -> list[Path]:
        """The two mappings under the CycleGAN names: `latest_net_G_A.pth` (A->B), `latest_net_G_B.pth`."""
        return write_official_generators({"G_A": self.g_ab, "G_B": self.g_ba}, folder, suffix=suffix)
