"""cyclegan: unpaired image-to-image translation (Zhu, Park, Isola, Efros, ICCV 2017).

The Python API in one place:
    cfg = build_config(["maps_128"], ["model.ngf=32"])       # presets/YAML + dotted overrides
    train("datasets/maps", "runs/maps", cfg)                 # or train(None, "runs/maps", resume=True)
    g = load_generator("runs/maps", "AtoB")                  # run dir, checkpoint or official .pth
    translate_paths(g, ["photos/"], "out/")                  # any size, names kept
"""

__version__ = "0.3.0"  # the one place of the version (pyproject.toml reads it); CHANGELOG.md says what changed

from .lazy import lazy_exports

_EXPORTS = {
    "Config": "config",
    "CycleGAN": "methods.cyclegan",
    "Method": "methods",
    "build_config": "config",
    "load_generator": "inference",
    "register_method": "methods",
    "train": "training.loop",
    "translate_paths": "inference",
    "translate_tensor": "inference",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)  # no torch until a name is used

__all__ = ["__version__", *_EXPORTS]
