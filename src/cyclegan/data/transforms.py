"""Training and test preprocessing: the official `data/base_dataset.py: get_transform`, in PIL only.

Steps, in the official order: optional grayscale -> resize (`resize*`: to load_size x load_size;
`scale_width*`: width to load_size, keeping the aspect ratio) -> random crop_size square crop (`*crop`)
-> for `none`, round each side to a multiple of 4 -> random horizontal flip -> tensor in [-1, 1].
On PIL images each step gives the same pixels as the torchvision transforms the official code uses
(torchvision's `Resize` calls `img.resize((w, h), BICUBIC)`, `Grayscale(1)` calls `img.convert('L')`,
`RandomCrop` calls `img.crop`). The randomness is drawn from an explicit generator instead of the global
`random`/`torch` state, so that a dataset item is a pure function of its key.

16-bit, float and multi-band images (`image_io.load_pixels` gives them as (H, W, C) arrays) take the
same steps on float tensors: the resize is `torch.nn.functional.interpolate(mode="bicubic",
antialias=True)` (PIL's bicubic would need 8 bits), clamped to [0, 1]; crops and flips are exact.
"""

from __future__ import annotations

import random
from typing import TypedDict

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from cyclegan.config import CHOICES, DataConfig
from cyclegan.data.bands import luma
from cyclegan.data.image_io import DataError, array_to_tensor, to_tensor

PREPROCESS_MODES: tuple[str, ...] = CHOICES["data.preprocess"]
POWER_BASE = 4  # the official `__make_power_2(img, base=4)` for preprocess = none

Rng = random.Random | np.random.Generator
Picture = Image.Image | np.ndarray  # a PIL image (8-bit path) or (H, W, C) samples (`load_pixels`)


def image_size(img: Picture) -> tuple[int, int]:
    """(w, h) of a PIL image or an (H, W[, C]) array."""
    return img.size if isinstance(img, Image.Image) else (img.shape[1], img.shape[0])


class TransformParams(TypedDict):
    crop_pos: tuple[int, int]  # (x, y) = (left, top) of the crop in the resized image
    flip: bool


def _check_mode(cfg: DataConfig) -> None:
    if cfg.preprocess not in PREPROCESS_MODES:
        choices = ", ".join(PREPROCESS_MODES)
        raise ValueError(f"data.preprocess={cfg.preprocess!r} is not valid; choose one of: {choices}")


def _randint(rng: Rng, low: int, high: int) -> int:
    """Uniform integer in [low, high], both ends included."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(low, high + 1))
    return rng.randint(low, high)


def check_config(cfg: DataConfig) -> None:
    """Raise for settings that would make every image fail (rather than one image at a time)."""
    _check_mode(cfg)
    if cfg.crop_size < 1 or cfg.load_size < 1:
        raise DataError("data.load_size and data.crop_size must be at least 1")
    resizes = "resize" in cfg.preprocess or "scale_width" in cfg.preprocess
    if "crop" in cfg.preprocess and resizes and cfg.load_size < cfg.crop_size:
        raise DataError(
            f"data.load_size ({cfg.load_size}) is smaller than data.crop_size ({cfg.crop_size}) with "
            f"data.preprocess={cfg.preprocess}; every resized image would be too small to crop"
        )


def resized_size(cfg: DataConfig, size: tuple[int, int]) -> tuple[int, int]:
    """(w, h) after the resize step of `cfg.preprocess`, before cropping, for an image of `size` (w, h)."""
    _check_mode(cfg)
    ow, oh = size
    if "resize" in cfg.preprocess:
        return cfg.load_size, cfg.load_size
    if "scale_width" in cfg.preprocess:
        # Official `__scale_width`: keep the image if it has the width and is tall enough to crop.
        if ow == cfg.load_size and oh >= cfg.crop_size:
            return ow, oh
        return cfg.load_size, int(max(cfg.load_size * oh / ow, cfg.crop_size))
    if cfg.preprocess == "none":
        # Official `__make_power_2`: Python's round() (half to even), e.g. 50 x 30 -> 48 x 32.
        # Sides under 2 px would round to 0 (a crash in the official code); they become 4 px.
        w = max(POWER_BASE, int(round(ow / POWER_BASE) * POWER_BASE))
        h = max(POWER_BASE, int(round(oh / POWER_BASE) * POWER_BASE))
        return w, h
    return ow, oh  # crop


def output_size(cfg: DataConfig, size: tuple[int, int]) -> tuple[int, int]:
    """(w, h) of the tensor that `apply_transform` returns for an image of `size` (w, h)."""
    if "crop" in cfg.preprocess:
        return cfg.crop_size, cfg.crop_size
    return resized_size(cfg, size)


def sample_params(cfg: DataConfig, size: tuple[int, int], rng: Rng) -> TransformParams:
    """Draw the crop position and flip for an image of `size` (w, h), before any resizing.

    Crop positions follow torchvision's `RandomCrop` (top and left uniform over every valid position);
    the flip follows `RandomHorizontalFlip(p=0.5)`.

    Raises:
        DataError: `cfg.preprocess` crops without resizing and the image is smaller than the crop.
    """
    w, h = resized_size(cfg, size)
    x = y = 0
    if "crop" in cfg.preprocess:
        c = cfg.crop_size
        if w < c or h < c:
            raise DataError(
                f"image of {size[0]}x{size[1]} px ({w}x{h} after data.preprocess={cfg.preprocess}) is smaller "
                f"than the {c}x{c} crop; use data.preprocess=resize_and_crop or a smaller data.crop_size"
            )
        y = _randint(rng, 0, h - c)
        x = _randint(rng, 0, w - c)
    flip = bool(rng.random() < 0.5) if cfg.flip else False
    return {"crop_pos": (x, y), "flip": flip}


def eval_params(cfg: DataConfig, size: tuple[int, int]) -> TransformParams:
    """Deterministic test-time parameters: centre crop (where the preprocess crops), no flip.

    The official test script keeps `RandomCrop` (only a no-op with its default load_size == crop_size);
    a centre crop makes translation repeatable.
    """
    w, h = resized_size(cfg, size)
    c = cfg.crop_size
    if "crop" in cfg.preprocess and (w < c or h < c):
        raise DataError(
            f"image of {size[0]}x{size[1]} px is smaller than the {c}x{c} crop; use data.preprocess=none "
            "to translate images at full size"
        )
    x, y = ((w - c) // 2, (h - c) // 2) if "crop" in cfg.preprocess else (0, 0)
    return {"crop_pos": (x, y), "flip": False}


def resize(img: Image.Image, cfg: DataConfig) -> Image.Image:
    """The resize step alone (bicubic, as the official `method=BICUBIC`)."""
    w, h = resized_size(cfg, img.size)
    if (w, h) == img.size:
        return img
    return img.resize((w, h), Image.BICUBIC)


def _crop_box(cfg: DataConfig, params: TransformParams, w: int, h: int) -> tuple[int, int, int]:
    """(x, y, side) of the crop in a resized image of w x h."""
    x, y = params["crop_pos"]
    c = cfg.crop_size
    if x < 0 or y < 0 or x + c > w or y + c > h:
        raise DataError(
            f"crop {c}x{c} at {(x, y)} does not fit the {w}x{h} image; use "
            "data.preprocess=resize_and_crop or a smaller data.crop_size"
        )
    return x, y, c


def apply_array(a: np.ndarray, cfg: DataConfig, params: TransformParams, *, grayscale: bool = False) -> torch.Tensor:
    """`apply_transform` of (H, W, C) samples on float tensors: float32 (C, H, W) in [-1, 1]."""
    a = a[:, :, None] if a.ndim == 2 else a
    if grayscale and a.shape[2] == 3:
        a = luma(a)
    x = array_to_tensor(a).add(1).div(2)  # (C, H, W) in [0, 1]
    w, h = resized_size(cfg, image_size(a))
    if (w, h) != image_size(a):
        x = F.interpolate(x[None], size=(h, w), mode="bicubic", align_corners=False, antialias=True)[0].clamp(0, 1)
    if "crop" in cfg.preprocess:
        cx, cy, c = _crop_box(cfg, params, w, h)
        x = x[:, cy : cy + c, cx : cx + c]
    if params["flip"]:
        x = x.flip(2)
    return x.mul(2).sub(1).contiguous()


def apply_pil(img: Image.Image, cfg: DataConfig, params: TransformParams, *, grayscale: bool = False) -> Image.Image:
    """Every step up to (not including) the tensor conversion; returns mode "L" or "RGB"."""
    if grayscale:
        if img.mode != "L":
            img = img.convert("L")
    elif img.mode != "RGB":
        img = img.convert("RGB")
    img = resize(img, cfg)
    if "crop" in cfg.preprocess:
        x, y, c = _crop_box(cfg, params, img.width, img.height)
        img = img.crop((x, y, x + c, y + c))
    if params["flip"]:
        img = img.transpose(Image.FLIP_LEFT_RIGHT)
    return img


def apply_transform(
    img: Picture, cfg: DataConfig, params: TransformParams, *, grayscale: bool = False
) -> torch.Tensor:
    """Preprocess `img` with fixed `params`; returns float32 (C, H, W) in [-1, 1], C = 1 if grayscale.

    An array (`load_pixels`: 16-bit, float or multi-band samples) keeps its bands, except that
    `grayscale` turns 3 into 1 by luma.
    """
    if isinstance(img, np.ndarray):
        return apply_array(img, cfg, params, grayscale=grayscale)
    return to_tensor(apply_pil(img, cfg, params, grayscale=grayscale))


class Preprocess:
    """The training transform of one domain: `Preprocess(cfg, grayscale=...)(img, rng)`.

    `.eval(img)` is the deterministic test-time version (centre crop, no flip).
    """

    def __init__(self, cfg: DataConfig, *, grayscale: bool = False) -> None:
        _check_mode(cfg)
        self.cfg = cfg
        self.grayscale = grayscale

    def __call__(self, img: Picture, rng: Rng) -> torch.Tensor:
        return apply_transform(img, self.cfg, sample_params(self.cfg, image_size(img), rng), grayscale=self.grayscale)

    def eval(self, img: Picture) -> torch.Tensor:
        return apply_transform(img, self.cfg, eval_params(self.cfg, image_size(img)), grayscale=self.grayscale)

    def __repr__(self) -> str:
        c = self.cfg
        return (f"Preprocess({c.preprocess}, load_size={c.load_size}, crop_size={c.crop_size}, flip={c.flip}, "
                f"grayscale={self.grayscale})")

