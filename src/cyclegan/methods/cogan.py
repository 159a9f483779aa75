"""CoGAN, coupled generative adversarial networks (Liu & Tuzel, NIPS 2016), the CycleGAN paper's
baseline of Sec. 5.1.3: two GANs, one per domain, whose networks share their high-level layers and
so learn a joint distribution of the domains; translation by latent search (`nn.cogan`).

Each step draws a batch of A images, a batch of B images (unpaired) and z ~ N(0, 1) from the method's
own noise stream (in the checkpoint, so resume is exact), renders (G_a(z), G_b(z)), takes one Adam step
on the discriminators and then one on the generator against them (CoGAN's Algorithm 1): two GAN
games with `losses.gan_loss` (vanilla as in CoGAN, or lsgan / hinge).

Config: the image side is `data.crop_size` (a power of two from 16 to 512, every image resized to it:
`data.load_size` equal to it), widths `model.ngf` / `model.ndf`; the rest is `method_options`
(`CoGANOptions`). The `cogan` preset holds CoGAN's settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..config import Config, ConfigError
from ..losses import gan_loss
from ..nn import with_channels
from ..nn.cogan import LatentSearchTranslator, build_cogan
from .base import GeneratorOutputs, Method
from .registry import register_legacy_format, register_method


@dataclass(frozen=True)
class CoGANOptions:
    """`method_options` of model.method=cogan."""

    nz: int = 100  # latent dimension (CoGAN: 100, z ~ N(0, 1) here)
    private_layers: int = 1  # domain-specific layers: the last ones of G, the first ones of D (CoGAN: 1)
    search_steps: int = 200  # Adam steps of the latent search, per image (translation)
    search_restarts: int = 1  # random starting points per image; the best fit is kept
    search_lr: float = 0.05  # Adam learning rate of the latent search
    search_seed: int = 0  # starting points are drawn from this seed: a translation is repeatable


@register_method("cogan")
class CoGAN(Method):
    """Holds the coupled generator and discriminator; computes their losses."""

    discriminator_first = True  # CoGAN's Algorithm 1: D, then G on the same fakes
    uses_pool = False
    gan_modes = ("vanilla", "lsgan", "hinge")  # wgangp would need a gradient penalty, which CoGAN does not have
    Options = CoGANOptions
    builds_generator = False  # DCGAN networks at the crop size, whatever model.generator says

    def __init__(self, cfg: Config, generator: nn.Module, discriminator: nn.Module) -> None:
        super().__init__(cfg)
        self.generator, self.discriminator = generator, discriminator
        self.opts = self.options(cfg)
        self.noise = torch.Generator().manual_seed(cfg.train.seed + 1)  # z, drawn on the CPU

    @classmethod
    def check_config(cls, cfg: Config) -> None:
        super().check_config(cfg)
        o, size = cls.options(cfg), cfg.data.crop_size
        if size < 16 or size > 512 or size & (size - 1):
            raise ConfigError(f"model.method=cogan renders squares of data.crop_size: a power of two from 16 to 512, "
                              f"got {size}")
        if cfg.data.load_size != size or cfg.data.preprocess != "resize_and_crop":
            raise ConfigError("model.method=cogan resizes every image to its square size: set data.preprocess="
                              f"resize_and_crop and data.load_size={size} (= data.crop_size)")
        stages = size.bit_length() - 3
        if not 1 <= o.private_layers <= stages:
            raise ConfigError(f"method_options.private_layers must be from 1 to {stages} at size {size} (at least one "
                              f"layer of each network is shared), got {o.private_layers}")
        for name in ("nz", "search_restarts"):
            if getattr(o, name) < 1:
                raise ConfigError(f"method_options.{name} must be at least 1, got {getattr(o, name)}")
        if o.search_steps < 0:
            raise ConfigError(f"method_options.search_steps must be at least 0, got {o.search_steps}")
        if cfg.loss.lambda_gan <= 0:
            raise ConfigError("model.method=cogan is adversarial only: loss.lambda_gan must be > 0")
        if (cfg.model.downsample, cfg.model.upsample) != ("conv", "transpose"):
            raise ConfigError("model.method=cogan uses CoGAN's own DCGAN networks: model.downsample and model.upsample "
                              "do not apply (leave them at conv / transpose)")

    @classmethod
    def from_config(cls, cfg: Config) -> CoGAN:
        o, m = cls.options(cfg), cfg.model
        gen, disc = build_cogan(size=cfg.data.crop_size, nz=o.nz, ngf=m.ngf, ndf=m.ndf, private_layers=o.private_layers,
                                channels_a=m.channels_a, channels_b=m.channels_b, seed=cfg.train.seed)
        return cls(cfg, gen, disc)

    def networks(self) -> dict[str, nn.Module]:
        return {"generator": self.generator, "discriminator": self.discriminator}

    @property
    def generators(self) -> list[nn.Module]:
        return [self.generator]

    @property
    def discriminators(self) -> list[nn.Module]:
        return [self.discriminator]

    def translate(self, real_a: torch.Tensor, real_b: torch.Tensor) -> GeneratorOutputs:
        """(G_a(z), G_b(z)) for a fresh z per item; the real images only give the batch size."""
        z = torch.randn(real_a.shape[0], self.opts.nz, generator=self.noise).to(real_a.device)
        fake_a, fake_b = self.generator(z)  # (B, C_a, S, S), (B, C_b, S, S) from the same z
        return GeneratorOutputs(fake_b=fake_b, fake_a=fake_a)

    def generator_losses(self, real_a: torch.Tensor, real_b: torch.Tensor, t: GeneratorOutputs) -> dict[str, torch.Tensor]:
        """g_a, g_b: the generator's adversarial loss in each domain (fakes judged as real)."""
        mode = self.cfg.loss.gan_mode
        losses = {f"g_{d}": gan_loss(self.discriminator(fake, d), True, mode, for_discriminator=False)
                  for d, fake in (("a", t.fake_a), ("b", t.fake_b))}
        losses["total"] = losses["g_a"] + losses["g_b"]
        return losses

    def discriminator_losses(self, real_a: torch.Tensor, real_b: torch.Tensor, fake_a: torch.Tensor | None,
                             fake_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """d_a, d_b: each domain's discriminator loss, the mean of its loss on real images and on fakes."""
        mode, losses = self.cfg.loss.gan_mode, {}
        for d, real, fake in (("a", real_a, fake_a), ("b", real_b, fake_b)):
            real_loss = gan_loss(self.discriminator(real, d), True, mode)
            fake_loss = gan_loss(self.discriminator(fake.detach(), d), False, mode)
            losses[f"d_{d}"] = 0.5 * (real_loss + fake_loss)
        losses["total"] = losses["d_a"] + losses["d_b"]
        return losses

    def extra_state(self) -> dict[str, Any]:
        return {"noise": self.noise.get_state()}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        self.noise.set_state(state["noise"])

    def reseed(self, seed: int) -> None:
        self.noise.manual_seed(seed + 1)

    def translator(self, direction: str) -> nn.Module:
        """Latent search in the generator (`method_options.search_*`), resizing to and from its size."""
        self.check_direction(direction)
        o = self.opts
        t = LatentSearchTranslator(self.generator, direction, steps=o.search_steps, restarts=o.search_restarts,
                                   lr=o.search_lr, seed=o.search_seed)
        return with_channels(t, t.in_channels, t.out_channels)


@register_legacy_format("cyclegan-cogan")
def upgrade_cogan_checkpoint(old: Mapping[str, Any]) -> dict[str, Any]:
    """A checkpoint of the former CoGAN trainer (format "cyclegan-cogan", version 1) as the common
    training state: its config mapped to `Config` fields, its networks and optimisers as they are,
    the noise stream as the method's state; the learning-rate schedule is rebuilt from the epoch."""
    c = old["config"]
    size = int(c["size"])
    cfg = Config.from_dict({
        "model": {"method": "cogan", "ngf": c["ngf"], "ndf": c["ndf"], "channels_a": c["channels_a"],
                  "channels_b": c["channels_b"]},
        "loss": {"gan_mode": c["gan_mode"], "lambda_identity": 0.0, "pool_size": 0},
        "data": {"preprocess": "resize_and_crop", "load_size": size, "crop_size": size, "flip": c["flip"],
                 "max_dataset_size": c["max_dataset_size"], "batch_size": c["batch_size"], "num_workers": 0},
        "optim": {"lr": c["lr"], "beta1": c["beta1"], "beta2": c["beta2"], "n_epochs": c["epochs"],
                  "n_epochs_decay": c["epochs_decay"]},
        "train": {"seed": c["seed"], "deterministic": c["deterministic"], "checkpoint_every": c["checkpoint_every"],
                  "log_every": c["log_every"]},
        "method_options": {k: c[k] for k in ("nz", "private_layers", "search_steps", "search_restarts", "search_lr",
                                             "search_seed")},
    })
    p = old["progress"]
    progress = {"epoch": int(p["epoch"]), "samples_in_epoch": int(p["samples_in_epoch"]), "step": int(p["step"]),
                "batch_in_epoch": -(-int(p["samples_in_epoch"]) // int(c["batch_size"])), "world_size": 1}
    return {"config": cfg.to_dict(), "run": dict(old["run"]), "nets": dict(old["nets"]), "optim": dict(old["optim"]),
            "method": {"noise": old["rng"]["z"]}, "progress": progress}
