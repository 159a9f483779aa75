"""Translate very large images in overlapping tiles, in bounded memory and without seams.

Two things make naive tiling show seams with CycleGAN's generators:

1. **Instance norm** normalises every feature map by its own mean and variance, so each tile would be
   normalised by *its* statistics: a tile of sea and a tile of city come out with different colour
   casts. Here the statistics of every InstanceNorm layer are measured once on the whole image
   (exact up to `stats_pixels` pixels; above, estimated on the image downscaled to that size) and
   every tile is normalised with those same statistics. Each tile is then what the whole-image forward pass would
   compute, except near the tile's border.
2. **The receptive field** (about 90 px of context on each side for resnet_9blocks): pixels near a
   tile's border see reflection padding instead of their neighbours. Tiles therefore overlap, and
   each output pixel is a weighted mean of the tiles that cover it, with weights that ramp from 0 to 1
   across the middle quarter of every overlap (the outer 3/8 nearest each tile's border gets no
   weight), normalised to sum to 1. With the default overlap (128 px, a quarter of larger tiles) a
   tiled resnet_9blocks output is within 1 grey level of the whole-image output.

Memory: the image is kept as uint8; tiles are converted one at a time; finished rows are written to
the uint8 output as soon as no later tile row touches them, so the float buffer holds at most one tile
row (C x tile x W). A 4000 x 3000 image needs a few hundred MB instead of the tens of GB that a
whole-image resnet_9blocks pass at 64 channels would take.
"""

from __future__ import annotations

import contextlib
import math
import threading
import types
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from ..data.image_io import array_to_tensor, tensor_to_samples
from .translate import generator_device, padded_side, translate_tensor

DEFAULT_STATS_PIXELS = 1024 * 1024  # stats pass size: exact up to 1 MP, estimated above


def _instance_norms(generator: nn.Module) -> list[nn.InstanceNorm2d]:
    return [m for m in generator.modules() if isinstance(m, nn.InstanceNorm2d) and not m.track_running_stats]


def instance_norm_stats(
    generator: nn.Module, image: np.ndarray, *, max_pixels: int = DEFAULT_STATS_PIXELS
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(mean, var) of the input of every InstanceNorm layer, each (1, C, 1, 1), for the whole `image`.

    `image` is uint8 (H, W[, C]) (or `data.bands` samples). Up to `max_pixels` pixels the whole image goes through the
    generator once and the statistics are exact. Above, the image is first downscaled (PIL bicubic,
    which antialiases) to about `max_pixels`: an estimate (fine texture is smoothed away, which
    shifts the feature variances), but one shared by all tiles, so they still agree at their borders.
    (Pooling the statistics over a grid of full-resolution crops of the same total size was tried
    and came out further from the whole-image output.)
    """
    norms = _instance_norms(generator)
    if not norms:
        return []
    h, w = image.shape[:2]
    if h * w > max_pixels:
        scale = math.sqrt(max_pixels / (h * w))
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        if image.dtype == np.uint8 and (image.ndim == 2 or image.shape[2] in (1, 3)):
            image = np.asarray(Image.fromarray(image.squeeze()).resize(size, Image.BICUBIC))
        else:  # 16-bit or multi-band samples: the same antialiased bicubic on floats
            x = torch.nn.functional.interpolate(array_to_tensor(image)[None], size=size[::-1], mode="bicubic",
                                                antialias=True, align_corners=False).clamp(-1, 1)
            return _stats_of_batch(generator, x, norms)
    return _stats_of_batch(generator, array_to_tensor(image)[None], norms)


def _stats_of_batch(
    generator: nn.Module, batch: torch.Tensor, norms: list[nn.InstanceNorm2d]
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    stats: list[tuple[torch.Tensor, torch.Tensor]] = []

    def record(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        var, mean = torch.var_mean(inputs[0].float(), dim=(2, 3), keepdim=True, correction=0)
        stats.append((mean, var))

    handles = [m.register_forward_pre_hook(record) for m in norms]
    try:
        translate_tensor(generator, batch)
    finally:
        for handle in handles:
            handle.remove()
    return stats


@contextlib.contextmanager
def fixed_instance_norm(generator: nn.Module, stats: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> Iterator[None]:
    """Within the block, every InstanceNorm layer normalises with the given (mean, var) instead of
    the statistics of its own input; the generator is restored afterwards."""
    norms = _instance_norms(generator)
    if len(norms) != len(stats):
        raise ValueError(f"{len(stats)} statistics for {len(norms)} instance-norm layers")

    def forward(self: nn.InstanceNorm2d, x: torch.Tensor) -> torch.Tensor:
        mean, var = self._fixed_stats
        y = (x - mean) * torch.rsqrt(var + self.eps)
        return y * self.weight[:, None, None] + self.bias[:, None, None] if self.affine else y

    for norm, (mean, var) in zip(norms, stats):
        norm._fixed_stats = (mean, var)
        norm.forward = types.MethodType(forward, norm)
    try:
        yield
    finally:
        for norm in norms:
            del norm.forward, norm._fixed_stats


def tile_starts(n: int, tile: int, overlap: int) -> list[int]:
    """Start positions of tiles of size `tile` covering [0, n), evenly spread, overlapping >= `overlap`."""
    if n <= tile:
        return [0]
    k = math.ceil((n - overlap) / (tile - overlap))
    return [round(i * (n - tile) / (k - 1)) for i in range(k)]


RAMP = 0.25  # share of an overlap over which the weight ramps (centred); see blend_weights


def blend_weights(starts: Sequence[int], size: int, n: int) -> list[torch.Tensor]:
    """1-D weights per tile (each of length `size`) that sum to 1 at every position in [0, n).

    Across each overlap with a neighbour, a tile's weight is 0 on the outer 3/8 (nearest its border,
    where its receptive field is cut off), ramps linearly over the middle quarter, and is 1 beyond.
    """
    raw = []
    for i, s in enumerate(starts):
        u = torch.ones(size, dtype=torch.float64)
        pos = torch.arange(size, dtype=torch.float64) + 0.5
        if i > 0:  # left/top neighbour
            o = starts[i - 1] + size - s
            u = u * ((pos / o - (1 - RAMP) / 2) / RAMP).clamp(0, 1)
        if i + 1 < len(starts):  # right/bottom neighbour
            o = s + size - starts[i + 1]
            u = u * (((size - pos) / o - (1 - RAMP) / 2) / RAMP).clamp(0, 1)
        raw.append(u.clamp_min(1e-6))  # never exactly 0, so every position has a positive total
    total = torch.zeros(n, dtype=torch.float64)
    for s, u in zip(starts, raw):
        total[s : s + size] += u
    return [(u / total[s : s + size]).float() for s, u in zip(starts, raw)]


class TranslationCancelled(Exception):
    """`translate_tiled` was asked to stop (its `cancel` event was set)."""


def translate_tiled(
    generator: nn.Module,
    image: np.ndarray,
    *,
    tile: int = 512,
    overlap: int | None = None,
    stats_pixels: int = DEFAULT_STATS_PIXELS,
    progress: bool = False,
    cancel: threading.Event | None = None,
) -> np.ndarray:
    """Translate an image (H, W) or (H, W, C) tile by tile; returns (H, W[, C_out]) of its sample type.

    uint8 is the usual case; uint16 and float32 samples (`data.bands`) come back in their own type.

    Args:
        tile: tile side in pixels (rounded up to the generator's size multiple). Memory grows with
            tile², speed improves with it; 512 suits CPUs, 1024 or more GPUs.
        overlap: minimum overlap of neighbouring tiles (default: max(128, tile // 4), at most tile // 2).
        stats_pixels: the instance-norm statistics are exact for images up to this many pixels;
            above, they are estimated on the image downscaled to this size. Its memory is that of a
            whole-image pass at this size.
        cancel: when set (by another thread: a client that left, a time limit), the translation
            stops before its next tile with `TranslationCancelled`.
    """
    if image.dtype.name not in ("uint8", "uint16", "float32") or image.ndim not in (2, 3):
        raise ValueError(f"expected a uint8, uint16 or float32 (H, W) or (H, W, C) image, got {image.dtype} "
                         f"{image.shape}")
    dtype = image.dtype.name
    multiple = int(getattr(generator, "size_multiple", 1))
    tile = padded_side(tile, multiple)
    overlap = min(max(128, tile // 4), tile // 2) if overlap is None else overlap
    if not 0 <= overlap < tile:
        raise ValueError(f"tile overlap must be in [0, tile) = [0, {tile}), got {overlap}")
    h, w = image.shape[:2]
    if h <= tile and w <= tile:
        return tensor_to_samples(translate_tensor(generator, array_to_tensor(image)), dtype)

    th, tw = min(tile, h), min(tile, w)
    ys, xs = tile_starts(h, th, overlap), tile_starts(w, tw, overlap)
    wy, wx = blend_weights(ys, th, h), blend_weights(xs, tw, w)
    device = generator_device(generator)
    stats = instance_norm_stats(generator, image, max_pixels=stats_pixels)
    out: np.ndarray | None = None
    band, band_start = None, 0  # float rows [band_start, band_start + len) not yet written
    bar = tqdm(total=len(ys) * len(xs), desc="tiles", unit="tile", disable=not progress, leave=False)
    with fixed_instance_norm(generator, stats):
        for r, y0 in enumerate(ys):
            for c, x0 in enumerate(xs):
                if cancel is not None and cancel.is_set():
                    bar.close()
                    raise TranslationCancelled(f"stopped after {r * len(xs) + c} of {len(ys) * len(xs)} tiles")
                x = array_to_tensor(image[y0 : y0 + th, x0 : x0 + tw]).to(device)
                y = translate_tensor(generator, x).float().cpu()  # (C_out, th, tw)
                if band is None:
                    band = torch.zeros(y.shape[0], th, w)
                    out = np.zeros((h, w, y.shape[0]) if y.shape[0] > 1 else (h, w), dtype)
                if y0 + th > band_start + band.shape[1]:  # extend the band down to this tile row
                    extra = y0 + th - band_start - band.shape[1]
                    band = torch.cat([band, torch.zeros(band.shape[0], extra, w)], dim=1)
                weight = wy[r][:, None] * wx[c][None, :]
                band[:, y0 - band_start : y0 - band_start + th, x0 : x0 + tw] += y * weight
                bar.update(1)
            done = ys[r + 1] if r + 1 < len(ys) else h  # rows no later tile row touches
            out[band_start:done] = tensor_to_samples(band[:, : done - band_start], dtype)
            band, band_start = band[:, done - band_start :], done
    bar.close()
    return out
