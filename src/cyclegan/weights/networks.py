"""Networks with their pretrained weights: the frozen VGG feature extractors and the FID Inception.

    extractor = load_feature_extractor("vgg16", ("relu4_2",))  # torchvision's weights, downloaded once
    inception = load_fid_inception()                            # pytorch-fid's weights, downloaded once
    fid("results/fake_B", "datasets/horse2zebra/testB", model=inception)

The networks are defined in `cyclegan.nn.features` and `cyclegan.metrics.inception`; this module
builds them and loads their weights through `load_weights` (table, cache, strict load).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from ..metrics.inception import FIDInceptionV3
from ..nn.features import FeatureExtractor, check_layers, feature_network
from .store import load_weights, weights_file
from .table import FID_INCEPTION

WeightsSource = str | os.PathLike | Mapping[str, torch.Tensor] | None


def load_feature_extractor(
    name: str = "vgg16", layers: Sequence[str] = ("relu4_2",), *, weights: WeightsSource = None, progress: bool = True,
) -> FeatureExtractor:
    """A frozen `FeatureExtractor` of network `name` returning `layers`, on the CPU.

    Args:
        weights: a weights file or state dict with torchvision's key names (`features.0.weight`, ...;
            classifier keys are ignored); None downloads the released ImageNet weights once into the
            cache (`weights_file(name)`).
        progress: show a progress bar while downloading.

    Raises:
        ValueError: unknown network or layer.
        WeightsError: the file or dict is not this network's weights (names what is wrong).
        FileNotFoundError: `weights` names a file that does not exist.
        DownloadError: the weights could not be downloaded, or the download is not the released file.
    """
    spec = feature_network(name)
    check_layers(name, layers)
    net = load_feature_network(name, weights=weights, progress=progress)
    return FeatureExtractor(net.features, spec.layers, layers, mean=spec.mean, std=spec.std)


def load_feature_network(name: str, *, weights: WeightsSource = None, progress: bool = True) -> nn.Module:
    """Network `name` with its weights loaded strictly (see `load_feature_extractor`), frozen, on the CPU."""
    net = feature_network(name).build()
    return load_weights(name, net, weights=weights, progress=progress).eval().requires_grad_(False)


def feature_weights_path(name: str, *, progress: bool = True) -> Path:
    """The cached, verified weights file of feature network `name` (`cache_dir()/features/<file>`)."""
    feature_network(name)  # an unknown name lists the feature networks, not the whole table
    return weights_file(name, progress=progress)


def load_fid_inception(weights: WeightsSource = None, *, progress: bool = True) -> FIDInceptionV3:
    """The FID Inception network in eval mode on the CPU, with pytorch-fid's weights or given ones.

    Args:
        weights: a `.pth` file or a state dict with pytorch-fid's key names (any float dtype; a dict
            holding it under "state_dict" is accepted); None downloads the released weights once
            into the cache (see `fid_weights_path`).
        progress: show a progress bar while downloading.

    Raises:
        WeightsError: the file or dict is not the FID Inception weights (names what is wrong).
        FileNotFoundError: `weights` names a file that does not exist.
        DownloadError: the weights could not be downloaded.
    """
    net = load_weights(FID_INCEPTION, FIDInceptionV3(), weights=weights, progress=progress)
    return net.eval().requires_grad_(False)


def fid_weights_path(*, progress: bool = True) -> Path:
    """The cached, verified FID Inception weights (`cache_dir()/fid/pt_inception-2015-12-05-6726825d.pth`)."""
    return weights_file(FID_INCEPTION, progress=progress)
