"""Numeric precision of the forward passes: `fp32` (plain float32, the official arithmetic), `bf16`
(bfloat16 autocast: CPUs with AVX512-BF16/AMX and GPUs from Ampere on) or `fp16` (float16 autocast,
CUDA; training also needs a gradient scaler, see `training.step.GradScalers`)."""

from __future__ import annotations

import contextlib

import torch

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
