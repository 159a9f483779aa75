"""Pretrained weights: one table, one verified cache, one mirror variable, one strict load.

    path = weights_file("horse2zebra")                     # ~/.cache/cyclegan/pretrained/horse2zebra.pth
    net = load_weights("vgg16", vgg16_features())          # key filter + strict, shape-checked load
    extractor = load_feature_extractor("vgg16", ("relu4_2",))
    inception = load_fid_inception()

`WEIGHTS` lists every known file (the 18 official CycleGAN generators, torchvision's VGG-16/19,
pytorch-fid's Inception) with its URL, file name, checksum and key filter (timm's `default_cfgs` and
`checkpoint_filter_fn`). Files are cached as `cache_dir()/<kind>/<file>` and verified on every use.

Environment: CYCLEGAN_CACHE (cache folder; default $XDG_CACHE_HOME/cyclegan or ~/.cache/cyclegan);
CYCLEGAN_WEIGHTS_MIRROR (an http(s)/file URL or a local folder holding the files under their released
names). The older CYCLEGAN_PRETRAINED_URL, CYCLEGAN_FEATURE_WEIGHTS_URL and CYCLEGAN_FID_WEIGHTS_URL
still work for their kind, deprecated.

Layering: this package imports `nn`, `metrics`, `safe_load` and `atomic` only; `metrics` and `nn`
never import it (they define networks; whoever needs downloaded weights gets them here).
"""

from ..nn.state_dicts import WeightsError
from .download import DownloadError, cache_dir
from .networks import (
    feature_weights_path,
    fid_weights_path,
    load_feature_extractor,
    load_feature_network,
    load_fid_inception,
)
from .store import ENV_MIRROR, is_cached, load_weights, weights_file, weights_path, weights_url
from .table import FID_INCEPTION, KINDS, WEIGHTS, Weights, get_weights, of_kind

__all__ = [
    "ENV_MIRROR",
    "FID_INCEPTION",
    "KINDS",
    "WEIGHTS",
    "DownloadError",
    "Weights",
    "WeightsError",
    "cache_dir",
    "feature_weights_path",
    "fid_weights_path",
    "get_weights",
    "is_cached",
    "load_feature_extractor",
    "load_feature_network",
    "load_fid_inception",
    "load_weights",
    "of_kind",
    "weights_file",
    "weights_path",
    "weights_url",
]
