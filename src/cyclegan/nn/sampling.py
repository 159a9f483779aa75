"""Anti-aliased and resize-convolution resampling layers, selectable in every generator and PatchGAN.

- `downsample="conv"` (the paper): a strided convolution. `"antialias"` (Zhang, "Making
  Convolutional Networks Shift-Invariant Again", ICML 2019, as CUT uses it): the same convolution at
  stride 1, then `BlurDownsample` (a fixed [1, 2, 1] x [1, 2, 1] / 16 low-pass filter, stride 2).
- `upsample="transpose"` (the paper): a stride-2 transposed convolution, whose uneven overlap paints
  checkerboard patterns. `"antialias"` (CUT): `BlurUpsample` (zero insertion with a fixed
  [1, 3, 3, 1] x [1, 3, 3, 1] / 16 interpolation filter), then a 3x3 convolution. `"resize"` (Odena,
  Dumoulin, Olah, "Deconvolution and Checkerboard Artifacts", Distill 2016; the official CycleGAN
  FAQ's answer to checkerboard artifacts): nearest-neighbour x2, then a 3x3 convolution.

The layers are CUT's `Downsample` / `Upsample` (models/networks.py of taesungp/contrastive-unpaired-
translation): the filters are persistent buffers named `filt`, so CUT's released generator files load
key for key.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

DOWNSAMPLING = ("conv", "antialias")
UPSAMPLING = ("transpose", "antialias", "resize")


def binomial_filter(size: int) -> torch.Tensor:
    """The (size, size) outer product of a binomial row ([1, 2, 1], [1, 3, 3, 1]), summing to 1."""
    row = torch.tensor([math.comb(size - 1, k) for k in range(size)], dtype=torch.float32)
    filt = row[:, None] * row[None, :]
    return filt / filt.sum()


class BlurDownsample(nn.Module):
    """Low-pass filter and subsample by 2: reflect pad 1, depthwise [1,2,1]x[1,2,1]/16, stride 2.
    (B, C, H, W) -> (B, C, ceil(H/2), ceil(W/2))."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("filt", binomial_filter(3)[None, None].repeat(channels, 1, 1, 1))  # (C, 1, 3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.pad(x, (1, 1, 1, 1), mode="reflect"), self.filt.to(x.dtype), stride=2, groups=x.shape[1])


class BlurUpsample(nn.Module):
    """Upsample by 2 with a fixed interpolation filter: replicate pad 1, depthwise transposed conv
    with [1,3,3,1]x[1,3,3,1]/64 x 4 at stride 2, then the border rows and columns cropped.
    (B, C, H, W) -> (B, C, 2H, 2W)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.register_buffer("filt", (binomial_filter(4) * 4)[None, None].repeat(channels, 1, 1, 1))  # (C, 1, 4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv_transpose2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), self.filt.to(x.dtype), stride=2, padding=2,
                               groups=x.shape[1])  # (B, C, 2H + 2, 2W + 2)
        return y[:, :, 1:-1, 1:-1]


def check_sampling(downsample: str, upsample: str = "transpose") -> None:
    if downsample not in DOWNSAMPLING:
        raise ValueError(f"unknown downsample {downsample!r}; choose one of: {', '.join(DOWNSAMPLING)}")
    if upsample not in UPSAMPLING:
        raise ValueError(f"unknown upsample {upsample!r}; choose one of: {', '.join(UPSAMPLING)}")
