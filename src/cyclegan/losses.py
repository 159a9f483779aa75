"""Loss functions of the CycleGAN objective (paper Sec. 3, Eq. 1-3 and Sec. 4 "Training details").

Pure functions of tensors: the adversarial loss in four flavours, the cycle-consistency and identity
L1 terms, the WGAN-GP gradient penalty, and CUT's PatchNCE loss (Park et al. 2020, Eq. 2-5).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

GAN_MODES = ("lsgan", "vanilla", "wgangp", "hinge")


def gan_loss(prediction: torch.Tensor, target_is_real: bool, mode: str = "lsgan", *, for_discriminator: bool = True) -> torch.Tensor:
    """Adversarial loss of a discriminator output (any shape; averaged over all elements).

    lsgan: least squares to 1/0 (the paper's choice, Sec. 4, after Mao et al. 2017);
    vanilla: binary cross-entropy on logits; wgangp: -/+ mean critic value;
    hinge: max(0, 1 -/+ D) for the discriminator, -mean(D) for the generator.
    """
    prediction = prediction.float()  # mixed precision: the loss itself in float32 (a no-op in float32)
    if mode == "lsgan":
        target = torch.ones_like(prediction) if target_is_real else torch.zeros_like(prediction)
        return F.mse_loss(prediction, target)
    if mode == "vanilla":
        target = torch.ones_like(prediction) if target_is_real else torch.zeros_like(prediction)
        return F.binary_cross_entropy_with_logits(prediction, target)
    if mode == "wgangp":
        return -prediction.mean() if target_is_real else prediction.mean()
    if mode == "hinge":
        if not for_discriminator:
            return -prediction.mean()
        return F.relu(1.0 - prediction).mean() if target_is_real else F.relu(1.0 + prediction).mean()
    raise ValueError(f"unknown gan mode {mode!r}; choose one of: {', '.join(GAN_MODES)}")


def cycle_loss(reconstructed: torch.Tensor, real: torch.Tensor, weight: float) -> torch.Tensor:
    """weight * ||F(G(x)) - x||_1, averaged over pixels (paper Eq. 2)."""
    return F.l1_loss(reconstructed.float(), real.float()) * weight


def identity_loss(same: torch.Tensor, real: torch.Tensor, weight: float) -> torch.Tensor:
    """weight * ||G(y) - y||_1 (paper Sec. 5.2, after Taigman et al. 2017)."""
    return F.l1_loss(same.float(), real.float()) * weight


def feature_loss(fake_features: torch.Tensor, real_features: torch.Tensor, weight: float) -> torch.Tensor:
    """weight * ||phi(G(x)) - phi(x)||_1, the mean over feature elements: SimGAN's self-regularisation on
    deep features instead of pixels (the paper's "feature loss + GAN" baseline, Sec. 5.1.3). The real
    image's features are a fixed target."""
    return F.l1_loss(fake_features.float(), real_features.detach().float()) * weight


def gradient_penalty(
    discriminator: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    *,
    weight: float = 10.0,
    constant: float = 1.0,
) -> torch.Tensor:
    """WGAN-GP penalty (Gulrajani et al. 2017) on random interpolates of real and fake images."""
    alpha = torch.rand(real.shape[0], 1, 1, 1, device=real.device, dtype=real.dtype)
    mixed = (alpha * real + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = discriminator(mixed)
    (grad,) = torch.autograd.grad(out, mixed, grad_outputs=torch.ones_like(out), create_graph=True)
    grad = grad.reshape(real.shape[0], -1)
    return ((grad + 1e-16).norm(2, dim=1) - constant).pow(2).mean() * weight


def patch_nce_loss(feat_q: torch.Tensor, feat_k: torch.Tensor, *, images: int, tau: float = 0.07,
                   all_negatives: bool = False) -> torch.Tensor:
    """PatchNCE (InfoNCE over patches) of one layer, per patch (no reduction), as the reference's
    `PatchNCELoss`.

    `feat_q`, `feat_k`: (images * P, D) L2-normalised query and key rows, batch-major (`nn.PatchSampler`).
    Each query's positive is the key at its own position; its negatives are the keys at the other
    positions of the same image (of the whole batch with `all_negatives`). Keys are a fixed target
    (detached). The same position's similarity is masked with -10 (not -inf) before dividing by
    `tau`, and the loss is the cross-entropy to the positive. Returns (images * P,).
    """
    n, dim = feat_q.shape
    feat_k = feat_k.detach()
    l_pos = torch.bmm(feat_q.view(n, 1, dim), feat_k.view(n, dim, 1)).view(n, 1)  # (N, 1)
    groups = 1 if all_negatives else images
    q, k = feat_q.view(groups, -1, dim), feat_k.view(groups, -1, dim)
    patches = q.shape[1]
    l_neg = torch.bmm(q, k.transpose(2, 1))  # (G, P, P)
    eye = torch.eye(patches, device=q.device, dtype=torch.bool)[None]
    l_neg = l_neg.masked_fill(eye, -10.0).view(-1, patches)
    logits = torch.cat((l_pos, l_neg), dim=1) / tau
    return F.cross_entropy(logits, torch.zeros(n, dtype=torch.long, device=q.device), reduction="none")


def zero_centred_penalty(discriminator: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                         fake: torch.Tensor | None = None) -> torch.Tensor:
    """E|grad_x D(x)|^2 at the real images (R1, Mescheder et al. 2018), or, with `fake`, at random mixes
    a * real + (1 - a) * fake, a ~ U(0, 1) per image (the zero-centred variant of UVCGAN2). The input
    and the gradient are float32; under autocast the discriminator's own precision applies and the
    double backward runs through it. A compiled discriminator runs eagerly here: torch.compile has no
    double backward."""
    x = real.detach().float()
    if fake is not None:
        alpha = torch.rand(x.shape[0], 1, 1, 1, device=x.device)
        x = alpha * x + (1 - alpha) * fake.detach().float()
    x.requires_grad_(True)
    with torch.compiler.set_stance("force_eager"):
        out = discriminator(x)
    (grad,) = torch.autograd.grad(out.float().sum(), x, create_graph=True)
    return grad.float().pow(2).reshape(x.shape[0], -1).sum(1).mean()
