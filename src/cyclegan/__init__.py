"""cyclegan: unpaired image-to-image translation (Zhu, Park, Isola, Efros, ICCV 2017)."""

__version__ = "0.1.0"
