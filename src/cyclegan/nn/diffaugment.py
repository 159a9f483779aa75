"""Differentiable augmentation (Zhao, Liu, Lin, Zhu, Han, "Differentiable Augmentation for
Data-Efficient GAN Training", NeurIPS 2020): random, differentiable transforms of every image a
discriminator sees, real and generated alike, so that a discriminator trained on few images cannot
memorise them while the generator still gets gradients through the transform.

A policy is a comma-separated list of ops, applied in order, each with fresh random parameters per
image, on images in [-1, 1] (as DiffAugment's reference code):
- `color`: brightness + U(-0.5, 0.5), saturation x U(0, 2) around the pixel's channel mean, contrast
  x U(0.5, 1.5) around the image mean;
- `translation`: a shift of up to 1/8 of each side in each direction, zeros shifted in;
- `cutout`: a square of half of each side set to zero at a random place.

With a strength p < 1 (ADA, Karras et al., "Training Generative Adversarial Networks with Limited
Data", NeurIPS 2020) each op transforms each image with probability p and leaves it as it is
otherwise; `training.ada` adjusts p during training. p = 1 is plain DiffAugment, every op on every
image (the same random draws as without a strength).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def brightness(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)


def saturation(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + mean


def contrast(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by a whole number of pixels, up to `ratio` of its sides, with zeros coming in."""
    b, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(-sx, sx + 1, (b, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1) - dy  # (B, H, 1): the source row of each row
    cols = torch.arange(w, device=x.device).view(1, 1, w) - dx
    valid = ((rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)).unsqueeze(1)  # (B, 1, H, W)
    padded = F.pad(x, (1, 1, 1, 1))  # a zero border to gather from
    r = (rows.clamp(-1, h) + 1).expand(b, h, w)
    c = (cols.clamp(-1, w) + 1).expand(b, h, w)
    index = (r * (w + 2) + c).view(b, 1, h * w).expand(-1, x.shape[1], -1)
    out = padded.flatten(2).gather(2, index).view_as(x)
    return out * valid


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of `ratio` of each side, centred at a random place (partly outside is fine)."""
    b, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (b, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (b, 1, 1), device=x.device)
    rows = torch.arange(h, device=x.device).view(1, h, 1)
    cols = torch.arange(w, device=x.device).view(1, 1, w)
    inside = (rows >= cy - ch // 2) & (rows < cy - ch // 2 + ch) & (cols >= cx - cw // 2) & (cols < cx - cw // 2 + cw)
    return x * (~inside).unsqueeze(1).to(x.dtype)


OPS: dict[str, list[Callable[[torch.Tensor], torch.Tensor]]] = {
    "color": [brightness, saturation, contrast],
    "translation": [translation],
    "cutout": [cutout],
}


def parse_policy(policy: str) -> list[str]:
    """The op names of a policy string; ValueError naming the valid ones for an unknown op."""
    names = [p.strip() for p in policy.split(",") if p.strip()]
    unknown = [n for n in names if n not in OPS]
    if unknown:
        raise ValueError(f"unknown DiffAugment op {unknown[0]!r}; choose from: {', '.join(OPS)}")
    return names


@dataclass
class Strength:
    """The probability p with which each op transforms each image (1: always, DiffAugment)."""

    p: float = 1.0


def diff_augment(x: torch.Tensor, policy: str, p: float = 1.0) -> torch.Tensor:
    """`x` (B, C, H, W) in [-1, 1] through the policy's ops, each image with its own random parameters;
    with p < 1 each op reaches each image with probability p (ADA's strength)."""
    if p <= 0:
        return x
    for name in parse_policy(policy):
        for op in OPS[name]:
            if p >= 1:
                x = op(x)
            else:
                chosen = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < p
                x = torch.where(chosen, op(x), x)
    return x


def augment_inputs(discriminators: list[nn.Module], policy: str, strength: Strength | None = None) -> list:
    """Make every forward of these discriminators see its input through `policy` (a forward
    pre-hook: parameter names, checkpoints and the callers stay as they are), at `strength.p` as it
    is at each call (default: always). Returns the hook handles (`.remove()` undoes it)."""
    parse_policy(policy)
    strength = strength if strength is not None else Strength()
    return [d.register_forward_pre_hook(lambda module, args: (diff_augment(args[0], policy, strength.p), *args[1:]))
            for d in discriminators]
