"""CUT and FastCUT (Park, Efros, Zhang, Zhu, "Contrastive Learning for Unpaired Image-to-Image
Translation", ECCV 2020): one generator, one discriminator, and a patchwise contrastive loss
(PatchNCE) between the input and the output instead of a second generator and a cycle. Faithful to the
reference code (taesungp/contrastive-unpaired-translation at b3ac297; `models/cut_model.py`), checked
step for step against its outputs (tests/test_cut_golden.py).

Names: `g_ab` is G: A -> B (the reference's netG), `d_b` judges domain B (netD), `nce_head` is the
patch sampler with its per-layer MLP projection heads (netF, `nn.PatchSampler`).

One step, in the reference's order (`discriminator_first`): G runs once on cat(a, b) (CUT: fake_b
and the identity image idt_b = G(b) are its halves; FastCUT: on a, flipped along W when a coin says
so); the discriminator steps on fake_b.detach() and b; then G and the heads step together against the
updated discriminator:

    L_D = 0.5 [GAN(D(G(a)), fake) + GAN(D(b), real)]
    L_G = lambda_gan GAN(D(G(a)), real) + 1/2 (NCE(a, G(a)) + NCE(b, G(b)))   (CUT)
    L_G = lambda_gan GAN(D(G(a)), real) + NCE(a, G(a))                         (FastCUT)
    NCE(x, y) = mean over layers l of lambda_nce * mean over patches of PatchNCE(head_l(enc_l(y)), head_l(enc_l(x)))

The encoder features are G's own layers (`ResnetGenerator.encode`, the reference's `nce_layers`
indices), sampled at `num_patches` positions drawn from the method's numpy RNG (shared by the query
and key sides of one call; each call draws anew), keys detached. With flip equivariance (FastCUT) the
output's features are flipped back before sampling. The reference builds netF on the first batch; the
heads' sizes follow from G's layers, so they are built (and initialised, after G and D) here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..config import Config, ConfigError
from ..losses import gan_loss, patch_nce_loss
from ..nn import ResnetGenerator, init_weights, with_channels
from ..nn.patch_sampler import NETF, PatchSampler, sample_patch_ids
from .base import GeneratorOutputs, Method, discriminator_from_config, generator_from_config, write_official_generators
from .registry import register_method


@dataclass(frozen=True)
class CUTOptions:
    """`method_options` of model.method=cut (the reference's CUT mode defaults)."""

    lambda_nce: float = 1.0  # weight of PatchNCE
    nce_idt: bool = True  # also PatchNCE between b and G(b) (the identity image), halving both
    nce_layers: str = "0,4,8,12,16"  # G layers (the reference's `model.N` indices) whose features are compared
    nce_t: float = 0.07  # InfoNCE temperature
    num_patches: int = 256  # sampled positions per layer and call
    netf: str = "mlp_sample"  # mlp_sample: a two-layer MLP head per layer | sample: the features as they are
    netf_nc: int = 256  # width of the MLP heads
    nce_includes_all_negatives_from_minibatch: bool = False  # negatives from every image of the batch
    flip_equivariance: bool = False  # flip the input along W with probability 1/2 and flip the features back

    @property
    def layers(self) -> tuple[int, ...]:
        return tuple(int(x) for x in str(self.nce_layers).split(",") if x.strip())


@dataclass(frozen=True)
class FastCUTOptions(CUTOptions):
    """FastCUT: λ_NCE 10, no NCE identity, flip-equivariance augmentation."""

    lambda_nce: float = 10.0
    nce_idt: bool = False
    flip_equivariance: bool = True


@register_method("cut")
class CUT(Method):
    """Holds g_ab, d_b and nce_head; computes the losses of CUT (and, with its options, FastCUT)."""

    one_way = True  # learns data.direction (A -> B by default)
    discriminator_first = True
    uses_pool = False
    paired = False
    gan_modes = ("lsgan", "vanilla", "hinge")
    regularizable = True
    Options = CUTOptions

    def __init__(self, cfg: Config, g_ab: nn.Module, d_b: nn.Module, nce_head: nn.Module) -> None:
        super().__init__(cfg)
        self.g_ab, self.d_b, self.nce_head = g_ab, d_b, nce_head
        self.opts = self.options(cfg)
        self.rng = np.random.RandomState(cfg.train.seed)  # flips and patch positions, as the reference's numpy RNG

    # --- configuration -------------------------------------------------------------------------------
    @classmethod
    def check_config(cls, cfg: Config) -> None:
        super().check_config(cfg)
        o = cls.options(cfg)
        if not cfg.model.generator.startswith("resnet"):
            raise ConfigError(f"model.method={cls.name} compares features of a ResNet generator's layers "
                              f"(method_options.nce_layers): use model.generator=resnet_9blocks or resnet_6blocks")
        n_layers = len(cls._generator(cfg).layers)
        layers = cls._layers(o)
        if not layers or list(layers) != sorted(set(layers)) or layers[0] < 0 or layers[-1] >= n_layers:
            raise ConfigError(f"method_options.nce_layers={o.nce_layers!r} must be ascending layer indices from 0 to "
                              f"{n_layers - 1} of the generator, e.g. 0,4,8,12,16")
        if o.netf not in NETF:
            raise ConfigError(f"method_options.netf={o.netf!r} is not valid; choose one of: {', '.join(NETF)}")
        for name in ("num_patches", "netf_nc"):
            if getattr(o, name) < 1:
                raise ConfigError(f"method_options.{name} must be at least 1, got {getattr(o, name)}")
        if o.nce_t <= 0 or o.lambda_nce < 0:
            raise ConfigError("method_options.nce_t must be > 0 and method_options.lambda_nce >= 0")
        if o.nce_idt and cfg.model.channels_a != cfg.model.channels_b:
            raise ConfigError("method_options.nce_idt feeds target-domain images to the generator: it needs "
                              "model.channels_a == model.channels_b; set method_options.nce_idt=false")

    @staticmethod
    def _layers(o: CUTOptions) -> tuple[int, ...]:
        try:
            return o.layers
        except ValueError:
            raise ConfigError(f"method_options.nce_layers={o.nce_layers!r} must be comma-separated integers, e.g. "
                              "0,4,8,12,16") from None

    @staticmethod
    def _generator(cfg: Config) -> ResnetGenerator:
        c_src, c_tgt = (cfg.model.channels_a, cfg.model.channels_b)
        if cfg.data.direction == "BtoA":
            c_src, c_tgt = c_tgt, c_src
        return generator_from_config(cfg, c_src, c_tgt)

    @classmethod
    def from_config(cls, cfg: Config) -> CUT:
        """G, D (initialised as the reference's init_net), then the heads sized from G's tapped layers."""
        o = cls.options(cfg)
        g = cls._generator(cfg)
        d = discriminator_from_config(cfg, g.out_channels)
        for net in (g, d):
            init_weights(net, cfg.model.init_type, cfg.model.init_gain)
        with torch.no_grad():  # the channels of the tapped layers, from a small probe
            probe = g.encode(torch.zeros(1, g.in_channels, 16, 16), cls._layers(o))
        head = PatchSampler([f.shape[1] for f in probe], netf=o.netf, nc=o.netf_nc)
        init_weights(head, cfg.model.init_type, cfg.model.init_gain)
        return cls(cfg, g, d, head)

    # --- networks ------------------------------------------------------------------------------------
    def networks(self) -> dict[str, nn.Module]:
        return {"g_ab": self.g_ab, "d_b": self.d_b, "nce_head": self.nce_head}

    @property
    def generators(self) -> list[nn.Module]:
        return [self.g_ab, self.nce_head]  # stepped together, as the reference's optimizer_G and optimizer_F

    @property
    def discriminators(self) -> list[nn.Module]:
        return [self.d_b]

    # --- one step ------------------------------------------------------------------------------------
    def translate(self, real_a: torch.Tensor, real_b: torch.Tensor) -> GeneratorOutputs:
        """G's pass of a step and every generator pass PatchNCE needs (so that data-parallel training
        sees them all in one forward): `extra` holds per NCE call the (query, key) rows per layer."""
        o = self.opts
        source, target = (real_a, real_b) if self.forward_direction else (real_b, real_a)
        n = source.shape[0]
        real = torch.cat((source, target), dim=0) if o.nce_idt else source
        flipped = bool(o.flip_equivariance and self.training and self.rng.random_sample() < 0.5)
        if flipped:
            real = torch.flip(real, [3])
        fake = self.g_ab(real)
        fake_t, idt_t = fake[:n], (fake[n:] if o.nce_idt else None)
        extra: dict[str, Any] = {"flipped": flipped}
        if o.lambda_nce > 0:
            extra["nce"] = self._nce_rows(source, fake_t, flipped)
            if o.nce_idt:
                extra["nce_y"] = self._nce_rows(target, idt_t, flipped)
        if self.forward_direction:
            return GeneratorOutputs(fake_b=fake_t, idt_b=idt_t, extra=extra)
        return GeneratorOutputs(fake_a=fake_t, idt_a=idt_t, extra=extra)

    def _nce_rows(self, src: torch.Tensor, tgt: torch.Tensor,
                  flipped: bool) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(query rows of the output, key rows of the input) per layer, at shared positions."""
        layers = self._layers(self.opts)
        feat_q = self.g_ab.encode(tgt, layers)
        if flipped:
            feat_q = [torch.flip(f, [3]) for f in feat_q]
        with torch.no_grad():  # keys are a fixed target: PatchNCE detaches them
            feat_k = self.g_ab.encode(src, layers)
        ids = sample_patch_ids(self.rng, feat_k, self.opts.num_patches)
        with torch.no_grad():
            keys = self.nce_head(feat_k, ids)
        return self.nce_head(feat_q, ids), keys

    def nce_loss(self, queries: list[torch.Tensor], keys: list[torch.Tensor], images: int) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """The mean over layers of lambda_nce * PatchNCE (and the per-layer means before lambda_nce)."""
        o = self.opts
        per_layer = [patch_nce_loss(q.float(), k.float(), images=images, tau=o.nce_t,
                                    all_negatives=o.nce_includes_all_negatives_from_minibatch).mean()
                     for q, k in zip(queries, keys, strict=True)]
        return sum(loss * o.lambda_nce for loss in per_layer) / len(per_layer), per_layer

    def generator_losses(self, real_a: torch.Tensor, real_b: torch.Tensor, t: GeneratorOutputs) -> dict[str, torch.Tensor]:
        o, c = self.opts, self.cfg.loss
        fake = t.fake_b if self.forward_direction else t.fake_a
        n = fake.shape[0]
        losses: dict[str, torch.Tensor] = {}
        total = fake.new_zeros((), dtype=torch.float32)
        if c.lambda_gan > 0:
            losses["g_gan"] = gan_loss(self.d_b(fake), True, c.gan_mode, for_discriminator=False) * c.lambda_gan
            total = total + losses["g_gan"]
        if o.lambda_nce > 0:
            losses["nce"] = self.nce_loss(*t.extra["nce"], n)[0]
            nce = losses["nce"]
            if o.nce_idt:
                losses["nce_y"] = self.nce_loss(*t.extra["nce_y"], n)[0]
                nce = (losses["nce"] + losses["nce_y"]) * 0.5
            total = total + nce
        losses["total"] = total
        return losses

    def discriminator_losses(self, real_a: torch.Tensor, real_b: torch.Tensor, fake_a: torch.Tensor | None,
                             fake_b: torch.Tensor | None) -> dict[str, torch.Tensor]:
        mode = self.cfg.loss.gan_mode
        fake, target = (fake_b, real_b) if self.forward_direction else (fake_a, real_a)
        d_fake = gan_loss(self.d_b(fake.detach()), False, mode)
        d_real = gan_loss(self.d_b(target), True, mode)
        return {"d_fake": d_fake, "d_real": d_real, "total": 0.5 * (d_fake + d_real)}

    def judged_images(self, real_a: torch.Tensor, real_b: torch.Tensor, fake_a: torch.Tensor | None,
                      fake_b: torch.Tensor | None) -> list[tuple[nn.Module, torch.Tensor, torch.Tensor]]:
        return [(self.d_b, real_b, fake_b) if self.forward_direction else (self.d_b, real_a, fake_a)]

    # --- random state --------------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        _, keys, pos, has_gauss, gauss = self.rng.get_state()
        return {"rng": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos), "has_gauss": int(has_gauss),
                        "gauss": float(gauss)}}

    def load_extra_state(self, state: Mapping[str, Any]) -> None:
        r = state.get("rng")
        if r is not None:
            self.rng.set_state(("MT19937", r["keys"].numpy().astype(np.uint32), r["pos"], r["has_gauss"], r["gauss"]))

    def reseed(self, seed: int) -> None:
        self.rng.seed(seed)

    # --- inference and export ------------------------------------------------------------------------
    def translator(self, direction: str) -> nn.Module:
        self.check_direction(direction)
        return with_channels(self.g_ab, self.g_ab.in_channels, self.g_ab.out_channels)

    def export_official(self, folder: Path, *, suffix: str = ".pth") -> list[Path]:
        """`latest_net_G.pth` in the reference's layout (CUT's, with the blur filters; the official
        CycleGAN layout without anti-aliasing)."""
        return write_official_generators({"G": self.g_ab}, folder, suffix=suffix)


@register_method("fastcut")
class FastCUT(CUT):
    """FastCUT: CUT with λ_NCE 10, no NCE identity, and flip-equivariance augmentation."""

    Options = FastCUTOptions
