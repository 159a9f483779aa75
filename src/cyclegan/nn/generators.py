"""Generators: the ResNet generator of the paper (Appendix 7.2, after Johnson et al. 2016) and the
U-Net of pix2pix (Isola et al. 2017), layer for layer as in the official implementation, with
anti-aliased or resize-convolution resampling as options (`nn.sampling`; CUT's ResNet layout with
`downsample="antialias", upsample="antialias"`).

Module names are our own; `cyclegan.nn.official` maps the official (and CUT's) state-dict keys onto them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .layers import OutputConv2d, OutputConvTranspose2d, conv_bias, norm_layer
from .sampling import BlurDownsample, BlurUpsample, check_sampling


class ResnetBlock(nn.Module):
    """Residual block: `x + block(x)`, block = pad, conv3x3, norm, ReLU, dropout, pad, conv3x3, norm.

    The dropout slot is always present (Identity when disabled) so parameter names do not shift.
    """

    def __init__(self, dim: int, *, norm: str = "instance", dropout: bool = False) -> None:
        super().__init__()
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, bias=bias),
            make_norm(dim),
            nn.ReLU(inplace=True),
            nn.Dropout(0.5) if dropout else nn.Identity(),
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, bias=bias),
            make_norm(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """c7s1-ngf, d(2ngf), d(4ngf), n_blocks x R(4ngf), u(2ngf), u(ngf), c7s1-out, tanh.

    6 blocks for 128x128 training images, 9 for 256x256 and higher (paper, Appendix 7.2).
    Input sides should be multiples of 4 (two stride-2 downsamplings).

    `downsample` / `upsample` choose the resampling (`nn.sampling`): "conv" / "transpose" are the
    paper's strided and transposed convolutions; "antialias" is CUT's layout (a stride-1 conv and a
    blur pool going down, a blur upsampling and a 3x3 conv going up); upsample "resize" is nearest x2
    and a 3x3 conv. The modules, flattened as `layers`, follow the reference code's `model.N` order,
    which `encode` indexes (CUT's `nce_layers`).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        *,
        ngf: int = 64,
        n_blocks: int = 9,
        norm: str = "instance",
        dropout: bool = False,
        downsample: str = "conv",
        upsample: str = "transpose",
    ) -> None:
        super().__init__()
        check_sampling(downsample, upsample)
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.arch = {"type": "resnet", "in_channels": in_channels, "out_channels": out_channels, "ngf": ngf,
                     "n_blocks": n_blocks, "norm": norm, "dropout": dropout, "downsample": downsample,
                     "upsample": upsample}  # what `generator_from_arch` rebuilds it from
        self.n_blocks = n_blocks
        self.downsample, self.upsample = downsample, upsample
        self.size_multiple = 4  # two stride-2 downsamplings: sides must divide by 4
        encoder: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(in_channels, ngf, kernel_size=7, bias=bias),
            make_norm(ngf),
            nn.ReLU(inplace=True),
        ]
        for c in (ngf, 2 * ngf):
            if downsample == "conv":
                encoder += [nn.Conv2d(c, 2 * c, kernel_size=3, stride=2, padding=1, bias=bias), make_norm(2 * c),
                            nn.ReLU(inplace=True)]
            else:
                encoder += [nn.Conv2d(c, 2 * c, kernel_size=3, stride=1, padding=1, bias=bias), make_norm(2 * c),
                            nn.ReLU(inplace=True), BlurDownsample(2 * c)]
        self.encoder = nn.Sequential(*encoder)
        self.blocks = nn.Sequential(
            *(ResnetBlock(4 * ngf, norm=norm, dropout=dropout) for _ in range(n_blocks))
        )
        decoder: list[nn.Module] = []
        for c in (4 * ngf, 2 * ngf):
            if upsample == "transpose":
                decoder += [nn.ConvTranspose2d(c, c // 2, 3, stride=2, padding=1, output_padding=1, bias=bias)]
            else:
                decoder += [BlurUpsample(c) if upsample == "antialias" else nn.Upsample(scale_factor=2, mode="nearest"),
                            nn.Conv2d(c, c // 2, kernel_size=3, stride=1, padding=1, bias=bias)]
            decoder += [make_norm(c // 2), nn.ReLU(inplace=True)]
        decoder += [
            nn.ReflectionPad2d(3),
            OutputConv2d(ngf, out_channels, kernel_size=7),  # float32 even under autocast
            nn.Tanh(),
        ]
        self.decoder = nn.Sequential(*decoder)

    @property
    def layers(self) -> list[nn.Module]:
        """Every layer in the reference code's flat `model.N` order (encoder, blocks, decoder)."""
        return [*self.encoder, *self.blocks, *self.decoder]

    def encode(self, x: torch.Tensor, layers: list[int] | tuple[int, ...]) -> list[torch.Tensor]:
        """The outputs of the flat `layers` (indices into `layers`, ascending), as CUT's
        `forward(x, nce_layers, encode_only=True)`: the pass stops after the last one. A tapped
        output that the next in-place ReLU overwrites is returned overwritten, as there."""
        wanted, last = set(layers), max(layers)
        feats = []
        for i, layer in enumerate(self.layers[: last + 1]):
            x = layer(x)
            if i in wanted:
                feats.append(x)
        return feats

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.blocks(self.encoder(x)))


class UnetGenerator(nn.Module):
    """U-Net with `num_downs` stride-2 levels (7 for 128x128, 8 for 256x256).

    Encoder: C(ngf) without norm, then [LeakyReLU(0.2), conv4x4 s2, norm] with widths 2ngf, 4ngf,
    8ngf, 8ngf...; the innermost level has no norm. Decoder: [ReLU, convT4x4 s2, norm] mirrored, with
    dropout 0.5 at the 8ngf->8ngf levels when enabled, and the outermost level ends in tanh.
    As in the official code, each skip connection carries the LeakyReLU'd encoder activation (the
    official in-place LeakyReLU overwrites the tensor that is later concatenated).

    `downsample="antialias"` makes each 4x4 stride-2 conv a 3x3 stride-1 conv followed by a blur pool;
    `upsample="antialias"` / `"resize"` makes each 4x4 stride-2 transposed conv a blur (or
    nearest-neighbour) upsampling followed by a 3x3 conv (`nn.sampling`). Those layouts have no
    official counterpart.
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        *,
        num_downs: int = 8,
        ngf: int = 64,
        norm: str = "instance",
        dropout: bool = False,
        downsample: str = "conv",
        upsample: str = "transpose",
    ) -> None:
        super().__init__()
        if num_downs < 5:
            raise ValueError(f"num_downs must be >= 5, got {num_downs}")
        check_sampling(downsample, upsample)
        make_norm, bias = norm_layer(norm), conv_bias(norm)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.arch = {"type": "unet", "in_channels": in_channels, "out_channels": out_channels, "ngf": ngf,
                     "num_downs": num_downs, "norm": norm, "dropout": dropout, "downsample": downsample,
                     "upsample": upsample}
        self.num_downs = num_downs
        self.downsample, self.upsample = downsample, upsample
        self.size_multiple = 2**num_downs
        widths = [ngf, 2 * ngf, 4 * ngf] + [8 * ngf] * (num_downs - 3)  # output width of each level

        def down_conv(c_in: int, c_out: int, *, with_bias: bool) -> list[nn.Module]:
            if downsample == "conv":
                return [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=with_bias)]
            return [nn.Conv2d(c_in, c_out, 3, stride=1, padding=1, bias=with_bias), BlurDownsample(c_out)]

        def up_conv(c_in: int, c_out: int, *, with_bias: bool, output: bool = False) -> list[nn.Module]:
            if upsample == "transpose":
                conv_t = OutputConvTranspose2d if output else nn.ConvTranspose2d  # output: float32 under autocast
                return [conv_t(c_in, c_out, 4, stride=2, padding=1, bias=with_bias)]
            up = BlurUpsample(c_in) if upsample == "antialias" else nn.Upsample(scale_factor=2, mode="nearest")
            return [up, (OutputConv2d if output else nn.Conv2d)(c_in, c_out, 3, stride=1, padding=1, bias=with_bias)]

        downs = [nn.Sequential(*down_conv(in_channels, ngf, with_bias=bias))]
        ups = [nn.Sequential(nn.ReLU(inplace=True), *up_conv(2 * ngf, out_channels, with_bias=True, output=True),
                             nn.Tanh())]
        for level in range(1, num_downs):
            inner = level == num_downs - 1
            c_in, c_out = widths[level - 1], widths[level]
            down = down_conv(c_in, c_out, with_bias=bias)
            downs.append(nn.Sequential(nn.LeakyReLU(0.2), down[0], nn.Identity() if inner else make_norm(c_out),
                                       *down[1:]))
            # The innermost decoder sees only its own encoder output; the others see [skip, up].
            up_in = c_out if inner else 2 * c_out
            use_dropout = dropout and 4 <= level < num_downs - 1
            ups.append(
                nn.Sequential(
                    nn.ReLU(inplace=True),
                    *up_conv(up_in, c_in, with_bias=bias),
                    make_norm(c_in),
                    nn.Dropout(0.5) if use_dropout else nn.Identity(),
                )
            )
        self.downs = nn.ModuleList(downs)
        self.ups = nn.ModuleList(ups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        h = x
        for down in self.downs:
            h = down(h)
            skips.append(h)
        h = self.ups[-1](skips[-1])
        for level in range(self.num_downs - 2, -1, -1):
            skip = F.leaky_relu(skips[level], 0.2)  # what the official in-place LeakyReLU leaves behind
            h = self.ups[level](torch.cat([skip, h], dim=1))
        return h


GENERATORS = {
    "resnet_9blocks": lambda i, o, **kw: ResnetGenerator(i, o, n_blocks=9, **kw),
    "resnet_6blocks": lambda i, o, **kw: ResnetGenerator(i, o, n_blocks=6, **kw),
    "unet_128": lambda i, o, **kw: UnetGenerator(i, o, num_downs=7, **kw),
    "unet_256": lambda i, o, **kw: UnetGenerator(i, o, num_downs=8, **kw),
}
# What each side of a generator's input must divide by (its `size_multiple`): the translators pad to it,
# training images must have it (a ResNet halves its input twice, a U-Net once per level). A generator
# added to GENERATORS without an entry here gets no size check before training.
SIZE_MULTIPLES = {"resnet_9blocks": 4, "resnet_6blocks": 4, "unet_128": 2**7, "unet_256": 2**8}
MIN_SIDE = 8  # the smallest side every registered generator takes (a ResNet reflection-pads its 1/4-size features)


def padded_side(n: int, multiple: int) -> int:
    """The smallest multiple of `multiple` that is >= n and >= MIN_SIDE.

    MIN_SIDE because a ResNet's blocks reflection-pad their 1/4-size features, which needs 2 pixels.
    """
    return max(-(-n // multiple), -(-MIN_SIDE // multiple)) * multiple


def build_generator(
    name: str, in_channels: int = 3, out_channels: int = 3, *, ngf: int = 64, norm: str = "instance",
    dropout: bool = False, downsample: str = "conv", upsample: str = "transpose",
) -> nn.Module:
    """Build a registered generator by name (see `GENERATORS`); weights are not initialised here."""
    if name not in GENERATORS:
        raise ValueError(f"unknown generator {name!r}; choose one of: {', '.join(GENERATORS)}")
    return GENERATORS[name](in_channels, out_channels, ngf=ngf, norm=norm, dropout=dropout, downsample=downsample,
                            upsample=upsample)


def generator_from_arch(arch: dict) -> nn.Module:
    """The (untrained) generator a network's `arch` describes (a ResnetGenerator's or UnetGenerator's).

    Raises:
        ValueError: an unknown type, or a field that is missing or of the wrong kind.
    """
    kinds = {"resnet": ResnetGenerator, "unet": UnetGenerator}
    kind = arch.get("type") if isinstance(arch, dict) else None
    if kind not in kinds:
        raise ValueError(f"unknown generator type {kind!r}; expected one of: {', '.join(kinds)}")
    fields = {k: v for k, v in arch.items() if k != "type"}
    try:
        return kinds[kind](fields.pop("in_channels"), fields.pop("out_channels"), **fields)
    except (KeyError, TypeError) as e:
        raise ValueError(f"the {kind} generator's description is incomplete or wrong: {e}") from None
