"""Learning-rate policies, stepped once per epoch (official `get_scheduler`).

linear (the paper's): the initial rate for `n_epochs` epochs, then linear decay over
`n_epochs_decay` epochs with the official factor 1 - max(0, e + 1 - n_epochs) / (n_epochs_decay + 1),
where e counts completed epochs. Epoch k (1-based) trains with e = k - 1: epochs 1..n_epochs at the
full rate, epoch n_epochs + 1 at 100/101 of it (with the default 100 + 100), the last at 1/101.
(The official train.py since 2020 steps the scheduler at the *start* of each epoch, which shifts
this by one epoch: its epoch 100 already decays and its epoch 200 trains at rate 0.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch.optim import lr_scheduler

from ..config import OptimConfig


def linear_factor(completed_epochs: int, n_epochs: int, n_epochs_decay: int, epoch_count: int = 1) -> float:
    """Official `lambda_rule` of the linear policy (epoch_count is the official start epoch, 1)."""
    return 1.0 - max(0, completed_epochs + epoch_count - n_epochs) / float(n_epochs_decay + 1)


# Learning-rate policies by name (`optim.lr_policy`): (optimizer, config) -> scheduler.
SCHEDULERS: dict[str, Callable[[torch.optim.Optimizer, OptimConfig], Any]] = {
    "linear": lambda opt, cfg: lr_scheduler.LambdaLR(opt, lambda e: linear_factor(e, cfg.n_epochs, cfg.n_epochs_decay)),
    "step": lambda opt, cfg: lr_scheduler.StepLR(opt, step_size=cfg.lr_decay_iters, gamma=0.1),
    "plateau": lambda opt, cfg: lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.2, threshold=0.01, patience=5),
    "cosine": lambda opt, cfg: lr_scheduler.CosineAnnealingLR(opt, T_max=cfg.n_epochs, eta_min=0),
}


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig) -> lr_scheduler.LRScheduler | lr_scheduler.ReduceLROnPlateau:
    if cfg.lr_policy not in SCHEDULERS:
        raise ValueError(f"unknown lr policy {cfg.lr_policy!r}; choose one of: {', '.join(SCHEDULERS)}")
    return SCHEDULERS[cfg.lr_policy](optimizer, cfg)


def step_scheduler(scheduler, metric: float | None = None) -> None:
    """Advance one epoch; the plateau policy needs the epoch's metric (we use the mean G loss)."""
    if isinstance(scheduler, lr_scheduler.ReduceLROnPlateau):
        scheduler.step(metric if metric is not None else 0.0)
    else:
        scheduler.step()
