"""cyclegan: unpaired image-to-image translation (Zhu, Park, Isola, Efros, ICCV 2017).

The Python API in one place:
    cfg = build_config(["maps_128"], ["model.ngf=32"])       # presets/YAML + dotted overrides
    train("datasets/maps", "runs/maps", cfg)                 # or train(None, "runs/maps", resume=True)
    g = load_generator("runs/maps", "AtoB")                  # run dir, checkpoint or official .pth
    translate_paths(g, ["photos/"], "out/")                  # any size, names kept
"""

__version__ = "0.1.0"

from .config import Config, build_config
from .cyclegan import CycleGAN
from .inference import load_generator, translate_paths, translate_tensor
from .training.loop import train

__all__ = [
    "Config",
    "CycleGAN",
    "__version__",
    "build_config",
    "load_generator",
    "train",
    "translate_paths",
    "translate_tensor",
]
