"""Key mapping between our module names and the official implementation's state dicts.

The official networks are flat or recursively nested `nn.Sequential`s (`model.10.conv_block.5`,
`model.model.1.model.3...`); ours name their parts. Each network class has a table
`our module prefix -> official module prefix`, used in both directions: to load official weights
(pretrained files, the golden fixtures) and to export ours for people who use the official code.
CUT's networks (taesungp/contrastive-unpaired-translation) use the same flat `model.N` scheme, with
their anti-aliasing layers (and their `filt` buffers) in the sequence: an anti-aliased ResNet or
PatchGAN maps to CUT's layout the same way. Resize-convolution layouts and anti-aliased U-Nets have
no reference layout.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from .discriminators import NLayerDiscriminator, PixelDiscriminator
from .generators import ResnetGenerator, UnetGenerator

# InstanceNorm running statistics carried by the officially released files (saved by old PyTorch).
_INSTANCE_NORM_STATS = ("running_mean", "running_var", "num_batches_tracked")


def _resnet_table(net: ResnetGenerator) -> dict[str, str]:
    if net.upsample == "resize":
        raise TypeError("no official layout is known for a ResnetGenerator with upsample='resize'")
    first = len(net.encoder)  # the first block's index: 10, or 12 with CUT's anti-aliased downsampling
    table = {f"encoder.{i}": f"model.{i}" for i in range(first)}
    for b, block in enumerate(net.blocks):
        has_dropout = isinstance(block.body[4], nn.Dropout)
        for k in range(len(block.body)):
            # Without dropout the official block has no slot 4, so later layers shift down by one.
            official_k = k if has_dropout or k < 4 else k - 1
            table[f"blocks.{b}.body.{k}"] = f"model.{first + b}.conv_block.{official_k}"
    offset = first + net.n_blocks
    table.update({f"decoder.{j}": f"model.{offset + j}" for j in range(len(net.decoder))})
    return table


def _unet_table(net: UnetGenerator) -> dict[str, str]:
    if (net.downsample, net.upsample) != ("conv", "transpose"):
        raise TypeError("no official layout is known for an anti-aliased or resize-convolution UnetGenerator")

    def prefix(depth: int) -> str:  # module path of the official block at this depth
        return "model.model." if depth == 0 else "model.model.1.model." + "3.model." * (depth - 1)

    n = net.num_downs
    table = {"downs.0.0": "model.model.0", "ups.0.1": "model.model.3"}
    for d in range(1, n):
        p = prefix(d)
        table[f"downs.{d}.1"] = f"{p}1"
        if d < n - 1:
            table.update({f"downs.{d}.2": f"{p}2", f"ups.{d}.1": f"{p}5", f"ups.{d}.2": f"{p}6"})
        else:  # innermost: [LeakyReLU, conv, ReLU, convT, norm]
            table.update({f"ups.{d}.1": f"{p}3", f"ups.{d}.2": f"{p}4"})
    return table


def official_table(net: nn.Module) -> dict[str, str]:
    """`our module prefix -> official module prefix` for a network built by this package."""
    if isinstance(net, ResnetGenerator):
        return _resnet_table(net)
    if isinstance(net, UnetGenerator):
        return _unet_table(net)
    if isinstance(net, NLayerDiscriminator):
        return {f"model.{i}": f"model.{i}" for i in range(len(net.model))}
    if isinstance(net, PixelDiscriminator):  # the official attribute is `net`
        return {f"model.{i}": f"net.{i}" for i in range(len(net.model))}
    raise TypeError(f"no official layout is known for {type(net).__name__}")


def has_official_layout(net: nn.Module) -> bool:
    """Whether `official_table` knows `net` (so that `to_official` can export it)."""
    try:
        official_table(net)
    except TypeError:
        return False
    return True


def _split(key: str) -> tuple[str, str]:
    module, _, param = key.rpartition(".")
    return module, param


def to_official(net: nn.Module) -> dict[str, torch.Tensor]:
    """Our state dict under the official key names (loadable by the official code)."""
    table = official_table(net)
    out = {}
    for key, value in net.state_dict().items():
        module, param = _split(key)
        out[f"{table[module]}.{param}"] = value
    return out


def from_official(net: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an official state dict to our keys for `net`, checking every key and shape.

    Accepts a `module.` prefix (DataParallel) and the InstanceNorm running-statistic keys of the
    released files (dropped). Raises ValueError naming the first keys that do not fit.
    """
    inverse = {v: k for k, v in official_table(net).items()}
    ours = net.state_dict()
    renamed: dict[str, torch.Tensor] = {}
    unexpected = []
    for key, value in state_dict.items():
        if key.startswith("module."):
            key = key[len("module."):]
        module, param = _split(key)
        if module not in inverse:
            unexpected.append(key)
            continue
        new_key = f"{inverse[module]}.{param}"
        if new_key not in ours:
            if param in _INSTANCE_NORM_STATS:
                continue  # statistics of an InstanceNorm that does not track them: unused
            unexpected.append(key)
            continue
        if tuple(value.shape) != tuple(ours[new_key].shape):
            raise ValueError(
                f"shape mismatch for {key}: file has {tuple(value.shape)}, the network expects "
                f"{tuple(ours[new_key].shape)} (wrong width, channels or architecture?)"
            )
        renamed[new_key] = value
    missing = sorted(set(ours) - set(renamed))
    if unexpected or missing:
        raise ValueError(
            f"the state dict does not fit {type(net).__name__}: "
            f"unexpected keys {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}, "
            f"missing keys {missing[:5]}{'...' if len(missing) > 5 else ''}"
        )
    return renamed


def load_official(net: nn.Module, state_dict: Mapping[str, torch.Tensor]) -> nn.Module:
    """Load official weights into `net` (strict, shape-checked) and return it."""
    net.load_state_dict(from_official(net, state_dict), strict=True)
    return net
