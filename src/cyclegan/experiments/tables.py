"""`reproduce`'s tables: per variant and checkpoint kind the mean ± std over seeds, as markdown."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from typing import Any


def summary_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per variant (in order) and checkpoint kind ("final", then "selected"): the mean of every
    score over its seeds, `<score>.std` (sample standard deviation; 0 for one seed), `n` and `seeds`
    (and `epochs`, the selected checkpoints' epochs)."""
    rows = []
    for kind in ("final", "selected"):
        for name in dict.fromkeys(r["variant"] for r in records):
            runs = [r for r in records if r["variant"] == name and r[kind] is not None]
            if not runs:
                continue
            row: dict[str, Any] = {"variant": name, "checkpoint": kind, "n": len(runs), "seeds": [r["seed"] for r in runs]}
            if kind == "selected":
                row["epochs"] = [r["selected_epoch"] for r in runs]
            for key in dict.fromkeys(k for r in runs for k in r[kind]):
                values = [float(r[kind][key]) for r in runs if key in r[kind]]
                row[key] = statistics.fmean(values)
                row[f"{key}.std"] = statistics.stdev(values) if len(values) > 1 else 0.0
            rows.append(row)
    return rows


COLUMNS = [  # (key, header, as percent)
    ("AtoB.rmse", "A→B RMSE ↓", False), ("AtoB.acc@5", "A→B acc δ=5 ↑", True), ("AtoB.acc@10", "A→B acc δ=10 ↑", True),
    ("AtoB.pixel_accuracy", "per-pixel acc. ↑", False),
    ("AtoB.class_accuracy", "per-class acc. (mean over present classes) ↑", False),
    ("AtoB.class_accuracy_all", "per-class acc. (mean over all classes) ↑", False),
    ("AtoB.mean_iou", "class IoU (mean over present classes) ↑", False),
    ("AtoB.mean_iou_all", "class IoU (mean over all classes) ↑", False),
    ("BtoA.fcn_pixel_accuracy", "B→A FCN per-pixel acc. ↑", False),
    ("BtoA.fcn_class_accuracy", "B→A FCN per-class acc. (mean over present classes) ↑", False),
    ("BtoA.fcn_class_accuracy_all", "B→A FCN per-class acc. (mean over all classes) ↑", False),
    ("BtoA.fcn_mean_iou", "B→A FCN class IoU (mean over present classes) ↑", False),
    ("BtoA.fcn_mean_iou_all", "B→A FCN class IoU (mean over all classes) ↑", False),
    ("AtoB.l1", "A→B L1 ↓", False), ("AtoB.ssim", "A→B SSIM ↑", False),
    ("BtoA.l1", "B→A L1 ↓", False), ("BtoA.ssim", "B→A SSIM ↑", False),
    ("AtoB.cycle_l1", "A→B→A L1 ↓", False), ("BtoA.cycle_l1", "B→A→B L1 ↓", False),
]


def markdown_table(rows: list[dict[str, Any]], *, notes: Sequence[str] = ()) -> str:
    """The rows as markdown: a table of the final checkpoints and, when some run kept one, a table of
    the validation-selected checkpoints, with the columns that some row has ("—" where a row has
    none: pix2pix learns one direction and has no cycle). Over several seeds a cell is mean ± std.
    `notes` (e.g. the test-time protocol) follow the tables."""
    parts = []
    for kind in ("final", "selected"):
        group = [r for r in rows if r.get("checkpoint", "final") == kind]
        if not group:
            continue
        if kind == "selected":
            parts.append("Checkpoints selected on the validation split (best.pt), scored on the test split:")
        parts.append(_table(group, epochs=kind == "selected"))
        ns = {r.get("n", 1) for r in group}
        if ns != {1}:
            seeds = sorted({s for r in group for s in r.get("seeds", [])})
            parts.append(f"mean ± sample std over seeds {', '.join(map(str, seeds))} (n = "
                         f"{'/'.join(map(str, sorted(ns)))} per variant)")
    return "\n\n".join([*parts, *notes])


def _table(rows: list[dict[str, Any]], *, epochs: bool) -> str:
    cols = [c for c in COLUMNS if any(c[0] in r for r in rows)]
    extra = ["epoch"] if epochs else []
    lines = ["| variant | " + " | ".join([*extra, *(h for _, h, _ in cols)]) + " |",
             "|---" * (len(cols) + len(extra) + 1) + "|"]
    for r in rows:
        cells = [", ".join(map(str, r.get("epochs", [])))] if epochs else []
        for key, _, pct in cols:
            if key not in r:
                cells.append("—")
                continue
            scale, unit = (100, " %") if pct else (1, "")
            mean, std = scale * r[key], scale * r.get(f"{key}.std", 0.0)
            digits = 1 if pct else 3 if abs(mean) < 1 else 2
            spread = f" ± {std:.{digits}f}" if r.get("n", 1) > 1 else ""
            cells.append(f"{mean:.{digits}f}{spread}{unit}")
        lines.append(f"| {r['variant']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
