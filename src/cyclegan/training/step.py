"""One optimisation step, in the official order. For CycleGAN (`CycleGANModel.optimize_parameters`,
paper Sec. 4):

1. translate both ways; with both discriminators frozen, one Adam step on g_ab + g_ba;
2. one Adam step on d_a + d_b, each trained on real images and on fakes drawn from its history pool.

Other objectives (`cyclegan.methods`) go through the same two steps; pix2pix steps its
discriminator first (`discriminator_first`), as the official `Pix2PixModel` does.
"""

from __future__ import annotations

import itertools

import torch

from ..config import OptimConfig
from ..cyclegan import CycleGAN, Translations, set_requires_grad
from ..pool import ImagePool
from ..precision import autocast


def build_optimizers(model: CycleGAN, cfg: OptimConfig) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam over the generators, and Adam over the discriminators (lr 2e-4, betas (0.5, 0.999))."""
    betas = (cfg.beta1, cfg.beta2)
    opt_g = torch.optim.Adam(itertools.chain(*(g.parameters() for g in model.generators)), lr=cfg.lr, betas=betas)
    opt_d = torch.optim.Adam(itertools.chain(*(d.parameters() for d in model.discriminators)), lr=cfg.lr, betas=betas)
    return opt_g, opt_d


class GradScalers:
    """One gradient scaler per optimiser for `fp16` (float16 gradients underflow without one);
    disabled, and free, for the other precisions."""

    def __init__(self, device: torch.device, precision: str) -> None:
        enabled = precision == "fp16"
        self.g = torch.amp.GradScaler(device.type, enabled=enabled)
        self.d = torch.amp.GradScaler(device.type, enabled=enabled)

    def state_dict(self) -> dict:
        return {"g": self.g.state_dict(), "d": self.d.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.g.load_state_dict(state["g"])
        self.d.load_state_dict(state["d"])


def train_step(
    model: CycleGAN,
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    pool_a: ImagePool,
    pool_b: ImagePool,
    *,
    precision: str = "fp32",
    merge_passes: bool = False,
    scalers: GradScalers | None = None,
    sync_losses: bool = True,
    passes: tuple[torch.nn.Module, torch.nn.Module] | None = None,
) -> tuple[dict[str, float] | dict[str, torch.Tensor], Translations]:
    """Run one step on a batch; returns (losses, translations) for logging and samples.

    pool_a stores generated A images (for d_a), pool_b generated B images (for d_b).

    Args:
        precision: fp32 (the official arithmetic, bit for bit), bf16 or fp16 (autocast; fp16 needs
            `scalers`; discriminators marked by `precision.discriminators_in_float32` stay float32).
        merge_passes: run each generator once on the concatenation of its inputs
            (`CycleGAN.translate_merged`): the same maths with fewer, larger passes.
        sync_losses: return the losses as Python floats (waits for the device); False returns
            detached tensors, so a GPU step does not wait for its own end.
        passes: data-parallel training: the DDP-wrapped (GeneratorPass, DiscriminatorPass) of
            `training.distributed`, which run the networks and all-reduce their gradients.
    """
    amp = autocast(real_a.device, precision)
    with amp:
        if passes is not None:
            t = Translations(*passes[0](real_a, real_b))
        else:
            t = model.translate_merged(real_a, real_b) if merge_passes else model.translate(real_a, real_b)

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
        fake_b = pool_b.query(t.fake_b.detach().float())
        fake_a = pool_a.query(t.fake_a.detach().float()) if t.fake_a is not None else None
        with amp:
            if passes is not None:
                d_b, d_a = passes[1](real_a, real_b, fake_a, fake_b)
                losses = {"d_b": d_b, "d_a": d_a, "total": d_a + d_b}
            else:
                losses = model.discriminator_losses(real_a, real_b, fake_a, fake_b)
        _backward_and_step(losses["total"], opt_d, scalers.d if scalers is not None else None)
        return losses

    # Without an adversarial loss ("cycle alone") there is nothing to train the discriminators for.
    adversarial = model.loss_cfg.lambda_gan != 0
    if model.discriminator_first:
        d_losses = discriminator_step() if adversarial else {}
        g_losses = generator_step()
    else:
        g_losses = generator_step()
        d_losses = discriminator_step() if adversarial else {}
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
