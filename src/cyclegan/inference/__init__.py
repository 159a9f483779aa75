"""Translate images of any size with a trained generator.

- `loading`: a translator from a run dir or checkpoint of any method, an official `.pth` or a pretrained name;
- `translate`: one tensor at full resolution (padded to the size multiple, cropped back);
- `protocol`: the test-time protocols (full resolution in eval mode, or the official test.py's);
- `tiling`: very large images in overlapping tiles, with whole-image instance-norm statistics;
- `folders`: collections of files and folders (batched, prefetched, resumable), with a results page;
- `video`: video files frame by frame.
"""

from .folders import TranslationReport, translate_paths
from .loading import (
    DIRECTIONS, generator_channels, generators_from_checkpoint, load_generator, load_generator_pair, official_generator,
    Translation, load_translation, read_source, source_path,
)
from .protocol import FULL, PROTOCOLS, Protocol
from .tiling import TranslationCancelled, translate_tiled
from .translate import MIN_SIDE, padded_side, translate_tensor
from .video import translate_video

__all__ = [
    "DIRECTIONS", "FULL", "MIN_SIDE", "PROTOCOLS", "Protocol", "Translation", "TranslationCancelled", "TranslationReport", "load_translation", "generator_channels", "generators_from_checkpoint", "load_generator",
    "load_generator_pair", "official_generator", "padded_side", "read_source", "source_path", "translate_paths",
    "translate_tensor", "translate_tiled", "translate_video",
]
