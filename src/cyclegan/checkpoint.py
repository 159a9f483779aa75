"""Checkpoints: the full training state in one file, written atomically, read without unpickling.

Layout of a checkpoint (a dict of tensors, numbers, strings, lists and dicts only, so that
`torch.load(..., weights_only=True)` reads it):
    format, version, config (Config.to_dict()), nets {g_ab, g_ba, d_a, d_b} (the method's `networks()`),
    method (the method's `extra_state()`), optim {g, d}, sched {g, d}, pools {a, b}, scalers {g, d},
    rng {torch, cuda}, progress (`state.Progress`)
A run dir holds `checkpoints/latest.pt` (and periodic `checkpoints/epoch_NNN.pt`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .methods import LEGACY_FORMATS
from .safe_load import load_tensors

FORMAT = "cyclegan-checkpoint"
VERSION = 1


class CheckpointError(ValueError):
    """A file that is not a readable cyclegan checkpoint."""


def checkpoint_file(path: str | Path) -> Path:
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


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a checkpoint file or run dir safely (weights_only, onto the CPU) and check its `format`
    and `version`. A checkpoint of an earlier format (`methods.LEGACY_FORMATS`, e.g. the former CoGAN
    trainer's) is upgraded to the current layout in memory."""
    file = checkpoint_file(path)
    return checked_checkpoint(load_tensors(file, error=CheckpointError, message=f"cannot read {file} as a checkpoint"),
                              file)


def checked_checkpoint(ckpt: Any, file: str | Path) -> dict[str, Any]:
    """`ckpt` (read from `file`) checked, or upgraded from an earlier format, as `load_checkpoint` does."""
    fmt = ckpt.get("format") if isinstance(ckpt, dict) else None
    if fmt in LEGACY_FORMATS:
        ckpt = {**LEGACY_FORMATS[fmt](ckpt), "format": FORMAT, "version": VERSION}
    elif fmt != FORMAT:
        raise CheckpointError(f"{file} is not a cyclegan checkpoint (for an official .pth generator file use it "
                              "directly with `cyclegan translate`)")
    if ckpt.get("version", 0) > VERSION:
        raise CheckpointError(f"{file} was written by a newer cyclegan ({FORMAT} version {ckpt['version']}); upgrade")
    return ckpt
