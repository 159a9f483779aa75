"""Datasets: the official datasets' download and check, and Cityscapes preparation. (The pretrained
generators are weights: `cyclegan.weights.pretrained`.)

    root = download_dataset("horse2zebra", "datasets")  # datasets/horse2zebra/{trainA,trainB,testA,testB}
    prepare_cityscapes("gtFine_trainvaltest.zip", "leftImg8bit_trainvaltest.zip", "datasets/cityscapes")

Environment: CYCLEGAN_CACHE (cache folder; default $XDG_CACHE_HOME/cyclegan or ~/.cache/cyclegan),
CYCLEGAN_WEIGHTS_MIRROR and CYCLEGAN_DATASETS_URL (mirrors: an http(s)/file URL or a local folder).
The generators' table, cache and download are `cyclegan.weights`' (one mechanism for all weights).
"""

from ..lazy import lazy_exports
from .datasets import DATASETS, download_dataset, extract_dataset, layout_problems

# Cityscapes preparation needs PIL: imported on first use, so the name tables above load without it.
__getattr__, __dir__ = lazy_exports(__name__, {"prepare_cityscapes": "cityscapes"})

__all__ = [
    "DATASETS",
    "download_dataset",
    "extract_dataset",
    "layout_problems",
    "prepare_cityscapes",
]
