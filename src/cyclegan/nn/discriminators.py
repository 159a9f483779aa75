"""Discriminators: the 70x70 PatchGAN of the paper (Appendix 7.2, C64-C128-C256-C512) generalised
to n layers, and the 1x1 PixelGAN, as in the official implementation; the PatchGAN optionally with
CUT's anti-aliased downsampling (`nn.sampling`)."""

from __future__ import annotations

import torch
from torch import nn

from .layers import conv_bias, in_float32, norm_layer
from .sampling import BlurDownsample, check_sampling


class NLayerDiscriminator(nn.Module):
    """PatchGAN: n stride-2 4x4 convs (no norm on the first), a stride-1 conv, then a 1-channel map.

    n_layers=3 ("basic") gives a 70x70 receptive field; each output judges one overlapping patch.
    With `float32`, it computes in float32 even inside an autocast region (see `train.precision`).
    `downsample="antialias"` (CUT's default D): each stride-2 conv runs at stride 1 and is followed
    (after its norm and LeakyReLU) by a blur pool.
    """

    def __init__(self, in_channels: int = 3, *, ndf: int = 64, n_layers: int = 3, norm: str = "instance",
                 float32: bool = False, downsample: str = "conv") -> None:
        super().__init__()
        check_sampling(downsample)
        self.float32 = float32
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        blur = downsample == "antialias"
        layers: list[nn.Module] = [
            nn.Conv2d(in_channels, ndf, 4, stride=1 if blur else 2, padding=1),
            nn.LeakyReLU(0.2, inplace=True),
            *([BlurDownsample(ndf)] if blur else []),
        ]
        mult = 1
        for n in range(1, n_layers + 1):
            prev, mult = mult, min(2**n, 8)
            strided = n < n_layers
            layers += [
                nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2 if strided and not blur else 1, padding=1, bias=bias),
                make_norm(ndf * mult),
                nn.LeakyReLU(0.2, inplace=True),
                *([BlurDownsample(ndf * mult)] if strided and blur else []),
            ]
        layers.append(nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return in_float32(self.model, x) if self.float32 else self.model(x)


class PixelDiscriminator(nn.Module):
    """PixelGAN: 1x1 convs only, so every pixel is judged on its own colour. `float32`: as PatchGAN's."""

    def __init__(self, in_channels: int = 3, *, ndf: int = 64, norm: str = "instance", float32: bool = False) -> None:
        super().__init__()
        self.float32 = float32
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        self.model = nn.Sequential(
            nn.Conv2d(in_channels, ndf, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(ndf, 2 * ndf, 1, bias=bias),
            make_norm(2 * ndf),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * ndf, 1, 1, bias=bias),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return in_float32(self.model, x) if self.float32 else self.model(x)


DISCRIMINATORS = ("basic", "n_layers", "pixel")


def build_discriminator(
    name: str, in_channels: int = 3, *, ndf: int = 64, n_layers: int = 3, norm: str = "instance", float32: bool = False,
    downsample: str = "conv",
) -> nn.Module:
    """`basic` (70x70 PatchGAN), `n_layers` (PatchGAN with `n_layers`) or `pixel` (1x1); `float32`:
    compute in float32 under autocast (mixed-precision training keeps the discriminators exact);
    `downsample` for the PatchGANs ("conv" or "antialias"; a PixelGAN does not downsample)."""
    if name == "basic":
        return NLayerDiscriminator(in_channels, ndf=ndf, n_layers=3, norm=norm, float32=float32, downsample=downsample)
    if name == "n_layers":
        return NLayerDiscriminator(in_channels, ndf=ndf, n_layers=n_layers, norm=norm, float32=float32,
                                   downsample=downsample)
    if name == "pixel":
        return PixelDiscriminator(in_channels, ndf=ndf, norm=norm, float32=float32)
    raise ValueError(f"unknown discriminator {name!r}; choose one of: {', '.join(DISCRIMINATORS)}")
