"""One optimisation step of any method (`cyclegan.methods`), in the method's order. For CycleGAN
(the official `CycleGANModel.optimize_parameters`, paper Sec. 4):

1. translate both ways; with the discriminators frozen, one Adam step on the generators;
2. one Adam step on the discriminators, each trained on real images and on fakes drawn from its
   history pool.

A method with `discriminator_first` (pix2pix, CoGAN) takes step 2 before step 1, on the same
translations (the generators are then trained against the updated discriminators).
"""

from __future__ import annotations

import torch

from ..methods import GeneratorOutputs, Method, set_requires_grad
from ..pool import ImagePool
from ..precision import autocast
from .state import GradScalers


def train_step(
    model: Method,
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    pool_a: ImagePool,
    pool_b: ImagePool,
    *,
    precision: str = "fp32",
    scalers: GradScalers | None = None,
    sync_losses: bool = True,
    passes: tuple[torch.nn.Module, torch.nn.Module] | None = None,
    regularize: bool = False,
) -> tuple[dict[str, float] | dict[str, torch.Tensor], GeneratorOutputs]:
    """Run one step on a batch; returns (losses, the generators' outputs) for logging and samples.

    pool_a stores generated A images (for the discriminator of domain A), pool_b generated B images.

    Args:
        precision: fp32 (the official arithmetic, bit for bit), bf16 or fp16 (autocast; fp16 needs
            `scalers`; discriminators built with `float32` stay float32).
        sync_losses: return the losses as Python floats (waits for the device); False returns
            detached tensors, so a GPU step does not wait for its own end.
        passes: data-parallel training: the DDP-wrapped (GeneratorPass, DiscriminatorPass) of
            `training.distributed`, which run the method's networks and all-reduce their gradients.
        regularize: add the discriminators' gradient penalty (`loss.r1_gamma`) in this step.
    """
    amp = autocast(real_a.device, precision)
    with amp:
        t = GeneratorOutputs(*passes[0](real_a, real_b)) if passes is not None else model.translate(real_a, real_b)

    def generator_step() -> dict[str, torch.Tensor]:
        set_requires_grad(model.discriminators, False)
        opt_g.zero_grad(set_to_none=True)
        with amp:
            losses = model.generator_losses(real_a, real_b, t)
        _backward_and_step(losses["total"], opt_g, scalers.g if scalers is not None else None)
        set_requires_grad(model.discriminators, True)
        return losses

    def discriminator_step() -> dict[str, torch.Tensor]:
        opt_d.zero_grad(set_to_none=True)
        fake_b = pool_b.query(t.fake_b.detach().float()) if t.fake_b is not None else None
        fake_a = pool_a.query(t.fake_a.detach().float()) if t.fake_a is not None else None
        with amp:
            judge = passes[1] if passes is not None else model.discriminator_step_losses
            losses = judge(real_a, real_b, fake_a, fake_b, regularize)
        _backward_and_step(losses["total"], opt_d, scalers.d if scalers is not None else None)
        return losses

    # Without an adversarial loss ("cycle alone") there is nothing to train the discriminators for.
    if model.discriminator_first:
        d_losses = discriminator_step() if model.adversarial else {}
        g_losses = generator_step()
    else:
        g_losses = generator_step()
        d_losses = discriminator_step() if model.adversarial else {}
    return _finish({k: v for k, v in (*g_losses.items(), *d_losses.items()) if k != "total"}, sync_losses), t


def _finish(losses: dict[str, torch.Tensor], sync: bool) -> dict[str, float] | dict[str, torch.Tensor]:
    losses = {k: v.detach() for k, v in losses.items()}
    if sync:
        values = torch.stack(list(losses.values())).tolist()  # one device sync, not one per loss
        losses = dict(zip(losses, values))
    return losses


def _backward_and_step(loss: torch.Tensor, opt: torch.optim.Optimizer, scaler: torch.amp.GradScaler | None) -> None:
    if scaler is None or not scaler.is_enabled():
        loss.backward()
        opt.step()
        return
    scaler.scale(loss).backward()
    scaler.step(opt)
    scaler.update()
