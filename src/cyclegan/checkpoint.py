"""Checkpoints: the full training state in one file, written atomically and checksummed, read
without unpickling.

Layout of a checkpoint (a dict of tensors, numbers, strings, lists and dicts only, so that
`torch.load(..., weights_only=True)` reads it):
    format, version, config (Config.to_dict()), nets {g_ab, g_ba, d_a, d_b} (the method's `networks()`),
    method (the method's `extra_state()`), optim {g, d}, sched {g, d}, pools {a, b}, scalers {g, d},
    rng {torch, cuda}, progress (`state.Progress`)
A run dir holds `checkpoints/latest.pt` (and periodic `checkpoints/epoch_NNN.pt`).

Every file written by `save_verified` has a sha256 beside it (`latest.pt.sha256`, the `sha256sum`
format), computed while writing and checked by reading the file back before it replaces anything; the
previous `latest.pt` is kept as `latest.prev.pt` until the new one is in place. Reading a run dir
checks the checksum and falls back, with a warning, to `latest.prev.pt` when `latest.pt` is corrupt,
truncated or missing. Files without a checksum (written by earlier versions) are read as they are.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from .atomic import copy_verified, digest_file, previous_file, remove_stale_temporaries, save_verified, verify_digest
from .methods import LEGACY_FORMATS
from .safe_load import load_tensors

logger = logging.getLogger(__name__)

__all__ = ["CheckpointError", "FORMAT", "VERSION", "checked_checkpoint", "checkpoint_file", "copy_verified",
           "digest_file", "load_checkpoint", "previous_file", "remove_stale_temporaries", "save_verified",
           "verify_digest"]

FORMAT = "cyclegan-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a readable cyclegan checkpoint."""


def checkpoint_file(path: str | Path) -> Path:
    """A checkpoint file, or a run dir (its `checkpoints/latest.pt`)."""
    path = Path(path)
    if path.is_dir():
        latest = path / "checkpoints" / "latest.pt"
        if not latest.is_file() and not previous_file(latest).is_file():
            raise CheckpointError(f"{path} is a folder but has no checkpoints/latest.pt: is it a cyclegan run dir?")
        return latest
    if not path.exists():
        raise CheckpointError(f"checkpoint {path} does not exist")
    return path


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint file or run dir safely (weights_only, onto the CPU), verify its checksum
    (when it has one) and check its `format` and `version`. For a run dir whose `latest.pt` is
    corrupt, truncated or missing, `latest.prev.pt` is read instead, with a warning. A checkpoint of
    an earlier format (`methods.LEGACY_FORMATS`, e.g. the former CoGAN trainer's) is upgraded to the
    current layout in memory."""
    file = checkpoint_file(path)
    candidates = [file, previous_file(file)] if Path(path).is_dir() else [file]
    problems = []
    for candidate in candidates:
        if not candidate.is_file():
            problems.append(f"{candidate} is missing")
            continue
        try:
            ckpt = _read_verified(candidate)
        except CheckpointError as e:
            problems.append(str(e))
            continue
        if candidate != file:
            logger.warning("%s; using the previous checkpoint %s (step %s) instead", problems[0], candidate,
                           ckpt.get("progress", {}).get("step", "?"))
        return ckpt
    raise CheckpointError(problems[0] if len(problems) == 1 else "; ".join(problems))


def _read_verified(file: Path) -> dict[str, Any]:
    if file.stat().st_size == 0:
        raise CheckpointError(f"{file} is empty (0 bytes): a write that never finished; it cannot be used")
    if verify_digest(file) is False:
        raise CheckpointError(f"{file} does not match its checksum ({digest_file(file).name}): the file is corrupt")
    return checked_checkpoint(load_tensors(file, error=CheckpointError, message=f"cannot read {file} as a checkpoint"),
                              file)


def checked_checkpoint(ckpt: Any, file: str | Path) -> dict[str, Any]:
    """`ckpt` (read from `file`) checked, or upgraded from an earlier format, as `load_checkpoint` does."""
    fmt = ckpt.get("format") if isinstance(ckpt, dict) else None
    if fmt in LEGACY_FORMATS:
        ckpt = {**LEGACY_FORMATS[fmt](ckpt), "format": FORMAT, "version": VERSION, "upgraded": True}
    elif fmt != FORMAT:
        raise CheckpointError(f"{file} is not a cyclegan checkpoint (for an official .pth generator file use it "
                              "directly with `cyclegan translate`)")
    if ckpt.get("version", 0) > VERSION:
        raise CheckpointError(f"{file} was written by a newer cyclegan ({FORMAT} version {ckpt['version']}); upgrade")
    return ckpt
