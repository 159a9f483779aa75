"""What keeps a run's work safe: divergence detection (non-finite losses, weights or optimiser
moments never reach a checkpoint), learning-rate rollback, and the run-dir lock that keeps a second
trainer out."""

from __future__ import annotations

import fcntl
import math
import os
import socket
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import nn


class TrainingDiverged(RuntimeError):
    """Training produced non-finite values; the last good checkpoint is left in place."""


class RunLocked(RuntimeError):
    """Another process is training in the run dir."""


def check_losses(losses: dict[str, float], step: int, last_good: str) -> None:
    """TrainingDiverged naming the step, the non-finite losses and the last good checkpoint."""
    bad = {k: v for k, v in losses.items() if not math.isfinite(v)}
    if bad:
        values = ", ".join(f"{k} = {v}" for k, v in bad.items())
        raise TrainingDiverged(f"training diverged at step {step} ({values}); {last_good}")


def first_non_finite(tensors: Iterable[tuple[str, torch.Tensor]]) -> str | None:
    """The name of the first floating-point tensor holding a NaN or an infinity, else None."""
    for name, t in tensors:
        if t.is_floating_point() and not torch.isfinite(t).all():
            return name
    return None


def check_finite_state(model: nn.Module, optimizers: Iterable[torch.optim.Optimizer], step: int,
                       run_dir: Path) -> None:
    """TrainingDiverged unless every weight, buffer and optimiser moment is finite (checked before
    each checkpoint write, so a non-finite state never replaces a good one)."""
    bad = first_non_finite(model.state_dict().items())
    if bad is None:
        moments = ((f"optimiser {k}", v) for opt in optimizers for s in opt.state.values() for k, v in s.items()
                   if isinstance(v, torch.Tensor))
        bad = first_non_finite(moments)
    if bad is not None:
        raise TrainingDiverged(f"training diverged by step {step}: {bad} holds NaN or infinite values, so no "
                               f"checkpoint was written; {last_good_message(run_dir)}")


def last_good_message(run_dir: Path, step: int | None = None) -> str:
    """Where the last good checkpoint is, and how to go on from it."""
    latest = run_dir / "checkpoints" / "latest.pt"
    if not latest.exists():
        return ("no checkpoint had been written yet; start again with a lower learning rate "
                "(--set optim.lr=...) or set train.on_divergence=rollback")
    at = f" (step {step})" if step is not None else ""
    return (f"the last good checkpoint is {latest}{at}; resume from it with `cyclegan train --resume {run_dir}` "
            "(train.on_divergence=rollback does that with a lower learning rate)")


def scale_learning_rate(optimizers: Iterable[torch.optim.Optimizer], schedulers: Iterable[Any], factor: float) -> None:
    """Multiply the current and base learning rates (kept in the schedulers' and optimisers' state,
    so a checkpoint carries them) by `factor`."""
    for opt in optimizers:
        for group in opt.param_groups:
            group["lr"] *= factor
            if "initial_lr" in group:
                group["initial_lr"] *= factor
    for sched in schedulers:
        if hasattr(sched, "base_lrs"):
            sched.base_lrs = [lr * factor for lr in sched.base_lrs]
        if hasattr(sched, "_last_lr"):
            sched._last_lr = [lr * factor for lr in sched._last_lr]
        if hasattr(sched, "min_lrs"):  # ReduceLROnPlateau keeps its floor, 0 by default
            sched.min_lrs = [lr * factor for lr in sched.min_lrs]


class RunLock:
    """An exclusive OS lock on `run_dir/.lock` (it dies with the process, even on SIGKILL), holding
    the owner's PID and host; a second trainer gets RunLocked naming them."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / ".lock"
        self.fd: int | None = None

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            owner = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise RunLocked(f"{self.path.parent} is being trained by {owner}; wait for it to finish (or stop it), "
                            "or train into another --run-dir") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"PID {os.getpid()} on {socket.gethostname()}\n".encode())
        self.fd = fd
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the lock; the file stays (removing it would race a new owner)
            self.fd = None
