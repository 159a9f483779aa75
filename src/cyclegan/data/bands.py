"""16-bit and multi-band image files: what a file holds (`probe`), its samples (`read_bands`), writing them
(`write_bands`), and the integer <-> [0, 1] scaling of each sample type.

The 8-bit path (`image_io.load_image`, PIL) stays the official one; this module serves the files it
would truncate or cannot hold: 16-bit grayscale PNG (PIL modes "I;16"/"I") and TIFF files of any band
count in uint8, uint16 or float32, read with the optional `tifffile` (`pip install "cyclegan[tiff]"`).
Arrays are (H, W, C) in the file's own sample type. docs/guides/bands.md gives the rules.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from ..atomic import atomic_write
from ..config import MAX_CHANNELS
from ..lazy import MissingDependencyError, require
from .files import DataError

TIFF_SUFFIXES = (".tif", ".tiff")
INSTALL_HINT = 'pip install "cyclegan[tiff]"'
# The sample types read and written, and the value that maps to 1.0 (float samples are already in [0, 1]).
SAMPLE_MAX = {"uint8": 255.0, "uint16": 65535.0, "float32": 1.0}
_PIL_16BIT = ("I;16", "I;16B", "I;16L", "I;16N", "I;16S", "I")
_BAND_AXES = "SCQIZPT"  # tifffile's axis codes for samples, channels, pages, ...: a band axis when first


@dataclass(frozen=True)
class PixelFormat:
    """What a file holds: its sample type (a `SAMPLE_MAX` key) and band count."""

    dtype: str
    channels: int

    @property
    def eight_bit(self) -> bool:
        return self.dtype == "uint8"


def is_tiff(path: str | Path) -> bool:
    return Path(path).suffix.lower() in TIFF_SUFFIXES


def _tifffile(path: Path, doing: str = "reading"):
    """The optional tifffile module, or MissingDependencyError naming the extra that installs it."""
    require("tifffile", f"{doing} {path.name} (a 16-bit or multi-band TIFF) needs the tifffile package: {INSTALL_HINT}")
    return importlib.import_module("tifffile")


def has_tifffile() -> bool:
    try:
        require("tifffile", "")
    except MissingDependencyError:
        return False
    return True


def probe(path: str | Path) -> PixelFormat:
    """The sample type and band count of an image file, from its header.

    TIFF files are probed with tifffile when it is installed; without it, a TIFF that PIL reads at 8 bits
    counts as 8-bit, and one with more bits per sample raises MissingDependencyError. Other files
    are probed with PIL: its 16-bit modes are uint16 with one band, everything else uint8 (the bands
    of its mode, e.g. 4 for RGBA).

    Raises:
        DataError: the file cannot be opened or holds a sample type other than uint8, uint16, float32.
        lazy.MissingDependencyError: a TIFF with more than 8 bits per sample, and no tifffile.
    """
    path = Path(path)
    if is_tiff(path):
        if not has_tifffile():
            return _probe_tiff_with_pil(path)
        return _read_tiff(path, samples=False)[0]
    try:
        with Image.open(path) as img:
            mode, bands = img.mode, len(img.getbands())
    except (OSError, UnidentifiedImageError, ValueError) as e:
        raise DataError(f"cannot read image {path} ({type(e).__name__}: {e})") from None
    if mode in _PIL_16BIT:
        return PixelFormat("uint16", 1)
    if mode == "F":
        return PixelFormat("float32", 1)
    return PixelFormat("uint8", bands)


def _probe_tiff_with_pil(path: Path) -> PixelFormat:
    try:
        with Image.open(path) as img:
            bits = img.tag_v2.get(258, (8,))  # BitsPerSample
            mode, bands = img.mode, len(img.getbands())
    except (OSError, UnidentifiedImageError, ValueError) as e:
        if _has_tiff_signature(path):
            _tifffile(path)  # a TIFF that PIL cannot decode (e.g. 4 bands of 16 bits): raises, naming the extra
        raise DataError(f"cannot read {path} ({type(e).__name__}: {e}); it is not a TIFF that can be read "
                        f"(16-bit and multi-band TIFFs need the tifffile package: {INSTALL_HINT})") from None
    bits = bits if isinstance(bits, tuple) else (bits,)
    if max(bits) > 8 or mode in _PIL_16BIT or mode == "F":
        _tifffile(path)  # raises: without tifffile the file would be read at 8 bits or not at all
    return PixelFormat("uint8", bands)


def _has_tiff_signature(path: Path) -> bool:
    """Whether the file starts like a TIFF or BigTIFF (byte order mark, then 42 or 43)."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def _format_of(dtype: np.dtype, path: Path, channels: int | None = None) -> PixelFormat:
    name = np.dtype(dtype).name
    if name == "float64":
        name = "float32"
    if name not in SAMPLE_MAX:
        raise DataError(f"{path} holds {name} samples; cyclegan reads uint8, uint16 and float32 (in [0, 1]) images: "
                        "convert it to one of those")
    return PixelFormat(name, 1 if channels is None else channels)


def _layout(shape: tuple[int, ...], axes: str, path: Path) -> tuple[tuple[int, int, int], bool]:
    """(H, W, C) of a TIFF series, and whether its bands come first in the stored array."""
    kept = [(n, a) for n, a in zip(shape, axes) if n != 1 or a in "YX"]  # drop a single page or sample
    shape, axes = tuple(n for n, _ in kept), "".join(a for _, a in kept)
    if axes == "YX":
        return (shape[0], shape[1], 1), False
    if len(shape) == 3 and axes[:2] == "YX" and axes[2] in _BAND_AXES:
        return (shape[0], shape[1], shape[2]), False
    if len(shape) == 3 and axes[1:] == "YX" and axes[0] in _BAND_AXES:
        return (shape[1], shape[2], shape[0]), True
    raise DataError(f"{path} holds an array of shape {shape} (axes {axes}); cyclegan reads one image per TIFF: "
                    "(H, W) or (H, W, bands) with samples interleaved, or (bands, H, W) as planes or pages")


def _read_tiff(path: Path, *, samples: bool) -> tuple[PixelFormat, np.ndarray | None]:
    """The format of a TIFF (tifffile's first series) and, if `samples`, its (H, W, C) array."""
    tifffile = _tifffile(path)
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            try:
                (h, w, c), bands_first = _layout(tuple(series.shape), series.axes, path)
            except DataError:
                if samples or series.dtype != np.uint8:
                    raise
                # An 8-bit stack of pages: PIL reads its first page on the 8-bit path, as it always did.
                return PixelFormat("uint8", tif.pages[0].samplesperpixel), None
            fmt = _format_of(series.dtype, path, c)
            if c > MAX_CHANNELS:
                raise DataError(f"{path} has {c} bands; at most {MAX_CHANNELS} are read (is it a stack of images?)")
            if not samples:
                return fmt, None
            a = series.asarray()
    except (OSError, ValueError, IndexError, tifffile.TiffFileError) as e:
        if isinstance(e, DataError):
            raise
        raise DataError(f"cannot read TIFF {path} ({type(e).__name__}: {e}); the file may be corrupt") from None
    a = a.reshape((c, h, w) if bands_first else (h, w, c))
    return fmt, np.moveaxis(a, 0, -1) if bands_first else a


def read_bands(path: str | Path) -> np.ndarray:
    """The samples of a 16-bit or multi-band image as (H, W, C) uint8, uint16 or float32 (float in [0, 1]).

    TIFF through tifffile (its first series; the layout rules of docs/guides/bands.md), other files
    through PIL (16-bit grayscale, and the 8-bit modes with their bands: RGBA gives 4). No EXIF
    rotation is applied.

    Raises:
        DataError: unreadable, an unsupported layout or sample type, or float samples outside [0, 1].
        lazy.MissingDependencyError: a TIFF, and no tifffile.
    """
    path = Path(path)
    if is_tiff(path):
        fmt, a = _read_tiff(path, samples=True)
    else:
        fmt = probe(path)
        try:
            with Image.open(path) as img:
                a = np.asarray(img)
        except (OSError, ValueError) as e:
            raise DataError(f"cannot read image {path} ({type(e).__name__}: {e})") from None
        if fmt.dtype == "uint16":
            a = np.clip(a, 0, 65535)  # mode "I" is int32
        a = a.reshape(a.shape[0], a.shape[1], -1)
    a = np.ascontiguousarray(a, dtype=fmt.dtype)
    if fmt.dtype == "float32" and a.size and not (np.isfinite(a).all() and a.min() >= 0.0 and a.max() <= 1.0):
        raise DataError(f"{path} holds float samples outside [0, 1] (or NaN); cyclegan reads float images as "
                        "values in [0, 1]: rescale it, or store it as uint16")
    return a


def to_unit(a: np.ndarray) -> np.ndarray:
    """Samples as float32 in [0, 1]: uint8 / 255, uint16 / 65535, float32 as it is."""
    return np.asarray(a, dtype=np.float32) / np.float32(SAMPLE_MAX[a.dtype.name])


def from_unit(x: np.ndarray, dtype: str) -> np.ndarray:
    """float values in [0, 1] (clipped) to samples of `dtype`, integers rounded to the nearest."""
    x = np.clip(np.asarray(x, dtype=np.float32), 0.0, 1.0)
    if dtype == "float32":
        return x
    return np.rint(x * np.float32(SAMPLE_MAX[dtype])).astype(dtype)


def luma(a: np.ndarray) -> np.ndarray:
    """(H, W, 3) samples to (H, W, 1) by ITU-R 601-2 luma, as PIL's convert("L"), in the same sample type."""
    return from_unit(to_unit(a) @ np.array([0.299, 0.587, 0.114], np.float32), a.dtype.name)[:, :, None]


def output_suffix(array: np.ndarray, requested: str) -> str:
    """The suffix an image array is written with: `requested` if that format holds it, else ".tif".

    PNG holds uint8 with 1 or 3 bands and uint16 with one band (through PIL); JPEG and WebP hold
    uint8 with 1 or 3 bands; TIFF holds everything (other band counts, uint16 RGB, float32).
    """
    c = 1 if array.ndim == 2 else array.shape[2]
    name = array.dtype.name
    holds = {
        ".png": name == "uint8" and c in (1, 3) or name == "uint16" and c == 1,
        ".jpg": name == "uint8" and c in (1, 3),
        ".webp": name == "uint8" and c in (1, 3),
    }
    return requested if requested in TIFF_SUFFIXES or holds.get(requested, False) else ".tif"


def write_bands(array: np.ndarray, path: str | Path) -> Path:
    """Write (H, W[, C]) uint8/uint16/float32 samples, atomically: TIFF (tifffile, bands interleaved,
    RGB photometry for 3 bands) for .tif/.tiff, PIL for a PNG of one uint16 band (or 8-bit bands).

    Raises:
        ValueError: the suffix's format cannot hold the array (see `output_suffix`).
        lazy.MissingDependencyError: a TIFF, and no tifffile.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if output_suffix(array, suffix) != suffix:
        c = 1 if array.ndim == 2 else array.shape[2]
        raise ValueError(f"{suffix} cannot hold {c}-band {array.dtype.name} images; write {path.with_suffix('.tif')}")
    a = array[:, :, 0] if array.ndim == 3 and array.shape[2] == 1 else array
    a = np.ascontiguousarray(a)
    if suffix in TIFF_SUFFIXES:
        tifffile = _tifffile(path, "writing")
        photometric = "rgb" if a.ndim == 3 and a.shape[2] == 3 else "minisblack"
        with atomic_write(path, fsync=False) as f:
            tifffile.imwrite(f, a, photometric=photometric, planarconfig="contig" if a.ndim == 3 else None)
        return path
    with atomic_write(path, fsync=False) as f:
        Image.fromarray(a).save(f, format="PNG" if suffix == ".png" else None)
    return path
