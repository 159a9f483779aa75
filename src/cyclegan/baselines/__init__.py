"""Baselines of the paper's comparisons (Sec. 5.1.3) that are not a loss weight of the CycleGAN
objective (those are configurations, see `cyclegan.experiments`):

- `pix2pix` (the paired upper bound) and `bigan` (BiGAN/ALI): objectives trained by the common
  training loop, chosen by `model.method` (`cyclegan.methods`);
- `cogan`: coupled GANs (Liu & Tuzel 2016) with their own networks and training, translation by
  latent search (`cogan`, `cogan_train`, `cogan_search`).

A CoGAN run dir holds checkpoints of its own `format`; `evaluate_baseline` and
`load_baseline_translator` recognise them, so that `evaluation.evaluate_checkpoint` and
`cyclegan reproduce baselines` score a baseline's run like a CycleGAN run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..safe_load import load_tensors
from ..training.checkpoint import resolve
from .bigan import BiGAN
from .pix2pix import Pix2Pix

__all__ = ["BiGAN", "Pix2Pix", "baseline_format", "evaluate_baseline", "load_baseline_translator"]


def baseline_format(source: str | Path) -> str | None:
    """The `format` of the baseline checkpoint (file or run dir) `source`, or None if it is none of theirs."""
    from .cogan_train import FORMAT as COGAN

    try:
        ckpt = load_tensors(resolve(source))
    except Exception:  # missing, unreadable or not a checkpoint: the caller reports its own error
        return None
    fmt = ckpt.get("format") if isinstance(ckpt, dict) else None
    return fmt if fmt in (COGAN,) else None


def evaluate_baseline(source: str | Path, **kwargs: Any) -> tuple[dict[str, float], dict[str, object]] | None:
    """`evaluation.evaluate_checkpoint` for a baseline's run dir or checkpoint; None if `source` is not one."""
    if baseline_format(source) is None:
        return None
    from .cogan_train import evaluate_cogan

    return evaluate_cogan(source, **kwargs)


def load_baseline_translator(source: str | Path, direction: str, device: str | torch.device = "cpu") -> nn.Module | None:
    """A baseline's translator for `direction` ("AtoB" / "BtoA"), usable like a generator; None if
    `source` is not a baseline's run dir or checkpoint."""
    if baseline_format(source) is None:
        return None
    from .cogan_train import load_translators

    t_ab, t_ba = load_translators(source, device)
    return t_ab if direction == "AtoB" else t_ba
