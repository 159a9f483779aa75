"""Image files in and out: folder scanning, robust loading, tensor <-> image conversion, saving.

Mirrors the official code's `data/image_folder.py: make_dataset`, the `Image.open(p).convert('RGB')`
loading in its datasets, `ToTensor() + Normalize(0.5, 0.5)`, and `util/util.py: tensor2im`, with
clear errors for the files that the official code would crash on or silently misread.
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageOps, UnidentifiedImageError

from ..atomic import atomic_write
from .bands import PixelFormat, from_unit, is_tiff, luma, probe, read_bands, to_unit, write_bands
from .files import IMG_EXTENSIONS, DataError, is_image_file  # noqa: F401  (defined without numpy/torch/PIL)

logger = logging.getLogger(__name__)

_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I;16S", "I")


def find_images(folder: str | Path, *, recursive: bool = True, max_count: int | None = None) -> list[Path]:
    """Image files under `folder`, sorted by their path relative to it (hidden files and folders skipped).

    `max_count` keeps the first N of the sorted list (the official `make_dataset(dir)[:max]` truncates
    the unsorted `os.walk` order instead, so which images it keeps depends on the file system).
    Symlinked folders are followed, each real folder once.
    """
    folder = Path(folder)
    if not folder.exists():
        raise DataError(f"image folder {folder} does not exist; check the path")
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder; give the folder that holds the images")
    found: list[tuple[str, Path]] = []
    seen_dirs: set[str] = set()
    for root, dirs, files in os.walk(folder, followlinks=True):
        real = os.path.realpath(root)
        if real in seen_dirs:  # a symlink loop or a second link to the same folder
            dirs[:] = []
            continue
        seen_dirs.add(real)
        dirs[:] = [d for d in dirs if not d.startswith(".")] if recursive else []
        for name in files:
            if name.startswith(".") or not is_image_file(name):
                continue
            path = Path(root) / name
            if not is_regular_file(path):  # a FIFO would block the reader; a looping link cannot be opened
                logger.warning("skipping %s: not a regular file (a FIFO, device, or broken or looping link)", path)
                continue
            found.append((path.relative_to(folder).as_posix(), path))
    if not found:
        where = "or its subfolders " if recursive else ""
        raise DataError(
            f"no images found in {folder} {where}(accepted extensions, any case: {', '.join(IMG_EXTENSIONS)})"
        )
    paths = [p for _, p in sorted(found)]
    return paths if max_count is None else paths[: max(0, max_count)]


def is_regular_file(path: str | Path) -> bool:
    """Whether `path` is (or links to) a regular file: only those are images."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def image_name(path: Path, folder: Path) -> str:
    """An image's name under `folder`: its relative path without the suffix (`sub/1`)."""
    return path.relative_to(folder).with_suffix("").as_posix()


# What the official scripts append to the name a pair shares: `prepare-cityscapes` (like the
# official script and the maps/facades zips) writes `testA/12_A.jpg` beside `testB/12_B.jpg`, and
# the official test.py saves `12_real_A.png` and `12_fake_B.png`.
_PAIR_SUFFIX = re.compile(r"(?:_(?:real|fake))?(?:_[AB])?$")


def pair_key(path: Path, folder: Path) -> str:
    """The name that pairs an image with its counterpart: `image_name` without a trailing `_A`/`_B`,
    `_real`/`_fake` or both (`12_A`, `12_fake_B` and `12` all pair as `12`), so a `.png` output
    matches its `.jpg` reference whichever convention named them. A reconstruction (`12_rec_A`)
    pairs as `12_rec`, which nothing else is named."""
    name = image_name(path, folder)
    head, _, stem = name.rpartition("/")
    key = _PAIR_SUFFIX.sub("", stem) or stem  # a file named just `A` stays `A`
    return f"{head}/{key}" if head else key


def files_by_pair_key(folder: str | Path, *, max_count: int | None = None) -> dict[str, Path]:
    """Image files under `folder` keyed by `pair_key`.

    Raises:
        DataError: the folder is missing or holds no image, or two of its files share a key (the
            message names both: e.g. `12_real_A.png` and `12_fake_B.png` in one folder).
    """
    return by_pair_key(find_images(folder, max_count=max_count), folder)


def by_pair_key(files: Iterable[Path], folder: str | Path) -> dict[str, Path]:
    """`files` (under `folder`) keyed by `pair_key`; a DataError if two share a key."""
    folder = Path(folder)
    keyed: dict[str, Path] = {}
    for p in files:
        k = pair_key(p, folder)
        if k in keyed:
            raise DataError(f"{keyed[k].name} and {p.name} in {folder} both pair as {k!r}: a folder of a pair holds "
                            "one image per name (keep only the outputs, e.g. the *_fake_B files, in it)")
        keyed[k] = p
    return keyed


def paired_files(folder_a: str | Path, folder_b: str | Path, *, max_count: int | None = None,
                 ) -> list[tuple[Path, Path]]:
    """(a, b) images of two folders that share a `pair_key`, sorted by it; the first `max_count` of them.

    Raises:
        DataError: a folder is missing or empty, a folder holds two files of one key, or no file
            pairs (the message names an example file of each folder).
    """
    return pair_up(files_by_pair_key(folder_a), files_by_pair_key(folder_b), folder_a, folder_b, max_count=max_count)


def pair_up(a: dict[str, Path], b: dict[str, Path], folder_a: str | Path, folder_b: str | Path, *,
            max_count: int | None = None) -> list[tuple[Path, Path]]:
    """`paired_files` of two folders already keyed by `files_by_pair_key`."""
    keys = sorted(set(a) & set(b))
    if not keys:
        ex_a, ex_b = (min(f, key=str).relative_to(d).as_posix() for f, d in
                      ((a.values(), Path(folder_a)), (b.values(), Path(folder_b))))
        raise DataError(f"no image in {folder_a} pairs with one in {folder_b} (e.g. {ex_a} vs {ex_b}): pairs share a "
                        "name, up to a trailing _A/_B, _real/_fake (12.jpg, 12_A.jpg and 12_fake_B.png pair)")
    keys = keys[:max_count] if max_count else keys
    return [(a[k], b[k]) for k in keys]


def _to_8bit(img: Image.Image) -> Image.Image:
    """16-bit, 32-bit integer and float grayscale to mode L; other modes are returned unchanged."""
    if img.mode in _SIXTEEN_BIT_MODES:
        # Scale by the full 16-bit range (65535 -> 255), not PIL's convert('L'), which clips at 255.
        a = np.asarray(img).astype(np.float64)
        a = np.rint(np.clip(a, 0, 65535) * (255.0 / 65535.0))
        return Image.fromarray(a.astype(np.uint8))
    if img.mode == "F":
        # Floats in [0, 1] are scaled to [0, 255]; anything else is taken as [0, 255] and clipped.
        a = np.nan_to_num(np.asarray(img, dtype=np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        if a.size and a.min() >= 0.0 and a.max() <= 1.0:
            a = a * 255.0
        return Image.fromarray(np.rint(np.clip(a, 0, 255)).astype(np.uint8))
    if img.mode == "1":
        return img.convert("L")
    return img


def load_image(path: str | Path, channels: int = 3, *, exif_transpose: bool = True) -> Image.Image:
    """Read an image file as mode "RGB" (`channels=3`) or "L" (`channels=1`).

    Like the official `Image.open(p).convert('RGB')`, alpha is dropped, not composited over a
    background. Palette images go through RGBA (same colours, no PIL transparency warning); 16-bit and
    float grayscale are scaled to 8 bits (see `_to_8bit`); grayscale output is the official
    `convert('RGB')` then `convert('L')`. Unlike the official code the EXIF orientation is applied
    (`exif_transpose=False` reproduces the official pixels for rotated phone photos).

    Raises:
        DataError: the file is missing, corrupt, truncated, not an image, or a decompression bomb.
    """
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB), got {channels}")
    path = Path(path)
    if path.exists() and not is_regular_file(path) or path.is_symlink() and not path.exists():
        raise DataError(f"{path} is not a regular file (a FIFO, device, folder, or broken or looping link); only "
                        "image files can be read")
    try:
        with Image.open(path) as img:
            img.load()
            if exif_transpose:
                img = ImageOps.exif_transpose(img)
            img = _to_8bit(img)
            if img.mode in ("P", "PA"):
                img = img.convert("RGBA")
            rgb = img if img.mode == "RGB" else img.convert("RGB")
            out = rgb.convert("L") if channels == 1 else rgb
    except FileNotFoundError:
        raise DataError(f"image file {path} does not exist; check the path") from None
    except Image.DecompressionBombError as e:
        raise DataError(
            f"image {path} is too large to load safely ({e}); shrink it, or raise PIL.Image.MAX_IMAGE_PIXELS "
            "if you trust the file"
        ) from None
    except UnidentifiedImageError:
        raise DataError(f"{path} is not a readable image (unknown or corrupt format); remove or replace it") from None
    except PermissionError:
        raise DataError(f"cannot read image {path}: permission denied; check the file's permissions") from None
    except (OSError, SyntaxError, ValueError, EOFError, MemoryError) as e:
        raise DataError(f"cannot read image {path} ({type(e).__name__}: {e}); the file may be truncated or "
                        "corrupt: remove or replace it") from None
    return out


def channels_fit(fmt: PixelFormat, channels: int) -> bool:
    """Whether a file of `fmt` can be read with `channels` channels (`load_pixels`)."""
    if fmt.eight_bit and channels in (1, 3):
        return True  # load_image converts every 8-bit mode to L or RGB
    return fmt.channels == channels or {fmt.channels, channels} == {1, 3}


def check_channels(path: str | Path, channels: int, setting: str = "model.channels_a / channels_b", *,
                   unreadable_ok: bool = False) -> PixelFormat | None:
    """The format of `path`, after checking that it can be read with `channels` channels.

    `unreadable_ok`: a file that cannot be read gives None (a dataset checking its first image
    before training leaves the error to the loader, which skips the file).

    Raises:
        DataError: it cannot (the message names the file, its bands and the `setting` to change), or
            the file cannot be read.
    """
    try:
        fmt = probe(path)
    except DataError:
        if unreadable_ok:
            return None
        raise
    if not channels_fit(fmt, channels):
        raise DataError(f"{path} has {fmt.channels} band{'s' * (fmt.channels != 1)} ({fmt.dtype}), but {setting} is "
                        f"{channels}: set {setting} to {fmt.channels} for such images (docs/guides/bands.md)")
    return fmt


def load_pixels(path: str | Path, channels: int = 3, *, setting: str = "model.channels_a / channels_b"
                ) -> Image.Image | np.ndarray:
    """An image file as the transforms and translation take it.

    An 8-bit file read with 1 or 3 channels is `load_image`'s PIL image (the official path, bit for
    bit). A 16-bit, float or multi-band file (or any file read with another channel count) is its
    (H, W, channels) samples in their own type (`bands.read_bands`): uint8, uint16 or float32 in
    [0, 1]; one band is repeated for 3 channels, and 3 bands become one by PIL's luma weights.

    Raises:
        DataError: unreadable, or its band count does not give `channels` (`check_channels`).
        lazy.MissingDependencyError: a 16-bit or multi-band TIFF, and no tifffile.
    """
    try:
        fmt = check_channels(path, channels, setting)
    except DataError:
        if not is_tiff(path):
            load_image(path, channels if channels in (1, 3) else 3)  # its more specific message, if it fails
        raise
    if fmt.eight_bit and channels in (1, 3):
        return load_image(path, channels)
    a = read_bands(path)
    if a.shape[2] == 1 and channels == 3:
        return np.repeat(a, 3, axis=2)
    return luma(a) if a.shape[2] == 3 and channels == 1 else a


def to_tensor(img: Image.Image) -> torch.Tensor:
    """PIL "L"/"RGB" image to a float32 (C, H, W) tensor in [-1, 1].

    Exactly torchvision's `ToTensor()` then `Normalize(0.5, 0.5)`: `(uint8 / 255 - 0.5) / 0.5` in float32.
    """
    if img.mode not in ("L", "RGB"):
        raise ValueError(f"to_tensor expects a mode 'L' or 'RGB' image, got {img.mode!r}; use load_image")
    return array_to_tensor(np.asarray(img))


def array_to_tensor(a: np.ndarray) -> torch.Tensor:
    """uint8 (H, W) or (H, W, C) to float32 (C, H, W) in [-1, 1], as `to_tensor` (the array is copied).

    uint16 and float32 samples (`bands`) are scaled by their own range (65535, 1) instead.
    """
    if isinstance(a, np.ndarray) and a.dtype.name in ("uint16", "float32"):
        u = to_unit(a)
        u = u[:, :, None] if u.ndim == 2 else u
        return torch.from_numpy(u).permute(2, 0, 1).contiguous().sub(0.5).div(0.5)
    a = np.array(a, dtype=np.uint8, copy=True)
    if a.ndim == 2:
        a = a[:, :, None]
    t = torch.from_numpy(a).permute(2, 0, 1).contiguous()  # (C, H, W) uint8
    return t.to(torch.float32).div(255).sub(0.5).div(0.5)


def tensor_to_uint8(x: torch.Tensor | np.ndarray, *, rounding: bool = False) -> np.ndarray:
    """A (C, H, W) image in [-1, 1] to uint8 (H, W, 3), or (H, W) for one channel.

    As the official `tensor2im`: `(transpose(x) + 1) / 2 * 255` in float32, then truncation by
    `astype(uint8)`. Truncation turns about a quarter of the values that `to_tensor` produced back into
    one less than the original (float32 error puts them just below the integer); `rounding=True`
    rounds instead, for an exact round trip. Values are clipped to [0, 255] first (the official code
    lets them wrap around).
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().float().numpy()
    x = np.asarray(x, dtype=np.float32)
    if x.ndim == 2:
        x = x[None]
    if x.ndim != 3 or x.shape[0] not in (1, 3):
        raise ValueError(f"expected a (C, H, W) image with C = 1 or 3, got shape {tuple(x.shape)}")
    a = (np.transpose(x, (1, 2, 0)) + 1) / 2.0 * 255.0
    a = np.clip(a, 0.0, 255.0)
    if rounding:
        a = np.rint(a)
    a = a.astype(np.uint8)
    return a[:, :, 0] if a.shape[2] == 1 else a


def tensor_to_samples(x: torch.Tensor | np.ndarray, dtype: str = "uint8") -> np.ndarray:
    """A (C, H, W) image in [-1, 1] to (H, W[, C]) samples of `dtype` (uint8, uint16, float32).

    uint8 with 1 or 3 channels is `tensor_to_uint8` (the official truncation); every other case is
    rounded to the nearest sample, so that an image read by `load_pixels` comes back unchanged.
    """
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().float().numpy()
    x = np.asarray(x, dtype=np.float32)
    x = x[None] if x.ndim == 2 else x
    if dtype == "uint8" and x.shape[0] in (1, 3):
        return tensor_to_uint8(x)
    a = from_unit((np.transpose(x, (1, 2, 0)) + 1) / 2.0, dtype)
    return a[:, :, 0] if a.shape[2] == 1 else a


def save_image(image: torch.Tensor | np.ndarray, path: str | Path, *, rounding: bool = False, **options: Any) -> Path:
    """Write a (C, H, W) image in [-1, 1] (see `tensor_to_uint8`) to `path`, atomically.

    A uint8 numpy array is taken as already converted, (H, W, 3) or (H, W), as the official
    `tensor2im` passes arrays through; uint16, float32 or multi-band arrays go to `bands.write_bands`.
    The format comes from the suffix (.png, .jpg, ...), with PIL's default settings as in the
    official `save_image` unless `options` (PIL save options such as `quality=95`) say otherwise.
    Parent folders are created.
    """
    path = Path(path)
    if isinstance(image, np.ndarray) and (image.dtype != np.uint8 or image.ndim == 3 and image.shape[2] not in (1, 3)):
        return write_bands(image, path)  # 16-bit, float or multi-band samples (`bands.output_suffix`)
    fmt = Image.registered_extensions().get(path.suffix.lower())
    if fmt is None:
        raise ValueError(f"cannot tell the image format of {path}; use a suffix such as .png or .jpg")
    if isinstance(image, np.ndarray) and image.dtype == np.uint8:
        array = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
    else:
        array = tensor_to_uint8(image, rounding=rounding)
    img = Image.fromarray(np.ascontiguousarray(array))
    with atomic_write(path, fsync=False) as f:
        img.save(f, format=fmt, **options)
    return path
