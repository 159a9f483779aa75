"""End to end in a real headless browser: `cyclegan serve` as a subprocess, Debian's chromium driven by
Playwright. Uploads an image and sees its translation; watches the dashboard follow a training run
in another process; completes a short study and checks the results page against the clicks.
Saves the screenshots that README shows (docs/screenshots/, with $CYCLEGAN_SCREENSHOTS set to it).

Without playwright or chromium (or ../shared/fixtures, for the fixture model) this skips locally, and
fails under CI=true (see .ci/run).
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from serve_helpers import official_pth, study_folders, tiny_run, write_study

# README's screenshots: `CYCLEGAN_SCREENSHOTS=docs/screenshots python3 -m pytest tests/test_serve_browser.py`
# writes them there; otherwise they go to a temporary folder (a plain test run leaves the tree clean).
SCREENSHOTS = Path(os.environ.get("CYCLEGAN_SCREENSHOTS") or Path(tempfile.gettempdir()) / "cyclegan_screenshots")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ADMIN = "browser-test-admin-token"


def chromium_or_skip() -> str:
    """The chromium executable; missing means skip locally but fail in CI (CI=true)."""
    problem = None
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        problem = "playwright is not installed (pip install playwright)"
    path = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if problem is None and not Path(path).is_file():
        problem = f"no chromium at {path} (apt-get install chromium)"
    if problem:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{problem}: CI must run the browser test")
        pytest.skip(problem)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, fixtures_dir):
    chromium = chromium_or_skip()
    root = tmp_path_factory.mktemp("browser")
    data, run = tiny_run(root)
    pth = official_pth(root / "official" / "latest_net_G_A.pth")
    real, methods = study_folders(root / "study", data, run)
    study = write_study(root / "study.yaml", real, methods, name='"Real or fake: city maps"', practice_trials=2,
                        scored_trials=4, seed=3)  # display_seconds: the default, 1 s
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p), "OMP_NUM_THREADS": "1"}
    log = (root / "server.log").open("w")
    fixture_model = fixtures_dir / "official_G_resnet9_ngf8.pth"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cyclegan", "serve", str(run), str(pth), str(fixture_model), "--study", str(study),
         "--admin-token", ADMIN, "--port", str(port)], stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{base}/api/info", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.time() > deadline:
            proc.kill()
            pytest.fail(f"the server did not start:\n{(root / 'server.log').read_text()}")
        time.sleep(0.2)
    yield {"base": base, "root": root, "fixtures": fixtures_dir, "data": data, "run": run, "study": study, "chromium": chromium, "env": env}
    proc.terminate()
    proc.wait(timeout=10)
    log.close()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=server["chromium"], args=CHROMIUM_FLAGS)
        page = browser.new_page(viewport={"width": 1100, "height": 800})
        page.set_default_timeout(30_000)
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        yield page
        browser.close()
        assert not errors, f"JavaScript errors: {errors}"


def wait_until(page, expression: str, timeout: float = 30.0) -> None:
    """Poll a JavaScript expression until it is truthy. (Playwright's wait_for_function evaluates
    strings with eval(), which the app's Content-Security-Policy rightly forbids; page.evaluate is
    exempt, and the test should see the pages under their real policy.)"""
    deadline = time.time() + timeout
    while not page.evaluate(expression):
        if time.time() > deadline:
            raise AssertionError(f"timed out waiting for: {expression}")
        time.sleep(0.1)


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name), full_page=True)


def test_translate_an_upload(server, page, tmp_path):
    photo = tmp_path / "aerial tile.png"
    Image.open(server["data"] / "testA" / "00000.png").resize((128, 128), Image.NEAREST).save(photo)
    page.goto(server["base"] + "/")
    wait_until(page, "document.querySelectorAll('#model option').length === 3")
    page.select_option("#model", "run")
    page.select_option("#direction", "AtoB")
    page.set_input_files("#file", str(photo))
    wait_until(page, "document.getElementById('input-img').naturalWidth === 128")
    page.click("#translate")
    page.wait_for_selector("#status.ok")
    size = page.evaluate("[document.getElementById('output-img').naturalWidth, document.getElementById('output-img').naturalHeight]")
    assert size == [128, 128]
    assert "Translated 128x128" in page.inner_text("#status")
    link = page.locator("#download")
    assert link.is_visible() and link.get_attribute("download") == "aerial_tile_run_AtoB.png"
    screenshot(page, "translate.png")
    # The fixture model (an official generator file): the downloaded PNG is the official output.
    page.select_option("#model", "official_G_resnet9_ngf8.pth")
    page.set_input_files("#file", str(server["fixtures"] / "translate_input.png"))
    page.click("#translate")
    wait_until(page, "document.getElementById('status').textContent.includes('96x64')")
    with page.expect_download() as download:
        page.click("#download")
    assert download.value.suggested_filename == "translate_input_official_G_resnet9_ngf8.pth_AtoB.png"
    got = np.asarray(Image.open(download.value.path()).convert("RGB"), dtype=int)
    expected = np.asarray(Image.open(server["fixtures"] / "translate_expected.png").convert("RGB"), dtype=int)
    assert got.shape == expected.shape and np.abs(got - expected).max() <= 1
    # A test image of the run's dataset, through the other generator
    page.select_option("#model", "run")
    page.select_option("#direction", "BtoA")
    wait_until(page, "document.querySelectorAll('#test-image option').length > 1")
    page.select_option("#test-image", "testB/00001.png")
    page.click("#translate")
    wait_until(page, "document.getElementById('status').textContent.includes('32x32')")
    # A bad upload shows the server's message
    bad = tmp_path / "notes.png"
    bad.write_text("not an image")
    page.set_input_files("#file", str(bad))
    page.click("#translate")
    page.wait_for_selector("#status.error")
    assert "400" in page.inner_text("#status") and "not a readable image" in page.inner_text("#status")


def test_dashboard_follows_training_in_another_process(server, page):
    page.goto(server["base"] + "/dashboard?every=1")
    page.wait_for_selector("#run-run .samples img")
    assert "step 3" in page.inner_text("#run-run .samples")
    # Resume the run in another process for 3 more steps (a sample grid every 3): the page follows.
    trainer = subprocess.run(
        [sys.executable, "-m", "cyclegan", "train", "--resume", str(server["run"]), "--max-steps", "6",
         "--no-progress"], check=False, capture_output=True, text=True, env=server["env"], timeout=120,
    )
    assert trainer.returncode == 0, trainer.stderr
    wait_until(page, "document.querySelector('#run-run .samples figcaption').textContent === 'step 6'")
    progress = page.inner_text("#run-run table")
    assert "step\t6" in progress and "epoch\t1 of 2" in progress and "it/s" in progress
    wait_until(page, "[...document.querySelectorAll('#run-run .samples img')].every(i => i.naturalWidth === 96)")
    assert page.evaluate("document.querySelector('#run-run canvas').width") > 0
    assert "g_ab" in page.inner_text("#run-run .legend")
    screenshot(page, "dashboard.png")


def test_perceptual_study_counts_the_clicks(server, page):
    base = server["base"]
    page.goto(f"{base}/study/admin#token={ADMIN}")
    page.wait_for_selector("#admin:not([hidden])")
    page.fill("#label", "participant 1")
    page.click("#new-participant")
    link = page.get_attribute("#new-link-a", "href")
    assert link.startswith("/study/p/")

    page.goto(base + link)
    page.click("#start")
    clicks = []
    for i in range(6):
        if i == 2:  # end of the practice block
            page.wait_for_selector("#break:not([hidden])")
            assert "4" in page.inner_text("#break-count")
            page.click("#continue")
        page.wait_for_selector("#slot-left img")  # the pair is shown ...
        if i == 3:
            screenshot(page, "study_trial.png")
        page.wait_for_selector("#choose-left:enabled")  # ... then hidden, and the question asked
        assert page.locator("#slot-left img").count() == 0
        side = "right" if i in (0, 3, 4) else "left"
        page.click(f"#choose-{side}")
        clicks.append(side)
        if i < 2:
            wait_until(page, "document.getElementById('feedback').textContent !== ''")
            clicks[-1] = (side, page.inner_text("#feedback"))
    page.wait_for_selector("#done:not([hidden])")

    # The truth, from the study's database: where each trial's fake was.
    with sqlite3.connect(server["study"].with_suffix(".sqlite")) as db:
        trials = db.execute("SELECT idx, practice, method, fake_side FROM trials t JOIN participants p "
                            "ON p.id = t.participant WHERE p.label = 'participant 1' ORDER BY idx").fetchall()
    assert len(trials) == 6
    for (side, feedback), (_, practice, _, fake_side) in zip(clicks[:2], trials[:2]):
        assert practice and feedback.startswith("Correct" if side != fake_side else "Wrong")
    expected = {"cyclegan": [0, 0], "identity": [0, 0]}
    for side, (_, practice, method, fake_side) in zip(clicks[2:], trials[2:]):
        assert not practice
        expected[method][0] += side == fake_side
        expected[method][1] += 1

    page.goto(f"{base}/study/admin#token={ADMIN}")
    page.wait_for_selector("#results tbody tr")
    for method, (k, n) in expected.items():
        row = page.locator(f"#results tr[data-method='{method}']")
        assert (row.locator(".fooled").inner_text(), row.locator(".trials").inner_text()) == (str(k), str(n))
        rate = row.locator(".rate").inner_text()
        assert rate == (f"{100 * k / n:.1f} %" if n else "–")
    assert "6 answers stored (4 scored)" in page.inner_text("#answer-count")
    assert "6 / 6" in page.inner_text("#participants")
    screenshot(page, "study_results.png")
