"""The web app: `create_app(...)` wires the translate, dashboard and study routes into one FastAPI app."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.trustedhost import TrustedHostMiddleware

from ..checkpoint import CheckpointError
from .dashboard import dashboard_router
from .security import BodyLimitMiddleware, Limits, SecurityMiddleware, UploadError, new_token
from .sources import ModelCache, Source, parse_sources
from .translate_routes import translate_router

STATIC = Path(__file__).resolve().parent / "static"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")

# Pages load scripts, styles and images from this server only (no inline script: an injected string
# cannot run); blob: for the translated image shown from memory; no framing; no referrer (participant
# tokens are in URLs).
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; "
                               "script-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
}


def create_app(
    sources: Sequence[str | Source] = (),
    *,
    study: str | Path | None = None,
    admin_token: str | None = None,
    limits: Limits | None = None,
    test_images: Sequence[str | Path] = (),
    device: str | torch.device = "cpu",
    tile: int = 512,
    allowed_hosts: Sequence[str] | None = None,
) -> FastAPI:
    """The app for run dirs / generator files / pretrained names `sources` and an optional study file.

    Args:
        study: a study YAML file (see `cyclegan.serve.study.spec`); its answers go to its database.
        admin_token: the study admin token (default: a new random one, in `app.state.admin_token`).
        limits: upload size and image pixel limits (default `Limits()`: 20 MB, 36 M pixels).
        test_images: extra folders of images offered on the translate page for every model.
        tile: images larger than this (a side) are translated in tiles.
        allowed_hosts: Host headers to accept (the server's own names: this stops DNS rebinding);
            None accepts any.
    """
    limits = limits or Limits()
    parsed = [s for s in sources if isinstance(s, Source)] or parse_sources([str(s) for s in sources])
    app = FastAPI(title="cyclegan", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.sources = parsed
    app.state.cache = ModelCache(device=device, tile=tile)
    app.state.limits = limits
    app.state.admin_token = admin_token or new_token()
    app.state.study = None

    app.include_router(translate_router(parsed, app.state.cache, limits, [Path(p) for p in test_images]))
    app.include_router(dashboard_router([s for s in parsed if s.is_run]))
    if study is not None:
        from .study import StudyStore, load_study
        from .study.routes import study_router

        store = StudyStore(load_study(study))
        app.state.study = store
        app.include_router(study_router(store, app.state.admin_token))

    @app.get("/api/info")
    def info() -> dict:
        return {"models": len(parsed), "runs": sum(s.is_run for s in parsed), "study": app.state.study is not None,
                "max_upload_bytes": limits.max_upload_bytes, "max_pixels": limits.max_pixels}

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    app.add_middleware(SecurityMiddleware, headers=SECURITY_HEADERS)
    app.add_middleware(BodyLimitMiddleware, max_bytes=limits.max_upload_bytes + 64 * 1024)  # + form overhead
    if allowed_hosts is not None:
        app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts))

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"detail": message}, status_code=status)

    @app.exception_handler(UploadError)
    async def upload_error(request: Request, e: UploadError) -> JSONResponse:
        return error(e.status, e.message)

    @app.exception_handler(CheckpointError)
    async def checkpoint_error(request: Request, e: CheckpointError) -> JSONResponse:
        return error(409, str(e))

    @app.exception_handler(ValueError)  # DataError included: a bad image or an impossible request
    async def value_error(request: Request, e: ValueError) -> JSONResponse:
        return error(400, str(e))

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, e: StarletteHTTPException) -> JSONResponse:
        response = error(e.status_code, str(e.detail))
        for k, v in (e.headers or {}).items():  # Retry-After of a busy server
            response.headers[k] = v
        return response

    return app
