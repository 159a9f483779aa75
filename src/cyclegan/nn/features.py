"""Frozen pretrained feature networks: a registry, named activations, the key filter of their weights.

Used by the paper's "feature loss + GAN" baseline (Sec. 5.1.3: L1 between VGG-16 relu4_2 features of
an image and its translation) and by average neural style transfer (Sec. 5.2, Gatys et al. 2016).

    extractor = cyclegan.weights.load_feature_extractor("vgg16", layers=("relu4_2",))  # downloaded once
    extractor(images)["relu4_2"]                                       # images (B, C, H, W) in [-1, 1]

A network is registered in `FEATURE_NETWORKS` with a builder (a module whose `features` is an
`nn.Sequential`), the names of the elements of `features` and the input normalisation. Where its
released weights are, and how they are downloaded, cached and loaded, is `cyclegan.weights`' business;
this module only says which keys of a released file belong to the network (`checkpoint_filter_fn`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from .vgg import VGG_LAYOUTS, vgg16_features, vgg19_features, vgg_layer_names

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IGNORED_PREFIXES = ("classifier.",)  # keys of torchvision's released files that the features do not use


@dataclass(frozen=True)
class FeatureNetwork:
    """How to build a feature network and how its inputs are normalised."""

    build: Callable[[], nn.Module]  # returns a module whose `features` is an nn.Sequential
    layers: tuple[str, ...]  # the name of every element of `features`, in order
    mean: tuple[float, ...] = IMAGENET_MEAN  # the input normalisation the weights were trained with
    std: tuple[float, ...] = IMAGENET_STD


FEATURE_NETWORKS: dict[str, FeatureNetwork] = {
    "vgg16": FeatureNetwork(vgg16_features, vgg_layer_names(VGG_LAYOUTS["vgg16"])),
    "vgg19": FeatureNetwork(vgg19_features, vgg_layer_names(VGG_LAYOUTS["vgg19"])),
}


def feature_network(name: str) -> FeatureNetwork:
    """The registry entry of `name`; an unknown name raises ValueError listing the known ones."""
    if name not in FEATURE_NETWORKS:
        raise ValueError(f"unknown feature network {name!r}; choose one of: {', '.join(FEATURE_NETWORKS)}")
    return FEATURE_NETWORKS[name]


def check_layers(name: str, layers: Sequence[str]) -> None:
    """Raise ValueError unless every layer is a layer of network `name` (the message lists them)."""
    known = feature_network(name).layers
    unknown = [layer for layer in layers if layer not in known]
    if unknown or not layers:
        relus = ", ".join(n for n in known if n.startswith("relu"))
        raise ValueError(f"{name} has no layer {', '.join(map(repr, unknown)) or '(none given)'}; its layers are "
                         f"conv*, relu* and pool* (e.g. {relus})")


def checkpoint_filter_fn(state: Mapping[str, torch.Tensor], net: nn.Module | None = None) -> dict[str, torch.Tensor]:
    """torchvision's released VGG state dict -> the keys of the feature network (`features.N.*`): the
    classifier keys are dropped. The caller checks the rest strictly against `net`."""
    return {k: v for k, v in state.items() if not k.startswith(IGNORED_PREFIXES)}


class FeatureExtractor(nn.Module):
    """A frozen feature network returning named activations: images (B, C, H, W) in [-1, 1] ->
    {layer: (B, C_l, H_l, W_l)}.

    Grayscale inputs (C = 1) are repeated to RGB; inputs are converted to the network's own
    normalisation (ImageNet mean and std for VGG). Only the network up to the deepest requested layer
    is kept and run. The parameters never require gradients and the module stays in eval mode
    (`train()` does not change that); gradients still flow to the input.
    """

    def __init__(self, features: nn.Sequential, layer_names: Sequence[str], layers: Sequence[str], *,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD) -> None:
        super().__init__()
        if len(layer_names) != len(features):
            raise ValueError(f"{len(layer_names)} layer names for a network of {len(features)} layers")
        index = {n: i for i, n in enumerate(layer_names)}
        missing = [n for n in layers if n not in index]
        if missing or not layers:
            raise ValueError(f"unknown layer(s) {', '.join(map(repr, missing)) or '(none given)'}; "
                             f"choose from: {', '.join(layer_names)}")
        self.layers = tuple(layers)
        self._at = {index[n]: n for n in self.layers}
        self.net = features[: max(self._at) + 1]  # same module objects and keys ("0", "2", ...)
        # (1, 3, 1, 1): [-1, 1] -> [0, 1] -> (x - mean) / std in one affine map; not saved with the module.
        mean_t, std_t = torch.tensor(mean).view(1, -1, 1, 1), torch.tensor(std).view(1, -1, 1, 1)
        self.register_buffer("scale", 0.5 / std_t, persistent=False)
        self.register_buffer("shift", (0.5 - mean_t) / std_t, persistent=False)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> FeatureExtractor:
        return super().train(False)  # frozen: eval mode always

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"expected images of shape (B, 1 or 3, H, W) in [-1, 1], got {tuple(x.shape)}")
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = x * self.scale.to(x.dtype) + self.shift.to(x.dtype)
        out = {}
        for i, layer in enumerate(self.net):
            x = layer(x)
            if i in self._at:
                out[self._at[i]] = x
        return out
