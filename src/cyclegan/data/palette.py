"""Snapping outputs to the target domain's palette: for targets drawn in a few flat colours (map tiles,
label maps, diagrams), a generator's ±10 grey levels of texture on a flat area cost every per-pixel
score; replacing each output pixel by the nearest of the K colours that best summarise the target
domain's *training* images removes it. Unpaired: the palette comes from target-domain images only.
A median filter before the snap (`median=5`) also removes isolated off-colour pixels and ragged
edges, which the snap alone keeps.

    palette = fit_palette(find_images("datasets/maps/trainB"), colors=8)   # (8, 3) uint8
    clean = snap(fake, palette)                                             # (H, W, 3) uint8
    cleaner = snap(fake, palette, median=5)                                 # 5x5 median filter first

Pillow fits the palette (median cut refined by k-means, deterministic); the snap is an exact
nearest-colour search in numpy; the median filter is scipy's, per channel, edges reflected.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from .files import DataError
from .image_io import find_images, load_image

MAX_COLORS = 256
SAMPLE_PIXELS = 1 << 20  # pixels pooled from the images to fit the palette (evenly strided)


def fit_palette(paths: Sequence[str | Path], colors: int = 8, *, sample_pixels: int = SAMPLE_PIXELS) -> np.ndarray:
    """The `colors` RGB colours (uint8, shape (K, 3)) that best summarise the images at `paths`:
    Pillow's median cut on an even sample of their pixels, refined by 3 k-means passes."""
    if not 1 <= colors <= MAX_COLORS:
        raise DataError(f"a palette has 1 to {MAX_COLORS} colours, not {colors}")
    if not paths:
        raise DataError("no images to fit a palette to; give a folder of target-domain images")
    per_image = max(1, sample_pixels // len(paths))
    pixels = []
    for path in paths:
        rgb = np.asarray(load_image(path, 3)).reshape(-1, 3)
        pixels.append(rgb[:: max(1, len(rgb) // per_image)])
    sample = np.concatenate(pixels)
    side = int(np.sqrt(len(sample)))
    image = Image.fromarray(np.ascontiguousarray(sample[: side * side].reshape(side, side, 3)))
    quantized = image.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, kmeans=3)
    used = sorted({index for _, index in quantized.getcolors(MAX_COLORS)})
    return np.asarray(quantized.getpalette()[: 3 * (max(used) + 1)], dtype=np.uint8).reshape(-1, 3)[used]


def load_palette(source: str | Path, colors: int = 8) -> np.ndarray:
    """A palette from `source`: a folder of target-domain images (searched recursively) or one image."""
    source = Path(source)
    if source.is_dir():
        return fit_palette(find_images(source), colors)
    if source.is_file():
        return fit_palette([source], colors)
    raise DataError(f"palette source {source} does not exist; give a folder of target-domain images or an image")


def check_median(size: int) -> int:
    """`size` if it is a valid median-filter size for `snap` (0: none, else odd and at least 3)."""
    if size != 0 and (size < 3 or size % 2 == 0):
        raise ValueError(f"the median filter before snapping has an odd size of at least 3 (or 0: none), not {size}")
    return size


def snap(image: np.ndarray, palette: np.ndarray, *, median: int = 0, chunk: int = 1 << 16) -> np.ndarray:
    """Every pixel of a uint8 (H, W, 3) image replaced by its nearest palette colour (squared
    Euclidean distance in RGB, ties to the first; no dithering), `chunk` pixels at a time. With
    `median` N (odd, >= 3), each channel is first median-filtered over N x N pixels."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise DataError(f"palette snapping needs 8-bit RGB images, got {image.dtype} of shape {image.shape}")
    if check_median(median):
        from scipy.ndimage import median_filter  # lazy: scipy's import is slow and most snaps need none

        image = median_filter(image, size=(median, median, 1), mode="reflect")
    colours = np.asarray(palette, dtype=np.int32).reshape(-1, 3)
    flat = image.reshape(-1, 3)
    out = np.empty_like(flat)
    for start in range(0, len(flat), chunk):
        part = flat[start:start + chunk].astype(np.int32)
        distance = ((part[:, None, :] - colours[None]) ** 2).sum(axis=2)
        out[start:start + chunk] = colours[distance.argmin(axis=1)]
    return out.reshape(image.shape)
