"""Web routes of the perceptual study.

Participant pages and API live under `/study/p/{token}` and `/api/study/p/{token}`: the token (random,
one per participant, made by an admin) is the only credential, and it reveals nothing but that
participant's own trials; image URLs name the trial and side, never the file or the method. Admin
routes (`/api/study/admin/...`) need the admin token in an `X-Admin-Token` header (never in the URL).
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

from fastapi import APIRouter, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, Response

from ...data.image_io import load_image
from ..security import UploadError, safe_path, same_token
from .store import AnswerError, Participant, StudyStore

STATIC = Path(__file__).resolve().parents[1] / "static"
NO_STORE = {"Cache-Control": "no-store"}


def study_router(store: StudyStore, admin_token: str) -> APIRouter:
    router = APIRouter()
    spec = store.spec

    def participant(token: str) -> Participant:
        p = store.participant(token)
        if p is None:
            raise HTTPException(404, "unknown participant link; ask the study's organiser for a new one")
        return p

    def admin(header: str | None) -> None:
        # The header only: a token in the URL would end up in logs and browser history.
        if not same_token(header, admin_token):
            raise HTTPException(403, "this needs the study's admin token (printed by `cyclegan serve` at start)")

    # -- participant -------------------------------------------------------------------------------

    @router.get("/study/p/{token}", include_in_schema=False)
    def participant_page(token: str) -> FileResponse:
        participant(token)
        return FileResponse(STATIC / "study.html", headers=NO_STORE)

    @router.get("/api/study/p/{token}/state")
    def state(token: str) -> JSONResponse:
        p = participant(token)
        trials = store.trials(p.id)
        current = store.next_trial(p.id)
        n_practice = sum(t.practice for t in trials)
        body = {
            "study": spec.name, "display_ms": round(spec.display_seconds * 1000),
            "practice_trials": n_practice, "scored_trials": len(trials) - n_practice,
            "answered": store.answered(p.id), "done": current is None, "trial": None,
        }
        if current is not None:
            block = [t for t in trials if t.practice == current.practice]
            body["trial"] = {
                "index": current.index, "practice": current.practice,
                "number": block.index(current) + 1, "of": len(block),
                "left": f"/api/study/p/{token}/image/{current.index}/left",
                "right": f"/api/study/p/{token}/image/{current.index}/right",
            }
        return JSONResponse(body, headers=NO_STORE)

    @router.get("/api/study/p/{token}/image/{index}/{side}")
    def image(token: str, index: int, side: str) -> Response:
        p = participant(token)
        current = store.next_trial(p.id)
        if side not in ("left", "right") or current is None or current.index != index:
            raise HTTPException(404, "only the current trial's two images can be shown")
        fake = side == current.fake_side
        folder = spec.methods[current.method] if fake else spec.real
        try:
            path = safe_path(folder, current.fake if fake else current.real)
        except UploadError:
            raise HTTPException(404, "the image of this trial is gone from the study's folders") from None
        # Re-encoded as PNG: the file's format, size and metadata must not tell real from fake.
        buf = io.BytesIO()
        load_image(path).save(buf, format="PNG")
        return Response(buf.getvalue(), media_type="image/png", headers=NO_STORE)

    @router.post("/api/study/p/{token}/answer")
    async def answer(token: str, request: Request) -> JSONResponse:
        p = participant(token)
        body = await _json_body(request)
        index, choice, ms = body.get("index"), body.get("choice"), body.get("response_ms")
        if not isinstance(index, int) or isinstance(index, bool):
            raise HTTPException(400, "'index' (the trial number) must be an integer")
        if ms is not None and (not isinstance(ms, (int, float)) or isinstance(ms, bool) or not 0 <= ms <= 1e9):
            raise HTTPException(400, "'response_ms' must be a number of milliseconds from 0 to 1e9")
        if not -(2**31) <= index < 2**31:
            raise HTTPException(400, "'index' (the trial number) is out of range")
        try:
            trial = await run_in_threadpool(store.answer, p.id, index, choice, None if ms is None else float(ms))
        except AnswerError as e:
            raise HTTPException(e.status, e.message) from None
        reply = {"saved": True, "done": await run_in_threadpool(store.next_trial, p.id) is None}
        if trial.practice:  # feedback in the practice block only
            reply["correct"] = choice != trial.fake_side
            reply["real_side"] = "left" if trial.fake_side == "right" else "right"
        return JSONResponse(reply, headers=NO_STORE)

    # -- admin -------------------------------------------------------------------------------------

    @router.get("/study/admin", include_in_schema=False)
    def admin_page() -> FileResponse:
        return FileResponse(STATIC / "admin.html", headers=NO_STORE)  # asks for the token; the API checks it

    @router.post("/api/study/admin/participants")
    async def add_participant(request: Request, x_admin_token: str | None = Header(None)) -> JSONResponse:
        admin(x_admin_token)
        body = await _json_body(request) if await request.body() else {}
        label = body.get("label", "")
        if not isinstance(label, str):
            raise HTTPException(400, "'label' must be a string")
        p = await run_in_threadpool(store.add_participant, label)
        return JSONResponse({"id": p.id, "label": p.label, "token": p.token, "url": f"/study/p/{p.token}"},
                            status_code=201)

    @router.get("/api/study/admin/results")
    def results(x_admin_token: str | None = Header(None)) -> JSONResponse:
        admin(x_admin_token)
        rows = store.answer_rows()
        return JSONResponse({
            "study": spec.name,
            "protocol": {"practice_trials": spec.practice_trials, "scored_trials": spec.scored_trials,
                         "display_seconds": spec.display_seconds, "seed": spec.seed,
                         "pair_by_name": spec.pair_by_name},
            "methods": [{"method": m, **dataclasses.asdict(r)} for m, r in store.results().items()],
            "participants": [{**p, "url": f"/study/p/{p['token']}"} for p in store.participants()],
            "answers": {"total": len(rows), "scored": sum(not r["practice"] for r in rows)},
        }, headers=NO_STORE)

    @router.get("/api/study/admin/answers.csv")
    def answers_csv(x_admin_token: str | None = Header(None)) -> Response:
        admin(x_admin_token)
        return Response(store.csv(), media_type="text/csv; charset=utf-8",
                        headers={**NO_STORE, "Content-Disposition": 'attachment; filename="study_answers.csv"'})

    return router


async def _json_body(request: Request) -> dict:
    # A JSON content type makes a cross-site form post impossible without a CORS preflight.
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        raise HTTPException(415, "send the body as application/json")
    try:
        body = await request.json()
    except (ValueError, RecursionError):  # invalid, a number of too many digits, or nested too deep
        raise HTTPException(400, "the body is not valid JSON (or nests too deep, or holds a number too long)") from None
    if not isinstance(body, dict):
        raise HTTPException(400, "the body must be a JSON object")
    return body
