"""Adaptive augmentation strength (`loss.ada_target`), after ADA (Karras et al., "Training Generative
Adversarial Networks with Limited Data", NeurIPS 2020, Sec. 3).

The discriminators see every image through the `loss.diffaugment` ops, each op applied to each image
with probability p (`nn.diffaugment.Strength`). Every `loss.ada_interval` steps the discriminators
judge the step's real images once more (no gradient, augmented as in training) and

    r = E[sign(D(real) - midpoint)]

over every patch of every discriminator measures how sure they are of the reals: near 1, they have
learnt the training images (ADA's overfitting heuristic r_t). When r is above `loss.ada_target`
(ADA: 0.6) p grows, below it p shrinks, by (images since the last adjustment) / `loss.ada_images`,
within [0, 1]; p starts at 0. The midpoint lies between the losses' targets: 0.5 for lsgan (targets 1
and 0), 0 for the logits of vanilla and hinge and for a wgangp critic. p is checkpointed (exact resume)
and logged as `ada_p`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from ..config import LossConfig
from ..nn.diffaugment import Strength


class AdaptiveAugment:
    """ADA's controller of the augmentation probability `strength.p`."""

    def __init__(self, loss: LossConfig, strength: Strength) -> None:
        self.strength = strength
        self.strength.p = 0.0
        self.target = loss.ada_target
        self.interval = loss.ada_interval
        self.images = loss.ada_images
        self.midpoint = 0.5 if loss.gan_mode == "lsgan" else 0.0
        self.last_r = float("nan")  # the last measured r (nan before the first adjustment)

    @property
    def p(self) -> float:
        return self.strength.p

    def due(self, step: int) -> bool:
        """Adjust after this (1-based) step?"""
        return step % self.interval == 0

    @torch.no_grad()
    def sign_statistic(self, judged: Sequence[tuple[nn.Module, torch.Tensor]]) -> torch.Tensor:
        """r = E[sign(D(real) - midpoint)] over every output of every (discriminator, its real images),
        a 0-d float32 tensor (on the images' device: no sync until it is read)."""
        signs = [torch.sign(d(real).float() - self.midpoint).flatten() for d, real in judged]
        return torch.cat(signs).mean()

    def adjust(self, r: float, images: int) -> None:
        """Move p towards more augmentation when r > target, less when r < target, by `images` (seen
        since the last adjustment) / `loss.ada_images`."""
        self.last_r = r
        step = images / self.images
        if r > self.target:
            self.strength.p = min(1.0, self.strength.p + step)
        elif r < self.target:
            self.strength.p = max(0.0, self.strength.p - step)

    def update(self, judged: Sequence[tuple[nn.Module, torch.Tensor]], images: int,
               reduce: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        """Measure r on `judged` (averaged over ranks with `reduce`) and adjust p."""
        r = self.sign_statistic(judged)
        self.adjust(float((reduce(r) if reduce is not None else r).item()), images)

    def state_dict(self) -> dict[str, Any]:
        return {"p": self.strength.p, "last_r": self.last_r}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.strength.p = float(state["p"])
        self.last_r = float(state.get("last_r", float("nan")))
