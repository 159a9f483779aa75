"""HTML reports: the run page (progress, loss plot, config, samples) and the generic results page."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import numpy as np
from PIL import Image

from cyclegan.report import loss_plot_svg, moving_average, write_results_page, write_run_page

LOSSES = ("g_ab", "g_ba", "cycle_a", "cycle_b", "idt_ab", "idt_ba", "d_a", "d_b")


class Links(HTMLParser):
    """Collects img src / a href attributes and whether any <script> element appears."""

    def __init__(self) -> None:
        super().__init__()
        self.srcs: list[str] = []
        self.hrefs: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.srcs.append(attrs["src"])
        if tag == "a":
            self.hrefs.append(attrs["href"])
        if tag == "script":
            self.scripts += 1


def parse(path: Path) -> Links:
    links = Links()
    links.feed(path.read_text(encoding="utf-8"))
    return links


def png(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.RandomState(seed).randint(0, 256, (8, 12, 3), dtype=np.uint8)).save(path)
    return path


def write_log(run_dir: Path, n: int, *, offset: float = 1000.0) -> None:
    lines = []
    for i in range(n):
        rec = {"step": 50 * (i + 1), "epoch": 1 + i // 4, "lr": 2e-4, "time": offset + 10.0 * (i + 1)}
        rec.update({name: 0.1 + 0.05 * k + 0.01 * i for k, name in enumerate(LOSSES)})
        lines.append(json.dumps(rec))
    (run_dir / "losses.jsonl").write_text("\n".join(lines) + ("\n" if lines else ""))


def test_run_page_plots_every_loss_and_links_samples(tmp_path):
    run = tmp_path / "horse2zebra"
    run.mkdir()
    write_log(run, 6)
    (run / "config.yaml").write_text("model:\n  generator: resnet_9blocks\n")
    for step in (100, 2000, 300):
        png(run / "samples" / f"step_{step:07d}.png", seed=step)
    page = write_run_page(run)
    assert page == run / "index.html"
    text = page.read_text()
    assert "<h1>horse2zebra</h1>" in text and "resnet_9blocks" in text
    for name in LOSSES:
        assert re.search(rf'<polyline class="loss" data-loss="{name}"[^>]* points="[\d.,\s]+"', text), name
    assert "it/s</td><td>5</td>" in text  # 250 steps in 50 s
    srcs = parse(page).srcs
    assert srcs == ["samples/step_0002000.png", "samples/step_0000300.png", "samples/step_0000100.png"]
    assert all((run / unquote(s)).is_file() for s in srcs)
    assert text.index("step 2000") < text.index("step 300") < text.index("step 100")
    assert "http" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")  # no external assets
    assert not list(run.glob(".index.html*"))  # no temporary file left behind


def test_run_page_escapes_names_and_config(tmp_path):
    run = tmp_path / "<script>alert(1)"  # a folder name cannot hold the closing "/"
    run.mkdir()
    (run / "config.yaml").write_text("data:\n  dataroot: '</pre><script>alert(2)</script>'\n")
    write_log(run, 2)
    with (run / "losses.jsonl").open("a") as f:
        f.write(json.dumps({"step": 150, "<script>x</script>": 1.0}) + "\n")
    page = write_run_page(run)
    assert parse(page).scripts == 0
    text = page.read_text()
    assert "<h1>&lt;script&gt;alert(1)</h1>" in text and "&lt;/pre&gt;&lt;script&gt;alert(2)" in text


def test_run_page_with_empty_or_missing_log(tmp_path):
    run = tmp_path / "fresh"
    run.mkdir()
    text = write_run_page(run).read_text()  # no log, no config, no samples
    assert "No losses logged yet" in text and "No config.yaml" in text and "<svg" not in text
    write_log(run, 0)
    assert "No losses logged yet" in write_run_page(run).read_text()
    (run / "losses.jsonl").write_text('{"step": 10, "g_ab": 0.5}\n{"step": 20, "g_')  # a line mid-write
    text = write_run_page(run).read_text()
    assert 'data-loss="g_ab"' in text and "<circle" in text  # a single point is still drawn


def test_loss_plot_scales_and_smoothing():
    many = [{"step": i, "time": float(i), "d_a": 0.3 + 0.1 * (i % 2), "wgan": -1.0 + i / 1000} for i in range(1, 2001)]
    svg = loss_plot_svg(many, max_points=300)
    assert "linear scale, moving average" in svg  # a negative loss rules out a log axis
    for name in ("d_a", "wgan"):
        points = re.search(rf'data-loss="{name}"[^>]* points="([^"]+)"', svg).group(1).split()
        assert 2 <= len(points) <= 301
    assert "log scale" in loss_plot_svg([{"step": 1, "a": 1.0}, {"step": 2, "a": 100.0}])
    flat = loss_plot_svg([{"step": 5, "a": 0.0}, {"step": 5, "a": 0.0}])  # zero ranges on both axes
    assert "nan" not in flat and "inf" not in flat
    assert moving_average([1.0, 3.0, 5.0, 7.0], 2) == [1.0, 2.0, 4.0, 6.0]


def test_results_page_renders_rows_and_summary(tmp_path):
    out = tmp_path / "demo"
    png(out / "images" / "a 1.png")
    png(out / "images" / "b.png", seed=1)
    rows = [
        {"name": "a 1", "input": "images/a 1.png", "output": out / "images" / "b.png", "l1": 0.123456},
        {"name": "<b>bold</b>", "input": "images/b.png", "l1": 0.5},  # no output image: empty cell
    ]
    columns = [("Name", "name", "text"), ("Input", "input", "image"), ("Output", "output", "image"),
               ("L1", "l1", "text")]
    summary = {"mean L1 (translation vs ground truth)": 0.31, "mean L1 (identity baseline)": 0.42,
               "training time": "12.3 s"}
    page = write_results_page(out, rows, title="Demo <results>", columns=columns, summary=summary)
    text = page.read_text()
    assert page == out / "index.html"
    assert "<title>Demo &lt;results&gt;</title>" in text and "&lt;b&gt;bold&lt;/b&gt;" in text
    assert "0.1235" in text and "identity baseline" in text and "12.3 s" in text
    assert text.index("identity baseline") < text.index('<table class="results">')
    srcs = parse(page).srcs
    assert srcs == ["images/a%201.png", "images/b.png", "images/b.png"]
    assert all((out / unquote(s)).is_file() for s in srcs)
    assert text.count("<tr>") == 3 + 3  # summary rows + header + 2 rows


def test_results_page_rejects_unknown_column_kind(tmp_path):
    import pytest

    with pytest.raises(ValueError, match="image, text"):
        write_results_page(tmp_path, [], title="t", columns=[("x", "x", "video")])
