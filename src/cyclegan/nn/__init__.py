"""Networks (torch only): generators, discriminators, norm/init helpers, official key mapping."""

from .discriminators import DISCRIMINATORS, NLayerDiscriminator, PixelDiscriminator, build_discriminator
from .generators import (
    GENERATORS, MIN_SIDE, SIZE_MULTIPLES, ResnetBlock, ResnetGenerator, UnetGenerator, build_generator, generator_from_arch,
    padded_side,
)
from .layers import INITS, NORMS, init_weights, norm_layer, with_channels, with_spectral_norm
from .official import from_official, has_official_layout, load_official, to_official

__all__ = [
    "INITS",
    "NORMS",
    "DISCRIMINATORS",
    "GENERATORS",
    "MIN_SIDE",
    "SIZE_MULTIPLES",
    "NLayerDiscriminator",
    "PixelDiscriminator",
    "ResnetBlock",
    "ResnetGenerator",
    "UnetGenerator",
    "build_discriminator",
    "build_generator",
    "from_official",
    "generator_from_arch",
    "has_official_layout",
    "init_weights",
    "load_official",
    "padded_side",
    "norm_layer",
    "to_official",
    "with_channels",
    "with_spectral_norm",
]
