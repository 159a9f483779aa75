"""How `reproduce` scores a run: its final and validation-selected checkpoints on the test split,
under a test-time protocol, with segmentation (photo -> labels) and FCN-score (labels -> photo)
columns when asked, cached in the run dir by checkpoint step and scoring.

Imports of torch-based modules are inside the functions: the CLI's --help imports this module.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text


@dataclass(frozen=True)
class Scoring:
    """How `reproduce` scores a checkpoint: test images, label palettes, the FCN scorer, the protocol."""

    max_test: int | None = None
    segmentation: str | None = None  # palette of photo -> labels (A -> B)
    fcn: Any = None  # a loaded `scorer.Scorer`, for labels -> photo
    protocol: str = "full"
    eval_mode: bool = False

    def key(self) -> dict[str, Any]:
        """What the cached scores of a checkpoint depend on, besides the checkpoint."""
        return {"max_test": self.max_test, "segmentation": self.segmentation,
                "fcn_score": self.fcn.fingerprint if self.fcn is not None else None,
                **({"protocol": self.protocol, "eval_mode": self.eval_mode} if self.protocol != "full" else {})}

    def header(self) -> dict[str, Any]:
        """What results.json says about the scoring."""
        fcn = None
        if self.fcn is not None:
            fcn = {"file": str(self.fcn.path), "direction": self.fcn.direction, "palette": self.fcn.scorer.palette.name,
                   "size": self.fcn.scorer.config.size,
                   "real_scores": self.fcn.scorer.real_scores.as_dict() if self.fcn.scorer.real_scores else None}
        return {"protocol": {"name": self.protocol, "eval_mode": self.eval_mode}, "segmentation": self.segmentation,
                "fcn_score": fcn}

    def notes(self) -> list[str]:
        """Lines under the tables: the protocol, and the scorer's own scores on real photos."""
        mode = "eval" if self.eval_mode else "train"
        lines = ["Test-time protocol: " + ("full (every test image at its own size, networks in eval mode)"
                                           if self.protocol == "full" else
                                           f"official (as test.py: resized to each run's crop size, {mode} mode)")]
        if self.fcn is not None and self.fcn.scorer.real_scores is not None:
            r = self.fcn.scorer.real_scores
            lines.append(f"FCN-score of the real test photos (the scorer's own ceiling): per-pixel {r.pixel_accuracy:.3f}, "
                         f"per-class {r.class_accuracy_all:.3f}, class IoU {r.mean_iou_all:.3f} (means over all "
                         f"{r.classes} classes)")
        return lines


@dataclass(frozen=True)
class _FcnScorer:
    path: Path
    scorer: Any  # scorer.Scorer
    direction: str  # labels -> photo: BtoA when the scorer's photos are domain A
    fingerprint: str


def fcn_scorer_file(path: str | Path) -> _FcnScorer:
    """A scorer file loaded for `reproduce --fcn-score`: its direction (labels -> photo) and fingerprint."""
    from ..scorer import load_scorer

    path = Path(path)
    scorer = load_scorer(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    return _FcnScorer(path, scorer, "BtoA" if scorer.config.photos == "A" else "AtoB", digest)


def checkpoint_scores(run_dir: Path, data: Path, scoring: Scoring, device: str | None) -> dict[str, Any]:
    """{"final": scores of the last checkpoint, "selected": those of the validation-selected one
    (None if the run kept none) and "selected_epoch"}, cached in `run_dir/reproduce_scores.json` by
    checkpoint step and scoring."""
    from ..checkpoint import load_checkpoint
    from ..evaluation import selected_checkpoint

    cache_file = run_dir / "reproduce_scores.json"
    cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    out: dict[str, Any] = {"final": None, "selected": None, "selected_epoch": None}
    best = selected_checkpoint(run_dir)
    for kind, checkpoint in (("final", run_dir / "checkpoints" / "latest.pt"), ("selected", best)):
        if checkpoint is None:
            continue
        progress = load_checkpoint(checkpoint)["progress"]
        key = {"step": progress["step"], **scoring.key()}
        cached = cache.get(kind)
        if kind == "selected" and cache.get("final", {}).get("key") == key:  # best.pt is the final checkpoint
            cached = cache["final"]
        if not (isinstance(cached, dict) and cached.get("key") == key):
            scores = _scores_of(checkpoint, run_dir / f"test_{kind}", data, scoring, device)
            cached = cache[kind] = {"key": key, "scores": scores}
            atomic_write_text(cache_file, json.dumps(cache) + "\n")
        out[kind] = cached["scores"]
        if kind == "selected":
            out["selected_epoch"] = int(progress["epoch"]) - 1
    return out


def _scores_of(checkpoint: Path, fakes: Path, data: Path, scoring: Scoring, device: str | None) -> dict[str, float]:
    from ..evaluation import evaluate_checkpoint
    from ..metrics.palette import palette_by_name
    from ..metrics.segmentation import segmentation_metrics
    from ..scorer import fcn_score

    device = device or "cpu"
    scores, _ = evaluate_checkpoint(checkpoint, data=data, device=device, max_images=scoring.max_test,
                                    protocol=scoring.protocol, eval_mode=scoring.eval_mode)
    learned = {k.split(".")[0] for k in scores}
    if scoring.segmentation and "AtoB" in learned:  # photo -> labels
        out = _translate_split(checkpoint, "AtoB", data / "testA", fakes / "AtoB", scoring, device)
        s = segmentation_metrics(out, data / "testB", palette_by_name(scoring.segmentation))
        scores.update(_prefixed("AtoB.", s))
    fcn = scoring.fcn
    if fcn is not None and fcn.direction in learned:  # labels -> photo, segmented by the scorer
        labels = data / ("testB" if fcn.direction == "BtoA" else "testA")
        out = _translate_split(checkpoint, fcn.direction, labels, fakes / fcn.direction, scoring, device)
        scores.update(_prefixed(f"{fcn.direction}.fcn_", fcn_score(out, labels, fcn.scorer, device)))
    return scores


def _translate_split(checkpoint: Path, direction: str, source: Path, out: Path, scoring: Scoring,
                     device: str) -> Path:
    """Translate the first `max_test` images of `source` into `out` (emptied first) under the
    scoring's protocol."""
    from ..data.image_io import find_images
    from ..inference import Protocol, load_translation, translate_paths

    loaded = load_translation(checkpoint, direction, device, reverse=False)  # any method's (CoGAN: latent search)
    protocol = Protocol.named(scoring.protocol, crop_size=loaded.crop_size, eval_mode=scoring.eval_mode)
    shutil.rmtree(out, ignore_errors=True)  # no outputs of an earlier scoring with more images
    translate_paths(loaded.generator, find_images(source, max_count=scoring.max_test), out, protocol=protocol,
                    progress=False)
    return out


def _prefixed(prefix: str, s: Any) -> dict[str, float]:
    """The averaged scores of a `SegmentationScores` under `prefix`."""
    return {f"{prefix}{k}": getattr(s, k) for k in
            ("pixel_accuracy", "class_accuracy", "mean_iou", "class_accuracy_all", "mean_iou_all")}


