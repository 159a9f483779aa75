"""Segmentation metrics for photo -> labels (paper Sec. 5.1.2, Tables 2-3 and 5's "photo->labels").

A generated label image is an RGB picture; each pixel is mapped to the nearest colour of a palette
(the Cityscapes palette is built in; any other comes from a file). The ground-truth label images are
mapped the same way (they are resized JPEG/PNG colour images in the CycleGAN datasets), and pixels
whose ground truth is a void class are ignored. The scores are those of the FCN evaluation that the
pix2pix and CycleGAN papers use (Long et al. 2015), from one confusion matrix over the whole set:

- per-pixel accuracy = Σ correct / Σ pixels;
- per-class accuracy = mean over classes present in the ground truth of correct / class pixels;
- mean class IoU = mean over classes present in the ground truth or the prediction of
  correct / (ground truth + predicted - correct).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.image_io import load_image
from .paired import matched_files


@dataclass(frozen=True)
class Palette:
    """Class names and their RGB colours; classes in `void` are ignored in the ground truth."""

    names: tuple[str, ...]
    colours: np.ndarray  # (K, 3) uint8
    void: tuple[str, ...] = ()

    @property
    def scored(self) -> list[int]:
        """Indices of the classes that are scored (not void)."""
        return [i for i, n in enumerate(self.names) if n not in self.void]

    @classmethod
    def from_file(cls, path: str | Path) -> Palette:
        """Read a palette file: one class per line, `name R G B` (0-255); `#` starts a comment; a
        name ending in `*` is a void class (e.g. `unlabeled* 0 0 0`)."""
        names, colours, void = [], [], []
        for number, line in enumerate(Path(path).read_text().splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.rsplit(maxsplit=3)
            try:
                rgb = [int(v) for v in parts[1:]]
                if len(parts) != 4 or not all(0 <= v <= 255 for v in rgb):
                    raise ValueError
            except ValueError:
                raise ValueError(f"{path}, line {number}: expected `name R G B` with values 0-255, got {line!r}") from None
            name = parts[0]
            if name.endswith("*"):
                name = name[:-1]
                void.append(name)
            names.append(name)
            colours.append(rgb)
        if len(names) - len(void) < 1:
            raise ValueError(f"{path} defines no scored class; write one `name R G B` line per class")
        if len(set(names)) != len(names):
            raise ValueError(f"{path} names a class twice")
        return cls(tuple(names), np.array(colours, dtype=np.uint8), tuple(void))


# The 19 Cityscapes training classes with their official colours (cityscapesScripts `labels.py`),
# plus `void` (black) for every pixel the benchmark ignores.
CITYSCAPES = Palette(
    names=("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
           "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
           "bicycle", "void"),
    colours=np.array([
        (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
        (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
        (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
        (0, 0, 0),
    ], dtype=np.uint8),
    void=("void",),
)


def colours_to_labels(image: np.ndarray, palette: Palette) -> np.ndarray:
    """(H, W) class indices of the nearest palette colour (Euclidean in RGB) to each pixel of an
    (H, W, 3) uint8 image."""
    flat = np.asarray(image, dtype=np.int32).reshape(-1, 3)
    colours = palette.colours.astype(np.int32)
    # Distances through the unique colours: a label image has few, so this stays small.
    unique, inverse = np.unique(flat, axis=0, return_inverse=True)
    nearest = ((unique[:, None, :] - colours[None]) ** 2).sum(-1).argmin(1)
    return nearest[inverse.reshape(-1)].reshape(image.shape[:2])


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """(K, K) counts, rows = ground-truth class, columns = predicted class."""
    index = truth.reshape(-1).astype(np.int64) * num_classes + predicted.reshape(-1)
    return np.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)


@dataclass
class SegmentationScores:
    pixel_accuracy: float
    class_accuracy: float
    mean_iou: float
    per_class_iou: dict[str, float]  # NaN for a class absent from both ground truth and prediction
    images: int

    def as_dict(self) -> dict[str, object]:
        return {
            "pixel_accuracy": self.pixel_accuracy, "class_accuracy": self.class_accuracy,
            "mean_iou": self.mean_iou, "images": self.images,
            "per_class_iou": {k: (None if np.isnan(v) else v) for k, v in self.per_class_iou.items()},
        }


def scores_from_confusion(hist: np.ndarray, palette: Palette, images: int) -> SegmentationScores:
    """Pixel accuracy, class accuracy and mean IoU over the scored (non-void) classes."""
    keep = palette.scored
    hist = hist[np.ix_(keep, keep)].astype(np.float64)  # void ground truth dropped; void predictions count as wrong
    correct = np.diag(hist)
    truth, predicted = hist.sum(1), hist.sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        class_acc = correct / truth
        iou = correct / (truth + predicted - correct)
    total = truth.sum()
    return SegmentationScores(
        pixel_accuracy=float(correct.sum() / total) if total else float("nan"),
        class_accuracy=float(np.nanmean(class_acc)) if np.isfinite(class_acc).any() else float("nan"),
        mean_iou=float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan"),
        per_class_iou={palette.names[k]: float(v) for k, v in zip(keep, iou)},
        images=images,
    )


def segmentation_scores(
    predictions: Sequence[np.ndarray], truths: Sequence[np.ndarray], palette: Palette = CITYSCAPES,
) -> SegmentationScores:
    """Score RGB label images (uint8, (H, W, 3)) against RGB ground truth of the same size."""
    k = len(palette.names)
    hist = np.zeros((k, k), dtype=np.int64)
    for pred, truth in zip(predictions, truths, strict=True):
        hist += confusion_matrix(colours_to_labels(truth, palette), colours_to_labels(pred, palette), k)
    return scores_from_confusion(hist, palette, len(predictions))


def segmentation_metrics(
    fake_dir: str | Path, real_dir: str | Path, palette: Palette = CITYSCAPES, *, max_images: int | None = None,
) -> SegmentationScores:
    """Score the label images in `fake_dir` against those of the same name (any suffix) in `real_dir`.

    A prediction of another size than its ground truth is resized to it (nearest neighbour, so no
    new colours appear) before the colours are mapped.
    """
    pairs = matched_files(fake_dir, real_dir, max_images=max_images)[0]
    k = len(palette.names)
    hist = np.zeros((k, k), dtype=np.int64)
    for fake, real in pairs:
        truth = load_image(real)
        pred = load_image(fake)
        if pred.size != truth.size:
            pred = pred.resize(truth.size, Image.NEAREST)
        hist += confusion_matrix(colours_to_labels(np.asarray(truth), palette),
                                 colours_to_labels(np.asarray(pred), palette), k)
    return scores_from_confusion(hist, palette, len(pairs))
