"""Package attributes imported on first use (PEP 562), so that importing a package, and with it
`cyclegan --help`, does not load torch, numpy or PIL; and the error for an optional package that is
not installed.

    __getattr__, __dir__ = lazy_exports(__name__, {"UnalignedDataset": "unaligned", ...})
    require("wandb", 'train.loggers=[wandb] needs wandb: pip install "cyclegan[wandb]"')
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """A module `__getattr__` and `__dir__` for `package`: `exports` maps each public name to the
    submodule (relative to `package`) that defines it; a name is imported once, on first access."""

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f".{exports[name]}", package), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted({*vars(sys.modules[package]), *exports})

    return __getattr__, __dir__


class MissingDependencyError(ImportError):
    """An optional package is not installed; the message names the extra that installs it."""


def require(module: str, message: str) -> None:
    """Raise MissingDependencyError(`message`) unless `module` can be imported (found, not imported)."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package is missing, or a stub module without a spec
        found = sys.modules.get(module) is not None
    if not found:
        raise MissingDependencyError(message)
