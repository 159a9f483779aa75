"""Translation with a trained CoGAN by latent search (CycleGAN paper, Sec. 5.1.3): "Translation from X
to Y is achieved by finding a latent representation that generates image X, and then rendering this
latent representation into style Y."

For each input image x of domain a, z* = argmin_z |G_a(z) - x|_1 (Adam from `restarts` random
starting points, `steps` steps each; the best fit is kept), and the translation is G_b(z*). This costs
`steps` forward and backward passes of the generator per image and starting point: translation is
hundreds of times slower than a CycleGAN generator's single pass.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .cogan import DOMAINS, CoupledGenerator

DIRECTIONS = {"AtoB": ("a", "b"), "BtoA": ("b", "a")}


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


class CoGANTranslator(nn.Module):
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
        if direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {direction!r}; choose one of: {', '.join(DIRECTIONS)}")
        self.generator = generator
        self.direction = direction
        self.source, self.target = DIRECTIONS[direction]
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
