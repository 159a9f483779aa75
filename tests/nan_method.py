"""A test method that diverges: CycleGAN whose generator loss turns NaN on the N-th step of the
process (N from `CYCLEGAN_TEST_NAN_AT`, default 5), once. Registered as `nan_test` on import; the
tests import it in-process (and remove it again) or in a subprocess before the real CLI runs."""

from __future__ import annotations

import os

import torch

from cyclegan.methods import METHODS, register_method
from cyclegan.methods.cyclegan import CycleGAN

NAME = "nan_test"


class DivergingCycleGAN(CycleGAN):
    calls = 0

    def generator_losses(self, real_a, real_b, out):
        losses = super().generator_losses(real_a, real_b, out)
        DivergingCycleGAN.calls += 1
        if DivergingCycleGAN.calls == int(os.environ.get("CYCLEGAN_TEST_NAN_AT", "5")):
            losses["g_ab"] = losses["g_ab"] * torch.tensor(float("nan"))
            losses["total"] = losses["total"] + losses["g_ab"]
        return losses


def register() -> None:
    DivergingCycleGAN.calls = 0
    if NAME not in METHODS:
        register_method(NAME)(DivergingCycleGAN)


def unregister() -> None:
    METHODS.pop(NAME, None)


register()
