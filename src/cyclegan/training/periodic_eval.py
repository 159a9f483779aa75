"""Evaluation during training: every `eval.every_epochs` epochs (and after the last one), score the
generators on the split of `eval.split`, append the scores to `evals.jsonl`, and, on a validation
split, keep the best checkpoint as `checkpoints/best.pt` (by `eval.best_metric`). On the test split
the scores are only logged: a checkpoint picked on the test set has an optimistic test score. The
failure detectors (`metrics.failures`) add plain-language warnings to each record and to the log.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

from ..atomic import atomic_write_text
from ..config import EvalConfig
from ..data.image_io import DataError
from ..data.splits import Split
from ..evaluation import default_metric, evaluate_model, is_better, metric_value
from ..metrics.failures import failure_warnings
from ..metrics.paired import PAIRED_METRICS
from ..report import read_losses
from ..weights import load_fid_inception
from .loggers import Logger

logger = logging.getLogger(__name__)

EVALS_FILE = "evals.jsonl"


def truncate_jsonl(path: Path, step: int) -> None:
    """Drop the JSON lines of `path` whose `step` is past `step` (written after the checkpoint a
    resume starts from) and lines cut short by a crash; rewritten atomically."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError, TypeError):
            continue
    atomic_write_text(path, "".join(line + "\n" for line in kept))


def append_eval(run_dir: str | Path, record: dict[str, Any]) -> None:
    """Add one evaluation record to the run's `evals.jsonl`."""
    with (Path(run_dir) / EVALS_FILE).open("a") as f:
        f.write(json.dumps(record) + "\n")


def check_split(cfg: EvalConfig, split: Split) -> None:
    """A DataError if `eval.best_metric` needs pairs and `split` has none (every rank checks it
    before training, so none waits for a rank that failed)."""
    if cfg.best_metric.rpartition(".")[2] in PAIRED_METRICS and not split.paired:
        raise DataError(f"eval.best_metric={cfg.best_metric} compares translations with their pairs, and the "
                        f"{split.name} split ({split.describe()}) has no pair (the same name in A and B)")


class PeriodicEvaluation:
    """Decides when to evaluate, runs the evaluation, logs it, and says whether it is the best yet."""

    def __init__(self, cfg: EvalConfig, split: Split, run_dir: Path, *, channels_a: int, channels_b: int,
                 device: Any) -> None:
        self.cfg, self.split, self.run_dir = cfg, split, run_dir
        check_split(cfg, split)
        self.kwargs: dict[str, Any] = dict(channels_a=channels_a, channels_b=channels_b, max_images=cfg.max_images)
        if cfg.fid:
            self.kwargs["feature_model"] = load_fid_inception(cfg.inception_weights).to(device)

    def due(self, completed_epoch: int, total_epochs: int) -> bool:
        every = self.cfg.every_epochs
        return bool(every) and (completed_epoch % every == 0 or completed_epoch == total_epochs)

    def __call__(self, model: Any, *, epoch: int, step: int, best: float | None,
                 loggers: Logger | None = None) -> tuple[float, bool]:
        """Evaluate (the scores also go to `loggers` as `eval/NAME`); returns (value of the best
        metric, whether it beats `best`: never on the test split)."""
        t0 = time.perf_counter()
        scores = evaluate_model(model, self.split, **self.kwargs)
        name = default_metric(scores) if self.cfg.best_metric == "auto" else self.cfg.best_metric
        value = metric_value(scores, name)
        improved = self.split.is_validation and is_better(name)(value, best)
        warnings = failure_warnings(scores, read_losses(self.run_dir / "losses.jsonl"))
        record = {"step": step, "epoch": epoch, "split": self.split.name, "seconds": round(time.perf_counter() - t0, 2),
                  **scores, "metric": name, "value": value, "best": improved, "warnings": warnings}
        append_eval(self.run_dir, record)
        if loggers is not None:
            loggers.scalars({f"eval/{k}": float(v) for k, v in scores.items() if isinstance(v, (int, float))}, step)
        for warning in warnings:
            logger.warning("epoch %d: %s", epoch, warning)
        note = " (best so far)" if improved else "" if self.split.is_validation else " (test split: logged only)"
        logger.info("epoch %d evaluation on the %s split: %s = %.4g%s", epoch, self.split.name, name, value, note)
        return value, improved
