"""Segmentation metrics for photo -> labels (paper Sec. 5.1.2, Tables 2-3 and 5's "photo->labels"),
and for the FCN-score of labels -> photo (Sec. 5.1.1; the class maps come from `cyclegan.scorer`).

Each pixel of a generated label image and of its ground truth is mapped to a palette class
(`metrics.palette.colours_to_labels`). The scores are those of the FCN evaluation that the pix2pix
and CycleGAN papers use (Long et al. 2015), from one confusion matrix over the whole set, over the
palette's scored classes:

- pixels whose ground truth is void (a void class, or unmapped) are ignored, as the Cityscapes
  protocol does;
- pixels *predicted* void (a void class, or unmapped) are wrong: they count in the pixel total and
  as a false negative of their true class;
- per-pixel accuracy = Σ correct / Σ pixels;
- per-class accuracy of a class = correct / its ground-truth pixels; class IoU = correct /
  (ground truth + predicted - correct).

Two averagings of the per-class numbers are reported, each with its label:
- `PRESENT`, "mean over present classes": per-class accuracy over the classes present in the ground
  truth, IoU over the classes present in the ground truth or the prediction;
- "mean over all K classes" (`*_all`): every scored class of the palette, a class absent from both
  counting as 0, as pix2pix's `get_scores` (scripts/eval_cityscapes/util.py, its 1e-12 denominators)
  and GcGAN's Cityscapes script do. This is the averaging of the published FCN-scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..data.image_io import load_image
from .paired import matched_files
from .palette import CITYSCAPES, Palette, colours_to_labels

PRESENT = "mean over present classes"


def all_classes(count: int) -> str:
    """The label of the averaging over every scored class of a palette."""
    return f"mean over all {count} classes"


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, num_labels: int) -> np.ndarray:
    """(L, L) counts of label indices 0..L-1, rows = ground truth, columns = prediction. For a palette,
    `num_labels = palette.unmapped + 1` (its classes and the unmapped index)."""
    index = truth.reshape(-1).astype(np.int64) * num_labels + predicted.reshape(-1)
    return np.bincount(index, minlength=num_labels**2).reshape(num_labels, num_labels)


@dataclass(frozen=True)
class SegmentationScores:
    """Scores over a set; `class_accuracy` and `mean_iou` are means over present classes (`PRESENT`),
    `class_accuracy_all` and `mean_iou_all` over all `classes` scored classes (absent ones as 0)."""

    pixel_accuracy: float
    class_accuracy: float
    mean_iou: float
    class_accuracy_all: float
    mean_iou_all: float
    per_class_accuracy: dict[str, float]  # NaN for a class absent from the ground truth
    per_class_iou: dict[str, float]  # NaN for a class absent from both ground truth and prediction
    classes: int
    images: int

    @property
    def averaging(self) -> dict[str, str]:
        """What each averaged score is a mean over."""
        return {"class_accuracy": PRESENT, "mean_iou": PRESENT,
                "class_accuracy_all": all_classes(self.classes), "mean_iou_all": all_classes(self.classes)}

    def rows(self) -> list[tuple[str, float]]:
        """(label, value) for a table; the labels say the averaging."""
        rows = [("per-pixel accuracy", self.pixel_accuracy),
                (f"per-class accuracy ({PRESENT})", self.class_accuracy),
                (f"per-class accuracy ({all_classes(self.classes)})", self.class_accuracy_all),
                (f"class IoU ({PRESENT})", self.mean_iou),
                (f"class IoU ({all_classes(self.classes)})", self.mean_iou_all)]
        return rows + [(f"IoU {name}", v) for name, v in self.per_class_iou.items()]

    def as_dict(self) -> dict[str, object]:
        def plain(d: dict[str, float]) -> dict[str, float | None]:
            return {k: (None if np.isnan(v) else v) for k, v in d.items()}

        return {
            "pixel_accuracy": self.pixel_accuracy, "class_accuracy": self.class_accuracy,
            "mean_iou": self.mean_iou, "class_accuracy_all": self.class_accuracy_all,
            "mean_iou_all": self.mean_iou_all, "averaging": self.averaging, "classes": self.classes,
            "images": self.images, "per_class_accuracy": plain(self.per_class_accuracy),
            "per_class_iou": plain(self.per_class_iou),
        }

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> SegmentationScores:
        """The inverse of `as_dict` (None back to NaN)."""
        def floats(m: object) -> dict[str, float]:
            return {k: float("nan") if v is None else float(v) for k, v in dict(m).items()}  # type: ignore[call-overload]

        fields = ("pixel_accuracy", "class_accuracy", "mean_iou", "class_accuracy_all", "mean_iou_all")
        return cls(**{k: float(d[k]) for k in fields}, per_class_accuracy=floats(d["per_class_accuracy"]),  # type: ignore[arg-type]
                   per_class_iou=floats(d["per_class_iou"]), classes=int(d["classes"]), images=int(d["images"]))  # type: ignore[call-overload]


def _mean(values: np.ndarray) -> float:
    return float(np.nanmean(values)) if np.isfinite(values).any() else float("nan")


def scores_from_confusion(hist: np.ndarray, palette: Palette, images: int) -> SegmentationScores:
    """The scores of a `confusion_matrix` over `palette`'s labels (classes, then unmapped)."""
    keep = palette.scored
    rows = hist[keep].astype(np.float64)  # (S, L): void ground truth dropped, every prediction kept
    correct = rows[np.arange(len(keep)), keep]
    truth = rows.sum(1)  # predictions of a void class or unmapped count here: false negatives
    predicted = rows[:, keep].sum(0)
    with np.errstate(divide="ignore", invalid="ignore"):
        class_acc = correct / truth
        iou = correct / (truth + predicted - correct)
    total = truth.sum()
    names = [palette.names[k] for k in keep]
    return SegmentationScores(
        pixel_accuracy=float(correct.sum() / total) if total else float("nan"),
        class_accuracy=_mean(class_acc),
        mean_iou=_mean(iou),
        class_accuracy_all=float(np.nan_to_num(class_acc).mean()),
        mean_iou_all=float(np.nan_to_num(iou).mean()),
        per_class_accuracy=dict(zip(names, class_acc.tolist())),
        per_class_iou=dict(zip(names, iou.tolist())),
        classes=len(keep),
        images=images,
    )


def segmentation_scores(
    predictions: Sequence[np.ndarray], truths: Sequence[np.ndarray], palette: Palette = CITYSCAPES,
) -> SegmentationScores:
    """Score RGB label images (uint8, (H, W, 3)) against RGB ground truth of the same size."""
    n = palette.unmapped + 1
    hist = np.zeros((n, n), dtype=np.int64)
    for pred, truth in zip(predictions, truths, strict=True):
        hist += confusion_matrix(colours_to_labels(truth, palette), colours_to_labels(pred, palette), n)
    return scores_from_confusion(hist, palette, len(predictions))


def segmentation_metrics(
    fake_dir: str | Path, real_dir: str | Path, palette: Palette = CITYSCAPES, *, max_images: int | None = None,
) -> SegmentationScores:
    """Score the label images in `fake_dir` against those of the same name (any suffix) in `real_dir`.

    A prediction of another size than its ground truth is resized to it (nearest neighbour, so no
    new colours appear) before the colours are mapped.
    """
    pairs = matched_files(fake_dir, real_dir, max_images=max_images)[0]
    n = palette.unmapped + 1
    hist = np.zeros((n, n), dtype=np.int64)
    for fake, real in pairs:
        truth = load_image(real)
        pred = load_image(fake)
        if pred.size != truth.size:
            pred = pred.resize(truth.size, Image.NEAREST)
        hist += confusion_matrix(colours_to_labels(np.asarray(truth), palette),
                                 colours_to_labels(np.asarray(pred), palette), n)
    return scores_from_confusion(hist, palette, len(pairs))
