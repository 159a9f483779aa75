"""One CycleGAN optimisation step, in the official order (paper Sec. 4, Algorithm of the
official `CycleGANModel.optimize_parameters`):

1. translate both ways; with both discriminators frozen, one Adam step on g_ab + g_ba;
2. one Adam step on d_a + d_b, each trained on real images and on fakes drawn from its history pool.
"""

from __future__ import annotations

import itertools

import torch

from ..config import OptimConfig
from ..cyclegan import CycleGAN, set_requires_grad
from ..pool import ImagePool


def build_optimizers(model: CycleGAN, cfg: OptimConfig) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam over both generators, and Adam over both discriminators (lr 2e-4, betas (0.5, 0.999))."""
    betas = (cfg.beta1, cfg.beta2)
    opt_g = torch.optim.Adam(itertools.chain(model.g_ab.parameters(), model.g_ba.parameters()), lr=cfg.lr, betas=betas)
    opt_d = torch.optim.Adam(itertools.chain(model.d_a.parameters(), model.d_b.parameters()), lr=cfg.lr, betas=betas)
    return opt_g, opt_d


def train_step(
    model: CycleGAN,
    real_a: torch.Tensor,
    real_b: torch.Tensor,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    pool_a: ImagePool,
    pool_b: ImagePool,
) -> tuple[dict[str, float], torch.Tensor, torch.Tensor]:
    """Run one step on a batch; returns (losses as floats, fake_a, fake_b) for logging and samples.

    pool_a stores generated A images (for d_a), pool_b generated B images (for d_b).
    """
    t = model.translate(real_a, real_b)

    set_requires_grad(model.discriminators, False)
    opt_g.zero_grad(set_to_none=True)
    g_losses = model.generator_losses(real_a, real_b, t)
    g_losses["total"].backward()
    opt_g.step()
    set_requires_grad(model.discriminators, True)

    opt_d.zero_grad(set_to_none=True)
    fake_b = pool_b.query(t.fake_b.detach())
    fake_a = pool_a.query(t.fake_a.detach())
    d_losses = model.discriminator_losses(real_a, real_b, fake_a, fake_b)
    d_losses["total"].backward()
    opt_d.step()

    losses = {k: v.item() for k, v in g_losses.items() if k != "total"}
    losses.update({k: v.item() for k, v in d_losses.items() if k != "total"})
    return losses, t
