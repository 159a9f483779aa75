"""Frozen pretrained feature networks: a registry, strict weight loading, named activations.

Used by the paper's "feature loss + GAN" baseline (Sec. 5.1.3: L1 between VGG-16 relu4_2 features of
an image and its translation) and by average neural style transfer (Sec. 5.2, Gatys et al. 2016).

    extractor = load_feature_extractor("vgg16", layers=("relu4_2",))   # torchvision's weights, downloaded once
    extractor(images)["relu4_2"]                                       # images (B, C, H, W) in [-1, 1]

A network is registered in `FEATURE_NETWORKS` with a builder (a module whose `features` is an
`nn.Sequential`), the names of the elements of `features`, the released weights' URL and the input
normalisation. Weights come from a local file or are downloaded once into the cache
(`cache_dir()/features/<file>`), read with `weights_only=True`, and loaded strictly: every key of the
network with its shape, nothing else (the classifier keys of the released files are ignored).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..safe_load import load_state_dict_file
from .state_dicts import check_keys_and_shapes
from .vgg import VGG_LAYOUTS, vgg16_features, vgg19_features, vgg_layer_names

log = logging.getLogger(__name__)

ENV_URL = "CYCLEGAN_FEATURE_WEIGHTS_URL"  # a mirror (URL or folder) holding the released files, or one file's URL
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class FeatureWeightsError(ValueError):
    """A file or state dict is not the weights of a feature network; the message names it and the fix."""


@dataclass(frozen=True)
class FeatureNetwork:
    """How to build a feature network and where its pretrained weights are."""

    build: Callable[[], nn.Module]  # returns a module whose `features` is an nn.Sequential
    layers: tuple[str, ...]  # the name of every element of `features`, in order
    url: str  # the released weights
    sha256_prefix: str | None = None  # torchvision names its files with the first digits of their sha256
    ignore_prefixes: tuple[str, ...] = ("classifier.",)  # keys of the released file that are not used
    mean: tuple[float, ...] = IMAGENET_MEAN  # the input normalisation the weights were trained with
    std: tuple[float, ...] = IMAGENET_STD

    @property
    def file(self) -> str:
        return self.url.rsplit("/", 1)[-1]


FEATURE_NETWORKS: dict[str, FeatureNetwork] = {
    "vgg16": FeatureNetwork(vgg16_features, vgg_layer_names(VGG_LAYOUTS["vgg16"]),
                            "https://download.pytorch.org/models/vgg16-397923af.pth", "397923af"),
    "vgg19": FeatureNetwork(vgg19_features, vgg_layer_names(VGG_LAYOUTS["vgg19"]),
                            "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", "dcbb9e9d"),
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


def load_feature_extractor(
    name: str = "vgg16", layers: Sequence[str] = ("relu4_2",), *,
    weights: str | os.PathLike | Mapping[str, torch.Tensor] | None = None, progress: bool = True,
) -> FeatureExtractor:
    """A frozen `FeatureExtractor` of network `name` returning `layers`, on the CPU.

    Args:
        weights: a weights file or state dict with torchvision's key names (`features.0.weight`, ...;
            classifier keys are ignored); None downloads the released ImageNet weights once into the
            cache (`feature_weights_path`).
        progress: show a progress bar while downloading.

    Raises:
        ValueError: unknown network or layer.
        FeatureWeightsError: the file or dict is not this network's weights (names what is wrong).
        FileNotFoundError: `weights` names a file that does not exist.
        DownloadError: the weights could not be downloaded, or the download is not the released file.
    """
    spec = feature_network(name)
    check_layers(name, layers)
    net = load_feature_network(name, weights=weights, progress=progress)
    return FeatureExtractor(net.features, spec.layers, layers, mean=spec.mean, std=spec.std)


def load_feature_network(
    name: str, *, weights: str | os.PathLike | Mapping[str, torch.Tensor] | None = None, progress: bool = True
) -> nn.Module:
    """Network `name` with its weights loaded strictly (see `load_feature_extractor`), on the CPU."""
    spec = feature_network(name)
    if weights is None:
        path = feature_weights_path(name, progress=progress)
        try:
            return load_feature_network(name, weights=path)
        except FeatureWeightsError as e:  # the cache was damaged after a verified download
            raise FeatureWeightsError(f"{e}; delete the cached file to download it again") from None
    if isinstance(weights, Mapping):
        state, what = weights, "the given state dict"
    else:
        state, what = _read_state_dict(Path(weights), name=name), str(weights)
    with torch.device("meta"):
        reference = spec.build()
    state = check_state_dict(name, state, reference=reference, what=what)
    net = spec.build()
    net.load_state_dict(state, strict=True)
    return net.eval().requires_grad_(False)


def check_state_dict(name: str, state: Mapping[str, torch.Tensor], *, reference: nn.Module | None = None,
                     what: str = "the state dict") -> dict[str, torch.Tensor]:
    """`state` without the ignored keys; raises FeatureWeightsError unless it then has exactly the keys
    of network `name`, each a floating-point tensor of the right shape."""
    spec = feature_network(name)
    if "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not all(isinstance(k, str) for k in state):
        raise FeatureWeightsError(f"{what} is not a state dict (its keys are not all strings)")
    state = {k: v for k, v in state.items() if not k.startswith(spec.ignore_prefixes)}
    if reference is None:
        with torch.device("meta"):
            reference = spec.build()
    expected = reference.state_dict()
    check_keys_and_shapes(state, expected, what=what, network=f"the {name} weights", error=FeatureWeightsError)
    for key in expected:
        value = state[key]
        if not value.is_floating_point():
            raise FeatureWeightsError(f"{what} is not the {name} weights: {key} has dtype {value.dtype}")
    return {k: v.float() for k, v in state.items()}


def feature_weights_url(name: str) -> str:
    """The weights' URL: the released one, or `$CYCLEGAN_FEATURE_WEIGHTS_URL` (a mirror holding the
    released file names, or, ending in `.pth`, the file itself)."""
    spec = feature_network(name)
    override = os.environ.get(ENV_URL)
    if not override:
        return spec.url
    if override.rstrip("/").endswith(".pth"):
        return override
    from ..weights.download import join_url  # nn/ imports torch only, except when it downloads

    return join_url(override, spec.file)


def feature_weights_path(name: str, *, progress: bool = True) -> Path:
    """The cached weights file of network `name` (`cache_dir()/features/<file>`), downloaded once and
    checked: its sha256 must start with the digits in the released file name, and it must load."""
    from ..weights.download import DownloadError, cache_dir, download, file_sha256

    spec = feature_network(name)
    path = cache_dir() / "features" / spec.file
    if path.is_file():
        return path
    url = feature_weights_url(name)

    def check(part: Path) -> None:
        if spec.sha256_prefix is not None:
            digest = file_sha256(part)
            if not digest.startswith(spec.sha256_prefix):
                raise DownloadError(f"{url} has sha256 {digest[:16]}..., expected {spec.sha256_prefix}... (the "
                                    f"released {spec.file}): a corrupt or different file; check the URL or {ENV_URL}")
        try:
            check_state_dict(name, _read_state_dict(part, name=name, what=url), what=url)
        except FeatureWeightsError as e:
            raise DownloadError(f"{e}; check the URL or set {ENV_URL} to a working mirror") from None

    log.info("downloading the %s weights from %s to %s", name, url, path)
    return download(url, path, check=check, progress=progress, mirror_env=ENV_URL)


def _read_state_dict(path: Path, *, name: str, what: str | None = None) -> Mapping[str, torch.Tensor]:
    what = what or str(path)
    if not path.is_file():
        raise FileNotFoundError(f"{name} weights file {path} does not exist; check the path, or leave the weights "
                                f"unset to download {feature_network(name).file} once")
    return load_state_dict_file(path, what=what, network=f"the {name} weights", error=FeatureWeightsError)
