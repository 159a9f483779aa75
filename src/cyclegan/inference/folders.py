"""Translate photo collections: files and folders in, the same names and sub-folders out.

Images are decoded by a DataLoader (optionally in worker processes) while the generator runs; images
of the same size are translated in batches; very large images go through the tiled path. Outputs are
written atomically, so `skip_existing` can resume an interrupted run over a big collection. An
unreadable file is reported and skipped; it never stops the run.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..data.files import IMAGE_FORMATS
from ..data.bands import output_suffix
from ..data.image_io import DataError, array_to_tensor, find_images, load_pixels, save_image, tensor_to_samples
from ..data.palette import snap
from ..precision import autocast
from ..report import write_results_page
from .loading import generator_channels
from .protocol import FULL, Protocol
from .tiling import DEFAULT_STATS_PIXELS, translate_tiled
from .translate import generator_device, translate_tensor

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = (".mp4", ".mov", ".avi", ".mkv", ".webm", ".m4v")


@dataclass
class TranslationReport:
    """What `translate_paths` did: `written, failed = translate_paths(...)` still works."""

    written: list[Path] = field(default_factory=list)  # output files, in input order
    failed: list[tuple[Path, str]] = field(default_factory=list)  # (input, reason): unreadable inputs
    skipped: list[Path] = field(default_factory=list)  # outputs that already existed (skip_existing)
    page: Path | None = None  # the results page, when asked for

    def __iter__(self):  # unpacks as (written, failed), as in earlier versions
        return iter((self.written, self.failed))


def is_video(path: Path) -> bool:
    return path.suffix.lower() in VIDEO_EXTENSIONS


def plan(inputs: Iterable[str | Path], out_dir: Path, *, suffix: str = ".png") -> list[tuple[Path, Path]]:
    """(input, output) pairs; folders are expanded recursively, keeping relative sub-folders.

    Outputs take `suffix` (videos: `.mp4`). Raises if an output would overwrite an input or two
    inputs would be written to the same output.
    """
    pairs = []
    for item in inputs:
        item = Path(item)
        if item.is_dir():
            pairs += [(f, out_dir / f.relative_to(item).with_suffix(suffix)) for f in find_images(item)]
        elif item.is_file():
            pairs.append((item, out_dir / f"{item.stem}{'.mp4' if is_video(item) else suffix}"))
        elif item.exists() or item.is_symlink():
            raise DataError(f"input {item} is not a regular file (a FIFO, device, or broken or looping link); give "
                            "image or video files and folders")
        else:
            raise DataError(f"input {item} does not exist; check the path")
    sources = {p.resolve(): p for p, _ in pairs}
    seen: dict[Path, Path] = {}
    for src, dst in pairs:
        real = dst.resolve()
        if real in sources:
            raise ValueError(
                f"the output {dst} for {src} would overwrite the input {sources[real]}; choose another output folder"
            )
        if real in seen:
            raise ValueError(
                f"{seen[real]} and {src} would both be written to {dst}; rename one or translate them separately"
            )
        seen[real] = src
    return pairs


class _ImageFiles(Dataset):
    """Decodes image `i` to uint8 (H, W[, C]) as `protocol` prepares it (16-bit, float and multi-band
    files: their samples, `load_pixels`); an unreadable file gives its error message instead."""

    def __init__(self, paths: Sequence[Path], channels: int, protocol: Protocol = FULL) -> None:
        self.paths, self.channels, self.protocol = list(paths), channels, protocol

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[int, np.ndarray | None, str]:
        try:
            image = load_pixels(self.paths[i], self.channels, setting="the generator's input channels")
            if isinstance(image, np.ndarray):
                if self.protocol.size is not None:
                    raise DataError(f"{self.paths[i]} is a 16-bit, float or multi-band image; the official protocol "
                                    "resizes 8-bit images only: translate it with the full protocol")
                return i, image, ""
            return i, np.asarray(self.protocol.prepare(image)), ""
        except (DataError, ImportError) as e:  # ImportError: a 16-bit TIFF without tifffile (the message says)
            return i, None, str(e)


def _as_list(items: list) -> list:
    return items


def save_options(suffix: str, quality: int | None) -> dict[str, Any]:
    """PIL save options: JPEG/WebP quality (default 95; JPEG without chroma subsampling)."""
    if suffix == ".jpg":
        return {"quality": quality or 95, "subsampling": 0}
    if suffix == ".webp":
        return {"quality": quality or 95}
    return {}


def translate_paths(
    generator: nn.Module,
    inputs: Iterable[str | Path],
    out_dir: str | Path,
    *,
    channels_in: int | None = None,
    image_format: str = "png",
    quality: int | None = None,
    batch_size: int = 1,
    num_workers: int = 0,
    tile: int | None = None,
    tile_overlap: int | None = None,
    tile_stats_pixels: int | None = None,
    skip_existing: bool = False,
    reconstructor: nn.Module | None = None,
    page: bool = False,
    precision: str = "fp32",
    protocol: Protocol = FULL,
    palette: np.ndarray | None = None,
    palette_median: int = 0,
    progress: bool = True,
) -> TranslationReport:
    """Translate image files, folders (recursively) and video files into `out_dir`.

    Outputs keep the input's name with the suffix of `image_format` (PNG by default, lossless) and,
    for folder inputs, the sub-folder relative to that folder. 16-bit, float and multi-band inputs
    give outputs of their sample type; those that the format cannot hold are written as `.tif`
    (docs/guides/bands.md). A file that cannot be read is logged
    as a warning and skipped; the others are still translated, and the failures are returned
    (deciding an exit status is the caller's business).

    Args:
        channels_in: 1 to load images as grayscale, 3 as RGB; default: the generator's input channels.
        image_format: png, jpg, webp or tif; `quality` applies to jpg and webp (default 95).
        batch_size: images of the same size are translated this many at a time.
        num_workers: DataLoader worker processes that decode images while the generator runs.
        tile: translate images larger than this in overlapping tiles (see `translate_tiled`).
        tile_stats_pixels: see `translate_tiled`'s `stats_pixels`.
        skip_existing: leave outputs that already exist (outputs are written atomically, so an
            existing one is complete): resumes an interrupted run over a big collection.
        reconstructor: the generator of the opposite direction; with `page`, a reconstruction
            column (written under `out_dir/reconstructed/`).
        page: write `out_dir/index.html` with real / fake (/ reconstruction) per image.
        precision: fp32, or bf16 / fp16 to run the generators under autocast (`cyclegan.precision`):
            faster on hardware with fast bfloat16 / float16, outputs differ by a few grey levels.
        protocol: `inference.protocol.FULL` (full resolution, eval mode) or the official test.py's
            (`Protocol.official(crop_size)`: images resized to a square, train mode unless asked).
        palette: (K, 3) uint8 colours (`data.palette.load_palette`): every output pixel replaced by the
            nearest of them, for targets drawn in a few flat colours (maps, label maps);
            `palette_median` N first median-filters each channel over N x N pixels (`data.palette.snap`).

    Raises:
        DataError: an input path does not exist, or a folder holds no images.
        ValueError: an unknown format, an output would overwrite an input, or two inputs map to the
            same output; or the official protocol with a batch size above 1 (in train mode batch
            norm would mix images) or with videos.
    """
    out_dir = Path(out_dir)
    if image_format.lower() not in IMAGE_FORMATS:
        raise ValueError(f"unknown image format {image_format!r}; choose one of: {', '.join(IMAGE_FORMATS)}")
    if batch_size < 1 or num_workers < 0:
        raise ValueError(f"batch_size must be >= 1 and num_workers >= 0, got {batch_size} and {num_workers}")
    if protocol.train_mode and batch_size > 1:
        raise ValueError("the official protocol translates one image per pass, as test.py (in train mode batch "
                         "norm would normalise a batch together); use batch size 1, or eval mode")
    suffix = IMAGE_FORMATS[image_format.lower()]
    options = save_options(suffix, quality)
    if channels_in is None:
        channels_in = generator_channels(generator)[0]
    result = TranslationReport()
    todo = []
    for src, dst in plan(inputs, out_dir, suffix=suffix):
        if skip_existing and dst.exists():
            result.skipped.append(dst)
        else:
            todo.append((src, dst))
    videos = [(s, d) for s, d in todo if is_video(s)]
    if videos and protocol.size is not None:
        raise ValueError(f"the official protocol resizes test images; translate videos such as {videos[0][0]} with "
                         "the full protocol")
    if videos and palette is not None:
        raise ValueError(f"palette snapping applies to images; translate videos such as {videos[0][0]} without it")
    images = [(s, d) for s, d in todo if not is_video(s)]
    sources = {s.resolve() for s, _ in todo}
    tiles = {"tile": tile, "overlap": tile_overlap, "stats_pixels": tile_stats_pixels or DEFAULT_STATS_PIXELS}
    done: dict[int, Path] = {}
    recs: dict[int, Path] = {}
    loader = DataLoader(
        _ImageFiles([s for s, _ in images], channels_in, protocol), batch_size=batch_size, num_workers=num_workers,
        collate_fn=_as_list,
    )
    bar = tqdm(total=len(images), desc="translate", unit="img", disable=not progress)
    amp = autocast(generator_device(generator), precision)  # checks `precision` before any work
    with protocol.modes(generator, reconstructor):  # eval mode, or the official train mode
        for items in loader:
            by_size: dict[tuple[Any, ...], list[tuple[int, np.ndarray]]] = defaultdict(list)
            for i, array, error in items:
                if array is None:
                    log.warning("skipping %s", error)
                    result.failed.append((images[i][0], error))
                else:
                    by_size[(*array.shape, array.dtype.name)].append((i, array))
            for group in by_size.values():
                try:
                    with amp, protocol.draws(generator):
                        translated = _translate_group(generator, group, tiles)
                except (RuntimeError, MemoryError) as e:
                    if not is_out_of_memory(e):
                        raise
                    h, w = group[0][1].shape[:2]
                    batch = f" (a batch of {len(group)})" if len(group) > 1 else ""
                    raise DataError(f"translating {images[group[0][0]][0]}, {w}x{h} pixels{batch}, needs more memory "
                                    f"than is available; translate in tiles (--tile 1024, or smaller)"
                                    f"{' or with a smaller --batch-size' if batch else ''}") from None
                for i, fake in translated:
                    if palette is not None:
                        fake = snap(fake, palette, median=palette_median)
                    done[i] = save_image(fake, _output_path(fake, images[i], sources), **options)
                    if page and reconstructor is not None:
                        with amp, protocol.draws(reconstructor):
                            rec = _translate_group(reconstructor, [(i, fake)], tiles)[0][1]
                        planned = out_dir / "reconstructed" / images[i][1].relative_to(out_dir)
                        recs[i] = save_image(rec, _output_path(rec, (images[i][0], planned), sources), **options)
            bar.update(len(items))
    bar.close()
    result.written = [done[i] for i in sorted(done)]
    if videos:
        from .video import translate_video  # lazy: video needs the optional imageio

        for src, dst in videos:
            with amp:
                result.written.append(translate_video(generator, src, dst, tiles=tiles, progress=progress))
    if result.failed:
        log.warning("%d of %d inputs could not be read and were skipped", len(result.failed), len(todo))
    if page:
        rows = [{"name": images[i][0].name, "real": images[i][0].resolve(), "fake": done[i], "rec": recs.get(i, "")}
                for i in sorted(done)]
        result.page = _write_page(out_dir, rows, reconstruction=reconstructor is not None)
    return result


def _output_path(fake: np.ndarray, item: tuple[Path, Path], sources: set[Path]) -> Path:
    """Where a translation goes: the planned file, or its .tif twin when the planned format cannot hold
    the image's bit depth or band count (`bands.output_suffix`)."""
    src, dst = item
    suffix = output_suffix(fake, dst.suffix.lower())
    if suffix == dst.suffix.lower():
        return dst
    dst = dst.with_suffix(suffix)
    if dst.resolve() in sources:
        raise ValueError(f"the output {dst} for {src} would overwrite an input; choose another output folder")
    log.info("writing %s as TIFF: %s cannot hold its %s samples", dst, item[1].suffix, fake.dtype)
    return dst


def is_out_of_memory(e: BaseException) -> bool:
    """Whether an exception is an allocation failure (CPU or GPU)."""
    text = str(e).lower()
    return isinstance(e, (torch.OutOfMemoryError, MemoryError)) or "can't allocate memory" in text or \
        "out of memory" in text


def _translate_group(
    generator: nn.Module, group: list[tuple[int, np.ndarray]], tiles: dict[str, Any]
) -> list[tuple[int, np.ndarray]]:
    """Translate images of one size and sample type: tiled one by one if larger than `tiles["tile"]`, else
    as one batch; the outputs have the inputs' sample type."""
    h, w = group[0][1].shape[:2]
    if tiles["tile"] is not None and max(h, w) > tiles["tile"]:
        return [(i, translate_tiled(generator, a, **tiles)) for i, a in group]
    x = torch.stack([array_to_tensor(a) for _, a in group])  # (B, C, H, W)
    y = translate_tensor(generator, x).float().cpu()
    dtype = group[0][1].dtype.name
    return [(i, tensor_to_samples(y[k], dtype)) for k, (i, _) in enumerate(group)]


def _write_page(out_dir: Path, rows: list[dict[str, Any]], *, reconstruction: bool) -> Path:
    columns = [("image", "name", "text"), ("real", "real", "image"), ("fake", "fake", "image")]
    if reconstruction:
        columns.append(("reconstruction", "rec", "image"))
    return write_results_page(out_dir, rows, title=f"Translations in {out_dir.name}", columns=columns,
                              summary={"images": len(rows)})
