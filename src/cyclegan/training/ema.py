"""An exponential moving average of a method's generator weights (`train.ema`), as StarGAN v2 and
UVCGAN2 keep one: after each step, ema = m * ema + (1 - m) * weights (a copy until `train.ema_start`).

The average is kept in float32 (also under mixed precision), checkpointed (`ema` in the checkpoint:
one state dict per generator network) and resumed exactly. Samples, periodic evaluation and the final
export use it; translators loaded from a checkpoint use it unless asked for the raw weights
(`inference.loading.method_from_checkpoint(..., ema=False)`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class GeneratorEMA:
    """The moving average of the networks of `model.networks()` that are among `model.generators`."""

    def __init__(self, model: nn.Module, momentum: float, start_step: int = 0) -> None:
        if not 0 < momentum < 1:
            raise ValueError(f"the EMA momentum must lie in (0, 1), got {momentum}")
        nets = model.networks()
        self.names = [n for n, m in nets.items() if any(m is g for g in model.generators)]
        self.momentum, self.start_step = momentum, start_step
        self.shadow = {n: {k: v.detach().float().clone() for k, v in nets[n].state_dict().items()} for n in self.names}

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Fold the weights after `step` (1-based) into the average."""
        nets = model.networks()
        copy = step <= self.start_step
        for name in self.names:
            shadow = self.shadow[name]
            floats, targets = [], []
            for k, v in nets[name].state_dict().items():
                if copy or not v.is_floating_point():
                    shadow[k].copy_(v)
                else:
                    floats.append(shadow[k])
                    targets.append(v.float())
            if floats:
                torch._foreach_lerp_(floats, targets, 1.0 - self.momentum)

    def state_dict(self) -> dict[str, dict[str, torch.Tensor]]:
        return {n: {k: v.clone() for k, v in sd.items()} for n, sd in self.shadow.items()}

    def load_state_dict(self, state: dict[str, dict[str, torch.Tensor]]) -> None:
        for name in self.names:
            for k, v in state[name].items():
                self.shadow[name][k].copy_(v)

    @contextlib.contextmanager
    def applied(self, model: nn.Module) -> Iterator[None]:
        """The average in the generators for the block (samples, evaluation); the raw weights after."""
        nets = model.networks()
        raw = {n: {k: v.detach().clone() for k, v in nets[n].state_dict().items()} for n in self.names}
        try:
            for n in self.names:
                nets[n].load_state_dict(self.shadow[n])
            yield
        finally:
            for n in self.names:
                nets[n].load_state_dict(raw[n])
