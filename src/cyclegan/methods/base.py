"""The method protocol: what a training method (CycleGAN, pix2pix, CUT, ...) gives the common loop.

A method is an `nn.Module` that holds its networks and turns batches into loss dictionaries; the
training loop (`training.loop`) owns the optimisers, schedules, pools, precision, devices and
data-parallel wrapping, and asks the method only for what differs between methods:

- `check_config(cfg)` (classmethod): the config rules of the method (raise `ConfigError`);
- `from_config(cfg)` (classmethod): its networks, freshly initialised;
- `networks()`: every trained network by checkpoint name; `generators` / `discriminators`: what the
  two optimisers update (their parameter groups);
- `translate(real_a, real_b)`: one pass of the generators, returning every image the generator
  losses need (`GeneratorOutputs`); it is the only code that runs a generator during a step, so
  data-parallel training wraps it (`training.distributed`);
- `generator_losses(real_a, real_b, out)` and `discriminator_losses(real_a, real_b, fake_a, fake_b)`:
  dicts of scalar tensors with a "total" entry;
- `discriminator_first`: the step order (pix2pix, CoGAN, CUT step D first);
- `directions` and `translator(direction)`: what it can translate and the module that does it (a
  `one_way` method learns the direction of `data.direction`);
- `export_official(folder)`: official-layout files, for the methods that have them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

from ..atomic import save_safetensors, save_verified
from ..config import Config, ConfigError, merge
from ..names import DIRECTIONS
from ..losses import zero_centred_penalty
from ..nn import (
    SIZE_MULTIPLES, build_discriminator, build_generator, has_official_layout, padded_side, to_official, with_spectral_norm,
)
from ..precision import discriminators_in_float32

logger = logging.getLogger(__name__)

# Loss weights of terms that only some methods have; a method that does not read one needs it at 0.
OPTIONAL_TERMS = ("lambda_identity", "lambda_self_reg", "lambda_feature")


@dataclass
class GeneratorOutputs:
    """Images of one generator pass, each (B, C, H, W); what a method does not compute stays None."""

    fake_b: torch.Tensor | None = None  # G(a) (None for a one-way method learning B -> A)
    rec_a: torch.Tensor | None = None  # F(G(a))
    fake_a: torch.Tensor | None = None  # F(b)
    rec_b: torch.Tensor | None = None  # G(F(b))
    idt_b: torch.Tensor | None = None  # G(b), the identity image of the A -> B generator
    idt_a: torch.Tensor | None = None  # F(a)
    extra: dict[str, Any] | None = None  # what a method's own losses need from the pass (CUT: PatchNCE's rows)

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.fake_b, self.rec_a, self.fake_a, self.rec_b, self.idt_b, self.idt_a, self.extra)


class Method(nn.Module):
    """Base class of the training methods; see the module docstring for the protocol."""

    name: ClassVar[str] = ""  # set by `register_method`
    directions: tuple[str, ...] = DIRECTIONS  # what `translator` accepts (`learned_directions`)
    one_way: ClassVar[bool] = False  # learns one direction, data.direction's (pix2pix)
    discriminator_first: ClassVar[bool] = False  # step order: D then G (True) or G then D
    uses_pool: ClassVar[bool] = True  # whether its discriminators may train on pooled fakes
    paired: ClassVar[bool] = False  # learns from (a, b) pairs: needs data.mode=aligned
    gan_modes: ClassVar[tuple[str, ...]] = ("lsgan", "vanilla", "wgangp", "hinge")
    loss_terms: ClassVar[tuple[str, ...]] = ()  # which of OPTIONAL_TERMS it reads (the others must be 0)
    merges_passes: ClassVar[bool] = False  # whether it implements train.merge_passes
    regularizable: ClassVar[bool] = False  # implements `judged_images` (gradient penalty, DiffAugment)
    Options: ClassVar[type | None] = None  # a frozen dataclass of its `method_options` (None: it takes none)
    builds_generator: ClassVar[bool] = True  # its generators are model.generator (CoGAN has its own)

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg  # read-only: configs are never mutated
        self.directions = self.learned_directions(cfg)

    @property
    def forward_direction(self) -> bool:
        """Whether it learns A -> B (a one-way method with `data.direction=BtoA` learns B -> A)."""
        return "AtoB" in self.directions

    @classmethod
    def learned_directions(cls, cfg: Config) -> tuple[str, ...]:
        """What it translates when trained with `cfg`: both directions, or `data.direction` if one-way."""
        return (cfg.data.direction,) if cls.one_way else DIRECTIONS

    # --- configuration -------------------------------------------------------------------------
    @classmethod
    def check_config(cls, cfg: Config) -> None:
        """Raise ConfigError for settings this method cannot train with (called before anything runs)."""
        cls.options(cfg)
        method, loss = cls.name, cfg.loss
        if not cls.one_way and cfg.data.direction != "AtoB":
            raise ConfigError(f"data.direction={cfg.data.direction} chooses what a one-way method (pix2pix) learns; "
                              f"model.method={method} learns both directions: remove it and translate with BtoA")
        for term in OPTIONAL_TERMS:
            if term not in cls.loss_terms and getattr(loss, term) > 0:
                raise ConfigError(f"loss.{term} is not a term of the model.method={method} objective: set loss.{term}=0")
        if not cls.uses_pool and loss.pool_size != 0:
            raise ConfigError(f"model.method={method} trains its discriminator on (input, output) pairs, which an "
                              "image pool would mismatch: set loss.pool_size=0")
        if (loss.r1_gamma > 0 or loss.diffaugment) and not cls.regularizable:
            raise ConfigError(f"loss.r1_gamma and loss.diffaugment need a discriminator that judges plain images; "
                              f"model.method={method} has none: leave them off")
        if cfg.train.merge_passes and not cls.merges_passes:
            raise ConfigError(f"train.merge_passes is not implemented by model.method={method}; turn it off")
        if loss.gan_mode not in cls.gan_modes:
            raise ConfigError(f"loss.gan_mode={loss.gan_mode} is not available for model.method={method}; use one of: "
                              + ", ".join(cls.gan_modes))
        if cls.paired and cfg.data.mode != "aligned":
            raise ConfigError(f"model.method={method} learns from pairs: set data.mode=aligned (A|B images in train/, "
                              "or trainA/trainB files paired by name)")
        if cls.builds_generator:
            check_training_size(cfg)
        metric = cfg.eval.best_metric
        direction = metric.partition(".")[0] if "." in metric else None
        needs_both = metric == "cycle_l1" or metric.endswith(".cycle_l1")
        learned = cls.learned_directions(cfg)
        if (direction is not None and direction not in learned) or (needs_both and len(learned) < 2):
            needed = "both mappings (a cycle)" if needs_both else f"the {direction} mapping"
            raise ConfigError(f"eval.best_metric={metric} needs {needed}, which model.method={method} does not "
                              f"learn here; use a metric of {' or '.join(learned)} such as {learned[0]}.l1")

    @classmethod
    def options(cls, cfg: Config) -> Any:
        """The method's typed `method_options` (its `Options` dataclass with the config's values)."""
        given = cfg.method_options or {}
        if cls.Options is None:
            if given:
                raise ConfigError(f"model.method={cls.name} takes no method_options; remove {', '.join(sorted(given))}")
            return None
        return merge(cls.Options(), dict(given), prefix="method_options.")

    @classmethod
    def from_config(cls, cfg: Config) -> Method:
        raise NotImplementedError

    # --- networks --------------------------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    @property
    def generators(self) -> list[nn.Module]:
        raise NotImplementedError

    @property
    def discriminators(self) -> list[nn.Module]:
        raise NotImplementedError

    @property
    def adversarial(self) -> bool:
        """Whether the discriminators train at all (a GAN weight of 0 leaves them out)."""
        return self.cfg.loss.lambda_gan != 0

    # --- one step --------------------------------------------------------------------------------
    def translate(self, real_a: torch.Tensor, real_b: torch.Tensor) -> GeneratorOutputs:
        raise NotImplementedError

    def generator_losses(self, real_a: torch.Tensor, real_b: torch.Tensor,
                         out: GeneratorOutputs) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def discriminator_losses(self, real_a: torch.Tensor, real_b: torch.Tensor, fake_a: torch.Tensor | None,
                             fake_b: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def judged_images(self, real_a: torch.Tensor, real_b: torch.Tensor, fake_a: torch.Tensor | None,
                      fake_b: torch.Tensor | None) -> list[tuple[nn.Module, torch.Tensor, torch.Tensor]]:
        """(discriminator, real images it judges, fake images it judges) for each discriminator: what
        the gradient penalty (`loss.r1_gamma`) regularises. Methods without it refuse the penalty."""
        raise NotImplementedError

    def discriminator_step_losses(self, real_a: torch.Tensor, real_b: torch.Tensor, fake_a: torch.Tensor | None,
                                  fake_b: torch.Tensor | None, regularize: bool = False) -> dict[str, torch.Tensor]:
        """`discriminator_losses` plus, when `regularize`, the zero-centred gradient penalty of
        `loss.r1_gamma` (x `loss.r1_every`, lazy regularisation) as `d_gp`. The one discriminator
        forward of a step (data-parallel training wraps it)."""
        losses = self.discriminator_losses(real_a, real_b, fake_a, fake_b)
        c = self.cfg.loss
        if regularize and c.r1_gamma > 0:
            penalty = sum(zero_centred_penalty(d, real, fake if c.r1_on == "mix" else None)
                          for d, real, fake in self.judged_images(real_a, real_b, fake_a, fake_b))
            losses["d_gp"] = penalty * (c.r1_gamma / 2 * c.r1_every)
            losses["total"] = losses["total"] + losses["d_gp"]
        return losses

    # --- state beyond the networks (random streams of the method's own) --------------------------
    def extra_state(self) -> dict[str, Any]:
        """What a checkpoint must hold besides the networks for an exact resume (e.g. a noise RNG)."""
        return {}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        pass

    def reseed(self, seed: int) -> None:
        """Give the method's own random streams a new seed (data-parallel ranks draw their own)."""

    # --- inference and export --------------------------------------------------------------------
    def translator(self, direction: str) -> nn.Module:
        """The module that translates `direction` ("AtoB" / "BtoA") images, with `in_channels` and
        `out_channels` attributes; ValueError if the method does not learn that direction."""
        raise NotImplementedError

    def export_official(self, folder: Path, *, suffix: str = ".pth") -> list[Path]:
        """Write the generators in the official pytorch-CycleGAN-and-pix2pix layout (`.pth`, or
        `.safetensors`); [] if the method has no such layout."""
        return []

    def check_direction(self, direction: str) -> None:
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {direction!r}; choose one of: {', '.join(DIRECTIONS)}")
        if direction not in self.directions:
            raise ValueError(f"model.method={self.name} translates {' and '.join(self.directions)} only, not {direction}")


def check_training_size(cfg: Config) -> None:
    """Raise ConfigError when the side the generator trains on (the crop, or the width of scale_width
    without one) does not divide by what `model.generator` halves it to (`SIZE_MULTIPLES`) or is under
    `MIN_SIDE`: most methods would fail at the first step, CUT would pair features of different sizes.
    Sides that depend on the images (scale_width's heights, `preprocess=none`: each image's own size,
    rounded to 4) are not known here."""
    d, name = cfg.data, cfg.model.generator
    multiple = SIZE_MULTIPLES.get(name, 1)  # a generator registered without one is not checked
    if "crop" in d.preprocess:
        key, side = "data.crop_size", d.crop_size
    elif d.preprocess != "none":
        key, side = "data.load_size", d.load_size
    else:
        return
    smallest, above = padded_side(1, multiple), padded_side(side, multiple)
    if above != side:
        below = side // multiple * multiple
        resized_crop = key == "data.crop_size" and d.preprocess != "crop"  # a crop of the image resized to load_size
        options = [str(below)] if below >= smallest else []
        options.append(f"{above} with data.load_size >= {above}" if resized_crop and above > d.load_size else str(above))
        kind = name.partition("_")[0]  # a shallower U-Net may fit
        family = [g for g, m in SIZE_MULTIPLES.items()
                  if g != name and g.partition("_")[0] == kind and padded_side(side, m) == side]
        other = f"model.generator={family[0]}, or " if family else ""
        least = f", of at least {smallest} pixels" if smallest > multiple else ""
        raise ConfigError(f"model.generator={name} trains on sides that divide by {multiple}{least}; {key}={side} is "
                          f"not one: use {other}{key}={' or '.join(options)}")


def generator_from_config(cfg: Config, in_channels: int, out_channels: int) -> nn.Module:
    """`model.generator` with the model section's width, norm, dropout and resampling (not initialised)."""
    m = cfg.model
    return build_generator(m.generator, in_channels, out_channels, ngf=m.ngf, norm=m.norm, dropout=m.dropout,
                           downsample=m.downsample, upsample=m.upsample)


def discriminator_from_config(cfg: Config, in_channels: int) -> nn.Module:
    """`model.discriminator` with the model section's width, depth, norm and downsampling, in float32
    under mixed precision unless `train.low_precision_discriminators`, its convolutions spectrally
    normalised with `model.spectral_norm` (not initialised)."""
    m = cfg.model
    net = build_discriminator(m.discriminator, in_channels, ndf=m.ndf, n_layers=m.n_layers_d, norm=m.norm,
                              float32=discriminators_in_float32(cfg.train), downsample=m.downsample)
    return with_spectral_norm(net) if m.spectral_norm else net


def set_requires_grad(nets: list[nn.Module], flag: bool) -> None:
    for net in nets:
        for p in net.parameters():
            p.requires_grad_(flag)


def write_official_generators(generators: Mapping[str, nn.Module], folder: Path, *,
                              suffix: str = ".pth") -> list[Path]:
    """Each generator as `folder/latest_net_<NAME><suffix>` in the official key layout (loadable by the
    official test.py), with its sha256 beside it (`atomic.save_verified`); `suffix=".safetensors"`
    writes safetensors files (the same keys, no pickle). Nothing, with a warning, if one of them has no
    official layout."""
    missing = [type(g).__name__ for g in generators.values() if not has_official_layout(g)]
    if missing:
        logger.warning("not exporting official-layout generators: no official layout is known for %s", missing[0])
        return []
    save = save_safetensors if suffix == ".safetensors" else save_verified
    return [save(to_official(g), Path(folder) / f"latest_net_{name}{suffix}") for name, g in generators.items()]
