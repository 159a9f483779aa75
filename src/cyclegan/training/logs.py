"""What a run writes while it trains: the loss log, sample grids and its page (the experiment
trackers, TensorBoard and W&B, are `training.loggers`)."""

from __future__ import annotations

import json
import logging
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import torch

from ..data.image_io import save_image
from ..report import write_run_page
from .loggers import Logger

logger = logging.getLogger(__name__)


class LossLog:
    """Averages losses over `every` steps and appends them as JSON lines to `losses.jsonl`."""

    def __init__(self, path: Path, every: int) -> None:
        self.path, self.every = path, max(1, every)
        self.sums: dict[str, float] = defaultdict(float)
        self.count = 0
        self.t0 = time.perf_counter()

    def add(self, losses: dict[str, float], step: int, epoch: int, lr: float, loggers: Logger | None = None) -> None:
        for k, v in losses.items():
            self.sums[k] += v
        self.count += 1
        if step % self.every == 0:
            self.flush(step, epoch, lr, loggers)

    def reset(self) -> None:
        """Forget the losses added since the last line (a rollback drops those steps)."""
        self.sums.clear()
        self.count = 0
        self.t0 = time.perf_counter()

    def flush(self, step: int, epoch: int, lr: float, loggers: Logger | None = None) -> None:
        """Write the average of the losses added since the last line (if any); `loggers` get it as
        `train/NAME` scalars (the losses, lr and sec_per_step)."""
        if not self.count:
            return
        now = time.perf_counter()
        record = {"step": step, "epoch": epoch, "lr": lr, "sec_per_step": (now - self.t0) / self.count}
        record.update({k: v / self.count for k, v in self.sums.items()})
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if loggers is not None:
            loggers.scalars({f"train/{k}": v for k, v in record.items() if k not in ("step", "epoch")}, step)
        self.sums.clear()
        self.count = 0
        self.t0 = now


def save_sample_grid(path: Path, real_a: torch.Tensor, real_b: torch.Tensor, t: Any) -> torch.Tensor:
    """Write real_a | fake_b | rec_a over real_b | fake_a | rec_b (first image of the batch; a method
    without fake_a or the cycle images leaves them out) and return the grid, (3, H, W) in [-1, 1]."""

    def rgb(x: torch.Tensor) -> torch.Tensor:  # grey as RGB; multi-band images show their first three bands
        x = x[0].detach().float().cpu()
        return x[:3] if x.shape[0] >= 3 else x[:1].expand(3, -1, -1)

    top = torch.cat([rgb(x) for x in (real_a, t.fake_b, t.rec_a) if x is not None], dim=2)
    bottom = torch.cat([rgb(x) for x in (real_b, t.fake_a, t.rec_b) if x is not None], dim=2)
    if top.shape[2] != bottom.shape[2]:  # domains of different sizes: pad the narrower row
        w = max(top.shape[2], bottom.shape[2])
        top, bottom = (torch.nn.functional.pad(r, (0, w - r.shape[2]), value=1.0) for r in (top, bottom))
    grid = torch.cat([top, bottom], dim=1)
    save_image(grid, path)
    return grid



def write_page(run_dir: Path) -> None:
    # The page is optional polish: never kill training for it.
    try:
        write_run_page(run_dir)
    except Exception as e:  # noqa: BLE001
        logger.warning("could not write %s/index.html: %s", run_dir, e)
