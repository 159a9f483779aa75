"""Self-contained HTML pages: a training run's `index.html` and a generic results table.

The pages use no JavaScript and no external assets (inline CSS, inline SVG plot) and link images by
relative paths, so a run folder can be zipped and viewed anywhere. Every piece of text that comes
from a file or a caller is escaped. Pages are written atomically (temporary file, then rename), so a
browser refreshing during training never sees half a page.
"""

from __future__ import annotations

import html
import json
import math
import os
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .atomic import atomic_write_text

# Fields of a losses.jsonl record that are not losses.
LOG_FIELDS = ("step", "epoch", "lr", "time")
COLUMN_KINDS = ("image", "text")
PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)
SAMPLE_NAME = re.compile(r"step_(\d+)\.png")

CSS = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1100px; padding: 0 1em; color: #222; }
h1 { font-size: 1.5em; margin-bottom: .2em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
.muted { color: #666; } pre { background: #f5f5f5; padding: .8em; overflow-x: auto; font-size: .85em; }
.stats, .summary { border-collapse: collapse; } .stats td, .summary td { padding: .15em 1em .15em 0; }
.summary { background: #f3f7fb; border: 1px solid #c9d9ea; } .summary td { padding: .3em .8em; }
.legend span { display: inline-block; margin-right: 1em; font-size: .9em; }
.legend i { display: inline-block; width: 1.2em; height: .25em; vertical-align: middle; margin-right: .3em; }
figure { margin: 0 0 1.2em 0; } figcaption { font-size: .9em; color: #444; }
img { max-width: 100%; image-rendering: pixelated; }
table.results { border-collapse: collapse; } .results th, .results td { border: 1px solid #ddd; padding: .3em; }
.results td img { max-width: 256px; }
.warning { color: #8a3b00; }
"""


def _e(value: Any) -> str:
    """HTML-escaped text; a file name that is not valid UTF-8 shows its undecodable bytes as U+FFFD."""
    text = str(value)
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return html.escape(text, quote=True)


def _href(path: str | Path, base: Path) -> str:
    """A relative, URL-quoted and HTML-escaped link from a page in `base` to `path` (the name's bytes
    percent-encoded, so a name that is not valid UTF-8 still links to its file)."""
    path = Path(path)
    if path.is_absolute():
        path = Path(os.path.relpath(path, base))
    return _e(quote(os.fsencode(path.as_posix()), safe="/"))


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{_e(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n{body}\n</body>\n</html>\n"
    )


# ---------------------------------------------------------------------------------------------------
# Loss log and plot


def read_losses(path: str | Path) -> list[dict[str, Any]]:
    """The records of a losses.jsonl file; blank or unparsable lines (a line being written) are skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def loss_names(records: Iterable[Mapping[str, Any]]) -> list[str]:
    """Numeric fields other than LOG_FIELDS, in order of first appearance."""
    names: dict[str, None] = {}
    for r in records:
        for k, v in r.items():
            if k not in LOG_FIELDS and _is_number(v):
                names.setdefault(k, None)
    return list(names)


def moving_average(values: Sequence[float], window: int) -> list[float]:
    """Trailing moving average (the first points average over what exists so far)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def loss_plot_svg(
    records: Sequence[Mapping[str, Any]], *, width: int = 760, height: int = 320, max_points: int = 500
) -> str:
    """An inline SVG with one polyline per loss against the step, plus an HTML legend.

    Log-scaled y when every value is positive (losses of different sizes stay readable), linear
    otherwise; series with more than 100 points are smoothed by a moving average over 1% of them and
    thinned to `max_points`. Returns a short message when nothing is logged.
    """
    series: dict[str, tuple[list[float], list[float]]] = {}
    for name in loss_names(records):
        pts = [
            (float(r["step"]), float(r[name])) for r in records if _is_number(r.get(name)) and _is_number(r.get("step"))
        ]
        if pts:
            series[name] = ([p[0] for p in pts], [p[1] for p in pts])
    if not series:
        return '<p class="muted">No losses logged yet.</p>'
    smoothed = False
    for name, (xs, ys) in series.items():
        if len(ys) > 100:
            ys, smoothed = moving_average(ys, max(2, len(ys) // 100)), True
        stride = max(1, math.ceil(len(xs) / max_points))
        keep = list(range(0, len(xs), stride))
        if keep[-1] != len(xs) - 1:
            keep.append(len(xs) - 1)
        series[name] = ([xs[i] for i in keep], [ys[i] for i in keep])

    all_y = [y for _, ys in series.values() for y in ys]
    log_scale = min(all_y) > 0
    ty = (lambda y: math.log10(y)) if log_scale else (lambda y: y)
    x_lo = min(x for xs, _ in series.values() for x in xs)
    x_hi = max(x for xs, _ in series.values() for x in xs)
    y_lo, y_hi = ty(min(all_y)), ty(max(all_y))
    if x_hi == x_lo:
        x_lo, x_hi = x_lo - 1, x_hi + 1
    if y_hi == y_lo:
        pad = 0.5 if log_scale else max(abs(y_lo) * 0.1, 1e-3)
        y_lo, y_hi = y_lo - pad, y_hi + pad
    left, right, top, bottom = 64, 12, 10, 34
    pw, ph = width - left - right, height - top - bottom

    def px(x: float) -> float:
        return left + (x - x_lo) / (x_hi - x_lo) * pw

    def py(y: float) -> float:
        return top + (1 - (ty(y) - y_lo) / (y_hi - y_lo)) * ph

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" aria-label="training losses" font-size="11">',
        f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="#fff" stroke="#bbb"/>',
    ]
    for i in range(5):  # grid lines and tick labels
        gy = top + i * ph / 4
        value = y_hi - i * (y_hi - y_lo) / 4
        label = 10**value if log_scale else value
        parts.append(f'<line x1="{left}" x2="{left + pw}" y1="{gy:.1f}" y2="{gy:.1f}" stroke="#eee"/>')
        parts.append(f'<text x="{left - 4}" y="{gy + 4:.1f}" text-anchor="end">{_e(f"{label:.3g}")}</text>')
        gx = left + i * pw / 4
        step = x_lo + i * (x_hi - x_lo) / 4
        parts.append(f'<text x="{gx:.1f}" y="{top + ph + 14}" text-anchor="middle">{_e(f"{step:.0f}")}</text>')
    parts.append(f'<text x="{left + pw / 2}" y="{height - 4}" text-anchor="middle">step</text>')
    legend = []
    for k, (name, (xs, ys)) in enumerate(series.items()):
        color = PALETTE[k % len(PALETTE)]
        points = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys))
        parts.append(
            f'<polyline class="loss" data-loss="{_e(name)}" fill="none" stroke="{color}" stroke-width="1.5" '
            f'points="{points}"><title>{_e(name)}</title></polyline>'
        )
        if len(xs) == 1:  # a one-point polyline draws nothing
            parts.append(f'<circle cx="{px(xs[0]):.1f}" cy="{py(ys[0]):.1f}" r="3" fill="{color}"/>')
        legend.append(f'<span><i style="background:{color}"></i>{_e(name)}</span>')
    parts.append("</svg>")
    note = ("log scale" if log_scale else "linear scale") + (", moving average" if smoothed else "")
    return "\n".join(parts) + f'\n<div class="legend">{"".join(legend)} <span class="muted">({note})</span></div>'


def _progress(records: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    if not records:
        return [("progress", "no log lines yet")]
    last = records[-1]
    rows = [(k, _fmt(last[k])) for k in ("step", "epoch", "lr") if k in last]
    # it/s over the last stretch where step and time both increase (a resume may restart the clock).
    first = len(records) - 1
    while first > 0:
        a, b = records[first - 1], records[first]
        if not all(_is_number(r.get(k)) for r in (a, b) for k in ("step", "time")):
            break
        if not (a["step"] < b["step"] and a["time"] < b["time"]):
            break
        first -= 1
    a = records[first]
    if first < len(records) - 1:
        rows.append(("it/s", f"{(last['step'] - a['step']) / (last['time'] - a['time']):.3g}"))
    rows.append(("log lines", str(len(records))))
    return rows


# ---------------------------------------------------------------------------------------------------
# Pages


def sample_grids(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of `samples/step_XXXXXXX.png`, newest first."""
    samples = Path(run_dir) / "samples"
    if not samples.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in samples.iterdir() if (m := SAMPLE_NAME.fullmatch(p.name))]
    return sorted(found, key=lambda t: t[0], reverse=True)


EVAL_META = ("step", "epoch", "seconds", "metric", "value", "best", "source")


def evaluation_table(evals: Sequence[Mapping[str, Any]]) -> str:
    """The records of `evals.jsonl` as a table: one row per evaluation, one column per score; the
    row that set the best checkpoint is marked; `split` says what was scored (the validation split
    picks best.pt, the test split is only logged)."""
    columns = sorted({k for r in evals for k in r if k not in EVAL_META and _is_number(r[k])})
    best = max((i for i, r in enumerate(evals) if r.get("best")), default=None)
    head = "".join(f"<th>{_e(c)}</th>" for c in ("epoch", "step", "split", *columns))
    rows = []
    for i, r in enumerate(evals):
        cells = "".join(f"<td>{_e(_fmt(r.get(c, '')))}</td>" for c in ("epoch", "step", "split", *columns))
        mark = ' style="font-weight:bold"' if i == best else ""
        rows.append(f"<tr{mark}>{cells}</tr>")
    metric = evals[best].get("metric") if best is not None else None
    note = (f'<p class="muted">Bold: the evaluation that wrote checkpoints/best.pt (by {_e(metric)}).</p>'
            if metric else "")
    return f'<table class="results"><tr>{head}</tr>{"".join(rows)}</table>{note}'


def write_run_page(run_dir: str | Path) -> Path:
    """Write `run_dir/index.html`: progress, loss plot, config and sample grids; returns its path."""
    run_dir = Path(run_dir)
    name = run_dir.resolve().name
    records = read_losses(run_dir / "losses.jsonl")
    config_file = run_dir / "config.yaml"
    config = config_file.read_text(encoding="utf-8", errors="replace") if config_file.is_file() else None

    body = [
        f"<h1>{_e(name)}</h1>",
        f'<p class="muted">CycleGAN training run · page written {_e(time.strftime("%Y-%m-%d %H:%M:%S"))}</p>',
        '<table class="stats">'
        + "".join(f"<tr><td>{_e(k)}</td><td>{_e(v)}</td></tr>" for k, v in _progress(records))
        + "</table>",
        "<h2>Losses</h2>",
        loss_plot_svg(records),
    ]
    if records:
        body.append('<p><a href="losses.jsonl">losses.jsonl</a></p>')
    evals = read_losses(run_dir / "evals.jsonl")
    if evals:
        warnings = evals[-1].get("warnings") or []
        if warnings:
            body += ['<h2 class="warning">Warnings (latest evaluation)</h2>',
                     "<ul>" + "".join(f'<li class="warning">{_e(w)}</li>' for w in warnings) + "</ul>"]
        body += ["<h2>Evaluation</h2>", evaluation_table(evals), '<p><a href="evals.jsonl">evals.jsonl</a></p>']
    body.append("<h2>Config</h2>")
    body.append(f"<pre>{_e(config)}</pre>" if config is not None else '<p class="muted">No config.yaml.</p>')
    body.append("<h2>Samples</h2>")
    grids = sample_grids(run_dir)
    if not grids:
        body.append('<p class="muted">No sample grids yet.</p>')
    for step, path in grids:
        src = _href(path.relative_to(run_dir), run_dir)
        body.append(
            f'<figure><a href="{src}"><img src="{src}" alt="samples at step {step}" loading="lazy"></a>'
            f"<figcaption>step {step}</figcaption></figure>"
        )
    return atomic_write_text(run_dir / "index.html", _page(f"{name} · CycleGAN run", "\n".join(body)))


def write_results_page(
    out_dir: str | Path,
    rows: Sequence[Mapping[str, Any]],
    *,
    title: str,
    columns: Sequence[tuple[str, str, str]],
    summary: Mapping[str, Any] | None = None,
    filename: str = "index.html",
) -> Path:
    """Write a results table to `out_dir/filename`: an optional summary box, then one row per item.

    Args:
        rows: one dict per table row; image cells hold paths (relative to `out_dir`, or absolute),
            text cells any value (floats are shown with 4 significant digits). Missing keys give
            empty cells.
        columns: (header, key, kind) per column, kind "image" or "text".
        summary: label -> value pairs shown above the table (e.g. mean L1 errors, training time).
    """
    out_dir = Path(out_dir)
    for header, _, kind in columns:
        if kind not in COLUMN_KINDS:
            raise ValueError(f"column {header!r} has unknown kind {kind!r}; choose one of: {', '.join(COLUMN_KINDS)}")
    body = [f"<h1>{_e(title)}</h1>"]
    if summary:
        body.append(
            '<table class="summary">'
            + "".join(f"<tr><td>{_e(k)}</td><td><b>{_e(_fmt(v))}</b></td></tr>" for k, v in summary.items())
            + "</table>"
        )
    head = "".join(f"<th>{_e(header)}</th>" for header, _, _ in columns)
    lines = [f'<table class="results">\n<tr>{head}</tr>']
    for row in rows:
        cells = []
        for header, key, kind in columns:
            value = row.get(key)
            if value is None:
                cells.append("<td></td>")
            elif kind == "image":
                src = _href(value, out_dir)
                cells.append(f'<td><a href="{src}"><img src="{src}" alt="{_e(header)}" loading="lazy"></a></td>')
            else:
                cells.append(f"<td>{_e(_fmt(value))}</td>")
        lines.append(f"<tr>{''.join(cells)}</tr>")
    lines.append("</table>")
    body.append("\n".join(lines))
    return atomic_write_text(out_dir / filename, _page(title, "\n".join(body)))
