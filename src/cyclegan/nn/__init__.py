"""Networks (torch only): generators, discriminators, norm/init helpers, official key mapping."""

from .discriminators import NLayerDiscriminator, PixelDiscriminator, build_discriminator
from .generators import GENERATORS, ResnetBlock, ResnetGenerator, UnetGenerator, build_generator
from .layers import init_weights, norm_layer
from .official import from_official, load_official, to_official

__all__ = [
    "GENERATORS",
    "NLayerDiscriminator",
    "PixelDiscriminator",
    "ResnetBlock",
    "ResnetGenerator",
    "UnetGenerator",
    "build_discriminator",
    "build_generator",
    "from_official",
    "init_weights",
    "load_official",
    "norm_layer",
    "to_official",
]
