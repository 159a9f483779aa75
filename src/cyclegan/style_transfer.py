"""Average neural style transfer: the paper's baseline for collection style transfer (Sec. 5.2, Fig. 15).

Gatys et al. 2016 ("Image style transfer using convolutional neural networks") match the Gram
matrices of one style image; for the style of a whole collection (all of Monet's paintings) the paper
uses the *mean* Gram matrices over the collection. Here:

1. `style_statistics`: the mean Gram matrix of relu1_1, relu2_1, relu3_1, relu4_1 and relu5_1 over a
   folder of style images (each resized so its longer side is `size`), saved with `StyleStats.save`
   and reused with `StyleStats.load`.
2. `stylize`: for one content image, optimise the output image (initialised with the content image)
   to minimise content_weight * content loss (MSE of relu4_2 features) + style_weight * style loss
   (sum over the style layers of the MSE between its Gram matrix and the collection's mean).
3. `transfer_style`: every content image of a folder, written at its own size.
4. `transfer_collection_style`: all of it from paths, as `cyclegan style-transfer` runs it.

A Gram matrix is normalised by the number of feature elements, G = F F^T / (C H W) with F the
(C, H*W) features, so images of different sizes contribute on the same scale; the default weights
(content 1, style 1e6) are those of PyTorch's neural-style tutorial for this normalisation.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from tqdm import tqdm

from .atomic import atomic_write
from .data.image_io import DataError, find_images, load_image, save_image, tensor_to_uint8, to_tensor
from .inference.folders import plan
from .names import STYLE_OPTIMIZERS as OPTIMIZERS
from .safe_load import load_tensors
from .weights import load_feature_extractor

log = logging.getLogger(__name__)

STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"
STATS_FORMAT = "cyclegan-style-stats"


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, C): F F^T / (C H W), with F the (C, H*W) features of each item."""
    b, c, h, w = features.shape
    f = features.reshape(b, c, h * w)
    return f @ f.transpose(1, 2) / (c * h * w)


class GramMean:
    """Running mean of Gram matrices (float64 sums): `add` (1, C, H, W) feature maps of any sizes one
    at a time, so a large collection never needs all its Grams in memory."""

    def __init__(self) -> None:
        self.total: torch.Tensor | None = None
        self.count = 0

    def add(self, features: torch.Tensor) -> None:
        g = gram_matrix(features).double().sum(0)  # (C, C), summed over the batch
        self.total = g if self.total is None else self.total + g
        self.count += features.shape[0]

    def mean(self) -> torch.Tensor:
        if self.total is None:
            raise ValueError("no feature maps were added")
        return (self.total / self.count).float()


@dataclass(frozen=True)
class StyleStats:
    """The mean Gram matrices of a style collection, and how they were computed."""

    grams: dict[str, torch.Tensor]  # layer -> (C, C)
    network: str  # the feature network (cyclegan.nn.features)
    size: int  # longer side of the style images when their features were computed
    count: int  # images in the collection

    def save(self, path: str | Path) -> Path:
        """Write as plain tensors and strings (`torch.load(..., weights_only=True)` reads it back)."""
        obj = {"format": STATS_FORMAT, "version": 1, "network": self.network, "size": self.size,
               "count": self.count, "grams": {k: v.detach().cpu() for k, v in self.grams.items()}}
        path = Path(path)
        with atomic_write(path) as f:
            torch.save(obj, f)
        return path

    @classmethod
    def load(cls, path: str | Path) -> StyleStats:
        """Read a file written by `save`; raises ValueError naming the file if it is not one."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"style statistics file {path} does not exist; give a folder of style images "
                                    "or a file written by `cyclegan style-transfer`")
        obj = load_tensors(path, message=f"{path} is not a style statistics file")
        if not isinstance(obj, dict) or obj.get("format") != STATS_FORMAT:
            raise ValueError(f"{path} is not a style statistics file written by `cyclegan style-transfer`")
        missing = [layer for layer in STYLE_LAYERS if layer not in obj["grams"]]
        if missing:
            raise ValueError(f"{path} has no statistics for {', '.join(missing)}")
        return cls(grams=dict(obj["grams"]), network=obj["network"], size=int(obj["size"]), count=int(obj["count"]))


def load_resized(path: Path, size: int) -> torch.Tensor:
    """An image file as (1, 3, h, w) in [-1, 1], resized (bicubic) so that its longer side is `size`."""
    img = load_image(path, 3)
    w, h = img.size
    scale = size / max(w, h)
    new = (max(1, round(w * scale)), max(1, round(h * scale)))
    if new != (w, h):
        img = img.resize(new, Image.Resampling.BICUBIC)
    return to_tensor(img)[None]


def style_statistics(
    style: str | Path | Sequence[str | Path], extractor: nn.Module, *, network: str, size: int = 256,
    device: str | torch.device = "cpu", progress: bool = True,
) -> StyleStats:
    """The mean Gram matrices of the style layers over a folder (or list) of style images.

    `extractor` returns at least `STYLE_LAYERS` (a `FeatureExtractor`); `network` names it in the result.
    Raises DataError when the folder holds no images or one cannot be read.
    """
    paths = find_images(style) if isinstance(style, (str, Path)) else [Path(p) for p in style]
    if not paths:
        raise DataError("no style images given")
    means = {layer: GramMean() for layer in STYLE_LAYERS}
    with torch.no_grad():
        for path in tqdm(paths, desc="style statistics", unit="img", disable=not progress, leave=False):
            feats = extractor(load_resized(path, size).to(device))
            for layer in STYLE_LAYERS:
                means[layer].add(feats[layer])
    grams = {layer: m.mean().cpu() for layer, m in means.items()}
    return StyleStats(grams=grams, network=network, size=size, count=len(paths))


def style_loss(features: dict[str, torch.Tensor], grams: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum over the style layers of the mean squared difference between Gram matrices."""
    return sum(F.mse_loss(gram_matrix(features[layer])[0], grams[layer]) for layer in STYLE_LAYERS)


def stylize(
    content: torch.Tensor, stats: StyleStats, extractor: nn.Module, *, steps: int = 200,
    content_weight: float = 1.0, style_weight: float = 1e6, optimizer: str = "lbfgs", lr: float | None = None,
) -> torch.Tensor:
    """Optimise an image, starting from `content` (1, 3, H, W) in [-1, 1], towards the content's
    relu4_2 features and the collection's mean Grams; returns it (1, 3, H, W) in [-1, 1].

    optimizer: "lbfgs" (as Gatys et al.; `steps` iterations, lr 1 by default) or "adam" (lr 0.02).
    """
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    grams = {k: v.to(content.device) for k, v in stats.grams.items()}
    with torch.no_grad():
        target = extractor(content)[CONTENT_LAYER]
    x = content.detach().clone().requires_grad_(True)

    def objective() -> torch.Tensor:
        feats = extractor(x)
        return content_weight * F.mse_loss(feats[CONTENT_LAYER], target) + style_weight * style_loss(feats, grams)

    if optimizer == "lbfgs":
        opt = torch.optim.LBFGS([x], lr=lr or 1.0, max_iter=1, history_size=50, line_search_fn="strong_wolfe")
    else:
        opt = torch.optim.Adam([x], lr=lr or 0.02)

    def closure() -> torch.Tensor:
        opt.zero_grad(set_to_none=True)
        loss = objective()
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)
        with torch.no_grad():
            x.clamp_(-1, 1)  # stay a valid image
    return x.detach()


def transfer_style(
    content: Sequence[str | Path], stats: StyleStats, extractor: nn.Module, out_dir: str | Path, *, size: int = 256,
    steps: int = 200, content_weight: float = 1.0, style_weight: float = 1e6, optimizer: str = "lbfgs",
    lr: float | None = None, device: str | torch.device = "cpu", progress: bool = True,
) -> list[Path]:
    """Stylise content images and folders (scanned recursively) into `out_dir` as PNG, keeping names
    and sub-folders. Each is optimised with its longer side at `size` and written at its own size."""
    pairs = plan(content, Path(out_dir))
    written = []
    for src, dst in tqdm(pairs, desc="style transfer", unit="img", disable=not progress):
        w, h = load_image(src, 3).size
        x = stylize(load_resized(src, size).to(device), stats, extractor, steps=steps, content_weight=content_weight,
                    style_weight=style_weight, optimizer=optimizer, lr=lr)
        out = Image.fromarray(tensor_to_uint8(x[0], rounding=True))
        if out.size != (w, h):
            out = out.resize((w, h), Image.Resampling.BICUBIC)
        written.append(save_image(np.asarray(out), dst))
    return written


@dataclass(frozen=True)
class CollectionTransfer:
    """What `transfer_collection_style` did."""

    written: list[Path]  # the output images, in input order
    stats: StyleStats
    stats_saved: Path | None  # where statistics computed from a folder were saved; None: read from a file


def transfer_collection_style(
    style: str | Path, content: Sequence[str | Path], out_dir: str | Path, *, network: str = "vgg16",
    weights: str | Path | None = None, save_stats: str | Path | None = None, size: int = 256, steps: int = 200,
    content_weight: float = 1.0, style_weight: float = 1e6, optimizer: str = "lbfgs", lr: float | None = None,
    device: str | torch.device = "cpu", progress: bool = True,
) -> CollectionTransfer:
    """The style of a collection onto content images and folders (scanned recursively), into `out_dir`.

    `style` is a folder of style images, whose statistics are computed and saved to `save_stats`
    (default OUT_DIR/style_stats.pt), or a statistics file saved earlier with `network`'s features.
    Every input is checked before the feature network is loaded (or downloaded).
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
    style, out_dir = Path(style), Path(out_dir)
    stats = None if style.is_dir() else StyleStats.load(style)
    style_images = find_images(style) if stats is None else None
    if stats is not None and stats.network != network:
        raise ValueError(f"{style} holds {stats.network} statistics; run with --network {stats.network}")
    plan(content, out_dir)
    extractor = load_feature_extractor(network, (*STYLE_LAYERS, CONTENT_LAYER), weights=weights,
                                       progress=progress).to(device)
    saved = None
    if stats is None:
        stats = style_statistics(style_images, extractor, network=network, size=size, device=device, progress=progress)
        saved = stats.save(save_stats or out_dir / "style_stats.pt")
    written = transfer_style(content, stats, extractor, out_dir, size=size, steps=steps, content_weight=content_weight,
                             style_weight=style_weight, optimizer=optimizer, lr=lr, device=device, progress=progress)
    return CollectionTransfer(written=written, stats=stats, stats_saved=saved)
