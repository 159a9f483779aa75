"""Checks of pretrained state dicts before a strict load: one message naming what is wrong."""

from __future__ import annotations

from collections.abc import Mapping

import torch


def check_keys_and_shapes(
    state: Mapping[str, object], expected: Mapping[str, torch.Tensor], *, what: str, network: str,
    error: type[Exception] = ValueError,
) -> None:
    """Raise `error` unless `state` has exactly the keys of `expected`, each a tensor of its shape.

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
