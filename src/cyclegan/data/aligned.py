"""Paired training images for pix2pix (Isola et al. 2017), the official `aligned_dataset.py`.

Two layouts are read:
- `DATAROOT/{phase}/*.jpg` with A and B side by side in each file (A left, B right): the pix2pix
  datasets (facades, maps, cityscapes, edges2shoes...);
- `DATAROOT/{phase}A` and `DATAROOT/{phase}B` with the pairs sharing a file name (e.g. maps_128).

Both images of a pair get the same resize, crop and flip, so they stay pixel-aligned.
"""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from cyclegan.config import DataConfig
from cyclegan.data.image_io import DataError, check_channels, files_by_pair_key, find_images, load_pixels
from cyclegan.data.splits import Split
from cyclegan.data.transforms import Picture, apply_transform, check_config, image_size, sample_params
from cyclegan.data.unaligned import Key, check_channel_count, first_readable, item_rng, parse_key

logger = logging.getLogger(__name__)


class AlignedDataset(Dataset):
    """Pairs (a, b) preprocessed together: {"a", "b": (C, H, W) float32 in [-1, 1], "a_path",
    "b_path": str, "skipped": int}. Keys are `(index, seed)` as in `UnalignedDataset`. An unreadable
    pair (or one whose two images differ in size) is logged once and replaced by the next pair.

    Args:
        pairs: (A file, B file) per item; the same file twice means A|B side by side.
    """

    def __init__(self, pairs: list[tuple[Path, Path]], cfg: DataConfig, *, channels_a: int = 3, channels_b: int = 3,
                 max_skips: int = 50) -> None:
        check_config(cfg)
        if not pairs:
            raise DataError("no image pairs to train on")
        self.pairs = pairs[: cfg.max_dataset_size] if cfg.max_dataset_size else pairs
        self.cfg, self.channels_a, self.channels_b = cfg, channels_a, channels_b
        self.max_skips = max(1, max_skips)
        self.bad: set[int] = set()
        check_channel_count(channels_a, "channels_a")
        check_channel_count(channels_b, "channels_b")
        first_a, first_b = self.pairs[0]
        if first_a == first_b:  # A|B side by side: one file of both domains' channels
            if channels_a != channels_b and {channels_a, channels_b} != {1, 3}:
                raise DataError(f"{first_a} holds A|B side by side, so both domains have its bands; set "
                                f"model.channels_a and model.channels_b to one value (got {channels_a} and "
                                f"{channels_b})")
            check_channels(first_a, self._side_by_side_channels, "model.channels_a", unreadable_ok=True)
        else:  # a band-count mismatch fails here, not mid-epoch
            check_channels(first_a, channels_a, "model.channels_a", unreadable_ok=True)
            check_channels(first_b, channels_b, "model.channels_b", unreadable_ok=True)

    @classmethod
    def from_root(cls, dataroot: str | Path, cfg: DataConfig, phase: str = "train", *, holdout: Split | None = None,
                  **kwargs: Any) -> AlignedDataset:
        """`dataroot/{phase}` (A|B side by side) if it exists, else `dataroot/{phase}A` + `{phase}B` by
        name, without the pairs of which an image is in `holdout`."""
        root = Path(dataroot)
        side_by_side, folder_a, folder_b = root / phase, root / f"{phase}A", root / f"{phase}B"
        if side_by_side.is_dir():
            if holdout is not None:
                raise DataError(f"eval.holdout cannot hold images out of {side_by_side} (A|B side by side); give "
                                "valA/valB folders as the validation split instead")
            return cls([(p, p) for p in find_images(side_by_side)], cfg, **kwargs)
        if not (folder_a.is_dir() and folder_b.is_dir()):
            raise DataError(f"expected paired data in {side_by_side} (A|B side by side in each image) or in "
                            f"{folder_a} and {folder_b} (pairs share a file name)")
        a, b = files_by_pair_key(folder_a), files_by_pair_key(folder_b)
        if holdout is not None:
            held = {*(folder_a / n for n in holdout.names_a), *(folder_b / n for n in holdout.names_b)}
            a, b = ({k: p for k, p in files.items() if p not in held} for files in (a, b))
        names = sorted(set(a) & set(b))
        if not names:
            raise DataError(f"no image in {folder_a} pairs with one in {folder_b} (pairs share a name, up to a "
                            "trailing _A/_B); data.mode=aligned needs pairs (or use data.mode=unaligned)")
        unpaired = len(a) + len(b) - 2 * len(names)
        if unpaired:
            logger.warning("%d images in %s / %s have no partner of the same name and are left out",
                           unpaired, folder_a, folder_b)
        return cls([(a[n], b[n]) for n in names], cfg, **kwargs)

    @property
    def _side_by_side_channels(self) -> int:
        """The channels an A|B file is read with: RGB (grey halves are converted), else the bands."""
        return 3 if {self.channels_a, self.channels_b} <= {1, 3} else self.channels_a

    def __len__(self) -> int:
        return len(self.pairs)

    def load_pair(self, index: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        path_a, path_b = self.pairs[index]
        img_a: Picture
        img_b: Picture
        if path_a == path_b:  # A|B side by side
            ab = load_pixels(path_a, self._side_by_side_channels, setting="model.channels_a")
            w, h = image_size(ab)
            if isinstance(ab, np.ndarray):  # grey: converted below
                img_a, img_b = ab[:, : w // 2], ab[:, w // 2 : w // 2 * 2]
            else:
                img_a, img_b = ab.crop((0, 0, w // 2, h)), ab.crop((w // 2, 0, w // 2 * 2, h))  # grey: converted below
        else:
            img_a = load_pixels(path_a, self.channels_a, setting="model.channels_a")
            img_b = load_pixels(path_b, self.channels_b, setting="model.channels_b")
        if image_size(img_a) != image_size(img_b):
            raise DataError(f"the pair {path_a.name} / {path_b.name} has two sizes ({image_size(img_a)} and "
                            f"{image_size(img_b)})")
        params = sample_params(self.cfg, image_size(img_a), random.Random(seed))
        return tuple(apply_transform(img, self.cfg, params, grayscale=c == 1)
                     for img, c in ((img_a, self.channels_a), (img_b, self.channels_b)))

    def __getitem__(self, key: Key) -> dict[str, Any]:
        index, seed = parse_key(key)
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a dataset of {n} pairs")
        index %= n
        seed = item_rng(index, seed).getrandbits(64)
        (a, b), i, skipped = first_readable(
            lambda i: self.load_pair(i, seed), n, index, bad=self.bad, max_skips=self.max_skips,
            label=lambda i: f"pair {self.pairs[i][0]}",
            give_up=f"too many unreadable pairs in a row from {self.pairs[index][0]} (see the warnings above); "
                    "fix or remove them",
        )
        path_a, path_b = self.pairs[i]
        return {"a": a, "b": b, "a_path": str(path_a), "b_path": str(path_b), "skipped": skipped}

    def __repr__(self) -> str:
        return f"AlignedDataset({len(self.pairs)} pairs from {self.pairs[0][0].parent})"


