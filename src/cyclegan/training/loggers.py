"""Experiment trackers (`train.loggers`): TensorBoard and Weights & Biases behind one interface.

The run dir's own logs (losses.jsonl, evals.jsonl, samples/) are written whatever the choice; the
loggers receive the same numbers and grids: the losses averaged over `train.log_every` steps and the
learning rate (`train/NAME`), each sample grid (`samples`), each periodic evaluation's scores
(`eval/DIRECTION.METRIC`) and, at the start, the resolved config (W&B). Only rank 0 logs.

W&B resume: the run id is kept in RUN_DIR/wandb.json, so `cyclegan train --resume RUN_DIR`
continues the same W&B run, with the steps continuing from the checkpoint's.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import string
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

import torch

from ..atomic import atomic_write_text
from ..config import Config
from ..lazy import require

__all__ = ["LOGGERS", "WANDB_ID_FILE", "Logger", "Loggers", "check_loggers", "open_loggers"]

logger = logging.getLogger(__name__)

WANDB_ID_FILE = "wandb.json"  # {"id": the W&B run id}: a resumed run continues that W&B run
WANDB_MISSING = 'train.loggers=[...,wandb] needs the wandb package: pip install "cyclegan[wandb]"'


class Logger(Protocol):
    """Where a run's scalars and images go besides its own files."""

    def scalars(self, values: Mapping[str, float], step: int) -> None: ...

    def image(self, name: str, image: torch.Tensor, step: int) -> None:
        """`image`: (3, H, W), values in [0, 1]."""

    def close(self, *, failed: bool = False) -> None: ...


class TensorBoardLogger:
    """Events in RUN_DIR/tensorboard; on resume, the events logged after the checkpoint's step are purged."""

    def __init__(self, writer: Any) -> None:
        self.writer = writer

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        for k, v in values.items():
            self.writer.add_scalar(k, v, step)

    def image(self, name: str, image: torch.Tensor, step: int) -> None:
        self.writer.add_image(name, image, step)

    def close(self, *, failed: bool = False) -> None:
        self.writer.close()


def open_tensorboard(cfg: Config, run_dir: Path, resume_step: int | None) -> TensorBoardLogger | None:
    """A TensorBoardLogger when the optional `tensorboard` package is installed, else None (the default
    `train.loggers` names it, so a missing package is no error)."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # optional dependency (the tensorboard extra)
    except ImportError:
        logger.debug("tensorboard is not installed: no TensorBoard events")
        return None
    purge = None if resume_step is None else resume_step + 1
    return TensorBoardLogger(SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge))


class WandbLogger:
    """One W&B run per training run (resumed runs included); its config is the run's resolved config."""

    def __init__(self, run: Any) -> None:
        self.run = run

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        self.run.log(dict(values), step=step)

    def image(self, name: str, image: torch.Tensor, step: int) -> None:
        import wandb  # optional dependency (the wandb extra), imported only when chosen

        pixels = (image.detach().float().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0)  # (H, W, 3)
        self.run.log({name: wandb.Image(pixels.cpu().numpy())}, step=step)

    def close(self, *, failed: bool = False) -> None:
        self.run.finish(exit_code=1 if failed else 0)


def wandb_run_id(run_dir: Path, resume_step: int | None) -> str:
    """The W&B run id of `run_dir`: a new one (recorded in WANDB_ID_FILE) for a new run, the recorded
    one for a resumed run."""
    path = run_dir / WANDB_ID_FILE
    if resume_step is not None:
        try:
            return str(json.loads(path.read_text())["id"])
        except (OSError, ValueError, KeyError, TypeError):
            logger.warning("%s is missing or unreadable: the resumed run logs to a new W&B run", path)
    run_id = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))  # as W&B's own
    atomic_write_text(path, json.dumps({"id": run_id}) + "\n")
    return run_id


def open_wandb(cfg: Config, run_dir: Path, resume_step: int | None) -> WandbLogger:
    """Start (or, on resume, continue) the run's W&B run. Project, entity and name come from
    `train.wandb_*`, else from $WANDB_PROJECT / $WANDB_ENTITY (the project then defaults to
    "cyclegan", the name to the run dir's); files go to $WANDB_DIR, else RUN_DIR/wandb."""
    import wandb  # optional dependency (the wandb extra), imported only when chosen

    t = cfg.train
    try:
        run = wandb.init(
            project=t.wandb_project or os.environ.get("WANDB_PROJECT") or "cyclegan",
            entity=t.wandb_entity or None,  # None: wandb reads $WANDB_ENTITY, else the account's default
            name=t.wandb_name or run_dir.resolve().name,
            id=wandb_run_id(run_dir, resume_step),
            resume="allow",
            config=cfg.to_dict(),
            dir=None if os.environ.get("WANDB_DIR") else str(run_dir),
            job_type="train",
        )
    except wandb.errors.Error as e:  # not logged in, server unreachable, a bad project or entity
        raise ValueError(f"could not start the W&B run ({e}); `wandb login`, or log without an account: "
                         "WANDB_MODE=offline") from None
    return WandbLogger(run)


# The registry: name -> opener(cfg, run_dir, resume_step); None when the logger is unavailable and optional.
LOGGERS: dict[str, Callable[[Config, Path, int | None], Logger | None]] = {
    "tensorboard": open_tensorboard,
    "wandb": open_wandb,
}
REQUIRED = {"wandb": ("wandb", WANDB_MISSING)}  # logger -> (package it needs, message when missing)


def check_loggers(cfg: Config) -> None:
    """A MissingDependencyError, before training starts, for a chosen logger whose package is missing."""
    for name in cfg.train.loggers:
        if name in REQUIRED:
            require(*REQUIRED[name])


class Loggers:
    """Every chosen logger, called in turn; an empty one does nothing."""

    def __init__(self, loggers: list[Logger]) -> None:
        self.loggers = loggers

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        for lg in self.loggers:
            lg.scalars(values, step)

    def image(self, name: str, image: torch.Tensor, step: int) -> None:
        for lg in self.loggers:
            lg.image(name, image, step)

    def close(self, *, failed: bool = False) -> None:
        for lg in self.loggers:
            lg.close(failed=failed)
        self.loggers = []


def open_loggers(cfg: Config, run_dir: Path, resume_step: int | None) -> Loggers:
    """The loggers of `cfg.train.loggers` for `run_dir` (`resume_step`: the checkpoint's step, None
    for a new run)."""
    opened = [LOGGERS[name](cfg, run_dir, resume_step) for name in cfg.train.loggers]
    return Loggers([lg for lg in opened if lg is not None])
