"""The CycleGAN objective (paper Sec. 3): four networks in, loss dictionaries out.

Names: `g_ab` is the paper's G: X->Y (official G_A), `g_ba` is F: Y->X (official G_B), `d_a` is
D_X and judges domain A (official D_B), `d_b` is D_Y and judges domain B (official D_A).
No optimiser, no device handling: the trainer owns those.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..config import Config, ConfigError
from ..losses import cycle_loss, feature_loss, gan_loss, gradient_penalty, identity_loss
from ..nn import init_weights, with_channels
from ..nn.features import check_layers
from .base import (
    GeneratorOutputs, Method, discriminator_from_config, generator_from_config, write_official_generators,
)
from .registry import register_method

# Our loss names -> the names the official code logs (used to compare against its logs).
OFFICIAL_LOSS_NAMES = {
    "d_b": "D_A", "g_ab": "G_A", "cycle_a": "cycle_A", "idt_ab": "idt_A",
    "d_a": "D_B", "g_ba": "G_B", "cycle_b": "cycle_B", "idt_ba": "idt_B",
}


@register_method("cyclegan")
class CycleGAN(Method):
    """Holds g_ab, g_ba, d_a, d_b and computes the generator and discriminator losses."""

    discriminator_first = False  # the official order: update G, then D (on pooled fakes)
    loss_terms = ("lambda_identity", "lambda_self_reg", "lambda_feature")
    merges_passes = True
    regularizable = True

    def __init__(self, cfg: Config, g_ab: nn.Module, g_ba: nn.Module, d_a: nn.Module, d_b: nn.Module, *,
                 features: nn.Module | None = None) -> None:
        """`features`: the frozen network phi of the feature loss (`nn.features.FeatureExtractor`
        returning `loss.feature_layer`); None builds it from the config when the loss first needs it."""
        super().__init__(cfg)
        self.g_ab, self.g_ba, self.d_a, self.d_b = g_ab, g_ba, d_a, d_b
        self.loss_cfg = cfg.loss
        # Not a submodule: never trained, not in state_dict() (so not in checkpoints), not wrapped by
        # DDP or compiled; `feature_extractor` moves it to the images' device.
        object.__setattr__(self, "_features", features)

    @classmethod
    def check_config(cls, cfg: Config) -> None:
        super().check_config(cfg)
        if cfg.loss.lambda_identity > 0 and cfg.model.channels_a != cfg.model.channels_b:
            raise ConfigError("loss.lambda_identity feeds B images to the A -> B generator: it needs model.channels_a "
                              "== model.channels_b; set loss.lambda_identity=0 for domains with other channels")
        if cfg.loss.lambda_self_reg > 0 and cfg.model.channels_a != cfg.model.channels_b:
            raise ConfigError("loss.lambda_self_reg compares an image with its translation: it needs "
                              "model.channels_a == model.channels_b")
        if cfg.loss.lambda_feature > 0:
            try:
                check_layers(cfg.loss.feature_network, [cfg.loss.feature_layer])
            except ValueError as e:
                raise ConfigError(f"loss.feature_network / loss.feature_layer: {e}") from None
        if cfg.train.merge_passes and cfg.model.norm in ("batch", "syncbatch"):
            raise ConfigError("train.merge_passes cannot be used with model.norm=batch (batch statistics would mix "
                              "the merged inputs); use instance norm or turn merge_passes off")

    @classmethod
    def from_config(cls, cfg: Config) -> CycleGAN:
        """Build the four networks and initialise them as the official `init_net` does."""
        model = cfg.model
        ca, cb = model.channels_a, model.channels_b
        nets = [generator_from_config(cfg, ca, cb), generator_from_config(cfg, cb, ca),
                discriminator_from_config(cfg, ca), discriminator_from_config(cfg, cb)]
        for net in nets:
            init_weights(net, model.init_type, model.init_gain)
        return cls(cfg, *nets)

    def networks(self) -> dict[str, nn.Module]:
        """The trained networks by checkpoint name."""
        return {"g_ab": self.g_ab, "g_ba": self.g_ba, "d_a": self.d_a, "d_b": self.d_b}

    @property
    def generators(self) -> list[nn.Module]:
        return [self.g_ab, self.g_ba]

    @property
    def discriminators(self) -> list[nn.Module]:
        return [self.d_a, self.d_b]

    def judged_images(self, real_a: torch.Tensor, real_b: torch.Tensor, fake_a: torch.Tensor | None,
                      fake_b: torch.Tensor | None) -> list[tuple[nn.Module, torch.Tensor, torch.Tensor]]:
        return [(self.d_a, real_a, fake_a), (self.d_b, real_b, fake_b)]

    def feature_extractor(self, device: torch.device) -> nn.Module:
        """The feature loss's frozen network on `device`, built from the loss config (reading or
        downloading its weights) the first time it is needed."""
        features = self._features
        if features is None:
            from ..weights import load_feature_extractor  # lazy: may download weights

            c = self.loss_cfg
            features = load_feature_extractor(c.feature_network, (c.feature_layer,), weights=c.feature_weights)
        features = features.to(device)
        object.__setattr__(self, "_features", features)
        return features

    def translate(self, real_a: torch.Tensor, real_b: torch.Tensor) -> GeneratorOutputs:
        """G(a), F(G(a)), F(b), G(F(b)) and, with identity loss on, G(b) and F(a); merged passes
        (`train.merge_passes`) when the config asks for them and they apply."""
        if self.cfg.train.merge_passes:
            return self.translate_merged(real_a, real_b)
        return self.translate_separately(real_a, real_b)

    def translate_separately(self, real_a: torch.Tensor, real_b: torch.Tensor) -> GeneratorOutputs:
        """`translate` with one generator pass per image (6 passes with identity loss, else 4)."""
        # This call order fixes autograd's gradient accumulation order: keep it as the official one,
        # so that float32 results match it to the last bit.
        fake_b = self.g_ab(real_a)
        rec_a = self.g_ba(fake_b)
        fake_a = self.g_ba(real_b)
        rec_b = self.g_ab(fake_a)
        out = GeneratorOutputs(fake_b=fake_b, rec_a=rec_a, fake_a=fake_a, rec_b=rec_b)
        if self.loss_cfg.lambda_identity > 0:
            # A -> B generator fed a B image should leave it unchanged, and vice versa.
            out.idt_b, out.idt_a = self.g_ab(real_b), self.g_ba(real_a)
        return out

    def translate_merged(self, real_a: torch.Tensor, real_b: torch.Tensor) -> GeneratorOutputs:
        """`translate`, with each generator run once per stage on the concatenation of its inputs:
        G on (a, b) gives G(a) and the identity G(b), F on (b, a) gives F(b) and F(a). Instance norm
        and the convolutions treat batch items independently, so the maths is that of `translate`
        (the float rounding of a batched convolution differs slightly); 4 generator passes instead of
        6. Falls back to the separate passes when the domains' tensors differ in shape or identity
        loss is off, and it must not be used with batch norm (batch statistics would mix the inputs).
        """
        if self.loss_cfg.lambda_identity <= 0 or real_a.shape != real_b.shape:
            return self.translate_separately(real_a, real_b)
        n = real_a.shape[0]
        fake_b, idt_b = self.g_ab(torch.cat([real_a, real_b])).split(n)
        fake_a, idt_a = self.g_ba(torch.cat([real_b, real_a])).split(n)
        rec_a = self.g_ba(fake_b)
        rec_b = self.g_ab(fake_a)
        return GeneratorOutputs(fake_b=fake_b, rec_a=rec_a, fake_a=fake_a, rec_b=rec_b, idt_b=idt_b, idt_a=idt_a)

    def generator_losses(self, real_a: torch.Tensor, real_b: torch.Tensor, t: GeneratorOutputs) -> dict[str, torch.Tensor]:
        """Adversarial (x lambda_gan) + cycle (+ identity, + self-regularisation, + feature) losses of both
        generators; "total" is their sum. A weight of 0 leaves its term out.

        The discriminators should be frozen (requires_grad False) by the caller.
        """
        c, mode = self.loss_cfg, self.loss_cfg.gan_mode
        losses = {}
        if c.lambda_identity > 0:
            losses["idt_ab"] = identity_loss(t.idt_b, real_b, c.lambda_b * c.lambda_identity)
            losses["idt_ba"] = identity_loss(t.idt_a, real_a, c.lambda_a * c.lambda_identity)
        if c.lambda_gan > 0:
            losses["g_ab"] = gan_loss(self.d_b(t.fake_b), True, mode, for_discriminator=False)
            losses["g_ba"] = gan_loss(self.d_a(t.fake_a), True, mode, for_discriminator=False)
            if c.lambda_gan != 1:
                losses["g_ab"], losses["g_ba"] = losses["g_ab"] * c.lambda_gan, losses["g_ba"] * c.lambda_gan
        losses["cycle_a"] = cycle_loss(t.rec_a, real_a, c.lambda_a)
        losses["cycle_b"] = cycle_loss(t.rec_b, real_b, c.lambda_b)
        if c.lambda_self_reg > 0:  # SimGAN's self-regularisation: the translation stays close to its input
            losses["self_ab"] = identity_loss(t.fake_b, real_a, c.lambda_self_reg)
            losses["self_ba"] = identity_loss(t.fake_a, real_b, c.lambda_self_reg)
        if c.lambda_feature > 0:  # the paper's "feature loss + GAN" baseline: SimGAN's L1 on deep features
            phi, layer = self.feature_extractor(real_a.device), c.feature_layer
            losses["feat_ab"] = feature_loss(phi(t.fake_b)[layer], phi(real_a)[layer], c.lambda_feature)
            losses["feat_ba"] = feature_loss(phi(t.fake_a)[layer], phi(real_b)[layer], c.lambda_feature)
        # Summed in the official order (same float32 rounding).
        order = ("g_ab", "g_ba", "cycle_a", "cycle_b", "idt_ab", "idt_ba", "self_ab", "self_ba", "feat_ab", "feat_ba")
        losses["total"] = sum((losses[k] for k in order if k in losses), torch.zeros((), device=real_a.device))
        return losses

    def discriminator_loss(self, d: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        """0.5 * (loss(D(real), real) + loss(D(fake), fake)) [+ gradient penalty for wgangp]."""
        mode = self.loss_cfg.gan_mode
        loss = 0.5 * (gan_loss(d(real), True, mode) + gan_loss(d(fake.detach()), False, mode))
        if mode == "wgangp":
            loss = loss + gradient_penalty(d, real, fake, weight=self.loss_cfg.lambda_gp)
        return loss

    def discriminator_losses(
        self, real_a: torch.Tensor, real_b: torch.Tensor, fake_a: torch.Tensor, fake_b: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Losses of d_a (real A vs fake A) and d_b (real B vs fake B); fakes come from the pools."""
        d_b = self.discriminator_loss(self.d_b, real_b, fake_b)
        d_a = self.discriminator_loss(self.d_a, real_a, fake_a)
        return {"d_b": d_b, "d_a": d_a, "total": d_a + d_b}

    def translator(self, direction: str) -> nn.Module:
        self.check_direction(direction)
        ca, cb = self.cfg.model.channels_a, self.cfg.model.channels_b
        return with_channels(self.g_ab, ca, cb) if direction == "AtoB" else with_channels(self.g_ba, cb, ca)

    def export_official(self, folder: Path, *, suffix: str = ".pth") -> list[Path]:
        """`latest_net_G_A.pth` is A->B (the paper's G), `latest_net_G_B.pth` is B->A (F)."""
        return write_official_generators({"G_A": self.g_ab, "G_B": self.g_ba}, folder, suffix=suffix)

