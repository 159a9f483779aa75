"""Get a weights file of the table (cached, verified) and load it into a network (strict).

One cache, `cache_dir()/<kind>/<file>` (`pretrained/`, `features/`, `fid/`), and one mirror variable,
`CYCLEGAN_WEIGHTS_MIRROR`: an http(s):// or file:// URL, or a local folder, holding the files under
their released names. The old per-kind variables (`CYCLEGAN_PRETRAINED_URL`,
`CYCLEGAN_FEATURE_WEIGHTS_URL`, `CYCLEGAN_FID_WEIGHTS_URL`) still work for their kind, with a
DeprecationWarning, when the new one is not set.

A download is accepted only if its sha256 matches the table (when the table has one) and it loads
(`weights_only=True`) as the entry's network, so an HTML error page or another model never reaches
the cache. An entry released inside a tar archive (CUT's `pretrained_models.tar`) is taken from the
archive when it comes from the official server (the archive is cached too, `<kind>/<archive name>`,
so its other files need no second download); a mirror holds the file itself under its name. The digest of every accepted file is recorded beside it (`<file>.sha256`, the `sha256sum`
format); each later use checks the cached file against it, and a corrupted file is downloaded again.
"""

from __future__ import annotations

import logging
import os
import shutil
import tarfile
import warnings
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ..atomic import atomic_write
from ..nn.state_dicts import WeightsError, check_keys_and_shapes
from ..safe_load import load_tensors
from .download import DownloadError, cache_dir, download, file_sha256, join_url, looks_like_html
from .table import KINDS, StateDict, Weights, get_weights

log = logging.getLogger(__name__)

ENV_MIRROR = "CYCLEGAN_WEIGHTS_MIRROR"


def weights_path(name: str) -> Path:
    """The cache file of `name` (it may not exist yet): `cache_dir()/<kind>/<file>`."""
    w = get_weights(name)
    return cache_dir() / KINDS[w.kind].folder / w.file


def weights_url(name: str) -> str:
    """Where `name` is downloaded from: `$CYCLEGAN_WEIGHTS_MIRROR/<file>`, else the deprecated
    variable of its kind, else the official URL."""
    return _source(get_weights(name))[0]


def is_cached(name: str) -> bool:
    """True if `name` is in the cache with a recorded checksum (not re-hashed here)."""
    path = weights_path(name)
    return path.is_file() and _sidecar(path).is_file()


def weights_file(name: str, *, progress: bool = True, force: bool = False) -> Path:
    """The verified cache file of `name`, downloaded if missing, corrupt or `force`.

    Raises:
        ValueError: `name` is not in the table (the message lists the known names).
        DownloadError: the download failed, or gave a file that is not these weights; the message
            names the URL and `CYCLEGAN_WEIGHTS_MIRROR`.
    """
    w = get_weights(name)
    path = weights_path(name)
    if not force and path.is_file() and _cache_ok(w, path):
        return path
    url, fix = _source(w)
    digests = []

    def check(part: Path) -> None:
        try:
            digests.append(_verify(w, part, what=url))
        except WeightsError as e:
            raise DownloadError(f"{e}; {fix}") from None

    _sidecar(path).unlink(missing_ok=True)
    if w.member is not None and url == w.url:  # the official release: one file of an archive
        archive = _archive(w, url, fix, progress=progress, force=force)
        _extract(archive, w.member, path, check=check, fix=fix)
    else:
        log.debug("downloading %s from %s to %s", w.title, url, path)
        download(url, path, check=check, progress=progress, mirror_env=ENV_MIRROR, fix=fix)
    _record(path, digests[-1])
    return path


def _archive(w: Weights, url: str, fix: str, *, progress: bool, force: bool) -> Path:
    """The cached tar archive `url` (downloaded if missing or `force`); DownloadError unless it is a
    tar that holds `w.member`."""
    path = cache_dir() / KINDS[w.kind].folder / url.rstrip("/").rsplit("/", 1)[-1]

    def holds_member(part: Path) -> None:
        try:
            with tarfile.open(part) as tar:
                tar.getmember(w.member)
        except (tarfile.TarError, KeyError, OSError):
            raise DownloadError(f"{url} is not a tar archive holding {w.member}; {fix}") from None

    if force or not path.is_file():
        log.debug("downloading %s from %s to %s", w.title, url, path)
        download(url, path, check=holds_member, progress=progress, mirror_env=ENV_MIRROR, fix=fix)
    return path


def _extract(archive: Path, member: str, dest: Path, *, check, fix: str) -> None:
    """Copy the regular file `member` of the tar `archive` to `dest`, atomically, after `check`."""
    try:
        with tarfile.open(archive) as tar:
            info = tar.getmember(member)
            source = tar.extractfile(info) if info.isfile() else None
            if source is None:
                raise KeyError(member)
            part = dest.with_name(dest.name + ".part")
            with source, open(part, "wb") as f:
                shutil.copyfileobj(source, f)
    except (tarfile.TarError, KeyError, OSError):
        archive.unlink(missing_ok=True)  # a damaged archive: downloaded again next time
        raise DownloadError(f"{archive} does not hold the file {member}; run the command again to download it "
                            f"anew, or {fix}") from None
    try:
        check(part)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, dest)


def load_weights(
    name: str, net: nn.Module, *, weights: str | os.PathLike | StateDict | None = None, progress: bool = True
) -> nn.Module:
    """Load the weights `name` into `net` (strict, every shape checked) and return `net`.

    Args:
        weights: a file or state dict to load instead of the released one (same key names); None
            loads the released file (`weights_file`, downloaded once).
        progress: show a progress bar while downloading.

    Raises:
        WeightsError: the file or dict does not fit `net` (the message names it and what is wrong).
        FileNotFoundError: `weights` names a file that does not exist.
        DownloadError: the released file could not be downloaded.
    """
    w = get_weights(name)
    if isinstance(weights, Mapping):
        state = _fit(w, weights, net, what="the given state dict")
    elif weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise FileNotFoundError(f"{name} weights file {path} does not exist; check the path, or leave the "
                                    f"weights unset to download {w.file} once")
        state = _fit(w, read_state_dict(w, path), net, what=str(path))
    else:
        path = weights_file(name, progress=progress)
        try:
            state = _fit(w, read_state_dict(w, path), net, what=str(path))
        except WeightsError as e:  # a verified file: the network is not the one the file is for
            raise WeightsError(f"{e}; build the network {path.name} is for ({w.description})") from None
    net.load_state_dict(state, strict=w.strict)
    return net


def read_state_dict(w: Weights, path: str | Path, *, what: str | None = None) -> StateDict:
    """A weights file read with `weights_only=True`; WeightsError if it is an HTML page, not a torch
    file, or not a mapping."""
    return load_state_dict_file(path, what=what or str(path), network=w.title, error=WeightsError)


def _fit(w: Weights, state: StateDict, net: nn.Module, *, what: str) -> dict[str, torch.Tensor]:
    """`state` through the entry's key filter, checked against `net` (every key and shape if strict)."""
    if "state_dict" in state and isinstance(state["state_dict"], Mapping):
        state = state["state_dict"]
    if not all(isinstance(k, str) for k in state):
        raise WeightsError(f"{what} is not a state dict (its keys are not all strings)")
    try:
        state = w.filter(state, net)
    except ValueError as e:
        raise WeightsError(f"{what} is not {w.title}: {e}") from None
    if w.strict:
        check_keys_and_shapes(state, net.state_dict(), what=what, network=w.title, error=WeightsError)
    return state


def _verify(w: Weights, path: Path, *, what: str) -> str:
    """The sha256 of `path`; WeightsError unless it matches the table and the file is these weights."""
    digest = file_sha256(path)
    if w.sha256 is not None and not digest.startswith(w.sha256.lower()):
        raise WeightsError(f"{what} has sha256 {digest[:16]}..., expected {w.sha256[:16]}... (the released "
                           f"{w.file}): a corrupt or different file")
    state = read_state_dict(w, path, what=what)
    try:
        with torch.device("meta"):  # shapes only: nothing is allocated
            net = w.network(state)
    except ValueError as e:
        raise WeightsError(f"{what} is not {w.title}: {e}") from None
    _fit(w, state, net, what=what)
    return digest


def _source(w: Weights) -> tuple[str, str]:
    """(the URL of `w`'s file, the advice for error messages), from the mirror variables."""
    mirror = os.environ.get(ENV_MIRROR)
    if mirror:
        return join_url(mirror, w.file), (f"check {ENV_MIRROR}={mirror} (a URL or folder holding {w.file}), "
                                          "or unset it to use the official server")
    kind = KINDS[w.kind]
    old = os.environ.get(kind.alias)
    if old:
        warnings.warn(f"{kind.alias} is deprecated; set {ENV_MIRROR} (a URL or folder holding the released files)",
                      DeprecationWarning, stacklevel=3)
        url = old if kind.alias_may_be_file and old.rstrip("/").endswith(".pth") else join_url(old, w.file)
        return url, f"check {kind.alias}={old} (deprecated: set {ENV_MIRROR} instead), or unset it"
    return w.url, f"set {ENV_MIRROR} to a reachable mirror (a URL or a local folder holding {w.file})"


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _record(path: Path, digest: str) -> None:
    with atomic_write(_sidecar(path)) as f:
        f.write(f"{digest}  {path.name}\n".encode())  # the `sha256sum -c` format


def _cache_ok(w: Weights, path: Path) -> bool:
    """Check a cached file against its recorded checksum; False (download again) if it is corrupt."""
    sidecar = _sidecar(path)
    text = sidecar.read_text().strip() if sidecar.is_file() else ""
    if not text:
        # No checksum yet (a cache written before checksums were recorded, an interrupted download,
        # or a file copied in by hand): accept it if it passes the download's checks, then record it.
        try:
            digest = _verify(w, path, what=str(path))
        except WeightsError as e:
            log.warning("%s; downloading it again", e)
            return False
        _record(path, digest)
        return True
    recorded = text.split()[0].lower()
    digest = file_sha256(path)
    if digest == recorded and (w.sha256 is None or digest.startswith(w.sha256.lower())):
        return True
    log.warning("cached %s is corrupt (sha256 %s, expected %s); downloading it again", path, digest, recorded)
    return False


def load_state_dict_file(path: str | Path, *, what: str, network: str, error: type[Exception] = ValueError) -> Mapping:
    """A downloaded or given weights file as a mapping (`load_tensors`), or `error` saying what it
    is instead: an HTML page (a server's error or login page), not a torch file, or not a mapping.

    Args:
        what: the file, for the message; network: what it should hold ("the vgg16 weights").
    """
    if looks_like_html(path):
        raise error(f"{what} is an HTML page, not {network} (an error or login page?)")
    state = load_tensors(path, error=error, message=f"{what} is not a readable torch weights file")
    if not isinstance(state, Mapping):
        raise error(f"{what} holds a {type(state).__name__}, not a state dict of {network}")
    return state
