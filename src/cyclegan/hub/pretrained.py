"""The 18 official pretrained CycleGAN generators: a table, a verified download, a checksummed cache.

As released by the authors (`scripts/download_cyclegan_model.sh` of pytorch-CycleGAN-and-pix2pix):
each file is a plain generator state dict, resnet_9blocks, ngf 64, instance norm, no dropout, for
one direction only. Files are cached as `cache_dir()/pretrained/<name>.pth`. The first verified
download records the file's sha256 in `<name>.pth.sha256`; every later use checks the cached file
against it, and a corrupted file is downloaded again. A downloaded file is accepted only if it loads
(`torch.load(weights_only=True)`) as an official generator, so an HTML error page from a mirror is
caught before it reaches the cache.
"""

from __future__ import annotations

import difflib
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..atomic import atomic_write
from ..weights.download import DownloadError, cache_dir, download, file_sha256, join_url, looks_like_html

log = logging.getLogger(__name__)

DEFAULT_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models"
ENV_URL = "CYCLEGAN_PRETRAINED_URL"
ARCHITECTURE = "resnet_9blocks, ngf 64, instance norm"  # all released generators


@dataclass(frozen=True)
class PretrainedModel:
    """One released generator: its file name (without `.pth`), what it translates, its checksum."""

    name: str
    description: str
    sha256: str | None = None  # None: not published; recorded in a sidecar on first download


PRETRAINED: dict[str, PretrainedModel] = {
    m.name: m
    for m in (
        PretrainedModel("apple2orange", "apple -> orange (ImageNet photos)"),
        PretrainedModel("orange2apple", "orange -> apple (ImageNet photos)"),
        PretrainedModel("summer2winter_yosemite", "summer -> winter Yosemite landscapes (Flickr)"),
        PretrainedModel("winter2summer_yosemite", "winter -> summer Yosemite landscapes (Flickr)"),
        PretrainedModel("horse2zebra", "horse -> zebra (ImageNet photos)"),
        PretrainedModel("zebra2horse", "zebra -> horse (ImageNet photos)"),
        PretrainedModel("monet2photo", "Monet painting -> landscape photo"),
        PretrainedModel("style_monet", "landscape photo -> Monet painting style"),
        PretrainedModel("style_cezanne", "landscape photo -> Cezanne painting style"),
        PretrainedModel("style_ukiyoe", "landscape photo -> Ukiyo-e painting style"),
        PretrainedModel("style_vangogh", "landscape photo -> Van Gogh painting style"),
        PretrainedModel("sat2map", "aerial photo -> Google map (maps)"),
        PretrainedModel("map2sat", "Google map -> aerial photo (maps)"),
        PretrainedModel("cityscapes_photo2label", "street photo -> Cityscapes colour label map"),
        PretrainedModel("cityscapes_label2photo", "Cityscapes colour label map -> street photo"),
        PretrainedModel("facades_photo2label", "facade photo -> CMP Facades colour label map"),
        PretrainedModel("facades_label2photo", "CMP Facades colour label map -> facade photo"),
        PretrainedModel("iphone2dslr_flower", "iPhone flower photo -> DSLR photo (shallow depth of field)"),
    )
}


def is_pretrained_name(s: object) -> bool:
    """True if `s` is the name of an official pretrained generator (a string in `PRETRAINED`).

    A caller that also accepts file paths should prefer an existing local path of the same name.
    """
    return isinstance(s, str) and s in PRETRAINED


def pretrained_url(name: str) -> str:
    """Where `name` is downloaded from: `$CYCLEGAN_PRETRAINED_URL/<name>.pth`, else the official server."""
    return join_url(os.environ.get(ENV_URL) or DEFAULT_URL, f"{get_pretrained(name).name}.pth")


def pretrained_path(name: str) -> Path:
    """The cache file for `name` (it may not exist yet)."""
    return cache_dir() / "pretrained" / f"{get_pretrained(name).name}.pth"


def is_cached(name: str) -> bool:
    """True if `name` is in the cache with a recorded checksum (not re-hashed here)."""
    path = pretrained_path(name)
    return path.is_file() and _sidecar(path).is_file()


def download_pretrained(name: str, *, force: bool = False, progress: bool = True) -> Path:
    """The verified cache file of an official generator, downloaded if missing, corrupt or `force`.

    Raises:
        ValueError: `name` is not an official generator (the message lists the valid names).
        DownloadError: the download failed, or the server gave a file that is not a generator.
    """
    model = get_pretrained(name)
    path = pretrained_path(name)
    if not force and path.is_file() and _cache_ok(path, model):
        return path
    url = pretrained_url(name)
    _sidecar(path).unlink(missing_ok=True)
    download(
        url, path, sha256=model.sha256, check=lambda p: _check_generator(p, url),
        progress=progress, mirror_env=ENV_URL,
    )
    _record(path, file_sha256(path))
    return path


def resolve_pretrained(name: str) -> Path:
    """The local file of an official generator, downloading it on first use (for `load_generator`)."""
    return download_pretrained(name)


def get_pretrained(name: str) -> PretrainedModel:
    """The table entry for `name`; ValueError listing the valid names (and close matches) if unknown."""
    if name in PRETRAINED:
        return PRETRAINED[name]
    close = difflib.get_close_matches(name, PRETRAINED, n=3)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise ValueError(f"unknown pretrained model {name!r}; {hint}choose one of: {', '.join(PRETRAINED)}")


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _record(path: Path, digest: str) -> None:
    with atomic_write(_sidecar(path)) as f:
        f.write(f"{digest}  {path.name}\n".encode())  # the `sha256sum -c` format


def _cache_ok(path: Path, model: PretrainedModel) -> bool:
    """Check a cached file against the table's or the recorded checksum; drop it if it is corrupt."""
    sidecar = _sidecar(path)
    recorded = sidecar.read_text().split()[0] if sidecar.is_file() and sidecar.read_text().strip() else None
    expected = model.sha256 or recorded
    if expected is None:
        # No checksum yet (interrupted before it was recorded, or copied in by hand): accept the
        # file only if it is a generator, then record it.
        try:
            _check_generator(path, str(path))
        except DownloadError as e:
            log.warning("%s; downloading it again", e)
            return False
        _record(path, file_sha256(path))
        return True
    digest = file_sha256(path)
    if digest == expected.lower():
        return True
    log.warning("cached %s is corrupt (sha256 %s, expected %s); downloading it again", path, digest, expected)
    return False


def _check_generator(path: Path, url: str) -> None:
    """Raise DownloadError unless `path` loads as an official generator state dict."""
    import torch

    from ..inference import official_generator

    if looks_like_html(path):
        raise DownloadError(
            f"{url} is an HTML page, not a generator file (an error or login page?); "
            f"check the name or set {ENV_URL} to a working mirror"
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        official_generator(state)
    except Exception as e:  # unreadable, not a dict of tensors, or not a known generator layout
        reason = (str(e).splitlines() or [type(e).__name__])[0]
        raise DownloadError(
            f"{url} is not an official CycleGAN generator ({reason}); "
            f"check the name or set {ENV_URL} to a working mirror"
        ) from None
