"""CoGAN's networks (Liu & Tuzel, NIPS 2016), the CycleGAN paper's baseline of Sec. 5.1.3, and
translation with them by latent search.

- `CoupledGenerator`: z -> shared transposed-conv layers (the high-level "shared latent
  representation") -> one domain-specific head per domain -> an image of A and an image of B.
- `CoupledDiscriminator`: domain-specific first layers -> shared last layers -> one logit per image.
- `latent_search` / `LatentSearchTranslator`: "Translation from X to Y is achieved by finding a
  latent representation that generates image X, and then rendering this latent representation into
  style Y." For each input x of domain a, z* = argmin_z |G_a(z) - x|_1 (Adam from `restarts` random
  starting points, `steps` steps each; the best fit is kept), and the translation is G_b(z*): hundreds
  of generator passes per image.

The networks are DCGAN-style (Radford et al. 2016; the CoGAN paper's architecture): 4x4 transposed
convs with batch norm and ReLU up from 4x4, and 4x4 strided convs with leaky ReLU down to 4x4. Names
map to the paper's: `head_a` / `head_b` are the last layers of g_1 / g_2, `stem_a` / `stem_b` the first
layers of f_1 / f_2. The objective is `methods.cogan`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DOMAINS = ("a", "b")
MAX_WIDTH_FACTOR = 8  # layer widths are capped at 8 x ngf / ndf, as in DCGAN and the CycleGAN PatchGAN
SEARCH_DIRECTIONS = {"AtoB": ("a", "b"), "BtoA": ("b", "a")}


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


def build_cogan(*, size: int, nz: int, ngf: int, ndf: int, private_layers: int, channels_a: int, channels_b: int,
                seed: int) -> tuple[CoupledGenerator, CoupledDiscriminator]:
    """The coupled generator and discriminator, DCGAN-initialised from `seed` (on the CPU)."""
    common = {"size": size, "private_layers": private_layers, "channels_a": channels_a, "channels_b": channels_b}
    g = torch.Generator().manual_seed(seed)
    gen = init_dcgan(CoupledGenerator(nz=nz, ngf=ngf, **common), g)
    disc = init_dcgan(CoupledDiscriminator(ndf=ndf, **common), g)
    return gen, disc



def latent_search(
    generator: CoupledGenerator, x: torch.Tensor, domain: str, *, steps: int = 200, restarts: int = 1,
    lr: float = 0.05, seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The latent codes whose `domain` renderings fit the images `x` best in L1.

    Args:
        x: (B, C, size, size) images in [-1, 1] of `domain` ("a" or "b").
        steps: Adam steps per starting point (0: the best of the random starting points).
        restarts: starting points per image, drawn from N(0, 1) with `seed`.

    Returns:
        z (B, nz) and its per-image L1 error (B,) (mean absolute difference, in [-1, 1] units).
        The generator runs in eval mode (batch norm with its running statistics, so that each
        image's search is independent of the others); its weights, statistics, gradients and mode are
        left as they were.
    """
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}; choose one of: {', '.join(DOMAINS)}")
    shape = (generator.channels[domain], generator.size, generator.size)
    if x.dim() != 4 or tuple(x.shape[1:]) != shape:
        raise ValueError(f"expected (B, {', '.join(map(str, shape))}) images of domain {domain}, got shape {tuple(x.shape)}")
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    try:
        return _search(generator, x, domain, steps, restarts, lr, seed, device)
    finally:
        generator.train(was_training)


def _search(generator: CoupledGenerator, x: torch.Tensor, domain: str, steps: int, restarts: int, lr: float,
            seed: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    b = x.shape[0]
    # Works under an outer torch.inference_mode() / no_grad() (evaluation, translate_tensor).
    with torch.inference_mode(False), torch.enable_grad():
        target = x.detach().clone().to(device).repeat(restarts, 1, 1, 1)  # (R * B, C, S, S), restart-major
        noise = torch.Generator().manual_seed(seed)
        z = torch.randn(restarts * b, generator.nz, generator=noise).to(device).requires_grad_(True)
        opt = torch.optim.Adam([z], lr=lr)
        for _ in range(steps):
            err = (generator.render(z, domain) - target).abs().flatten(1).mean(1)  # (R * B,)
            (z.grad,) = torch.autograd.grad(err.sum(), [z])  # summed: each code gets its own image's gradient
            opt.step()
        with torch.no_grad():
            err = (generator.render(z, domain) - target).abs().flatten(1).mean(1).view(restarts, b)
            best = err.argmin(0)  # (B,)
            z = z.detach().view(restarts, b, -1)[best, torch.arange(b, device=device)]
    return z, err.gather(0, best[None]).squeeze(0)


class LatentSearchTranslator(nn.Module):
    """A CoGAN generator used like a CycleGAN generator for one direction: `forward(x)` takes
    (B, C_in, H, W) images in [-1, 1] and returns their translations (B, C_out, H, W).

    Images of another size than the CoGAN's square `size` are resized to it (bilinear, antialiased)
    for the search, and the translation is resized back to H x W: CoGAN renders fixed-size squares, so
    details finer than `size` are lost and non-square images are squeezed. Works with
    `evaluation.evaluate_generators`, `inference.translate_tensor` and `translate_paths` (attributes
    `in_channels`, `out_channels`, `size_multiple`).
    """

    def __init__(self, generator: CoupledGenerator, direction: str = "AtoB", *, steps: int = 200, restarts: int = 1,
                 lr: float = 0.05, seed: int = 0) -> None:
        super().__init__()
        if direction not in SEARCH_DIRECTIONS:
            raise ValueError(f"unknown direction {direction!r}; choose one of: {', '.join(SEARCH_DIRECTIONS)}")
        self.generator = generator
        self.direction = direction
        self.source, self.target = SEARCH_DIRECTIONS[direction]
        self.steps, self.restarts, self.lr, self.seed = steps, restarts, lr, seed
        self.in_channels = generator.channels[self.source]
        self.out_channels = generator.channels[self.target]
        self.size_multiple = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected (B, {self.in_channels}, H, W) images for {self.direction}, got shape {tuple(x.shape)}")
        h, w = x.shape[-2:]
        size = self.generator.size
        if (h, w) != (size, size):
            x = F.interpolate(x.float(), size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        z, _ = latent_search(self.generator, x, self.source, steps=self.steps, restarts=self.restarts, lr=self.lr,
                             seed=self.seed)
        y = self.generator.render(z, self.target)  # (B, C_out, size, size)
        if (h, w) != (size, size):
            y = F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False, antialias=True).clamp(-1, 1)
        return y

    def extra_repr(self) -> str:
        return f"{self.direction}, steps={self.steps}, restarts={self.restarts}, lr={self.lr}"
