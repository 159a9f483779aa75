"""The FCN-score (CycleGAN paper Sec. 5.1.1): segment photos with a trained scorer and compare its
classes with the label maps of the same file names (`metrics.segmentation`'s scores).

Photos are resized to the scorer's input size (bilinear) and label maps with nearest neighbour (no
new colours), then mapped to classes with the scorer's palette; void and unmapped label pixels
are ignored. The scorer predicts one of its scored classes at every pixel.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..data.image_io import load_image
from ..metrics.palette import Palette, colours_to_labels
from ..metrics.paired import matched_files
from ..metrics.segmentation import SegmentationScores, confusion_matrix, scores_from_confusion
from .model import Scorer, load_scorer

BATCH_SIZE = 16


def load_pairs(photo_dir: str | Path, label_dir: str | Path, palette: Palette, size: int, *,
               max_images: int | None = None) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Photos (N, size, size, 3) uint8 and their label maps as palette indices (N, size, size) int64,
    paired by file name (`metrics.paired.matched_files`), and the names of photos without a label map.

    Raises:
        DataError: a folder is missing or empty, or an image cannot be read.
        ValueError: no file name matches.
    """
    pairs, unmatched = matched_files(photo_dir, label_dir, max_images=max_images)
    photos, labels = [], []
    for photo, label in pairs:
        img, lab = load_image(photo), load_image(label)
        if img.size != (size, size):
            img = img.resize((size, size), Image.BILINEAR)
        if lab.size != (size, size):
            lab = lab.resize((size, size), Image.NEAREST)
        photos.append(np.asarray(img))
        labels.append(colours_to_labels(np.asarray(lab), palette))
    return np.stack(photos), np.stack(labels), unmatched


def photos_to_tensor(photos: np.ndarray) -> torch.Tensor:
    """(N, H, W, 3) uint8 -> (N, 3, H, W) float32 in [-1, 1] (as `data.image_io.to_tensor`)."""
    return torch.from_numpy(photos).permute(0, 3, 1, 2).float().div(255).sub(0.5).div(0.5)


@torch.no_grad()
def predict(scorer: Scorer, photos: np.ndarray, device: torch.device | str = "cpu") -> np.ndarray:
    """(N, H, W) palette indices of the scorer's classes for (N, H, W, 3) uint8 photos."""
    net = scorer.net.to(device).eval()
    to_palette = np.array(scorer.palette.scored)
    out = []
    for start in range(0, len(photos), BATCH_SIZE):
        logits = net(photos_to_tensor(photos[start:start + BATCH_SIZE]).to(device))
        out.append(to_palette[logits.argmax(1).cpu().numpy()])
    return np.concatenate(out)


def score_pairs(scorer: Scorer, photos: np.ndarray, labels: np.ndarray,
                device: torch.device | str = "cpu") -> SegmentationScores:
    """The scores of the scorer's classes on `photos` against `labels` (palette indices)."""
    n = scorer.palette.unmapped + 1
    hist = confusion_matrix(labels, predict(scorer, photos, device), n)
    return scores_from_confusion(hist, scorer.palette, len(photos))


def fcn_score(fake_dir: str | Path, label_dir: str | Path, scorer: str | Path | Scorer,
              device: torch.device | str = "cpu", *, max_images: int | None = None) -> SegmentationScores:
    """The FCN-score of the photos in `fake_dir` against the label maps of the same names in `label_dir`.

    Raises:
        ValueError: the scorer file is unusable, or no file name matches (DataError: unreadable images).
    """
    scorer = scorer if isinstance(scorer, Scorer) else load_scorer(scorer)
    photos, labels, _ = load_pairs(fake_dir, label_dir, scorer.palette, scorer.config.size, max_images=max_images)
    return score_pairs(scorer, photos, labels, device)
