"""Benchmark: `cyclegan demo` with other settings, within the demo's budget (its 2,800 steps); the
demo preset uses the recipe that won here ("resize + augmentation").

Runs the demo (synthetic aerial <-> map tiles, trained unpaired; `cyclegan.demo`) once per recipe
into OUT/<recipe>, then scores the 12 held-out tiles both ways against their true pairs: mean L1 in
grey levels, and the checkerboard score of the failure detectors (`metrics.failures.periodic_energy`
of the outputs over that of the true images: about 1 is as smooth as the real tiles). Prints a
markdown table, writes JSON, and with `--montage RECIPE` the README picture (aerial | G(aerial) | true
map | F(true map), the first 4 tiles) from that recipe's outputs.

    python3 benchmarks/demo_recipes.py --out runs/demo_recipes [--recipes paper resize antialias] \\
        [--json benchmarks/results/demo_recipes.json] [--montage "resize + augmentation" docs/demo.jpg]

A finished recipe in OUT is reused (scored again, not retrained; its time is the one measured when it
was trained). Time each recipe with nothing else running: two trainings at once on 2 cores slow each
other several times.
"""

from __future__ import annotations

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from cyclegan.data.image_io import find_images, load_image
from cyclegan.demo import run_demo
from cyclegan.metrics.failures import periodic_energy
from cyclegan.metrics.paired import l1

sys.path.insert(0, str(Path(__file__).parent))
from train_speed import cpu_name  # noqa: E402

NO_AUGMENTATION = "loss.diffaugment="
RECIPES = {  # each names every setting it changes, so a row means the same whatever the demo preset is
    "paper": ["model.upsample=transpose", NO_AUGMENTATION],  # transposed convolutions (the demo's first recipe)
    "resize": ["model.upsample=resize", NO_AUGMENTATION],  # nearest x2 + 3x3 conv (Odena et al. 2016; the FAQ)
    "antialias": ["model.upsample=antialias", NO_AUGMENTATION],  # CUT's blur upsampling
    "resize + augmentation": ["model.upsample=resize", "loss.diffaugment=color,translation,cutout"],  # the demo
    "resize + GP": ["model.upsample=resize", NO_AUGMENTATION, "loss.r1_gamma=1", "loss.r1_on=mix"],
}
PAIRS = {"G(aerial)": ("fake_b", "real_b"), "F(map)": ("fake_a", "real_a")}


def rgb(path: Path) -> np.ndarray:
    return np.asarray(load_image(path))


def score(out: Path) -> dict[str, float]:
    """Mean L1 (grey levels) and checkerboard score of each direction's outputs against the true pairs."""
    scores = {}
    for name, (fake, real) in PAIRS.items():
        paths = find_images(out / "results" / fake)
        fakes = [rgb(p) for p in paths]
        reals = [rgb(out / "results" / real / p.name) for p in paths]
        scores[f"{name} L1"] = float(np.mean([l1(f, r) for f, r in zip(fakes, reals)]))
        scores[f"{name} checkerboard"] = float(np.mean([periodic_energy(f) for f in fakes])
                                               / np.mean([periodic_energy(r) for r in reals]))
    return scores


def montage(out: Path, path: Path, rows: int = 4) -> None:
    """aerial | G(aerial) | true map | F(true map) for the first `rows` held-out tiles."""
    names = [p.name for p in find_images(out / "results" / "real_a")][:rows]
    tiles = [[load_image(out / "results" / col / n) for col in ("real_a", "fake_b", "real_b", "fake_a")]
             for n in names]
    w, h = tiles[0][0].size
    sheet = Image.new("RGB", (4 * w, rows * h))
    for r, row in enumerate(tiles):
        for c, tile in enumerate(row):
            sheet.paste(tile, (c * w, r * h))
    sheet.save(path, quality=90)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True, help="one demo folder per recipe")
    ap.add_argument("--recipes", nargs="+", default=["paper", "resize", "resize + augmentation"], choices=list(RECIPES))
    ap.add_argument("--steps", type=int, help="training steps (default: the demo preset's 2,800; fewer: a smoke run)")
    ap.add_argument("--json", type=Path, help="write the table here")
    ap.add_argument("--montage", nargs=2, metavar=("RECIPE", "IMAGE"), help="the README picture from RECIPE's outputs")
    args = ap.parse_args()

    rows = []
    for name in args.recipes:
        out = args.out / name.replace(" + ", "_")
        timing = out / "demo_seconds.json"  # the time of the call that trained it, kept for reuse
        if not timing.is_file():
            t0 = time.perf_counter()
            run_demo(out, steps=args.steps, overrides=RECIPES[name], progress=False)
            timing.write_text(json.dumps({"demo seconds": round(time.perf_counter() - t0, 1)}))
        rows.append({"recipe": name, "settings": RECIPES[name], **json.loads(timing.read_text()), **score(out)})
        print(json.dumps(rows[-1]), flush=True)

    keys = [k for k in rows[0] if k not in ("recipe", "settings")]
    print("\n| recipe | " + " | ".join(keys) + " |\n|---|" + "---|" * len(keys))
    for r in rows:
        cells = [f"{r[k]:.2f}" if isinstance(r[k], float) else str(r[k]) for k in keys]
        print(f"| {r['recipe']} | " + " | ".join(cells) + " |")
    if args.json:
        args.json.write_text(json.dumps({
            "benchmark": "demo_recipes", "machine": cpu_name(), "python": platform.python_version(),
            "command": "python3 benchmarks/demo_recipes.py " + shlex.join(sys.argv[1:]),
            "protocol": "cyclegan demo (2,800 steps, 400 synthetic training tiles), 12 held-out tiles; L1 in grey "
                        "levels against the true pairs; checkerboard: periodic_energy of the outputs / of the true images",
            "rows": rows,
        }, indent=1) + "\n")
    if args.montage:
        recipe, image = args.montage
        montage(args.out / recipe.replace(" + ", "_"), Path(image))


if __name__ == "__main__":
    main()
