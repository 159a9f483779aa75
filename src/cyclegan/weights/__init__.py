"""Pretrained weights: one table, one verified cache, one mirror variable, one strict load.

    path = weights_file("horse2zebra")                     # ~/.cache/cyclegan/pretrained/horse2zebra.pth
    net = load_weights("vgg16", vgg16_features())          # key filter + strict, shape-checked load
    extractor = load_feature_extractor("vgg16", ("relu4_2",))
    inception = load_fid_inception()

`WEIGHTS` lists every known file (the 18 official CycleGAN generators, CUT's 6, torchvision's VGG-16/19,
pytorch-fid's Inception) with its URL, file name, checksum and key filter (timm's `default_cfgs` and
`checkpoint_filter_fn`). Files are cached as `cache_dir()/<kind>/<file>` and verified on every use.

Environment: CYCLEGAN_CACHE (cache folder; default $XDG_CACHE_HOME/cyclegan or ~/.cache/cyclegan);
CYCLEGAN_WEIGHTS_MIRROR (an http(s)/file URL or a local folder holding the files under their released
names). The older CYCLEGAN_PRETRAINED_URL, CYCLEGAN_FEATURE_WEIGHTS_URL and CYCLEGAN_FID_WEIGHTS_URL
still work for their kind, deprecated.

Layering: this package imports `nn`, `metrics`, `safe_load` and `atomic` only; `metrics` and `nn`
never import it (they define networks; whoever needs downloaded weights gets them here).
"""

from ..lazy import lazy_exports

# Imported on first use: `weights.download` (stdlib only) serves the datasets' downloads and the
# CLI, whose --help must not import torch through this package.
_EXPORTS = {
    "WeightsError": ".nn.state_dicts", "DownloadError": "download", "cache_dir": "download",
    "feature_weights_path": "networks", "fid_weights_path": "networks", "load_feature_extractor": "networks",
    "load_feature_network": "networks", "load_fid_inception": "networks",
    "ENV_MIRROR": "store", "is_cached": "store", "load_weights": "store", "weights_file": "store",
    "weights_path": "store", "weights_url": "store",
    "FID_INCEPTION": "table", "KINDS": "table", "WEIGHTS": "table", "Weights": "table", "get_weights": "table",
    "of_kind": "table",
}
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

__all__ = sorted(_EXPORTS)
