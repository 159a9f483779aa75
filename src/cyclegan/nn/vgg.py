"""VGG-16 and VGG-19 convolutional trunks (Simonyan & Zisserman 2015), in torchvision's layout.

Only the `features` part: 3x3 convolutions with ReLU, 2x2 max pools. The module is `VGGFeatures`
with one attribute `features` (an `nn.Sequential`), so its state-dict keys are torchvision's
(`features.0.weight`, `features.0.bias`, `features.2.weight`, ...) and the released ImageNet files
(`vgg16-397923af.pth`, `vgg19-dcbb9e9d.pth`) load strictly once their `classifier.*` keys are dropped.
Every element of `features` has a name (`conv1_1`, `relu1_1`, ..., `pool5`), as used by the
perceptual-loss and style-transfer papers (Gatys et al. 2016 name the VGG-19 layers this way).
"""

from __future__ import annotations

import torch
from torch import nn

# Output channels per convolution, "M" for a max pool (torchvision's configurations "D" and "E").
VGG_LAYOUTS: dict[str, list[int | str]] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
              512, 512, 512, 512, "M"],
}


def vgg_layer_names(layout: list[int | str]) -> tuple[str, ...]:
    """The name of every element of `features`, in order: conv{block}_{i}, relu{block}_{i}, pool{block}."""
    names, block, i = [], 1, 1
    for v in layout:
        if v == "M":
            names.append(f"pool{block}")
            block, i = block + 1, 1
        else:
            names += [f"conv{block}_{i}", f"relu{block}_{i}"]
            i += 1
    return tuple(names)


class VGGFeatures(nn.Module):
    """The convolutional part of a VGG network; `forward` runs all of it: (B, 3, H, W) -> (B, 512, H/32, W/32).

    Inputs are expected normalised with the ImageNet mean and std (see `nn.features.FeatureExtractor`,
    which also returns the intermediate activations).
    """

    def __init__(self, layout: list[int | str]) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for v in layout:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                # torchvision's ReLUs are in place; these are not, so that a returned activation is
                # never overwritten (no parameters: the state dict is the same).
                layers += [nn.Conv2d(in_ch, int(v), kernel_size=3, padding=1), nn.ReLU()]
                in_ch = int(v)
        self.features = nn.Sequential(*layers)
        self.layer_names = vgg_layer_names(layout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


def vgg16_features() -> VGGFeatures:
    return VGGFeatures(VGG_LAYOUTS["vgg16"])


def vgg19_features() -> VGGFeatures:
    return VGGFeatures(VGG_LAYOUTS["vgg19"])
