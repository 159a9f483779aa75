"""Translate an image tensor of any size at full resolution.

The official test script resizes every image to a multiple of 4 (`preprocess none`) and so changes
its size; here the image is padded up to the generator's size multiple instead, translated, and
cropped back, so the output has exactly the input's size. Pixels are converted as the official test
does: ToTensor + Normalize(0.5), forward, `tensor2im`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..nn.generators import MIN_SIDE, padded_side
from ..precision import autocast


def _pad_dim(x: torch.Tensor, dim: int, before: int, after: int) -> torch.Tensor:
    if before == 0 and after == 0:
        return x
    pad = (before, after, 0, 0) if dim == -1 else (0, 0, before, after)
    # Reflection (no new edge colours) needs the pad to be smaller than the side; else replicate.
    mode = "reflect" if max(before, after) < x.shape[dim] else "replicate"
    return F.pad(x, pad, mode=mode)


def generator_device(generator: nn.Module, default: torch.device | None = None) -> torch.device:
    param = next(generator.parameters(), None)
    return param.device if param is not None else (default or torch.device("cpu"))


def translate_tensor(generator: nn.Module, x: torch.Tensor, *, precision: str = "fp32") -> torch.Tensor:
    """Translate (B, C, H, W) (or (C, H, W)) images in [-1, 1] of any size; the output has size H x W.

    The input is padded (split evenly on both sides, see `padded_side`), run under
    `torch.inference_mode()` on the generator's device, and cropped back. `precision` bf16 / fp16
    runs the generator under autocast (see `cyclegan.precision`); the output is float32 either way.
    """
    squeeze = x.dim() == 3
    if squeeze:
        x = x.unsqueeze(0)
    if x.dim() != 4:
        raise ValueError(f"expected a (B, C, H, W) or (C, H, W) tensor, got shape {tuple(x.shape)}")
    h, w = x.shape[-2:]
    multiple = int(getattr(generator, "size_multiple", 1))
    ph, pw = padded_side(h, multiple) - h, padded_side(w, multiple) - w
    top, left = ph // 2, pw // 2
    with torch.inference_mode():
        xp = x.to(device=generator_device(generator, x.device), dtype=torch.float32)
        xp = _pad_dim(_pad_dim(xp, -2, top, ph - top), -1, left, pw - left)  # (B, C, H + ph, W + pw)
        with autocast(xp.device, precision):
            y = generator(xp)[..., top : top + h, left : left + w].float()
    return y.squeeze(0) if squeeze else y
