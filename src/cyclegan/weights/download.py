"""Download one file over HTTP(S), or copy it from a local mirror, resumably and verified.

Standard library only (urllib). The bytes go to `<dest>.part`; an interrupted transfer is resumed
with an HTTP Range request, a server that ignores Range is restarted from zero, and the size
(Content-Length / Content-Range total, `expected_size`), the sha256 (when known) and an optional
caller check are verified before the `.part` file is renamed over `dest`. So `dest` is either
absent or complete: a failed or corrupt download never leaves a file there.

A base URL may also be a `file://` URL or a plain local folder (a mirror on a shared disk).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from tqdm import tqdm

log = logging.getLogger(__name__)

ENV_CACHE = "CYCLEGAN_CACHE"
CHUNK = 1 << 16
DEFAULT_TIMEOUT = 30.0  # seconds without a byte before giving up (per socket operation)
_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


class DownloadError(OSError):
    """A download failed or gave a wrong file; the message names the URL, the problem and the fix."""


def cache_dir() -> Path:
    """Where downloads are kept: `$CYCLEGAN_CACHE`, else `$XDG_CACHE_HOME/cyclegan`, else `~/.cache/cyclegan`."""
    if os.environ.get(ENV_CACHE):
        return Path(os.environ[ENV_CACHE]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "cyclegan"
    return Path.home() / ".cache" / "cyclegan"


def join_url(base: str, filename: str) -> str:
    """`base/filename` for an http(s):// or file:// base URL, or a path inside a local folder base."""
    if _scheme(base) in ("http", "https", "file"):
        return f"{base.rstrip('/')}/{urllib.parse.quote(filename)}"
    return str(Path(base).expanduser() / filename)


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def looks_like_html(path: str | Path) -> bool:
    """Whether a downloaded file is really a web page (a server's error or login page)."""
    with open(path, "rb") as f:
        head = f.read(256).lstrip().lower()
    return head.startswith((b"<!doctype", b"<html", b"<?xml", b"<head", b"<body"))


def download(
    url: str,
    dest: str | Path,
    *,
    expected_size: int | None = None,
    sha256: str | None = None,
    check: Callable[[Path], None] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = 2,
    progress: bool = True,
    mirror_env: str | None = None,
    fix: str | None = None,
) -> Path:
    """Fetch `url` (http, https, file:// or a local path) into `dest`, atomically, and verify it.

    Args:
        expected_size: the size in bytes the file must have, if known.
        sha256: the hex digest the file must have, if known.
        check: called with the complete temporary file before it is renamed to `dest`; it raises
            (any exception) to reject the file, which is then deleted.
        timeout: seconds to wait for the server (connecting, or between two reads).
        retries: how many times a dropped connection is resumed before giving up.
        mirror_env: the environment variable that overrides the base URL, named in error messages.
        fix: the advice that ends every error message (default: check or set `mirror_env`).

    Raises:
        DownloadError: the server could not be reached, timed out, answered with an error, or the
            file failed a check; `dest` is left untouched (absent if it was absent).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    fix = fix or _fix_hint(mirror_env)
    if _scheme(url) in ("http", "https"):
        for attempt in range(retries + 1):
            try:
                _fetch_http(url, part, expected_size=expected_size, timeout=timeout, progress=progress, fix=fix)
                break
            except _Dropped as e:
                if attempt == retries:
                    raise DownloadError(f"{url}: {e}; run the command again to resume, or {fix}") from None
                log.warning("%s: %s; resuming", url, e)
    else:
        _copy_local(url, part, fix=fix)
    try:
        _verify(part, url, expected_size=expected_size, sha256=sha256, check=check, fix=fix)
    except BaseException:
        part.unlink(missing_ok=True)  # resuming a wrong file cannot make it right
        raise
    with open(part, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(part, dest)
    return dest


class _Dropped(Exception):
    """The connection ended before the whole body arrived: resumable."""


def _fix_hint(mirror_env: str | None) -> str:
    if not mirror_env:
        return "check the URL"
    if os.environ.get(mirror_env):
        return f"check {mirror_env}={os.environ[mirror_env]} (or unset it to use the official server)"
    return f"set {mirror_env} to a reachable mirror (a URL or a local folder)"


def _scheme(url: str) -> str:
    scheme = urllib.parse.urlsplit(url).scheme.lower()
    return "" if len(scheme) == 1 else scheme  # "C:\\mirror" is a Windows drive, not a scheme


def _copy_local(url: str, part: Path, *, fix: str) -> None:
    src = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path)) if _scheme(url) == "file" else Path(url)
    if not src.is_file():
        raise DownloadError(f"{src} does not exist or is not a file; {fix}")
    with open(src, "rb") as fin, open(part, "wb") as fout:
        while block := fin.read(1 << 20):
            fout.write(block)


def _open(url: str, offset: int, *, timeout: float, fix: str):
    headers = {"User-Agent": "cyclegan-downloader", "Accept-Encoding": "identity"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    try:
        return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout)
    except urllib.error.HTTPError as e:
        if e.code == 416 and offset:
            return None  # the partial file is not a prefix of this one: start again
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}; check the name, or {fix}") from None
    except urllib.error.URLError as e:
        if isinstance(e.reason, (TimeoutError, socket.timeout)):
            raise _timeout(url, timeout, fix) from None
        raise DownloadError(f"cannot reach {url}: {e.reason}; check your connection, or {fix}") from None
    except (TimeoutError, socket.timeout):
        raise _timeout(url, timeout, fix) from None
    except (OSError, http.client.HTTPException) as e:  # reset, refused, no status line
        raise DownloadError(f"cannot reach {url}: {e or type(e).__name__}; check your connection, or {fix}") from None


def _timeout(url: str, timeout: float, fix: str) -> DownloadError:
    return DownloadError(f"timed out after {timeout:g} s waiting for {url}; check your connection, or {fix}")


def _fetch_http(
    url: str, part: Path, *, expected_size: int | None, timeout: float, progress: bool, fix: str
) -> None:
    """Append the missing bytes to `part` (or rewrite it); raise _Dropped if the body ends early."""
    offset = part.stat().st_size if part.is_file() else 0
    resp = _open(url, offset, timeout=timeout, fix=fix)
    if resp is None:  # 416: the server has nothing after `offset`
        log.info("%s: the partial download does not fit the file on the server; restarting", url)
        part.unlink()
        offset = 0
        resp = _open(url, 0, timeout=timeout, fix=fix)
    with resp:
        total = _content_length(resp)
        if resp.status == 206:
            m = _CONTENT_RANGE.fullmatch((resp.headers.get("Content-Range") or "").strip())
            if not m or int(m.group(1)) != offset:
                part.unlink()
                raise _Dropped(f"the server answered with the wrong range ({resp.headers.get('Content-Range')})")
            total = None if m.group(3) == "*" else int(m.group(3))
            mode = "ab"
        else:
            if offset:
                log.info("%s: the server does not support resuming; restarting from zero", url)
            offset, mode = 0, "wb"
        if expected_size is not None and total is not None and total != expected_size:
            part.unlink(missing_ok=True)
            raise DownloadError(f"{url} has {total} bytes, expected {expected_size}: a wrong file; {fix}")
        with open(part, mode) as f, tqdm(
            total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
            desc=part.name.removesuffix(".part"), disable=not progress, leave=False,
        ) as bar:
            done = offset + _stream(resp, f, bar, url=url, timeout=timeout, fix=fix)
    if total is not None and done < total:
        raise _Dropped(f"the connection closed after {done} of {total} bytes")
    if total is not None and done > total:
        part.unlink()
        raise DownloadError(f"{url}: received {done} bytes but the server announced {total}; {fix}")


def _stream(resp, f: BinaryIO, bar: tqdm, *, url: str, timeout: float, fix: str) -> int:
    n = 0
    try:
        while block := resp.read(CHUNK):
            f.write(block)
            n += len(block)
            bar.update(len(block))
    except (TimeoutError, socket.timeout):
        raise _timeout(url, timeout, fix) from None
    except (OSError, http.client.HTTPException) as e:  # reset, IncompleteRead
        raise _Dropped(f"the connection broke after {n} new bytes ({type(e).__name__})") from None
    return n


def _content_length(resp) -> int | None:
    value = resp.headers.get("Content-Length")
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def _verify(
    part: Path,
    url: str,
    *,
    expected_size: int | None,
    sha256: str | None,
    check: Callable[[Path], None] | None,
    fix: str,
) -> None:
    size = part.stat().st_size
    if expected_size is not None and size != expected_size:
        raise DownloadError(f"{url} has {size} bytes, expected {expected_size}: a wrong or truncated file; {fix}")
    if sha256 is not None:
        digest = file_sha256(part)
        if digest != sha256.lower():
            raise DownloadError(f"{url} has sha256 {digest}, expected {sha256}: a corrupt or different file; {fix}")
    if check is not None:
        check(part)
