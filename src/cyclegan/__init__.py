"""cyclegan: unpaired image-to-image translation (Zhu, Park, Isola, Efros, ICCV 2017).

The Python API in one place:
    cfg = build_config(["maps_128"], ["model.ngf=32"])       # presets/YAML + dotted overrides
    train("datasets/maps", "runs/maps", cfg)                 # or train(None, "runs/maps", resume=True)
    g = load_generator("runs/maps", "AtoB")                  # run dir, checkpoint or official .pth
    translate_paths(g, ["photos/"], "out/")                  # any size, names kept

The names are imported on first use (PEP 562), so `import cyclegan.config` or the CLI's `--help`
do not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "Config": "config", "build_config": "config", "CycleGAN": "methods.cyclegan", "Method": "methods",
    "register_method": "methods", "load_generator": "inference", "translate_paths": "inference",
    "translate_tensor": "inference", "train": "training.loop",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'cyclegan' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_API[name]}", __name__), name)
    globals()[name] = value
    return value
