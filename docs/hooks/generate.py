"""MkDocs hook: the pages that are generated, not typed.

- `index.md` is the repository's README.md (one landing page for GitHub and the site), its links to
  `docs/...` rewritten to the site's paths;
- `contributing.md` and `changelog.md` are the repository's CONTRIBUTING.md and CHANGELOG.md;
- `benchmarks/*.md`: one page per `benchmarks/results/*.json` (what the benchmark scripts wrote), its
  settings and its rows as tables, and `benchmarks/index.md` listing them.

So a number on the site is always the one in the JSON file, and a stale hand-typed table cannot exist
on the benchmark pages.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "benchmarks" / "results"

GROUPS = [  # (title, file-name pattern, what the files measure)
    ("Training speed", r"^(train_|profile_|ddp_)", "seconds per training step, paired ratios against the float32 "
     "reference, where the time goes (`benchmarks/train_speed.py`, `profile_step.py`, `ddp_speed.py`)"),
    ("Translation speed", r"^(translate_|tiled_)", "images per second per backend and precision, tiled "
     "translation of a 12-megapixel photo (`benchmarks/translate_speed.py`, `tiled_translate.py`)"),
    ("Quality: maps", r"^(maps_|ablation_maps|baselines_maps|cut_maps)", "unpaired training on maps scored "
     "against the true pairs (`benchmarks/maps_quality.py`, `cyclegan reproduce`)"),
    ("Quality: facades and the FCN-score", r"^(facades_|fcn_|cut_facades)", "labels → photo with the "
     "FCN-score, photo → labels with segmentation metrics (`cyclegan reproduce`, `benchmarks/fcn_scorer.py`)"),
]


def _fmt(v) -> str:
    if isinstance(v, bool) or v is None:
        return str(v).lower() if isinstance(v, bool) else "—"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    if isinstance(v, (list, tuple)) and all(not isinstance(x, (dict, list)) for x in v):
        return ", ".join(_fmt(x) for x in v)
    return str(v).replace("|", "\\|").replace("\n", " ")


def _table(rows: list[dict]) -> str:
    """Rows of scalars as a markdown table; `key` and `key.std` become one `mean ± std` column."""
    cols: list[str] = []
    for r in rows:
        for k, v in r.items():
            if k not in cols and not k.endswith(".std") and not isinstance(v, dict):
                if isinstance(v, list) and any(isinstance(x, (dict, list)) for x in v):
                    continue
                cols.append(k)
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for k in cols:
            cell = _fmt(r.get(k))
            if f"{k}.std" in r and r[f"{k}.std"] is not None:
                cell += f" ± {_fmt(r[f'{k}.std'])}"
            cells.append(cell)
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def _kv(d: dict) -> str:
    scal = {k: v for k, v in d.items() if not isinstance(v, (dict, list)) or
            (isinstance(v, list) and all(not isinstance(x, (dict, list)) for x in v) and len(v) <= 12)}
    if not scal:
        return ""
    return "| key | value |\n|---|---|\n" + "\n".join(f"| {k} | {_fmt(v)} |" for k, v in scal.items())


def render(name: str, data) -> str:
    md = [f"# {name}", "", f"Generated from `benchmarks/results/{name}.json` when the site is built.", ""]
    if isinstance(data, list):
        data = {"rows": data}
    settings = _kv(data)
    if settings:
        md += ["## Settings", "", settings, ""]
    for key, value in data.items():
        if isinstance(value, dict) and value:
            if all(not isinstance(v, (dict, list)) for v in value.values()):
                md += [f"## {key}", "", _kv(value), ""]
            elif all(isinstance(v, dict) for v in value.values()):
                md += [f"## {key}", "", _table([{"": k, **v} for k, v in value.items()]), ""]
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            md += [f"## {key}", "", _table(value), ""]
    return "\n".join(md) + "\n"


def benchmark_pages() -> dict[str, str]:
    pages, listed = {}, {title: [] for title, _, _ in GROUPS}
    listed["Other"] = []
    for path in sorted(RESULTS.glob("*.json")):
        pages[f"benchmarks/{path.stem}.md"] = render(path.stem, json.loads(path.read_text()))
        group = next((t for t, pat, _ in GROUPS if re.search(pat, path.stem)), "Other")
        listed[group].append(path.stem)
    index = ["# Benchmarks", "",
             "Every page below is generated from a JSON file that a script in `benchmarks/` wrote "
             "(`benchmarks/results/`); the guides explain them ([Speed](../guides/speed.md), "
             "[Evaluating](../guides/evaluation.md), [The paper's experiments](../guides/experiments.md)). "
             "Machines differ by 2× and more in speed: compare ratios measured in one run, not absolute times "
             "across machines.", ""]
    notes = {t: d for t, _, d in GROUPS}
    for title, names in listed.items():
        if names:
            index += [f"## {title}", ""] + ([notes[title], ""] if title in notes else [])
            index += [f"- [{n}]({n}.md)" for n in names] + [""]
    pages["benchmarks/index.md"] = "\n".join(index)
    return pages


def landing_page() -> str:
    text = (ROOT / "README.md").read_text()
    text = re.sub(r"\]\(docs/", "](", text)
    text = text.replace("](benchmarks/results/)", "](benchmarks/index.md)")
    return text.replace("](CONTRIBUTING.md)", "](contributing.md)").replace("](CHANGELOG.md)", "](changelog.md)")


def on_files(files, config):
    generated = {"index.md": landing_page(),
                 "contributing.md": (ROOT / "CONTRIBUTING.md").read_text(),
                 "changelog.md": (ROOT / "CHANGELOG.md").read_text(),
                 **benchmark_pages()}
    for uri, content in generated.items():
        existing = files.get_file_from_path(uri)
        if existing is not None:
            files.remove(existing)
        files.append(File.generated(config, uri, content=content))
    return files
