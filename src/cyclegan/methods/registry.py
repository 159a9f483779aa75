"""The registry of training methods: `@register_method("name")` on a `Method` subclass makes
`model.method=name` train it (like torchvision's `register_model` / timm's `@register_model`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ..config import Config, ConfigError

if TYPE_CHECKING:  # for the annotations only: base imports nothing from here
    from .base import Method

METHODS: dict[str, type[Method]] = {}


def register_method(name: str) -> Callable[[type[Method]], type[Method]]:
    """Class decorator: register a `Method` subclass under `name` (unique)."""

    def register(cls: type[Method]) -> type[Method]:
        if name in METHODS and METHODS[name] is not cls:
            raise ValueError(f"a method named {name!r} is already registered ({METHODS[name].__qualname__})")
        cls.name = name
        METHODS[name] = cls
        return cls

    return register


def method_names() -> list[str]:
    return sorted(METHODS)


def get_method(name: str) -> type[Method]:
    """The registered method class; ConfigError (a ValueError) listing the valid names otherwise."""
    if name not in METHODS:
        raise ConfigError(f"model.method={name!r} is not valid; choose one of: {', '.join(method_names())}")
    return METHODS[name]


def check_config(cfg: Config) -> None:
    """The rules of `cfg.model.method` (an unknown name lists the valid ones); raises ConfigError."""
    get_method(cfg.model.method).check_config(cfg)


def build_method(cfg: Config) -> Method:
    """The method `cfg.model.method` names, checked against `cfg`, with freshly initialised networks."""
    cls = get_method(cfg.model.method)
    cls.check_config(cfg)
    return cls.from_config(cfg)


# Checkpoint formats of earlier versions that a method can upgrade to the common training state.
LEGACY_FORMATS: dict[str, Callable[[dict], dict]] = {}


def register_legacy_format(name: str) -> Callable[[Callable[[dict], dict]], Callable[[dict], dict]]:
    """Function decorator: `fn(old_checkpoint) -> checkpoint` upgrades files of `format` `name`."""

    def register(fn: Callable[[dict], dict]) -> Callable[[dict], dict]:
        LEGACY_FORMATS[name] = fn
        return fn

    return register
