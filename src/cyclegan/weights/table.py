"""The known pretrained weights: one entry per released file (timm's `default_cfgs`).

Each entry says where the file is (its URL and released file name), how it is verified (a sha256, or
None: trust on first use, the digest of the first verified download is recorded beside the cached
file), which network it is for, and how its keys map onto that network (`filter`, timm's
`checkpoint_filter_fn`) before a strict, shape-checked load. Three kinds:

- `pretrained`: the 18 official CycleGAN generators (`scripts/download_cyclegan_model.sh` of
  pytorch-CycleGAN-and-pix2pix): plain generator state dicts, resnet_9blocks, instance norm, no
  dropout, with the official key names (`model.10.conv_block.1.weight`); and CUT's 6 released
  generators (`checkpoints/<name>_pretrained/latest_net_G.pth` inside one archive,
  `pretrained_models.tar`): resnet_9blocks with anti-aliased sampling, the blur filters as buffers
  (`model.7.filt`), the last conv at `model.30`;
- `features`: torchvision's ImageNet VGG-16 and VGG-19 (the classifier keys are dropped);
- `fid`: pytorch-fid's Inception (`pt_inception-2015-12-05-6726825d.pth`).
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn

from ..metrics import inception
from ..names import CUT_PRETRAINED, PRETRAINED
from ..nn import features
from ..nn.generators import ResnetGenerator
from ..nn.official import from_official

StateDict = Mapping[str, torch.Tensor]
# timm's checkpoint_filter_fn: a released state dict -> the keys of `net` (the caller then checks strictly).
KeyFilter = Callable[[StateDict, nn.Module], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class Kind:
    """What the files of one kind share: their cache folder and the variable they used to have."""

    folder: str  # cache_dir()/<folder>/<file>
    title: str  # what such a file holds, for messages; "{name}" is the entry's name
    alias: str  # the deprecated mirror variable of this kind (CYCLEGAN_WEIGHTS_MIRROR replaces it)
    alias_may_be_file: bool  # the alias may also be the URL of the file itself (ending in .pth)


KINDS: dict[str, Kind] = {
    "pretrained": Kind("pretrained", "an official CycleGAN generator", "CYCLEGAN_PRETRAINED_URL", False),
    "features": Kind("features", "the {name} weights", "CYCLEGAN_FEATURE_WEIGHTS_URL", True),
    "fid": Kind("fid", "the FID Inception weights", "CYCLEGAN_FID_WEIGHTS_URL", True),
}


@dataclass(frozen=True)
class Weights:
    """One released weights file."""

    name: str
    kind: str  # a key of KINDS
    url: str  # the official location
    file: str  # the released file name: the name in the cache and on a mirror
    # Its hex sha256, or the leading digits torchvision puts in its file names; None: trust on first use.
    sha256: str | None
    network: Callable[[StateDict], nn.Module]  # the released architecture (it may read sizes from the state dict)
    filter: KeyFilter
    strict: bool = True  # load with every key of the network and nothing else
    description: str = ""
    member: str | None = None  # the file's path inside `url` when that is a tar archive (CUT's release)

    @property
    def title(self) -> str:
        """What the file holds, for messages ("the vgg16 weights")."""
        return KINDS[self.kind].title.format(name=self.name)


def released_generator(state: StateDict) -> ResnetGenerator:
    """The architecture of the released generators (resnet_9blocks, instance norm, no dropout), with the
    channels and width of `state` (official keys: `model.1` is the first conv, `model.26` the last).

    Raises:
        ValueError: `state` has no such convolutions.
    """
    first, last = state.get("model.1.weight"), state.get("model.26.weight")
    if not isinstance(first, torch.Tensor) or not isinstance(last, torch.Tensor) or first.ndim != 4 or last.ndim != 4:
        raise ValueError("it has no model.1 and model.26 convolutions (the first and last layers of resnet_9blocks)")
    return ResnetGenerator(first.shape[1], last.shape[0], ngf=first.shape[0], n_blocks=9, norm="instance")


def released_cut_generator(state: StateDict) -> ResnetGenerator:
    """CUT's released architecture (resnet_9blocks with anti-aliased down- and upsampling, instance
    norm), with the channels and width of `state` (`model.1` the first conv, `model.30` the last).

    Raises:
        ValueError: `state` has no such convolutions.
    """
    first, last = state.get("model.1.weight"), state.get("model.30.weight")
    if not isinstance(first, torch.Tensor) or not isinstance(last, torch.Tensor) or first.ndim != 4 or last.ndim != 4:
        raise ValueError("it has no model.1 and model.30 convolutions (the first and last layers of CUT's "
                         "anti-aliased resnet_9blocks)")
    return ResnetGenerator(first.shape[1], last.shape[0], ngf=first.shape[0], n_blocks=9, norm="instance",
                           downsample="antialias", upsample="antialias")


def official_filter(state: StateDict, net: nn.Module) -> dict[str, torch.Tensor]:
    """An official generator state dict -> our key names for `net` (`nn.official.from_official`)."""
    return from_official(net, state)


def _fixed(build: Callable[[], nn.Module]) -> Callable[[StateDict], nn.Module]:
    return lambda state: build()


GENERATOR_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models"
CUT_ARCHIVE_URL = "http://efrosgans.eecs.berkeley.edu/CUT/pretrained_models.tar"
FID_INCEPTION = "fid_inception"

WEIGHTS: dict[str, Weights] = {
    w.name: w
    for w in (
        *(
            Weights(name, "pretrained", f"{GENERATOR_URL}/{name}.pth", f"{name}.pth", None,
                    released_generator, official_filter, description=description)
            for name, description in PRETRAINED.items() if name not in CUT_PRETRAINED
        ),
        *(
            Weights(name, "pretrained", CUT_ARCHIVE_URL, f"{name}.pth", None, released_cut_generator, official_filter,
                    description=description, member=f"checkpoints/{name}_pretrained/latest_net_G.pth")
            for name, description in CUT_PRETRAINED.items()
        ),
        Weights("vgg16", "features", "https://download.pytorch.org/models/vgg16-397923af.pth", "vgg16-397923af.pth",
                "397923af", _fixed(features.FEATURE_NETWORKS["vgg16"].build), features.checkpoint_filter_fn,
                description="VGG-16 trained on ImageNet (torchvision)"),
        Weights("vgg19", "features", "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", "vgg19-dcbb9e9d.pth",
                "dcbb9e9d", _fixed(features.FEATURE_NETWORKS["vgg19"].build), features.checkpoint_filter_fn,
                description="VGG-19 trained on ImageNet (torchvision)"),
        Weights(FID_INCEPTION, "fid",
                "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
                "pt_inception-2015-12-05-6726825d.pth",
                "pt_inception-2015-12-05-6726825d.pth", None, _fixed(inception.FIDInceptionV3),
                inception.checkpoint_filter_fn, description="pytorch-fid's Inception-v3 for FID and KID"),
    )
}


def get_weights(name: str) -> Weights:
    """The table entry for `name`; ValueError listing the known names (and close matches) if unknown."""
    if name in WEIGHTS:
        return WEIGHTS[name]
    close = difflib.get_close_matches(name, WEIGHTS, n=3)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise ValueError(f"unknown weights {name!r}; {hint}choose one of: {', '.join(WEIGHTS)}")


def of_kind(kind: str) -> dict[str, Weights]:
    """The entries of one kind ("pretrained", "features", "fid"), in table order."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind of weights {kind!r}; choose one of: {', '.join(KINDS)}")
    return {name: w for name, w in WEIGHTS.items() if w.kind == kind}
