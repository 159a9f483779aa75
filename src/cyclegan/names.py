"""Names that the command line offers as choices whose implementing tables import torch.

`cyclegan X --help` must not import torch, so these plain names are written here once, and the
modules that implement them check against them (tests/test_cli_help.py compares each with its
table). Choices from torch-free tables are read from those directly: `config.CHOICES` (precisions),
`config.list_presets()`, `hub.PRETRAINED`, `hub.DATASETS`, `data.files.IMAGE_FORMATS`.
"""

from __future__ import annotations

DIRECTIONS = ("AtoB", "BtoA")  # what a method translates (methods.Method.directions): A -> B, B -> A
EXPORT_FORMATS = ("official", "onnx", "torchscript")  # inference.official_export.export_official, then deploy.FORMATS
FEATURE_NETWORKS = ("vgg16", "vgg19")  # nn.features.FEATURE_NETWORKS
STYLE_OPTIMIZERS = ("lbfgs", "adam")  # style_transfer.stylize: Gatys et al.'s L-BFGS, or Adam
