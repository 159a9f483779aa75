"""Atomic file writes: a reader sees the old file or the complete new one, never a half-written one.

The new content goes to a hidden, uniquely named file in the same folder (so the final `os.replace`
is atomic), created with the umask's permissions like any other output, and is renamed over the
target only once complete; on any error it is removed and the target is left as it was.
"""

from __future__ import annotations

import contextlib
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
    """Write `text` (UTF-8) to `path` atomically."""
    with atomic_write(path, fsync=False) as f:
        f.write(text.encode("utf-8"))
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
