"""Names that the command line offers as choices whose implementing tables import torch.

`cyclegan X --help` must not import torch, so these plain names are written here once, and the
modules that implement them check against them (tests/test_cli_help.py compares each with its
table). Choices from torch-free tables are read from those directly: `config.CHOICES` (precisions),
`config.list_presets()`, `hub.DATASETS`, `data.files.IMAGE_FORMATS`.
"""

from __future__ import annotations

DIRECTIONS = ("AtoB", "BtoA")  # what a method translates (methods.Method.directions): A -> B, B -> A
EXPORT_FORMATS = ("official", "safetensors", "hf", "onnx", "torchscript")  # official layout (.pth / .safetensors), deploy.FORMATS
FEATURE_NETWORKS = ("vgg16", "vgg19")  # nn.features.FEATURE_NETWORKS
PROTOCOLS = ("full", "official")  # inference.protocol: test-time protocols (full resolution, or the official test.py's)
PALETTES = ("cityscapes", "facades")  # metrics.palette.PALETTES: the built-in label palettes
STYLE_OPTIMIZERS = ("lbfgs", "adam")  # style_transfer.stylize: Gatys et al.'s L-BFGS, or Adam
# The official pretrained generators (weights.table builds its entries from this): name -> what it does.
PRETRAINED = {
    "apple2orange": "apple -> orange (ImageNet photos)",
    "orange2apple": "orange -> apple (ImageNet photos)",
    "summer2winter_yosemite": "summer -> winter Yosemite landscapes (Flickr)",
    "winter2summer_yosemite": "winter -> summer Yosemite landscapes (Flickr)",
    "horse2zebra": "horse -> zebra (ImageNet photos)",
    "zebra2horse": "zebra -> horse (ImageNet photos)",
    "monet2photo": "Monet painting -> landscape photo",
    "style_monet": "landscape photo -> Monet painting style",
    "style_cezanne": "landscape photo -> Cezanne painting style",
    "style_ukiyoe": "landscape photo -> Ukiyo-e painting style",
    "style_vangogh": "landscape photo -> Van Gogh painting style",
    "sat2map": "aerial photo -> Google map (maps)",
    "map2sat": "Google map -> aerial photo (maps)",
    "cityscapes_photo2label": "street photo -> Cityscapes colour label map",
    "cityscapes_label2photo": "Cityscapes colour label map -> street photo",
    "facades_photo2label": "facade photo -> CMP Facades colour label map",
    "facades_label2photo": "CMP Facades colour label map -> facade photo",
    "iphone2dslr_flower": "iPhone flower photo -> DSLR photo (shallow depth of field)",
}
# CUT's released generators (Park et al. 2020; one archive, `pretrained_models.tar`): name -> what it does.
CUT_PRETRAINED = {
    "horse2zebra_cut": "horse -> zebra, CUT",
    "horse2zebra_fastcut": "horse -> zebra, FastCUT",
    "cat2dog_cut": "cat -> dog (AFHQ), CUT",
    "cat2dog_fastcut": "cat -> dog (AFHQ), FastCUT",
    "cityscapes_cut": "Cityscapes colour label map -> street photo, CUT",
    "cityscapes_fastcut": "Cityscapes colour label map -> street photo, FastCUT",
}
PRETRAINED.update(CUT_PRETRAINED)
