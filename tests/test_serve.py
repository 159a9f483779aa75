"""The web app (`cyclegan serve`) through its HTTP API with FastAPI's TestClient, on a real tiny run and an
official-layout .pth: translate (and bad uploads), dashboard, perceptual study (store, statistics,
routes), path traversal, limits, and the command line without the extra."""

from __future__ import annotations

import csv
import io
import math
import os
import sqlite3
import subprocess
import sys

import pytest
from PIL import Image

try:
    import fastapi  # noqa: F401
    import httpx  # noqa: F401
except ImportError as e:  # the serve extra is optional locally; CI installs it (the test extra)
    if os.environ.get("CI", "").lower() == "true":
        raise
    pytest.skip(f"the serve extra is not installed ({e.name})", allow_module_level=True)

from fastapi.testclient import TestClient  # noqa: E402

from cyclegan.serve.app import create_app  # noqa: E402
from cyclegan.serve.security import Limits  # noqa: E402
from cyclegan.serve.study import (  # noqa: E402
    AnswerError, StudyStore, fooled_rates, load_study, plan_trials, proportion, standard_error, wilson_interval,
)
from cyclegan.training import loop  # noqa: E402

from helpers import tiny_config  # noqa: E402
from serve_helpers import official_pth, png_header_only, study_folders, tiny_run, write_study  # noqa: E402

ADMIN = "admin-secret"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("serve")
    data, run = tiny_run(root)
    pth = official_pth(root / "official" / "latest_net_G_A.pth")
    real, methods = study_folders(root / "study", data, run)
    return {"root": root, "data": data, "run": run, "pth": pth, "real": real, "methods": methods}


@pytest.fixture()
def study_file(world, tmp_path):
    return write_study(tmp_path / "study.yaml", world["real"], world["methods"], practice_trials=2, scored_trials=4,
                       display_seconds=0.2, seed=7)


@pytest.fixture()
def client(world, study_file):
    app = create_app([str(world["run"]), str(world["pth"])], study=study_file, admin_token=ADMIN,
                     test_images=[world["data"] / "testB"])
    with TestClient(app) as c:
        yield c


def png_bytes(size=(45, 29), color=(200, 30, 30), fmt="PNG") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def upload(client, data: bytes, *, model="run", direction="AtoB", content_type="image/png", name="x.png"):
    return client.post("/api/translate", data={"model": model, "direction": direction},
                       files={"file": (name, data, content_type)})


def error_of(response) -> str:
    body = response.json()
    assert set(body) == {"detail"} and isinstance(body["detail"], str), body
    return body["detail"]


# ---------------------------------------------------------------------------------------------------
# Statistics: hand-computed values


def test_statistics_against_hand_computed_values():
    # 3 of 10: p = 0.3, se = sqrt(0.3 * 0.7 / 10); Wilson 95 % = (0.1078, 0.6032) (e.g. Newcombe 1998, table I)
    assert standard_error(3, 10) == pytest.approx(math.sqrt(0.021))
    low, high = wilson_interval(3, 10)
    assert (round(low, 4), round(high, 4)) == (0.1078, 0.6032)
    # 0 of 10: the normal interval collapses to 0 +- 0; Wilson's upper bound is z^2 / (n + z^2) = 0.2775
    p = proportion(0, 10)
    assert (p.p, p.se, p.low) == (0.0, 0.0, 0.0) and p.high == pytest.approx(3.8415 / 13.8415, abs=1e-4)
    p = proportion(10, 10)
    assert p.high == 1.0 and p.low == pytest.approx(10 / 13.8415, abs=1e-4)
    # 1 of 2 with z = 1: centre (0.5 + 0.25) / 1.5 = 0.5, half = sqrt(0.125 + 0.0625) / 1.5
    half = math.sqrt(0.1875) / 1.5
    assert wilson_interval(1, 2, z=1.0) == pytest.approx((0.5 - half, 0.5 + half))
    empty = proportion(0, 0)
    assert empty.n == 0 and empty.p is None and empty.low is None
    with pytest.raises(ValueError):
        proportion(3, 2)
    rates = fooled_rates([("a", True), ("a", False), ("b", False), ("a", True)], methods=["c", "a"])
    assert list(rates) == ["c", "a", "b"]
    assert (rates["a"].k, rates["a"].n, rates["b"].k, rates["b"].n, rates["c"].n) == (2, 3, 0, 1, 0)


# ---------------------------------------------------------------------------------------------------
# Study definition, plan and store


def test_study_file_is_checked(world, tmp_path):
    real, methods = world["real"], world["methods"]
    spec = load_study(write_study(tmp_path / "s.yaml", real, methods))
    assert spec.display_seconds == 1.0 and spec.database == tmp_path / "s.sqlite"
    with pytest.raises(ValueError, match="unknown key.*colour"):
        load_study(write_study(tmp_path / "bad1.yaml", real, methods, colour="red"))
    with pytest.raises(ValueError, match="does not exist"):
        load_study(write_study(tmp_path / "bad2.yaml", tmp_path / "nowhere", methods))
    with pytest.raises(ValueError, match="scored_trials"):
        load_study(write_study(tmp_path / "bad3.yaml", real, methods, scored_trials=0))
    with pytest.raises(ValueError, match="display_seconds"):
        load_study(write_study(tmp_path / "bad4.yaml", real, methods, display_seconds=0))
    # pair_by_name: the run's translations of testA/00000.png are named like the real testB/00000.png
    paired = load_study(write_study(tmp_path / "p.yaml", real, methods, pair_by_name="true", scored_trials=6))
    assert all(t.fake.rsplit(".", 1)[0] == t.real.rsplit(".", 1)[0] for t in plan_trials(paired, 1))


def test_trial_plan_is_deterministic_balanced_and_practice_first(study_file):
    spec = load_study(study_file)
    trials = plan_trials(spec, 1)
    assert trials == plan_trials(spec, 1) and trials != plan_trials(spec, 2)
    assert [t.practice for t in trials] == [True, True, False, False, False, False]
    assert [t.index for t in trials] == list(range(6))
    scored = [t.method for t in trials if not t.practice]
    assert sorted(scored) == ["cyclegan", "cyclegan", "identity", "identity"]
    sides = {t.fake_side for p in range(1, 20) for t in plan_trials(spec, p)}
    assert sides == {"left", "right"}


def test_store_is_durable_rejects_duplicates_and_resumes(study_file):
    store = StudyStore(load_study(study_file))
    p = store.add_participant("alice")
    trials = store.trials(p.id)
    store.answer(p.id, 0, "left", 812.0)
    with pytest.raises(AnswerError) as e:
        store.answer(p.id, 0, "right")
    assert e.value.status == 409 and "already answered" in e.value.message
    with pytest.raises(AnswerError) as e:
        store.answer(p.id, 3, "right")  # skipping ahead
    assert e.value.status == 409
    with pytest.raises(AnswerError) as e:
        store.answer(p.id, 1, "middle")
    assert e.value.status == 400
    # A new store on the same file (a restarted server) continues at trial 1 with the same plan.
    again = StudyStore(load_study(study_file))
    assert again.participant(p.token) == p and again.trials(p.id) == trials
    assert again.next_trial(p.id).index == 1
    # Answer everything: choose the fake on scored trials 2 and 3, the real one elsewhere.
    for t in trials[1:]:
        fooled = t.index in (2, 3)
        real_side = "left" if t.fake_side == "right" else "right"
        again.answer(p.id, t.index, t.fake_side if fooled else real_side)
    assert again.next_trial(p.id) is None
    expected = {m: (sum(t.method == m for t in trials if t.index in (2, 3)),
                    sum(t.method == m for t in trials if not t.practice)) for m in ("cyclegan", "identity")}
    assert {m: (r.k, r.n) for m, r in again.results().items()} == expected
    rows = list(csv.DictReader(io.StringIO(again.csv())))
    assert len(rows) == 6 and [r["block"] for r in rows] == ["practice"] * 2 + ["scored"] * 4
    assert rows[0]["label"] == "alice" and rows[0]["response_ms"] == "812"
    formula = again.add_participant("=HYPERLINK(1)")
    again.answer(formula.id, 0, "left")
    assert list(csv.DictReader(io.StringIO(again.csv())))[-1]["label"] == "'=HYPERLINK(1)"  # not run by a spreadsheet
    assert [r["fake_chosen_as_real"] for r in rows] == ["0", "0", "1", "1", "0", "0"]
    with sqlite3.connect(again.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT COUNT(*) FROM answers").fetchone()[0] == 7


# ---------------------------------------------------------------------------------------------------
# Translate


def test_translate_run_official_pth_and_test_image(client, world):
    models = {m["id"]: m for m in client.get("/api/models").json()}
    assert models["run"]["directions"] == ["AtoB", "BtoA"] and models["run"]["kind"] == "run"
    assert models["latest_net_G_A.pth"]["directions"] == ["AtoB"] and models["latest_net_G_A.pth"]["kind"] == "file"
    for model, direction in (("run", "AtoB"), ("run", "BtoA"), ("latest_net_G_A.pth", "AtoB")):
        r = upload(client, png_bytes(), model=model, direction=direction, name="my photo.png")
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "image/png" and r.headers["x-image-size"] == "45x29"
        assert 'filename="my_photo_' in r.headers["content-disposition"]
        out = Image.open(io.BytesIO(r.content))
        assert out.size == (45, 29) and out.mode == "RGB"
    # The same input through the two generators of the run gives different outputs.
    a = upload(client, png_bytes(), direction="AtoB").content
    b = upload(client, png_bytes(), direction="BtoA").content
    assert a != b
    # JPEG input, test images of the run's dataset (testA for AtoB) and of --test-images
    assert upload(client, png_bytes(fmt="JPEG"), content_type="image/jpeg").status_code == 200
    names = client.get("/api/models/run/test-images", params={"direction": "AtoB"}).json()["images"]
    assert "testA/00000.png" in names and "testB-2/00000.png" in names  # --test-images testB: renamed, unique
    assert "testA/00000.png" not in client.get("/api/models/run/test-images", params={"direction": "BtoA"}).json()["images"]
    r = client.post("/api/translate", data={"model": "run", "direction": "AtoB", "test_image": "testA/00000.png"})
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (32, 32)
    shown = client.get("/api/models/run/test-images/AtoB/testA/00000.png")
    assert shown.status_code == 200 and shown.content == (world["data"] / "testA" / "00000.png").read_bytes()


def test_translate_matches_the_official_output_for_the_fixture_model(fixtures_dir):
    # The official test-time output of the fixture generator (see ../shared/fixtures/README.md).
    import numpy as np

    with TestClient(create_app([str(fixtures_dir / "official_G_resnet9_ngf8.pth")])) as c:
        data = (fixtures_dir / "translate_input.png").read_bytes()
        r = upload(c, data, model="official_G_resnet9_ngf8.pth", name="translate_input.png")
    assert r.status_code == 200, r.text
    got = np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"), dtype=int)
    expected = np.asarray(Image.open(fixtures_dir / "translate_expected.png").convert("RGB"), dtype=int)
    assert got.shape == expected.shape == (64, 96, 3) and np.abs(got - expected).max() <= 1


def test_run_model_is_reloaded_when_training_writes_a_checkpoint(world):
    from cyclegan.serve.sources import ModelCache, parse_sources

    cache = ModelCache()
    run = parse_sources([str(world["run"])])[0]
    first = cache.get(run)
    assert cache.get(run) is first and set(first.generators) == {"AtoB", "BtoA"}
    assert first.test_dirs == {"AtoB": world["data"] / "testA", "BtoA": world["data"] / "testB"}
    ckpt = world["run"] / "checkpoints" / "latest.pt"
    stat = ckpt.stat()
    os.utime(ckpt, (stat.st_atime, stat.st_mtime + 5))
    try:
        assert cache.get(run) is not first
    finally:
        os.utime(ckpt, (stat.st_atime, stat.st_mtime))


def test_large_images_take_the_tiled_path(world, monkeypatch):
    from cyclegan.serve import sources

    calls = []
    real = sources.translate_tiled
    monkeypatch.setattr(sources, "translate_tiled", lambda g, a, **kw: calls.append((a.shape, kw)) or real(g, a, **kw))
    with TestClient(create_app([str(world["pth"])], tile=64)) as c:
        r = upload(c, png_bytes((150, 70)), model="latest_net_G_A.pth")
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (150, 70)
    assert len(calls) == 1 and calls[0][0] == (70, 150, 3) and calls[0][1]["tile"] == 64
    assert calls[0][1]["cancel"] is not None and not calls[0][1]["cancel"].is_set()  # stoppable, not stopped


@pytest.mark.parametrize("case, status, fragment", [
    ("not an image", 400, "not a readable image"),
    ("truncated", 400, "truncated"),
    ("huge dimensions", 413, "pixels"),
    ("empty", 400, "empty"),
    ("text content type", 415, "content type"),
    ("gif", 415, "GIF"),
])
def test_bad_uploads_get_a_clear_4xx(client, case, status, fragment):
    data, content_type = png_bytes((64, 64)), "image/png"
    if case == "not an image":
        data = b"GIF? no: just some text that is not an image\n" * 10
    elif case == "truncated":
        big = io.BytesIO()
        Image.effect_noise((200, 200), 60).convert("RGB").save(big, format="PNG")
        data = big.getvalue()[: len(big.getvalue()) // 2]
    elif case == "huge dimensions":
        data = png_header_only(100_000, 100_000)  # 10^10 pixels announced in 70 bytes
    elif case == "empty":
        data = b""
    elif case == "text content type":
        content_type = "text/html"
    elif case == "gif":
        data, content_type = png_bytes(fmt="GIF"), "image/gif"
    r = upload(client, data, content_type=content_type)
    assert r.status_code == status, r.text
    assert fragment in error_of(r)


def test_upload_and_pixel_limits(world):
    app = create_app([str(world["pth"])], limits=Limits(max_upload_bytes=20_000, max_pixels=1_000))
    with TestClient(app) as c:
        r = upload(c, png_bytes((45, 29)), model="latest_net_G_A.pth")  # 1305 pixels
        assert r.status_code == 413 and "1,305 pixels; the limit is 1,000" in error_of(r)
        assert upload(c, png_bytes((30, 30)), model="latest_net_G_A.pth").status_code == 200
        noise = io.BytesIO()
        Image.effect_noise((300, 300), 80).save(noise, format="PNG")  # ~ 80 kB
        r = upload(c, noise.getvalue(), model="latest_net_G_A.pth")
        assert r.status_code == 413 and "MB" in error_of(r)

        def chunks():  # no Content-Length: the body is counted as it arrives
            yield b"--x\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\n\r\n"
            for _ in range(50):
                yield b"\0" * 4096

        r = c.post("/api/translate", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
        assert r.status_code == 413, r.text


def test_request_errors(client, world, tmp_path):
    assert upload(client, png_bytes(), model="nope").status_code == 404
    r = upload(client, png_bytes(), model="latest_net_G_A.pth", direction="BtoA")
    assert r.status_code == 400 and "AtoB" in error_of(r)
    r = client.post("/api/translate", data={"model": "run", "direction": "AtoB"})
    assert r.status_code == 400 and "either" in error_of(r)
    # A run dir without a checkpoint yet: a dashboard, but not (yet) a model
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "config.yaml").write_text("model: {}\n")
    with TestClient(create_app([str(fresh)])) as c:
        r = upload(c, png_bytes(), model="fresh")
        assert r.status_code == 409 and "no checkpoint yet" in error_of(r)
        assert c.get("/api/runs/fresh").json()["progress"]["step"] is None
    with pytest.raises(ValueError, match="neither"):
        create_app([str(tmp_path / "missing.pth")])


@pytest.mark.parametrize("name", [
    "testA/../../run/config.yaml", "testA/../testB/00000.png", "../data/testA/00000.png", "/etc/passwd",
    "testA//etc/passwd", "testA/..%2F..%2Fconfig.yaml", "testA/sub\\..\\..\\x.png", "nothing/00000.png",
])
def test_no_path_traversal_in_test_images(client, name):
    # Dots percent-encoded so that the client does not normalise the path before the server sees it.
    r = client.get(f"/api/models/run/test-images/AtoB/{name.replace('..', '%2E%2E')}")
    assert r.status_code == 404
    r = client.post("/api/translate", data={"model": "run", "direction": "AtoB", "test_image": name})
    assert r.status_code == 404 and error_of(r) == "no such test image"


def test_no_path_traversal_in_samples(client, world, tmp_path):
    for name in ("../config.yaml", "..%2Fconfig.yaml", "%2E%2E/config.yaml", "/etc/passwd", "step_0000003.png/..",
                 "..\\config.yaml", "index.html"):
        assert client.get(f"/api/runs/run/samples/{name}").status_code == 404, name
    # A symlink inside samples/ that points outside the run dir is not followed out.
    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes())
    link = world["run"] / "samples" / "step_0000099.png"
    link.symlink_to(secret)
    try:
        assert client.get("/api/runs/run/samples/step_0000099.png").status_code == 404
    finally:
        link.unlink()


def test_security_headers_and_host_check(world):
    with TestClient(create_app([str(world["pth"])], allowed_hosts=["127.0.0.1", "localhost"]),
                    base_url="http://127.0.0.1:8000") as c:
        r = c.get("/")
        assert r.status_code == 200 and "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY" and r.headers["referrer-policy"] == "no-referrer"
        assert c.get("/", headers={"host": "attacker.example"}).status_code == 400  # DNS rebinding


# ---------------------------------------------------------------------------------------------------
# Dashboard


def test_dashboard_reads_a_run_while_it_is_written(client, world):
    assert client.get("/api/runs").json() == [{"id": "run", "label": "run"}]
    s = client.get("/api/runs/run").json()
    p = s["progress"]
    assert (p["step"], p["epoch"], p["epochs_planned"], p["log_lines"]) == (3, 1, 2, 3)
    assert p["it_per_s"] == pytest.approx(1 / p["sec_per_step"]) and p["checkpoint_age_s"] >= 0
    assert s["losses"]["step"] == [1, 2, 3] and "sec_per_step" not in s["losses"]["series"]
    assert {"g_ab", "cycle_a", "d_a"} <= set(s["losses"]["series"])
    assert "generator: resnet_6blocks" in s["config"]
    assert [x["step"] for x in s["samples"]] == [3]
    r = client.get(s["samples"][0]["url"])
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (32 * 3, 32 * 2)
    # A training process appends a line and is caught mid-way through the next one.
    log = world["run"] / "losses.jsonl"
    before = log.read_text()
    try:
        with log.open("a") as f:
            f.write('{"step": 4, "epoch": 1, "lr": 0.0002, "sec_per_step": 0.5, "g_ab": 0.9}\n{"step": 5, "epoch": 1, "l')
        s = client.get("/api/runs/run").json()
        assert s["progress"]["step"] == 4 and s["progress"]["it_per_s"] == 2.0 and s["losses"]["step"][-1] == 4
        assert s["losses"]["series"]["cycle_a"][-1] is None  # not logged on that line
    finally:
        log.write_text(before)
    assert client.get("/api/runs/nope").status_code == 404
    assert client.get("/dashboard").status_code == 200


# ---------------------------------------------------------------------------------------------------
# Study routes


def test_study_admin_needs_the_token(client):
    assert client.post("/api/study/admin/participants", json={}).status_code == 403
    assert client.get("/api/study/admin/results", headers={"X-Admin-Token": "guess"}).status_code == 403
    assert client.get("/api/study/admin/answers.csv", headers={"X-Admin-Token": "admin-secre"}).status_code == 403
    assert client.get("/api/study/admin/results", headers={"X-Admin-Token": ADMIN}).status_code == 200
    assert client.get("/api/study/admin/results", params={"token": ADMIN}).status_code == 403  # never in the URL
    assert client.get("/study/p/not-a-token").status_code == 404
    assert client.get("/api/study/p/not-a-token/state").status_code == 404


def test_study_flow_over_http(client):
    made = client.post("/api/study/admin/participants", json={"label": "bob"}, headers={"X-Admin-Token": ADMIN})
    assert made.status_code == 201
    token = made.json()["token"]
    other = client.post("/api/study/admin/participants", headers={"X-Admin-Token": ADMIN}).json()["token"]
    assert token != other and len(token) >= 20
    assert client.get(made.json()["url"]).status_code == 200
    api = f"/api/study/p/{token}"
    fooled = {"cyclegan": 0, "identity": 0}
    n = {"cyclegan": 0, "identity": 0}
    store = client.app.state.study
    pid = store.participant(token).id
    for i in range(6):
        s = client.get(f"{api}/state").json()
        t = s["trial"]
        assert (s["display_ms"], s["practice_trials"], s["scored_trials"], s["answered"]) == (200, 2, 4, i)
        assert t["index"] == i and t["practice"] == (i < 2)
        left, right = client.get(t["left"]), client.get(t["right"])
        assert left.status_code == right.status_code == 200 and left.headers["content-type"] == "image/png"
        assert left.content != right.content
        # Only the current trial's images are served.
        assert client.get(f"{api}/image/{i + 1}/left").status_code == 404
        truth = store.trials(pid)[i]
        choice = "left" if i % 2 else "right"
        r = client.post(f"{api}/answer", json={"index": i, "choice": choice, "response_ms": 500})
        assert r.status_code == 200 and r.json()["saved"]
        if t["practice"]:
            assert r.json()["correct"] == (choice != truth.fake_side)
        else:
            assert "correct" not in r.json() and "real_side" not in r.json()  # no feedback when scored
            n[truth.method] += 1
            fooled[truth.method] += choice == truth.fake_side
        again = client.post(f"{api}/answer", json={"index": i, "choice": choice})
        assert again.status_code == 409 and "already answered" in error_of(again)
    assert client.get(f"{api}/state").json()["done"] is True
    assert r.json()["done"] is True
    res = client.get("/api/study/admin/results", headers={"X-Admin-Token": ADMIN}).json()
    got = {m["method"]: (m["k"], m["n"]) for m in res["methods"]}
    assert got == {m: (fooled[m], n[m]) for m in n}
    assert res["answers"] == {"total": 6, "scored": 4}
    assert [(p["label"], p["answered"], p["trials"]) for p in res["participants"]] == [("bob", 6, 6), ("", 0, 6)]
    rows = list(csv.DictReader(io.StringIO(client.get("/api/study/admin/answers.csv", headers={"X-Admin-Token": ADMIN}).text)))
    assert len(rows) == 6 and {r["label"] for r in rows} == {"bob"}


def test_study_answer_requests_are_checked(client):
    token = client.post("/api/study/admin/participants", headers={"X-Admin-Token": ADMIN}).json()["token"]
    api = f"/api/study/p/{token}/answer"
    r = client.post(api, content='{"index": 0, "choice": "left"}', headers={"content-type": "text/plain"})
    assert r.status_code == 415  # a cross-site form cannot post JSON without a preflight
    assert client.post(api, json={"index": "0", "choice": "left"}).status_code == 400
    assert client.post(api, json={"index": 0, "choice": "up"}).status_code == 400
    assert client.post(api, json={"index": 1, "choice": "left"}).status_code == 409
    assert client.post(api, json=[0, "left"]).status_code == 400
    assert client.post(api, json={"index": 0, "choice": "left"}).status_code == 200


# ---------------------------------------------------------------------------------------------------
# Command line


def test_cli_help_and_missing_extra(world):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    r = subprocess.run([sys.executable, "-m", "cyclegan", "serve", "--help"], capture_output=True, text=True, env=env, check=False)
    assert r.returncode == 0 and "--study" in r.stdout and "127.0.0.1" in r.stdout
    code = ("import sys; sys.modules['fastapi'] = None; import cyclegan.cli as c; "
            "assert 'fastapi' not in [m for m in sys.modules if sys.modules[m] is not None]; "
            f"sys.exit(c.main(['serve', {str(world['run'])!r}]))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
    assert r.returncode == 1 and r.stderr.strip() == (
        "cyclegan: error: the web app needs FastAPI, uvicorn and python-multipart: pip install 'cyclegan[serve]'")


@pytest.mark.parametrize("method, learned", [("pix2pix", "AtoB"), ("cut", "AtoB"), ("fastcut_btoa", "BtoA")])
def test_one_way_runs_translate_their_direction_only(world, tmp_path, method, learned):
    from helpers import METHOD_TINY

    overrides = {"pix2pix": METHOD_TINY["pix2pix"], "cut": METHOD_TINY["cut"],
                 "fastcut_btoa": [*METHOD_TINY["fastcut"], "data.direction=BtoA"]}[method]
    run = tmp_path / method
    loop.train(world["data"], run, tiny_config(*overrides), max_steps=2, progress=False)
    other = "BtoA" if learned == "AtoB" else "AtoB"
    with TestClient(create_app([str(run)], admin_token=ADMIN)) as c:
        assert c.get("/api/models").json()[0]["directions"] == [learned]
        ok = upload(c, png_bytes(), model=method, direction=learned)
        assert ok.status_code == 200 and Image.open(io.BytesIO(ok.content)).size == (45, 29)
        refused = upload(c, png_bytes(), model=method, direction=other)
        assert refused.status_code == 400 and learned in error_of(refused)
