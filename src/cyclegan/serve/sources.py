"""What `cyclegan serve` is given on its command line: run dirs, generator files and pretrained names.

A run dir is both a dashboard (its logs are read on every poll) and a model (both generators of its
latest checkpoint). A `.pth` / `.pt` file or a pretrained name is a model. Models are loaded on first
use and cached; a run dir's model is reloaded when its checkpoint changes (training goes on beside
the server).
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..config import Config, ConfigError, load_yaml
from ..data.image_io import is_image_file, is_regular_file
from ..inference import (
    TranslationCancelled, generator_channels, generators_from_checkpoint, load_generator, read_source, translate_tiled,
)
from ..methods import DIRECTIONS, get_method
from ..weights.pretrained import PRETRAINED, is_pretrained_name
from ..checkpoint import FORMAT, CheckpointError

RUN_MARKERS = ("config.yaml", "losses.jsonl", "checkpoints")
MAX_TEST_IMAGES = 200


@dataclass(frozen=True)
class Source:
    """One model or run the app serves. `id` is URL-safe and unique; `kind` is run, file or pretrained."""

    id: str
    label: str
    kind: str
    location: str  # the path or pretrained name as given
    # An official file or pretrained name holds one generator: it translates the way it was trained;
    # so does a pix2pix run.
    directions: tuple[str, ...] = ("AtoB", "BtoA")

    @property
    def is_run(self) -> bool:
        return self.kind == "run"


def parse_sources(items: list[str]) -> list[Source]:
    """Sources for the command-line arguments, with unique ids.

    Raises:
        ValueError: a path that does not exist or is not a run dir / generator file, or an unknown name.
    """
    sources, used = [], set()
    for item in items:
        path = Path(item)
        if path.is_dir():
            if not any((path / m).exists() for m in RUN_MARKERS):
                raise ValueError(f"{item} is a folder but not a run dir (no config.yaml, losses.jsonl or checkpoints/)")
            kind, label = "run", path.resolve().name
        elif path.is_file():
            kind, label = ("checkpoint" if path.suffix == ".pt" else "file"), path.name
        elif is_pretrained_name(item):
            kind, label = "pretrained", item
        else:
            raise ValueError(f"{item} is neither an existing run dir or generator file nor a pretrained model name "
                             f"({', '.join(sorted(PRETRAINED))})")
        base = re.sub(r"[^A-Za-z0-9_.-]+", "-", label).strip("-.") or "model"
        sid, n = base, 2
        while sid in used:
            sid, n = f"{base}-{n}", n + 1
        used.add(sid)
        sources.append(Source(sid, label, kind, item, _directions(kind, path)))
    return sources


def _directions(kind: str, path: Path) -> tuple[str, ...]:
    """The directions a source translates: a run's method's (`Method.directions`); both for a checkpoint."""
    if kind not in ("run", "checkpoint"):
        return ("AtoB",)
    if kind == "run" and (path / "config.yaml").is_file():
        try:
            cfg = Config.from_dict(load_yaml(path / "config.yaml"))
            return get_method(cfg.model.method).learned_directions(cfg)
        except (ConfigError, AttributeError, TypeError):
            pass  # an unreadable config or unknown method: loading the checkpoint reports it
    return DIRECTIONS


def checkpoint_stamp(source: Source) -> float | None:
    """Modification time of what a source loads (None while a run has no checkpoint yet)."""
    if source.kind == "pretrained":
        return 0.0
    path = Path(source.location)
    if source.is_run:
        path = path / "checkpoints" / "latest.pt"
    try:
        return path.stat().st_mtime
    except OSError:
        return None


class Loaded:
    """A source's generators by direction, and the test images of its dataset (for a run)."""

    def __init__(self, generators: dict[str, nn.Module], test_dirs: dict[str, Path]) -> None:
        self.generators, self.test_dirs = generators, test_dirs


class ModelCache:
    """Loads sources on first use; keeps the `size` most recently used; thread-safe.

    Translation itself is serialised (one image at a time): the CPU's cores are shared anyway, and
    two large images at once would double the peak memory.
    """

    def __init__(self, *, device: str | torch.device = "cpu", size: int = 4, tile: int = 512) -> None:
        self.device, self.size, self.tile = torch.device(device), size, tile
        self._cache: OrderedDict[tuple[str, float], Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self._run_lock = threading.Lock()

    def get(self, source: Source) -> Loaded:
        stamp = checkpoint_stamp(source)
        if stamp is None:
            raise CheckpointError(f"{source.label} has no checkpoint yet (checkpoints/latest.pt); wait for training "
                                  "to write one")
        key = (source.id, stamp)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return self._cache[key]
            loaded = self._load(source)
            for old in [k for k in self._cache if k[0] == source.id]:
                del self._cache[old]
            self._cache[key] = loaded
            while len(self._cache) > self.size:
                self._cache.popitem(last=False)
            return loaded

    def _load(self, source: Source) -> Loaded:
        if source.kind == "pretrained" or source.kind == "file":
            return Loaded({"AtoB": load_generator(source.location, "AtoB", self.device)}, {})
        ckpt = read_source(source.location)
        if ckpt.get("format") != FORMAT:  # a .pt holding an official state dict
            return Loaded({"AtoB": load_generator(source.location, "AtoB", self.device)}, {})
        gens = {d: g for d, g in zip(("AtoB", "BtoA"), generators_from_checkpoint(ckpt, self.device)) if g is not None}
        tests = {}
        root = (ckpt.get("run") or {}).get("dataroot")
        if root:
            for direction, split in (("AtoB", "testA"), ("BtoA", "testB")):
                if (Path(root) / split).is_dir():
                    tests[direction] = Path(root) / split
        return Loaded(gens, tests)

    def translate(self, source: Source, direction: str, image: Image.Image,
                  cancel: threading.Event | None = None) -> Image.Image:
        """Translate a PIL image with the source's generator (tiles above `tile` pixels a side);
        `cancel` stops it between tiles (`inference.TranslationCancelled`)."""
        generator = self.get(source).generators.get(direction)
        if generator is None:
            raise ValueError(f"{source.label} translates {' and '.join(self.get(source).generators)} only, "
                             f"not {direction}")
        in_ch, _ = generator_channels(generator)
        image = image.convert("L") if in_ch == 1 else image.convert("RGB")
        with self._run_lock:
            if cancel is not None and cancel.is_set():  # gave up while waiting for the lock
                raise TranslationCancelled("cancelled before it started")
            out = translate_tiled(generator, np.asarray(image), tile=self.tile, cancel=cancel)
        return Image.fromarray(out)

    def channels(self, source: Source, direction: str) -> int:
        generators = self.get(source).generators
        if direction not in generators:
            raise ValueError(f"{source.label} translates {' and '.join(generators)} only, not {direction}")
        channels = generator_channels(generators[direction])[0]
        if channels not in (1, 3):  # the web app is 8-bit grey or RGB in, PNG out (docs/guides/bands.md)
            raise ValueError(f"{source.label} translates {channels}-band images; the web app takes grey or RGB "
                             "uploads only: translate multi-band TIFFs with `cyclegan translate`")
        return channels


def test_images(folders: dict[str, Path]) -> list[str]:
    """Names "KEY/relative/path" of up to MAX_TEST_IMAGES images in each folder (`folders`: key -> folder),
    from `contained_images` (cached for LISTING_TTL_S seconds)."""
    names = []
    for key, folder in folders.items():
        names += [f"{key}/{name}" for name in _listing(Path(folder))]
    return names


MAX_SCANNED = 20_000  # directory entries looked at per folder listing, at most
LISTING_TTL_S = 30.0
_listings: dict[Path, tuple[float, list[str]]] = {}
_listings_lock = threading.Lock()


def _listing(folder: Path) -> list[str]:
    now = time.monotonic()
    with _listings_lock:
        cached = _listings.get(folder)
        if cached is not None and now - cached[0] < LISTING_TTL_S:
            return cached[1]
    names = contained_images(folder)
    with _listings_lock:
        _listings[folder] = (now, names)
    return names


def contained_images(folder: Path, *, limit: int = MAX_TEST_IMAGES, max_scanned: int = MAX_SCANNED) -> list[str]:
    """Relative names of the first `limit` image files (by name) that lie inside `folder` once
    symlinks are resolved: no symlinked folder is followed and no file link pointing out of the folder
    is listed, so a listing neither leaks names from elsewhere nor walks a big tree; at most
    `max_scanned` directory entries are looked at."""
    try:
        base = folder.resolve(strict=True)
    except OSError:
        return []
    found: list[str] = []
    scanned = 0
    for root, dirs, files in os.walk(base, followlinks=False):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            scanned += 1
            if scanned > max_scanned:
                return sorted(found)[:limit]
            if name.startswith(".") or not is_image_file(name):
                continue
            path = Path(root) / name
            try:
                real = path.resolve(strict=True)
            except (OSError, RuntimeError):  # broken or looping link
                continue
            if real.is_relative_to(base) and is_regular_file(real):
                found.append(path.relative_to(base).as_posix())
    return sorted(found)[:limit]