"""Training a scorer: cross-entropy of the U-Net's class logits on the real photos of a paired
dataset against their label maps (void and unmapped label pixels ignored), seeded, with random
horizontal flips; then its scores on the real test photos, the FCN-score's "ground truth" row."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..metrics.palette import Palette, palette_by_name
from .fcn_score import load_pairs, photos_to_tensor, score_pairs
from .model import Scorer, ScorerConfig, build_network, save_scorer

logger = logging.getLogger(__name__)
IGNORE = -1  # the loss's ignore_index: void classes and unmapped pixels


def class_targets(labels: np.ndarray, palette: Palette) -> torch.Tensor:
    """Palette indices (N, H, W) -> the network's class indices (IGNORE for void and unmapped)."""
    lookup = np.full(palette.unmapped + 1, IGNORE, dtype=np.int64)
    lookup[palette.scored] = np.arange(len(palette.scored))
    return torch.from_numpy(lookup[labels])


def train_one_epoch(net: torch.nn.Module, optimizer: torch.optim.Optimizer, photos: torch.Tensor,
                    targets: torch.Tensor, config: ScorerConfig, generator: torch.Generator,
                    device: torch.device | str) -> float:
    """One pass over the shuffled training pairs; the mean loss of its batches."""
    net.train()
    order = torch.randperm(len(photos), generator=generator)
    losses = []
    for start in range(0, len(order), config.batch_size):
        index = order[start:start + config.batch_size]
        x, y = photos[index], targets[index]  # (B, 3, H, W), (B, H, W)
        if config.flip:
            flip = torch.rand(len(index), generator=generator) < 0.5
            x[flip], y[flip] = x[flip].flip(-1), y[flip].flip(-1)
        loss = F.cross_entropy(net(x.to(device)), y.to(device), ignore_index=IGNORE)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return float(np.mean(losses))


def train_scorer(dataroot: str | Path, out: str | Path | None, *, palette: str | Path | Palette = "facades",
                 config: ScorerConfig = ScorerConfig(), device: torch.device | str = "cpu",
                 max_images: int | None = None) -> Scorer:
    """Train a scorer on DATAROOT's trainA/trainB (photos in `config.photos`, label maps in the other
    domain, paired by file name), score it on testA/testB, and write it to `out` (None: not written).

    Raises:
        ValueError: bad settings or palette, or no file names match (DataError: unreadable data).
    """
    config, palette = config.resolved(), palette_by_name(palette)
    root = Path(dataroot)
    labels_domain = "B" if config.photos == "A" else "A"
    train_photos, train_labels, _ = load_pairs(root / f"train{config.photos}", root / f"train{labels_domain}",
                                               palette, config.size, max_images=max_images)
    targets = class_targets(train_labels, palette)
    if (targets == IGNORE).all():
        raise ValueError(f"no pixel of {root / f'train{labels_domain}'} matches a scored class of the palette "
                         f"{palette.name!r}: wrong --palette, or --photos the wrong way round?")
    photos = photos_to_tensor(train_photos)
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    net = build_network(config, palette).to(device)
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda e: 1 - e / config.epochs)
    start, losses = time.perf_counter(), []
    for epoch in range(config.epochs):
        losses.append(train_one_epoch(net, optimizer, photos, targets, config, generator, device))
        schedule.step()
        logger.info("scorer epoch %d/%d: loss %.4f", epoch + 1, config.epochs, losses[-1])
    seconds = time.perf_counter() - start
    scorer = Scorer(net.eval(), config, palette, None,
                    {"losses": losses, "seconds": seconds, "images": len(photos), "dataroot": str(root)})
    test_photos, test_labels, _ = load_pairs(root / f"test{config.photos}", root / f"test{labels_domain}",
                                             palette, config.size)
    scorer = dataclasses.replace(scorer, real_scores=score_pairs(scorer, test_photos, test_labels, device))
    scorer.net.cpu()
    if out is not None:
        save_scorer(scorer, out)
    return scorer
