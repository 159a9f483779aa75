"""Translate images of any size with a trained generator.

- `loading`: a generator from a run dir, a checkpoint, an official `.pth` or a pretrained name;
- `translate`: one tensor at full resolution (padded to the size multiple, cropped back);
- `tiling`: very large images in overlapping tiles, with whole-image instance-norm statistics;
- `folders`: collections of files and folders (batched, prefetched, resumable), with a results page;
- `video`: video files frame by frame.
"""

from .folders import Translated, translate_paths
from .loading import (
    DIRECTIONS, generator_channels, generators_from_checkpoint, load_generator, load_generator_pair, official_generator,
    read_source, resolve_source,
)
from .tiling import translate_tiled
from .translate import MIN_SIDE, _pad_dim, padded_side, translate_tensor
from .video import translate_video

__all__ = [
    "DIRECTIONS", "MIN_SIDE", "Translated", "_pad_dim", "generator_channels", "generators_from_checkpoint", "load_generator", "load_generator_pair",
    "official_generator", "padded_side", "read_source", "resolve_source", "translate_paths", "translate_tensor",
    "translate_tiled", "translate_video",
]
