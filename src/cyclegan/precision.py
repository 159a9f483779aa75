"""Numeric precision of the forward passes: `fp32` (plain float32, the official arithmetic), `bf16`
(bfloat16 autocast: CPUs with AVX512-BF16/AMX and GPUs from Ampere on) or `fp16` (float16 autocast,
CUDA; training also needs a gradient scaler, see `training.step.GradScalers`).

Training's mixed precision covers the generators; the discriminators stay in float32 unless
`train.low_precision_discriminators` (see `discriminators_in_float32`, passed to the discriminators when built), and the generators' output
layer is always float32 (`nn.layers.OutputConv2d`)."""

from __future__ import annotations

import contextlib

import torch

from .config import TrainConfig

PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def autocast(device: torch.device | str, precision: str) -> contextlib.AbstractContextManager:
    """A context running convolutions in `precision` on `device` (fp32: no autocast at all)."""
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose one of: {', '.join(PRECISIONS)}")
    dtype = PRECISIONS[precision]
    if dtype is None:
        return contextlib.nullcontext()
    device_type = torch.device(device).type
    if dtype is torch.float16 and device_type != "cuda":
        raise ValueError("precision fp16 needs a CUDA device; on the CPU use bf16")
    return torch.autocast(device_type, dtype=dtype)


def discriminators_in_float32(train: TrainConfig) -> bool:
    """Whether the discriminators compute in float32 under `train.precision` bf16/fp16 (their
    `float32` argument): yes unless `train.low_precision_discriminators`. Measured on the maps
    benchmark: bf16 discriminators cost most of CycleGAN's pixel accuracy (1-12 % at delta 5 against
    15.6-16.0 % in float32); float32 ones kept it (14.8 %)."""
    return train.precision != "fp32" and not train.low_precision_discriminators
