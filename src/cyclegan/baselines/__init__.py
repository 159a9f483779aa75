"""The paper's baselines that are not a loss weight of the CycleGAN objective (Sec. 5.1.3):
pix2pix (the paired upper bound) and BiGAN/ALI. The loss-weight variants (GAN alone, SimGAN, ...)
are configurations, see `cyclegan.experiments`."""

from .bigan import BiGAN
from .pix2pix import Pix2Pix

__all__ = ["BiGAN", "Pix2Pix"]
