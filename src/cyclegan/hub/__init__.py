"""Downloads: the official pretrained generators and datasets, a verified cache, Cityscapes preparation.

    path = download_pretrained("horse2zebra")          # ~/.cache/cyclegan/pretrained/horse2zebra.pth
    root = download_dataset("horse2zebra", "datasets")  # datasets/horse2zebra/{trainA,trainB,testA,testB}
    prepare_cityscapes("gtFine_trainvaltest.zip", "leftImg8bit_trainvaltest.zip", "datasets/cityscapes")

Environment: CYCLEGAN_CACHE (cache folder; default $XDG_CACHE_HOME/cyclegan or ~/.cache/cyclegan),
CYCLEGAN_WEIGHTS_MIRROR and CYCLEGAN_DATASETS_URL (mirrors: an http(s)/file URL or a local folder).
The generators' table, cache and download are `cyclegan.weights`' (one mechanism for all weights).
"""

from ..lazy import lazy_exports
from .datasets import DATASETS, download_dataset, extract_dataset, layout_problems
from .pretrained import PRETRAINED, download_pretrained, is_pretrained_name, resolve_pretrained

# Cityscapes preparation needs PIL: imported on first use, so the name tables above load without it.
__getattr__, __dir__ = lazy_exports(__name__, {"prepare_cityscapes": "cityscapes"})

__all__ = [
    "DATASETS",
    "PRETRAINED",
    "download_dataset",
    "download_pretrained",
    "extract_dataset",
    "is_pretrained_name",
    "layout_problems",
    "prepare_cityscapes",
    "resolve_pretrained",
]
