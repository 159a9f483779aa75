"""Datasets: unpaired training images from two domains, and a plain folder of images for translation.

`UnalignedDataset` is the official `data/unaligned_dataset.py` (Zhu et al. 2017, Sec. 4: unpaired
training sets {x_i} in X and {y_j} in Y): item i holds A[i % |A|] and, unless `serial_batches`, a
random B image, each with its own random crop and flip. Items are keyed by `(index, seed)`; all their
randomness comes from that key, so an item is the same in any worker process and after a resume.
"""

from __future__ import annotations

import logging
import operator
import random
from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset

from cyclegan.config import MAX_CHANNELS, DataConfig
from cyclegan.data.image_io import DataError, array_to_tensor, check_channels, find_images, load_pixels, to_tensor
from cyclegan.data.splits import Split
from cyclegan.data.transforms import Preprocess, check_config

logger = logging.getLogger(__name__)

Key = int | tuple[int, int]
T = TypeVar("T")


def parse_key(key: Key) -> tuple[int, int]:
    """`(index, seed)` from a key; a plain index is its own seed."""
    if isinstance(key, (tuple, list)):
        if len(key) != 2:
            raise TypeError(f"a dataset key is an index or an (index, seed) pair, got {key!r}")
        return operator.index(key[0]), operator.index(key[1])
    index = operator.index(key)
    return index, index


def first_readable(
    load: Callable[[int], T], n: int, start: int, *, bad: set[int], max_skips: int, label: Callable[[int], str],
    give_up: str,
) -> tuple[T, int, int]:
    """`load(i)` for the first i of start, start + 1, ... (mod n) that loads: indices in `bad` are passed
    over, and one whose load raises DataError is logged (`label(i)` names it) and added to `bad`.
    Returns (result, i, positions skipped); after `max_skips` positions raises DataError(`give_up`)."""
    for skipped in range(min(max_skips, n)):
        i = (start + skipped) % n
        if i in bad:
            continue
        try:
            return load(i), i, skipped
        except DataError as e:
            bad.add(i)
            logger.warning("skipping %s: %s", label(i), e)
    raise DataError(give_up)


def check_channel_count(channels: int, name: str = "channels") -> None:
    """Raise ValueError unless 1 <= channels <= MAX_CHANNELS."""
    if not 1 <= channels <= MAX_CHANNELS:
        raise ValueError(f"{name} must be 1 (grayscale), 3 (RGB) or another band count up to {MAX_CHANNELS}, "
                         f"got {channels}")


def item_rng(index: int, seed: int) -> random.Random:
    """The generator of one item. Index and seed are both hashed in (str seeds go through SHA-512,
    the same in every process), so items sharing a seed still get independent crops and flips."""
    return random.Random(f"cyclegan/item/{index}/{seed}")


class _Domain:
    """One domain's images and transform, with the bad files found so far (per process)."""

    def __init__(self, name: str, root: str | Path, cfg: DataConfig, channels: int, exclude: Collection[str] = ()) -> None:
        check_channel_count(channels, f"channels_{name.lower()}")
        self.name = name
        self.setting = f"model.channels_{name.lower()}"
        self.root = Path(root)
        self.channels = channels
        excluded = set(exclude)
        paths = [p for p in find_images(self.root) if p.relative_to(self.root).as_posix() not in excluded]
        if not paths:
            raise DataError(f"no image of {self.root} is left to train on once the held-out ones are set aside")
        self.paths = paths[: cfg.max_dataset_size] if cfg.max_dataset_size else paths
        self.transform = Preprocess(cfg, grayscale=channels == 1)
        self.bad: set[int] = set()
        # A band-count mismatch fails here, before training, not mid-epoch.
        check_channels(self.paths[0], channels, self.setting, unreadable_ok=True)

    def load(self, start: int, seed: int, max_skips: int) -> tuple[torch.Tensor, Path, int]:
        """Transformed image `start`, or the next readable one after it; also returns how many were skipped."""
        n = len(self.paths)
        image, i, skipped = first_readable(
            lambda i: self.transform(load_pixels(self.paths[i], self.channels, setting=self.setting),
                                     random.Random(seed)), n, start,
            bad=self.bad, max_skips=max_skips, label=lambda i: f"image {self.paths[i]} in domain {self.name}",
            give_up=f"too many unreadable images in {self.root}: {min(max_skips, n)} in a row from "
                    f"{self.paths[start]} could not be loaded or cropped (see the warnings above); fix or remove them",
        )
        return image, self.paths[i], skipped


class UnalignedDataset(Dataset):
    """Unpaired images from two folders (recursive), preprocessed for training.

    Attributes `paths_a` / `paths_b` are the sorted image lists, truncated to `cfg.max_dataset_size`.
    Length is max(|A|, |B|). Indexing takes an `(index, seed)` key (or a plain index = its own seed)
    and returns {"a": (C_a, H, W), "b": (C_b, H, W) float32 in [-1, 1], "a_path", "b_path": str,
    "skipped": int}. An unreadable image (or, with preprocess = crop, one smaller than the crop) is
    logged once per process and replaced by the next image of its domain; `skipped` counts them.

    Args:
        root_a, root_b: folders of domain A and domain B images.
        cfg: preprocessing and sampling settings.
        channels_a, channels_b: 3 for RGB, 1 for grayscale, another count for multi-band files.
        max_skips: consecutive bad images tolerated in a domain before raising DataError.
        holdout: images not to train on (the validation split held out of these folders).
    """

    def __init__(
        self,
        root_a: str | Path,
        root_b: str | Path,
        cfg: DataConfig,
        *,
        channels_a: int = 3,
        channels_b: int = 3,
        max_skips: int = 50,
        holdout: Split | None = None,
    ) -> None:
        check_config(cfg)
        self.cfg = cfg
        self.max_skips = max(1, max_skips)
        self._a = _Domain("A", root_a, cfg, channels_a, holdout.names_a if holdout else ())
        self._b = _Domain("B", root_b, cfg, channels_b, holdout.names_b if holdout else ())

    @classmethod
    def from_root(
        cls, dataroot: str | Path, cfg: DataConfig, phase: str = "train", **kwargs: Any
    ) -> UnalignedDataset:
        """The official layout: `dataroot/{phase}A` and `dataroot/{phase}B` (e.g. datasets/horse2zebra)."""
        root = Path(dataroot)
        if not root.is_dir():
            raise DataError(f"data root {root} does not exist or is not a folder; expected {root}/{phase}A and "
                            f"{root}/{phase}B inside it")
        dirs = [root / f"{phase}A", root / f"{phase}B"]
        missing = [d.name for d in dirs if not d.is_dir()]
        if missing:
            raise DataError(
                f"expected {dirs[0]} and {dirs[1]} (one folder of images per domain, the official layout); "
                f"missing: {', '.join(missing)}"
            )
        return cls(dirs[0], dirs[1], cfg, **kwargs)

    @property
    def paths_a(self) -> list[Path]:
        return self._a.paths

    @property
    def paths_b(self) -> list[Path]:
        return self._b.paths

    @property
    def root_a(self) -> Path:
        return self._a.root

    @property
    def root_b(self) -> Path:
        return self._b.root

    def __len__(self) -> int:
        return max(len(self._a.paths), len(self._b.paths))

    def __getitem__(self, key: Key) -> dict[str, Any]:
        index, seed = parse_key(key)
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} items")
        index %= n
        rng = item_rng(index, seed)
        # Separate sub-seeds, so A's crop and flip don't depend on B's choice or on skipped files.
        seed_a, seed_b = rng.getrandbits(64), rng.getrandbits(64)
        n_b = len(self._b.paths)
        index_b = index % n_b if self.cfg.serial_batches else rng.randrange(n_b)
        a, path_a, skipped_a = self._a.load(index % len(self._a.paths), seed_a, self.max_skips)
        b, path_b, skipped_b = self._b.load(index_b, seed_b, self.max_skips)
        return {"a": a, "b": b, "a_path": str(path_a), "b_path": str(path_b), "skipped": skipped_a + skipped_b}

    def __repr__(self) -> str:
        return (f"UnalignedDataset(A: {len(self._a.paths)} images in {self._a.root}, "
                f"B: {len(self._b.paths)} images in {self._b.root}, {self._a.transform!r})")


class ImageFolderDataset(Dataset):
    """Images for translation: {"image": (C, H, W) float32 in [-1, 1], "path": str}.

    Without `cfg` the image is used at full resolution, unprocessed (sizes vary: batch size 1, or
    pad in the caller). With `cfg`, the deterministic test-time preprocessing (`Preprocess.eval`).
    Unreadable files raise DataError.

    Args:
        paths_or_folder: a folder (searched recursively), one image file, or a list of image files.
        channels: 3 for RGB, 1 for grayscale, another count for multi-band files (`load_pixels`).
    """

    def __init__(
        self,
        paths_or_folder: str | Path | Sequence[str | Path],
        channels: int = 3,
        *,
        cfg: DataConfig | None = None,
    ) -> None:
        check_channel_count(channels)
        if isinstance(paths_or_folder, (str, Path)):
            p = Path(paths_or_folder)
            self.paths = [p] if p.is_file() else find_images(p)
        else:
            self.paths = [Path(p) for p in paths_or_folder]
            if not self.paths:
                raise DataError("no images given to translate (empty list of paths)")
        self.channels = channels
        self.transform = None if cfg is None else Preprocess(cfg, grayscale=channels == 1)

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        path = self.paths[index]
        img = load_pixels(path, self.channels)
        if self.transform is not None:
            image = self.transform.eval(img)
        else:
            image = array_to_tensor(img) if isinstance(img, np.ndarray) else to_tensor(img)
        return {"image": image, "path": str(path)}
