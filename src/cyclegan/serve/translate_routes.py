"""Translate page routes: list models and their test images, translate an upload or a test image.

The result is returned as PNG (the page shows it beside the input and offers it for download); nothing
is written on the server. Large images go through the tiled path (`cyclegan.inference.tiling`).
"""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, Response

from ..data.image_io import is_image_file
from ..inference import TranslationCancelled
from .security import Limits, UploadError, decode_image, safe_path
from .sources import ModelCache, Source, test_images
from .work import WorkSlots, cancelled_when_gone

STATIC = Path(__file__).resolve().parent / "static"


def translate_router(sources: list[Source], cache: ModelCache, limits: Limits, test_dirs: list[Path]) -> APIRouter:
    router = APIRouter()
    by_id = {s.id: s for s in sources}
    slots = WorkSlots(limits.max_active, limits.max_waiting)
    extra = {}  # --test-images folders: key -> folder, keys unique
    for folder in test_dirs:
        key, n = folder.resolve().name or "images", 2
        while key in extra or key in ("testA", "testB"):
            key, n = f"{folder.resolve().name}-{n}", n + 1
        extra[key] = folder

    def source(model_id: str) -> Source:
        if model_id not in by_id:
            raise HTTPException(404, f"no model {model_id!r}; the server has: {', '.join(by_id) or 'none'}")
        return by_id[model_id]

    def direction_of(s: Source, direction: str) -> str:
        if direction not in s.directions:
            raise HTTPException(400, f"{s.label} translates {', '.join(s.directions)}; not {direction!r}")
        return direction

    def folders(s: Source, direction: str) -> dict[str, Path]:
        found = dict(extra)
        if s.is_run:
            found.update({p.name: p for d, p in cache.get(s).test_dirs.items() if d == direction})
        return found

    def test_image_path(s: Source, direction: str, name: str) -> Path:
        key, _, rest = name.partition("/")
        folder = folders(s, direction).get(key)
        if folder is None:
            raise HTTPException(404, "no such test image")
        try:
            path = safe_path(folder, rest)
        except UploadError as e:
            raise HTTPException(404, "no such test image") from e
        if not is_image_file(path):  # the test folders may hold other files: serve images only
            raise HTTPException(404, "no such test image")
        return path

    @router.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "translate.html")

    @router.get("/api/models")
    def models() -> list[dict]:
        return [{"id": s.id, "label": s.label, "kind": s.kind, "directions": list(s.directions)} for s in sources]

    @router.get("/api/models/{model_id}/test-images")
    def list_test_images(model_id: str, direction: str = "AtoB") -> dict:
        s = source(model_id)
        return {"images": test_images(folders(s, direction_of(s, direction)))}

    @router.get("/api/models/{model_id}/test-images/{direction}/{name:path}")
    def get_test_image(model_id: str, direction: str, name: str) -> FileResponse:
        s = source(model_id)
        return FileResponse(test_image_path(s, direction_of(s, direction), name))

    @router.post("/api/translate")
    async def translate(
        request: Request, model: str = Form(...), direction: str = Form("AtoB"), file: UploadFile | None = File(None),
        test_image: str | None = Form(None),
    ) -> Response:
        s = source(model)
        direction = direction_of(s, direction)
        if (file is None) == (test_image is None):
            raise HTTPException(400, "send either an image file ('file') or the name of a test image ('test_image')")
        async with slots.slot():  # 503 at once when busy; memory held only by the requests in a slot
            if file is not None:
                data = await file.read(limits.max_upload_bytes + 1)
                if len(data) > limits.max_upload_bytes:
                    raise HTTPException(413, f"the upload is larger than {limits.max_upload_bytes / 2**20:.3g} MB")
                stem, content_type = Path(file.filename or "upload").stem, file.content_type
            else:
                path = await run_in_threadpool(test_image_path, s, direction, test_image)
                data, stem, content_type = path.read_bytes(), path.stem, None
            t0 = time.perf_counter()
            channels = await run_in_threadpool(cache.channels, s, direction)
            image = await run_in_threadpool(decode_image, data, max_pixels=limits.max_pixels, channels=channels,
                                            content_type=content_type)
            del data
            async with cancelled_when_gone(request, limits.max_seconds) as cancel:
                try:
                    out = await run_in_threadpool(cache.translate, s, direction, image, cancel)
                except TranslationCancelled:
                    raise HTTPException(503, f"the translation was stopped: the client left, or it ran longer "
                                             f"than {limits.max_seconds:g} s", headers={"Retry-After": "5"}) from None
        buf = io.BytesIO()
        out.save(buf, format="PNG")
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{stem}_{s.id}_{direction}")[:120] + ".png"
        return Response(buf.getvalue(), media_type="image/png", headers={
            "Content-Disposition": f'attachment; filename="{name}"',
            "X-Translate-Seconds": f"{time.perf_counter() - t0:.3f}", "X-Image-Size": f"{out.width}x{out.height}",
            "Cache-Control": "no-store",
        })

    return router

