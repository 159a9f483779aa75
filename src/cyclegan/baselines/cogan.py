"""CoGAN, coupled generative adversarial networks (Liu & Tuzel, NIPS 2016), the CycleGAN paper's
baseline of Sec. 5.1.3: two GANs, one per domain, that learn a joint distribution of the domains.

- `CoupledGenerator`: z -> shared transposed-conv layers (the high-level "shared latent
  representation") -> one domain-specific head per domain -> an image of A and an image of B.
- `CoupledDiscriminator`: domain-specific first layers -> shared last layers -> one logit per image.
- `discriminator_losses` / `generator_losses`: the CoGAN objective (two GAN games whose networks share
  weights), with the project's `losses.gan_loss` (vanilla as in CoGAN, or lsgan / hinge).

The networks are DCGAN-style (Radford et al. 2016; the CoGAN paper's architecture): 4x4 transposed
convs with batch norm and ReLU up from 4x4, and 4x4 strided convs with leaky ReLU down to 4x4. Names
map to the paper's: `head_a` / `head_b` are the last layers of g_1 / g_2, `stem_a` / `stem_b` the first
layers of f_1 / f_2. Translation (finding z for an image of one domain and rendering it in the other)
is in `cogan_search`, training in `cogan_train`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..config import ConfigError, merge, parse_override
from ..losses import gan_loss

DOMAINS = ("a", "b")
GAN_MODES = ("vanilla", "lsgan", "hinge")  # wgangp would need a gradient penalty, which CoGAN does not have
MAX_WIDTH_FACTOR = 8  # layer widths are capped at 8 x ngf / ndf, as in DCGAN and the CycleGAN PatchGAN


@dataclass(frozen=True)
class CoGANConfig:
    """Everything a CoGAN run needs; saved in every checkpoint and in `run_dir/cogan.yaml`."""

    size: int = 64  # image side: a power of two from 16 to 512 (log2(size) - 2 up-sampling stages from 4x4)
    nz: int = 100  # latent dimension (CoGAN: 100, z ~ N(0, 1) here)
    ngf: int = 64  # generator width of the last hidden layer (doubling towards 4x4, capped at 8 x ngf)
    ndf: int = 64  # discriminator width of the first layer (doubling towards 4x4, capped at 8 x ndf)
    private_layers: int = 1  # domain-specific layers: the last ones of G, the first ones of D (CoGAN: 1)
    channels_a: int = 3  # 1 for a grayscale domain
    channels_b: int = 3
    gan_mode: str = "vanilla"  # vanilla (CoGAN's) | lsgan | hinge
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    epochs: int = 100  # epochs at the initial learning rate
    epochs_decay: int = 0  # then linear decay to zero over this many epochs (CoGAN itself keeps it constant)
    batch_size: int = 64
    flip: bool = True  # random horizontal flips of the training images
    max_dataset_size: int | None = None
    seed: int = 0
    deterministic: bool = False  # one CPU thread, deterministic kernels: bit-exact resume (slower)
    checkpoint_every: int = 1000  # steps between checkpoints (also at each epoch end)
    log_every: int = 100  # steps between loss log lines
    search_steps: int = 200  # Adam steps of the latent search, per image (translation)
    search_restarts: int = 1  # random starting points per image; the best fit is kept
    search_lr: float = 0.05  # Adam learning rate of the latent search
    search_seed: int = 0  # starting points are drawn from this seed: a translation is repeatable

    def __post_init__(self) -> None:
        if self.size < 16 or self.size > 512 or self.size & (self.size - 1):
            raise ConfigError(f"size must be a power of two from 16 to 512 (16, 32, 64, 128, 256, 512), got {self.size}")
        if not 1 <= self.private_layers <= self.stages:
            raise ConfigError(f"private_layers must be from 1 to {self.stages} at size {self.size} (at least one "
                              f"layer of each network is shared), got {self.private_layers}")
        if self.gan_mode not in GAN_MODES:
            raise ConfigError(f"gan_mode={self.gan_mode!r} is not valid; choose one of: {', '.join(GAN_MODES)}")
        if self.channels_a not in (1, 3) or self.channels_b not in (1, 3):
            raise ConfigError("channels_a / channels_b must be 1 (grayscale) or 3 (RGB)")
        for name in ("nz", "ngf", "ndf", "batch_size", "checkpoint_every", "log_every", "search_restarts"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("epochs", "epochs_decay", "search_steps"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be at least 0, got {getattr(self, name)}")
        if self.epochs + self.epochs_decay < 1:
            raise ConfigError("epochs + epochs_decay must be at least 1")

    @property
    def stages(self) -> int:
        """Up-sampling stages of the generator (= down-sampling stages of the discriminator)."""
        return self.size.bit_length() - 3  # log2(size / 4)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CoGANConfig:
        return merge(cls(), d)

    @classmethod
    def from_overrides(cls, overrides: list[str], base: CoGANConfig | None = None) -> CoGANConfig:
        """`base` (default: the defaults) with `key=value` overrides, e.g. `size=32`; unknown keys raise
        ConfigError listing the valid ones."""
        cfg = base or cls()
        for text in overrides:
            cfg = merge(cfg, parse_override(text))
        return cfg


def _widths(width: int, stages: int) -> list[int]:
    """Channels after each of `stages` layers, narrowest first: width, 2 width, ... capped at 8 width."""
    return [width * min(2**i, MAX_WIDTH_FACTOR) for i in range(stages)]


def _up(cin: int, cout: int, *, first: bool = False) -> list[nn.Module]:
    conv = nn.ConvTranspose2d(cin, cout, 4, 1, 0, bias=False) if first else nn.ConvTranspose2d(cin, cout, 4, 2, 1, bias=False)
    return [conv, nn.BatchNorm2d(cout), nn.ReLU(True)]


def _down(cin: int, cout: int, *, norm: bool = True) -> list[nn.Module]:
    conv = nn.Conv2d(cin, cout, 4, 2, 1, bias=not norm)
    return [conv, *([nn.BatchNorm2d(cout)] if norm else []), nn.LeakyReLU(0.2, True)]


class CoupledGenerator(nn.Module):
    """z (B, nz) -> (fake_a, fake_b), images in [-1, 1] of `size` x `size` rendered from the same z.

    Layer i (0-based) up-samples to 4 * 2^i px; the first `stages + 1 - private_layers` layers are
    shared (`self.shared`), the rest are the domain heads `head_a` / `head_b` (the last ends in tanh).
    """

    def __init__(self, *, size: int = 64, nz: int = 100, ngf: int = 64, private_layers: int = 1,
                 channels_a: int = 3, channels_b: int = 3) -> None:
        super().__init__()
        stages = size.bit_length() - 3
        widths = _widths(ngf, stages)[::-1]  # (8 ngf, ..., 2 ngf, ngf): widest at 4x4
        layers = [_up(nz, widths[0], first=True)] + [_up(widths[i - 1], widths[i]) for i in range(1, stages)]
        n_shared = stages + 1 - private_layers
        self.nz, self.size, self.channels = nz, size, {"a": channels_a, "b": channels_b}
        self.shared = nn.Sequential(*[m for layer in layers[:n_shared] for m in layer])

        def head(channels: int) -> nn.Sequential:
            private = [_up(widths[i - 1], widths[i]) for i in range(n_shared, stages)]
            last = [nn.ConvTranspose2d(widths[-1], channels, 4, 2, 1), nn.Tanh()]
            return nn.Sequential(*[m for layer in private for m in layer], *last)

        self.head_a, self.head_b = head(channels_a), head(channels_b)

    def latent(self, z: torch.Tensor) -> torch.Tensor:
        """The shared representation of z: (B, C, h, h)."""
        return self.shared(z.reshape(z.shape[0], self.nz, 1, 1))

    def render(self, z: torch.Tensor, domain: str) -> torch.Tensor:
        """The image of `domain` ("a" or "b") for z: (B, C, size, size)."""
        return self._head(domain)(self.latent(z))

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.latent(z)
        return self.head_a(h), self.head_b(h)

    def _head(self, domain: str) -> nn.Module:
        if domain not in DOMAINS:
            raise ValueError(f"unknown domain {domain!r}; choose one of: {', '.join(DOMAINS)}")
        return self.head_a if domain == "a" else self.head_b


class CoupledDiscriminator(nn.Module):
    """An image of domain a or b -> one real/fake logit per image, (B,).

    The first `private_layers` layers are domain-specific (`stem_a`, `stem_b`); the rest, down to a
    4x4 map and a final 4x4 conv, are shared (`self.shared`).
    """

    def __init__(self, *, size: int = 64, ndf: int = 64, private_layers: int = 1, channels_a: int = 3,
                 channels_b: int = 3) -> None:
        super().__init__()
        stages = size.bit_length() - 3
        widths = _widths(ndf, stages)  # (ndf, 2 ndf, ..., 8 ndf): widest at 4x4

        def stem(channels: int) -> nn.Sequential:
            layers = [_down(channels, widths[0], norm=False)]  # DCGAN: no norm on the first layer
            layers += [_down(widths[i - 1], widths[i]) for i in range(1, private_layers)]
            return nn.Sequential(*[m for layer in layers for m in layer])

        self.stem_a, self.stem_b = stem(channels_a), stem(channels_b)
        shared = [_down(widths[i - 1], widths[i]) for i in range(private_layers, stages)]
        self.shared = nn.Sequential(*[m for layer in shared for m in layer], nn.Conv2d(widths[-1], 1, 4, 1, 0))

    def forward(self, image: torch.Tensor, domain: str) -> torch.Tensor:
        if domain not in DOMAINS:
            raise ValueError(f"unknown domain {domain!r}; choose one of: {', '.join(DOMAINS)}")
        stem = self.stem_a if domain == "a" else self.stem_b
        return self.shared(stem(image)).flatten()  # (B,)


def init_dcgan(net: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """DCGAN initialisation: conv weights N(0, 0.02), batch-norm scales N(1, 0.02), biases 0."""
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02, generator=generator)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02, generator=generator)
        if getattr(m, "bias", None) is not None:
            nn.init.zeros_(m.bias)
    return net


def build_cogan(cfg: CoGANConfig) -> tuple[CoupledGenerator, CoupledDiscriminator]:
    """The coupled generator and discriminator of `cfg`, initialised from `cfg.seed` (on the CPU)."""
    common = {"size": cfg.size, "private_layers": cfg.private_layers, "channels_a": cfg.channels_a,
              "channels_b": cfg.channels_b}
    g = torch.Generator().manual_seed(cfg.seed)
    gen = init_dcgan(CoupledGenerator(nz=cfg.nz, ngf=cfg.ngf, **common), g)
    disc = init_dcgan(CoupledDiscriminator(ndf=cfg.ndf, **common), g)
    return gen, disc


def discriminator_losses(disc: CoupledDiscriminator, real_a: torch.Tensor, real_b: torch.Tensor,
                         fake_a: torch.Tensor, fake_b: torch.Tensor, mode: str = "vanilla") -> dict[str, torch.Tensor]:
    """d_a, d_b: each domain's discriminator loss, the mean of its loss on real images and on (detached)
    fakes, as the CycleGAN code's discriminators."""
    out = {}
    for domain, real, fake in (("a", real_a, fake_a), ("b", real_b, fake_b)):
        real_loss = gan_loss(disc(real, domain), True, mode)
        fake_loss = gan_loss(disc(fake.detach(), domain), False, mode)
        out[f"d_{domain}"] = 0.5 * (real_loss + fake_loss)
    return out


def generator_losses(disc: CoupledDiscriminator, fake_a: torch.Tensor, fake_b: torch.Tensor,
                     mode: str = "vanilla") -> dict[str, torch.Tensor]:
    """g_a, g_b: the generator's adversarial loss in each domain (fakes judged as real)."""
    return {f"g_{domain}": gan_loss(disc(fake, domain), True, mode, for_discriminator=False)
            for domain, fake in (("a", fake_a), ("b", fake_b))}
