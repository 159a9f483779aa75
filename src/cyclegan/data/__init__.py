"""Datasets, preprocessing and image I/O.

The torch-free names (`data.files`) are imported at once, the rest on first use, so that importing
`cyclegan.data.files` does not load torch.
"""

from ..lazy import lazy_exports
from .files import IMAGE_FORMATS, IMG_EXTENSIONS, DataError, is_image_file

__getattr__, __dir__ = lazy_exports(__name__, {
    **dict.fromkeys(["find_images", "load_image", "load_pixels", "save_image", "tensor_to_samples", "tensor_to_uint8",
                     "to_tensor"], "image_io"),
    **dict.fromkeys(["PREPROCESS_MODES", "Preprocess", "apply_transform", "check_config", "eval_params",
                     "output_size", "resized_size", "sample_params"], "transforms"),
    **dict.fromkeys(["ImageFolderDataset", "UnalignedDataset", "parse_key"], "unaligned"),
    "AlignedDataset": "aligned",
})

__all__ = [
    "AlignedDataset",
    "IMAGE_FORMATS",
    "IMG_EXTENSIONS",
    "PREPROCESS_MODES",
    "DataError",
    "ImageFolderDataset",
    "Preprocess",
    "UnalignedDataset",
    "apply_transform",
    "check_config",
    "eval_params",
    "find_images",
    "is_image_file",
    "load_image",
    "load_pixels",
    "output_size",
    "parse_key",
    "resized_size",
    "sample_params",
    "save_image",
    "tensor_to_samples",
    "tensor_to_uint8",
    "to_tensor",
]
