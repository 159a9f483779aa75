"""Building blocks shared by the generators and discriminators: the norm factory and weight init.

Matches the official implementation's `get_norm_layer` and `init_weights` (models/networks.py).
"""

from __future__ import annotations

import functools
from typing import Callable

import torch
from torch import nn
from torch.nn.utils import parametrize

NormFactory = Callable[[int], nn.Module]


def in_float32(forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """`forward(x)` in float32 even inside an autocast region (plain `forward(x)` outside one)."""
    if not torch.is_autocast_enabled(x.device.type):
        return forward(x)
    with torch.autocast(x.device.type, enabled=False):
        return forward(x.float())


class OutputConv2d(nn.Conv2d):
    """A generator's last convolution, always in float32: under autocast the output image would
    otherwise be rounded to bf16/fp16 before tanh. It is a small share of the work (3 output
    channels). Same parameters and keys as `nn.Conv2d`.

    The norms stay in the autocast precision on purpose: normalising in float32 as well made bf16
    training on maps diverge to NaN after 360 steps (measured; the gradient at a generator's output
    jumped from 1e-2 to 1e33 in one step, most likely instance norm's up-to-1/sqrt(eps) gradient
    scaling on channels that bf16 rounding had made exactly constant, compounding over the layers)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return in_float32(super().forward, x)


class OutputConvTranspose2d(nn.ConvTranspose2d):
    """The U-Net's last (transposed) convolution, always in float32 (see `OutputConv2d`)."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        return in_float32(lambda t: super(OutputConvTranspose2d, self).forward(t, output_size), x)


NORMS: dict[str, NormFactory] = {
    "instance": functools.partial(nn.InstanceNorm2d, affine=False, track_running_stats=False),
    "batch": functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True),
    "syncbatch": functools.partial(nn.BatchNorm2d, affine=True, track_running_stats=True),
    "none": lambda channels: nn.Identity(),
}


def norm_layer(name: str) -> NormFactory:
    """Return a constructor `channels -> nn.Module` for the named normalisation.

    instance: InstanceNorm2d without affine parameters or running statistics (the paper's choice);
    batch: BatchNorm2d with affine parameters and running statistics; syncbatch: the same layer,
    converted to SyncBatchNorm by data-parallel training (statistics over all ranks); none: identity.
    """
    if name not in NORMS:
        raise ValueError(f"unknown norm {name!r}; choose one of: {', '.join(NORMS)}")
    return NORMS[name]


def conv_bias(norm: str) -> bool:
    """Whether a conv followed by this norm gets a bias.

    The official code gives convs a bias only before instance norm (batch norm has its own shift).
    With norm "none" the official code also omits it; we keep that for weight compatibility.
    """
    return norm == "instance"


# Weight initialisations by name: (weight, gain) -> None, in place.
INITS: dict[str, Callable[[torch.Tensor, float], object]] = {
    "normal": lambda w, gain: nn.init.normal_(w, 0.0, gain),
    "xavier": lambda w, gain: nn.init.xavier_normal_(w, gain=gain),
    "kaiming": lambda w, gain: nn.init.kaiming_normal_(w, a=0, mode="fan_in"),
    "orthogonal": lambda w, gain: nn.init.orthogonal_(w, gain=gain),
}


def init_weights(net: nn.Module, init_type: str = "normal", gain: float = 0.02) -> nn.Module:
    """Initialise conv/linear weights and zero their biases; batch-norm weights ~ N(1, gain).

    The paper trains from weights drawn from N(0, 0.02) (Appendix 7.1).
    """
    if init_type not in INITS:
        raise ValueError(f"unknown init {init_type!r}; choose one of: {', '.join(INITS)}")
    init = INITS[init_type]

    @torch.no_grad()
    def init_module(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            # a spectrally normalised weight is computed from its `original`: initialise that
            init(m.parametrizations.weight.original if parametrize.is_parametrized(m, "weight") else m.weight, gain)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, gain)
            nn.init.zeros_(m.bias)

    net.apply(init_module)
    return net


def with_channels(net: nn.Module, in_channels: int, out_channels: int) -> nn.Module:
    """`net` tagged with the image channels it reads and writes (what loaders and translators check)."""
    net.in_channels, net.out_channels = in_channels, out_channels
    return net


def with_spectral_norm(net: nn.Module) -> nn.Module:
    """Every convolution of `net` spectrally normalised (Miyato et al. 2018: its weight divided by an
    estimate of its largest singular value, one power iteration per forward in train mode)."""
    for module in list(net.modules()):
        if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.utils.parametrizations.spectral_norm(module)
    return net
