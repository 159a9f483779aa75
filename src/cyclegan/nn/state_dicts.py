"""Checks of pretrained state dicts before a strict load: one message naming what is wrong."""

from __future__ import annotations

from collections.abc import Mapping

import torch


class WeightsError(ValueError):
    """A file or state dict is not the weights it should be; the message names it and what is wrong."""


def check_keys_and_shapes(
    state: Mapping[str, object], expected: Mapping[str, torch.Tensor], *, what: str, network: str,
    error: type[Exception] = WeightsError,
) -> None:
    """Raise `error` unless `state` has exactly the keys of `expected`, each a tensor of its shape, and
    floating point where `expected` is.

    Args:
        what: the file or dict being checked, for the message ("the file x.pth").
        network: what it should hold, for the message ("the vgg16 weights").
    """
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise error(
            f"{what} is not {network}: {len(missing)} keys missing ({', '.join(missing[:3]) or '-'}), "
            f"{len(unexpected)} unexpected ({', '.join(unexpected[:3]) or '-'})"
        )
    for key, ref in expected.items():
        value = state[key]
        if not isinstance(value, torch.Tensor) or tuple(value.shape) != tuple(ref.shape):
            shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
            raise error(f"{what} is not {network}: {key} is {shape}, expected {tuple(ref.shape)}")
        if ref.is_floating_point() and not value.is_floating_point():
            raise error(f"{what} is not {network}: {key} has dtype {value.dtype}, expected a floating-point tensor")
