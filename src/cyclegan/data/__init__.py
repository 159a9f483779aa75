"""Datasets, preprocessing and image I/O."""

from cyclegan.data.image_io import (
    IMG_EXTENSIONS,
    DataError,
    find_images,
    is_image_file,
    load_image,
    save_image,
    tensor_to_uint8,
    to_tensor,
)
from cyclegan.data.transforms import (
    PREPROCESS_MODES,
    Preprocess,
    apply_transform,
    check_config,
    eval_params,
    output_size,
    resized_size,
    sample_params,
)
from cyclegan.data.unaligned import ImageFolderDataset, UnalignedDataset, parse_key
from cyclegan.data.aligned import AlignedDataset  # noqa: E402 (after unaligned, which it builds on)

__all__ = [
    "AlignedDataset",
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
    "output_size",
    "parse_key",
    "resized_size",
    "sample_params",
    "save_image",
    "tensor_to_uint8",
    "to_tensor",
]
