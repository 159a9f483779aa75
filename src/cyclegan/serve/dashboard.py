"""Training dashboard: what a run dir says about its training, as JSON, and the routes that serve it.

Read on every poll, so it follows a training running in another process: `losses.jsonl` (a line
being written is skipped), `samples/step_*.png`, `config.yaml`, `evals.jsonl` and the checkpoint's
time. Speed is `1 / sec_per_step` of the last log line (LossLog's average over its interval).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import yaml
from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, JSONResponse

from ..report import SAMPLE_NAME, loss_names, read_losses, sample_grids
from .security import UploadError, safe_path
from .sources import Source

NOT_LOSSES = ("sec_per_step",)
STATIC = Path(__file__).resolve().parent / "static"


def _thin(n: int, max_points: int) -> list[int]:
    """Indices of at most about `max_points` of n points, evenly spaced, always keeping the last."""
    stride = max(1, math.ceil(n / max_points))
    keep = list(range(0, n, stride))
    if n and keep[-1] != n - 1:
        keep.append(n - 1)
    return keep


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) else None


def run_status(run_dir: str | Path, *, max_points: int = 1000, max_samples: int = 4) -> dict[str, Any]:
    """Progress, loss curves (thinned to `max_points`), newest sample grids, config and evaluations."""
    run_dir = Path(run_dir)
    records = [r for r in read_losses(run_dir / "losses.jsonl") if _number(r.get("step")) is not None]
    names = [n for n in loss_names(records) if n not in NOT_LOSSES]
    keep = _thin(len(records), max_points)
    losses = {
        "step": [records[i]["step"] for i in keep],
        "series": {n: [_number(records[i].get(n)) for i in keep] for n in names},
    }
    last = records[-1] if records else {}
    sec = _number(last.get("sec_per_step"))
    config_file = run_dir / "config.yaml"
    config_text = config_file.read_text(encoding="utf-8", errors="replace") if config_file.is_file() else None
    planned = None
    try:
        optim = (yaml.safe_load(config_text or "") or {}).get("optim", {})
        planned = int(optim["n_epochs"]) + int(optim["n_epochs_decay"])
    except (yaml.YAMLError, AttributeError, KeyError, TypeError, ValueError):
        pass
    checkpoint = run_dir / "checkpoints" / "latest.pt"
    evals = read_losses(run_dir / "evals.jsonl")
    now = time.time()
    log_file = run_dir / "losses.jsonl"
    return {
        "name": run_dir.resolve().name,
        "progress": {
            "step": last.get("step"), "epoch": last.get("epoch"), "epochs_planned": planned, "lr": last.get("lr"),
            "sec_per_step": sec, "it_per_s": 1 / sec if sec else None, "log_lines": len(records),
            "log_age_s": now - log_file.stat().st_mtime if log_file.is_file() else None,
            "checkpoint_age_s": now - checkpoint.stat().st_mtime if checkpoint.is_file() else None,
        },
        "losses": losses,
        "samples": [{"step": step, "file": path.name} for step, path in sample_grids(run_dir)[:max_samples]],
        "evals": [{k: v for k, v in r.items() if _number(v) is not None or k == "metric"}
                  for r in evals],
        "warnings": [w for w in (evals[-1].get("warnings") or []) if isinstance(w, str)] if evals else [],
        "config": config_text,
    }


def dashboard_router(runs: list[Source]) -> APIRouter:
    router = APIRouter()
    by_id = {r.id: r for r in runs}

    def run(run_id: str) -> Source:
        if run_id not in by_id:
            raise HTTPException(404, f"no run {run_id!r}; the server shows: {', '.join(by_id) or 'none'}")
        return by_id[run_id]

    @router.get("/dashboard", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "dashboard.html")

    @router.get("/api/runs")
    def list_runs() -> list[dict]:
        return [{"id": r.id, "label": r.label} for r in runs]

    @router.get("/api/runs/{run_id}")
    def status(run_id: str) -> JSONResponse:
        source = run(run_id)
        body = run_status(source.location)
        for s in body["samples"]:
            s["url"] = f"/api/runs/{source.id}/samples/{s['file']}"
        return JSONResponse(body, headers={"Cache-Control": "no-store"})

    @router.get("/api/runs/{run_id}/samples/{name:path}")
    def sample(run_id: str, name: str) -> FileResponse:
        source = run(run_id)
        if not SAMPLE_NAME.fullmatch(name):
            raise HTTPException(404, "only sample grids (step_NNNNNNN.png) are served")
        try:
            path = safe_path(Path(source.location) / "samples", name)
        except UploadError as e:
            raise HTTPException(e.status, e.message) from None
        return FileResponse(path, media_type="image/png")

    return router
