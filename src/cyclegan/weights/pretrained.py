"""The pretrained generators by name: the 18 official CycleGAN ones and CUT's 6; thin helpers over
`cyclegan.weights`.

As released by the authors (`scripts/download_cyclegan_model.sh` of pytorch-CycleGAN-and-pix2pix;
CUT's `pretrained_models.tar`): each file is a plain generator state dict, resnet_9blocks, ngf 64,
instance norm, no dropout (CUT's: with anti-aliased sampling), for one direction only. The table, the cache (`cache_dir()/pretrained/<name>.pth` with a recorded
`<name>.pth.sha256`), the mirror (`CYCLEGAN_WEIGHTS_MIRROR`) and the checks of a download (it must
load as an official generator, so an HTML error page never reaches the cache) are `cyclegan.weights`'.
"""

from __future__ import annotations

import difflib
from pathlib import Path

from .store import is_cached as _is_cached, weights_file, weights_path, weights_url
from .table import Weights, of_kind

ARCHITECTURE = "resnet_9blocks, ngf 64, instance norm"  # all released generators (CUT's: anti-aliased)
PRETRAINED: dict[str, Weights] = of_kind("pretrained")


def is_pretrained_name(s: object) -> bool:
    """True if `s` is the name of an official pretrained generator (a string in `PRETRAINED`).

    A caller that also accepts file paths should prefer an existing local path of the same name.
    """
    return isinstance(s, str) and s in PRETRAINED


def pretrained_url(name: str) -> str:
    """Where `name` is downloaded from: `$CYCLEGAN_WEIGHTS_MIRROR/<name>.pth`, else the official server."""
    return weights_url(get_pretrained(name).name)


def pretrained_path(name: str) -> Path:
    """The cache file for `name` (it may not exist yet)."""
    return weights_path(get_pretrained(name).name)


def is_cached(name: str) -> bool:
    """True if `name` is in the cache with a recorded checksum (not re-hashed here)."""
    return _is_cached(get_pretrained(name).name)


def download_pretrained(name: str, *, force: bool = False, progress: bool = True) -> Path:
    """The verified cache file of an official generator, downloaded if missing, corrupt or `force`.

    Raises:
        ValueError: `name` is not an official generator (the message lists the valid names).
        DownloadError: the download failed, or the server gave a file that is not a generator.
    """
    return weights_file(get_pretrained(name).name, progress=progress, force=force)


def get_pretrained(name: str) -> Weights:
    """The table entry for `name`; ValueError listing the valid names (and close matches) if unknown."""
    if name in PRETRAINED:
        return PRETRAINED[name]
    close = difflib.get_close_matches(name, PRETRAINED, n=3)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise ValueError(f"unknown pretrained model {name!r}; {hint}choose one of: {', '.join(PRETRAINED)}")
