"""Which files are images, the formats images are written in, and the error for unusable data.

Plain Python (no numpy, torch or PIL), so that the dataset hub and the command line's `--help` can
use them without loading those; `data.image_io` reads and writes the files.
"""

from __future__ import annotations

from pathlib import Path

IMG_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".tif", ".tiff", ".webp")
# What translated images can be written as: format name -> file suffix (png is lossless).
IMAGE_FORMATS = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "webp": ".webp", "tif": ".tif", "tiff": ".tif"}


class DataError(ValueError):
    """A data file or folder cannot be used; the message names it and says how to fix it."""


def is_image_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMG_EXTENSIONS
