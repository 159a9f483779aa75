"""The training objectives by `model.method`: CycleGAN and the baselines that need other networks.

Each is an `nn.Module` holding its networks, with the interface `training.step.train_step` uses:
`networks()` (name -> module, what a checkpoint stores), `generators` / `discriminators` (what each
optimiser updates), `translate`, `generator_losses`, `discriminator_losses`, `loss_cfg` and
`discriminator_first` (which network steps first).
"""

from __future__ import annotations

from torch import nn

from .baselines import BiGAN, Pix2Pix
from .config import LossConfig, ModelConfig
from .cyclegan import CycleGAN

METHODS = {"cyclegan": CycleGAN, "pix2pix": Pix2Pix, "bigan": BiGAN}


def build_model(model: ModelConfig, loss: LossConfig) -> nn.Module:
    """The objective `model.method` names, with freshly initialised networks."""
    if model.method not in METHODS:
        raise ValueError(f"unknown model.method {model.method!r}; choose one of: {', '.join(METHODS)}")
    return METHODS[model.method].from_config(model, loss)
