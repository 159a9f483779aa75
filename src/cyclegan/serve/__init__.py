"""`cyclegan serve`: a local web app to translate images in the browser, watch training runs, and run
the papers' real-vs-fake perceptual study. Needs the `serve` extra (FastAPI, uvicorn, python-multipart).

- `app`: `create_app(...)`, which wires the pieces together;
- `translate_routes`, `dashboard`, `study/`: the three pages' routes (and, for the study, its SQLite
  store and statistics, which need no FastAPI);
- `sources`: run dirs, generator files and pretrained names, and the model cache;
- `security`: upload and pixel limits, safe paths, tokens;
- `static/`: the pages (plain HTML, CSS and JavaScript; no build step, no external assets).
"""

from __future__ import annotations

from typing import Any


def create_app(*args: Any, **kwargs: Any):
    """`cyclegan.serve.app.create_app` (imported on call, so that importing this package needs no FastAPI)."""
    from .app import create_app as _create_app  # lazy: FastAPI is an optional dependency

    return _create_app(*args, **kwargs)
