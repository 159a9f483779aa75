"""Training methods as plugins: CycleGAN and the methods trained by the same loop (pix2pix, BiGAN/ALI,
CoGAN, CUT and FastCUT).

A method is one module here with a `Method` subclass decorated `@register_method("name")` (see
`base.Method` for the protocol and CONTRIBUTING.md for a walk-through); importing this package
registers the built-in ones below, so `model.method=NAME` can name any of them.
"""

from __future__ import annotations

from . import bigan, cogan, cut, cyclegan, pix2pix  # noqa: F401  (each registers its method)
from .base import DIRECTIONS, GeneratorOutputs, Method, set_requires_grad
from .registry import (
    LEGACY_FORMATS, METHODS, build_method, check_config, get_method, method_names, register_legacy_format, register_method,
)

__all__ = [
    "DIRECTIONS", "METHODS", "GeneratorOutputs", "Method", "build_method", "check_config", "get_method",
    "LEGACY_FORMATS", "method_names", "register_legacy_format", "register_method", "set_requires_grad",
]
