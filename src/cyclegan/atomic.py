"""Atomic file writes: a reader sees the old file or the complete new one, never a half-written one.

The new content goes to a hidden, uniquely named file in the same folder (so the final `os.replace`
is atomic), created with the umask's permissions like any other output, and is renamed over the
target only once complete; on any error it is removed and the target is left as it was.

Checkpoints and weights files are also checksummed (`save_verified`): a sha256 beside the file
(`<name>.sha256`, the `sha256sum` format), computed while writing and checked by reading the file
back before it replaces anything, and checked again by every reader (`verify_digest`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO


@contextlib.contextmanager
def atomic_write(path: str | Path, *, fsync: bool = True) -> Iterator[BinaryIO]:
    """Open a temporary file beside `path` for binary writing and rename it over `path` on success.

    `fsync=True` (checkpoints, weights) also makes the content durable before the rename; outputs
    that are cheap to redo (images, pages, logs) skip it.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(tmp, "xb") as f:
            yield f
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically. File names that are not valid UTF-8 (decoded by
    Python with surrogate escapes) are written back as their original bytes."""
    with atomic_write(path, fsync=False) as f:
        f.write(text.encode("utf-8", "surrogateescape"))
    return Path(path)


def atomic_save(obj: Any, path: str | Path) -> Path:
    """torch.save `obj` to `path` atomically (a crash mid-write leaves the previous file intact)."""
    import torch  # lazy: this module is imported by the torch-free config layer

    with atomic_write(path) as f:
        torch.save(obj, f)
    return Path(path)


def atomic_copy(src: str | Path, dst: str | Path) -> Path:
    """Copy a file so that `dst` is either absent, its old self, or the complete copy."""
    with atomic_write(dst) as f, open(src, "rb") as source:
        shutil.copyfileobj(source, f)
    return Path(dst)


def previous_file(path: Path) -> Path:
    """Where the previous version of a checkpoint is kept: `latest.pt` -> `latest.prev.pt`."""
    return path.with_name(f"{path.stem}.prev{path.suffix}")


def digest_file(path: str | Path) -> Path:
    """The checksum file beside `path` (`<name>.sha256`)."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def file_digest(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify_digest(path: str | Path) -> bool | None:
    """Whether `path` matches its recorded sha256; None when it has none (written by an earlier version)."""
    sidecar = digest_file(path)
    try:
        recorded = sidecar.read_text().split()[0].lower()
    except (OSError, IndexError):
        return None
    return file_digest(path) == recorded


class _HashingWriter:
    """A binary file that also hashes what is written to it."""

    def __init__(self, f: Any) -> None:
        self.f, self.sha256 = f, hashlib.sha256()

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        return self.f.write(data)

    def flush(self) -> None:
        self.f.flush()


def save_verified(obj: Any, path: str | Path, *, keep_previous: bool = False) -> Path:
    """`torch.save(obj)` to `path` with a sha256 beside it, never leaving a half-written file in its
    place: written to a temporary file (hashed while writing, synced), read back and checked, then
    renamed over `path`. With `keep_previous` the file it replaces is kept as `previous_file(path)`
    (with its checksum). A process killed at any moment leaves files that load: never a checksum
    beside a file it does not describe (at worst a complete file without its checksum, for a moment).

    Raises:
        OSError: the file could not be written (a full disk, no permission) or did not read back as
            written; the message names the file and says that the previous one is intact.
    """
    import torch  # lazy: the CLI's name tables import this module

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    intact = f"the previous {path.name} is intact" if path.exists() else f"no {path.name} was written"
    try:
        with open(tmp, "xb") as f:
            writer = _HashingWriter(f)
            torch.save(obj, writer)
            f.flush()
            os.fsync(f.fileno())
        digest = writer.sha256.hexdigest()
        if file_digest(tmp) != digest:
            raise OSError(f"{path} did not read back as written (a disk or file-system fault); {intact}")
        # Killed between any two of these steps, every file left loads: a checksum never sits beside a
        # file it does not describe (a file may be left without one for a moment: complete, unverified).
        if keep_previous and path.exists():
            previous = previous_file(path)
            digest_file(previous).unlink(missing_ok=True)
            os.replace(path, previous)
            if digest_file(path).exists():
                os.replace(digest_file(path), digest_file(previous))
        _unverify(path)  # also a checksum a killed write left without its file
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        if str(path) in str(e):
            raise
        raise OSError(e.errno, f"cannot write {path}: {e.strerror or e}; {intact}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _write_digest(path, digest)
    return path


def _write_digest(path: Path, digest: str) -> None:
    """The checksum file of `path`, written once `path` is in place."""
    try:
        atomic_write_text(digest_file(path), f"{digest}  {path.name}\n")
    except OSError as e:
        raise OSError(e.errno, f"{path} was written and read back, but not its checksum {digest_file(path).name}: "
                               f"{e.strerror or e}") from None


def _unverify(path: Path) -> None:
    """Remove `path`'s checksum before `path` is replaced: killed between the two writes, a process
    leaves a complete file without a checksum, never a checksum of another file beside it."""
    digest_file(path).unlink(missing_ok=True)


def copy_verified(src: str | Path, dst: str | Path) -> Path:
    """Copy a checksummed file (and its checksum) so that `dst` is absent, its old self or the copy."""
    _unverify(Path(dst))
    atomic_copy(src, dst)
    if digest_file(src).exists():
        atomic_copy(digest_file(src), digest_file(dst))
    return Path(dst)


def remove_stale_temporaries(folder: str | Path) -> int:
    """Delete the temporary files of writes that a killed process left in `folder` (call it while
    holding the run's lock, so that no live writer owns one). Returns how many were removed."""
    removed = 0
    for tmp in Path(folder).glob(".*.tmp"):
        try:
            tmp.unlink()
            removed += 1
        except OSError:
            pass
    return removed


def save_safetensors(tensors: dict[str, Any], path: str | Path, *, metadata: dict[str, str] | None = None) -> Path:
    """Tensors as a safetensors file (no pickle), written atomically with its sha256 beside it."""
    from safetensors.torch import save  # lazy: torch-free imports of this module

    data = save({k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()},
                metadata={"format": "pt", **(metadata or {})})
    path = Path(path)
    _unverify(path)
    with atomic_write(path) as f:
        f.write(data)
    _write_digest(path, hashlib.sha256(data).hexdigest())
    return path
