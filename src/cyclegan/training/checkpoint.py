"""Checkpoints: the full training state in one file, written atomically, read without unpickling.

Layout of a checkpoint (a dict of tensors, numbers, strings, lists and dicts only, so that
`torch.load(..., weights_only=True)` reads it):
    format, version, config (Config.to_dict()), nets {g_ab, g_ba, d_a, d_b} (the method's `networks()`), optim {g, d},
    sched {g, d}, pools {a, b}, rng {torch, cuda}, progress {epoch, batch_in_epoch, step, skipped}
A run dir holds `checkpoints/latest.pt` (and periodic `checkpoints/epoch_NNN.pt`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import torch

from ..atomic import atomic_write
from ..safe_load import load_tensors

FORMAT = "cyclegan-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a readable cyclegan checkpoint."""


def atomic_save(obj: Any, path: str | Path) -> Path:
    """torch.save `obj` to `path` atomically (a crash mid-write leaves the previous file intact)."""
    with atomic_write(path) as f:
        torch.save(obj, f)
    return Path(path)


def atomic_copy(src: str | Path, dst: str | Path) -> Path:
    """Copy a file so that `dst` is either absent, its old self, or the complete copy."""
    with atomic_write(dst) as f, open(src, "rb") as source:
        shutil.copyfileobj(source, f)
    return Path(dst)


def resolve(path: str | Path) -> Path:
    """A checkpoint file, or a run dir (its `checkpoints/latest.pt`)."""
    path = Path(path)
    if path.is_dir():
        latest = path / "checkpoints" / "latest.pt"
        if not latest.is_file():
            raise CheckpointError(f"{path} is a folder but has no checkpoints/latest.pt: is it a cyclegan run dir?")
        return latest
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return path


def load_checkpoint(
    path: str | Path, *, format: str = FORMAT, version: int = VERSION,
    what: str = "a cyclegan checkpoint (for an official .pth generator file use it directly with `cyclegan translate`)",
) -> dict[str, Any]:
    """Read a checkpoint file or run dir safely (weights_only, onto the CPU) and check its `format`
    (a baseline's checkpoints have their own; `what` names it in the error) and `version`."""
    file = resolve(path)
    ckpt = load_tensors(file, error=CheckpointError, message=f"cannot read {file} as a checkpoint")
    if not isinstance(ckpt, dict) or ckpt.get("format") != format:
        raise CheckpointError(f"{file} is not {what}")
    if ckpt.get("version", 0) > version:
        raise CheckpointError(f"{file} was written by a newer cyclegan ({format} version {ckpt['version']}); upgrade")
    return ckpt
