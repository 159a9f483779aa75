"""The web app under hostile and heavy use: malformed JSON that used to give 500s, cross-origin form
posts, test-image listings that followed links out of their folder, bounded concurrent work (503 +
Retry-After), translations stopped when their client leaves or their time runs out, and a
property-based fuzz of the API from its OpenAPI schema (no 5xx)."""

from __future__ import annotations

import asyncio
import io
import os
import threading

import numpy as np
import pytest
from PIL import Image

from helpers import optional_module

optional_module("fastapi")
optional_module("httpx")

from fastapi import HTTPException  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from cyclegan.inference import TranslationCancelled, translate_tiled  # noqa: E402
from cyclegan.nn import ResnetGenerator  # noqa: E402
from cyclegan.serve.app import create_app  # noqa: E402
from cyclegan.serve.security import Limits  # noqa: E402
from cyclegan.serve.sources import contained_images  # noqa: E402
from cyclegan.serve.work import WorkSlots  # noqa: E402

from serve_helpers import study_folders, tiny_run, write_study  # noqa: E402

ADMIN = "admin-secret"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("hard")
    data, run = tiny_run(root)
    real, methods = study_folders(root / "study", data, run)
    study = write_study(root / "study.yaml", real, methods, practice_trials=1, scored_trials=2, seed=3)
    return {"root": root, "data": data, "run": run, "study": study}


@pytest.fixture()
def client(world):
    app = create_app([str(world["run"])], study=world["study"], admin_token=ADMIN)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def png(size=(40, 32)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (10, 200, 30)).save(buf, format="PNG")
    return buf.getvalue()


def participant(client) -> str:
    return client.post("/api/study/admin/participants", headers={"X-Admin-Token": ADMIN}).json()["token"]


@pytest.mark.parametrize("body", [
    "[" * 100_000 + "]" * 100_000,  # nested far past Python's recursion limit
    '{"index": ' + "9" * 50_000 + ', "choice": "left"}',  # an integer of 50,000 digits
    '{"index": 0, "choice": "left", "response_ms": 1e999}',  # infinity
    '{"index": 0, "choice": "left", "response_ms": -5}',
    '{"index": 99999999999999999999, "choice": "left"}',
])
def test_malformed_study_answers_are_400s_not_500s(client, body):
    r = client.post(f"/api/study/p/{participant(client)}/answer", content=body,
                    headers={"content-type": "application/json"})
    assert r.status_code == 400, r.text


def test_cross_origin_posts_are_refused(client):
    data = {"model": "run", "direction": "AtoB"}
    files = {"file": ("x.png", png(), "image/png")}
    r = client.post("/api/translate", data=data, files=files, headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and "cross-origin" in r.json()["detail"]
    r = client.post("/api/study/admin/participants", headers={"X-Admin-Token": ADMIN, "Origin": "null"})
    assert r.status_code == 403
    same = client.post("/api/translate", data=data, files=files, headers={"Origin": "http://testserver"})
    assert same.status_code == 200 and same.headers["content-type"] == "image/png"
    assert client.get("/api/models", headers={"Origin": "https://evil.example"}).status_code == 200  # reads: fine


def test_test_image_listing_stays_inside_its_folder(tmp_path):
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    for folder in (inside / "sub", outside):
        folder.mkdir(parents=True)
    for p in (inside / "a.png", inside / "sub" / "b.png", outside / "secret.png"):
        Image.new("RGB", (4, 4)).save(p)
    os.symlink(outside, inside / "linked_dir")
    os.symlink(outside / "secret.png", inside / "leak.png")
    os.symlink(inside / "a.png", inside / "alias.png")  # a link that stays inside is fine
    os.mkfifo(inside / "fifo.png")
    assert contained_images(inside) == ["a.png", "alias.png", "sub/b.png"]
    assert contained_images(inside, max_scanned=1) == ["a.png"] or len(contained_images(inside, max_scanned=1)) <= 1


def test_work_slots_answer_503_with_retry_after_when_full():
    async def scenario():
        slots = WorkSlots(max_active=1, max_waiting=1)
        release = asyncio.Event()

        async def hold():
            async with slots.slot():
                await release.wait()

        first = asyncio.create_task(hold())
        await asyncio.sleep(0)
        second = asyncio.create_task(hold())  # waits
        await asyncio.sleep(0)
        assert (slots.active, slots.waiting) == (1, 1)
        with pytest.raises(HTTPException) as e:
            async with slots.slot():
                pass
        assert e.value.status_code == 503 and e.value.headers["Retry-After"] == "5"
        release.set()
        await asyncio.gather(first, second)
        assert (slots.active, slots.waiting) == (0, 0)

    asyncio.run(scenario())


def test_a_busy_server_answers_503_over_http(world):
    app = create_app([str(world["run"])], limits=Limits(max_active=1, max_waiting=0))
    with TestClient(app) as c:
        cache = app.state.cache
        gate, entered = threading.Event(), threading.Event()
        original = cache.translate

        def slow(*args, **kwargs):
            entered.set()
            gate.wait(30)
            return original(*args, **kwargs)

        cache.translate = slow
        results = {}

        def first():
            results["first"] = c.post("/api/translate", data={"model": "run"}, files={"file": ("a.png", png(), "image/png")})

        t = threading.Thread(target=first)
        t.start()
        assert entered.wait(30)
        busy = c.post("/api/translate", data={"model": "run"}, files={"file": ("b.png", png(), "image/png")})
        gate.set()
        t.join(30)
    assert busy.status_code == 503 and busy.headers["retry-after"] == "5" and "busy" in busy.json()["detail"]
    assert results["first"].status_code == 200


def test_a_translation_stops_between_tiles_when_cancelled():
    net = ResnetGenerator(3, 3, ngf=4, n_blocks=1).eval()
    image = np.zeros((300, 300, 3), np.uint8)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(TranslationCancelled, match="stopped after 0 of"):
        translate_tiled(net, image, tile=128, cancel=cancel)
    assert translate_tiled(net, image, tile=128, cancel=threading.Event()).shape == (300, 300, 3)


def test_a_translation_past_its_time_limit_is_stopped(world):
    app = create_app([str(world["run"])], limits=Limits(max_seconds=0.3), tile=64)
    with TestClient(app) as c:
        cache = app.state.cache
        original = cache.translate

        def slow(source, direction, image, cancel=None):
            cancel.wait(10)  # the watchdog sets it when the time is up
            return original(source, direction, image, cancel)

        cache.translate = slow
        r = c.post("/api/translate", data={"model": "run"}, files={"file": ("big.png", png((200, 200)), "image/png")})
    assert r.status_code == 503 and "ran longer than 0.3 s" in r.json()["detail"]


@pytest.mark.slow
def test_fuzzing_the_api_from_its_schema_finds_no_server_error(world):
    """schemathesis generates requests for every operation of the app's OpenAPI schema (a bounded,
    derandomised number of examples, run in-process through ASGI); none may answer 5xx."""
    optional_module("schemathesis")
    from hypothesis import HealthCheck, given, settings
    from schemathesis.openapi import from_dict

    app = create_app([str(world["run"])], study=world["study"], admin_token=ADMIN)
    schema = from_dict(app.openapi())
    failures, calls = [], []

    @settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
    @given(schema.as_strategy())
    def check(case):
        response = case.call(app=app)
        calls.append(f"{case.method} {case.path}")
        if response.status_code >= 500:
            failures.append(f"{case.method} {case.path}: {response.status_code} {response.text[:200]}")

    check()
    assert not failures, failures[:5]
    assert len(set(calls)) >= 8  # every kind of operation was reached


@pytest.mark.slow
def test_a_client_that_leaves_stops_its_translation(world):
    """A real server (uvicorn on 127.0.0.1) and a client that sends an upload and hangs up: the
    translation's cancel event is set within a second or so, so the work stops at its next tile."""
    uvicorn = optional_module("uvicorn")
    import socket
    import time

    app = create_app([str(world["run"])])
    cache, seen = app.state.cache, {}

    def slow(source, direction, image, cancel=None):
        seen["started"] = time.monotonic()
        seen["cancelled"] = cancel.wait(20)  # what the tiled loop checks between tiles
        seen["after"] = time.monotonic() - seen["started"]
        raise TranslationCancelled("stopped")

    cache.translate = slow
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    body_parts = [b"--B\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nrun\r\n",
                  b"--B\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n"
                  b"Content-Type: image/png\r\n\r\n" + png() + b"\r\n--B--\r\n"]
    body = b"".join(body_parts)
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"POST /api/translate HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; "
                     b"boundary=B\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        t0 = time.monotonic()
        while "started" not in seen and time.monotonic() - t0 < 20:
            time.sleep(0.02)
    # the client is gone
    t0 = time.monotonic()
    while "cancelled" not in seen and time.monotonic() - t0 < 20:
        time.sleep(0.05)
    server.should_exit = True
    thread.join(10)
    assert seen.get("cancelled") is True and seen["after"] < 5
