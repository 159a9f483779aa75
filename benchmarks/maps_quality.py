"""Benchmark: aerial -> map quality on the real maps data, trained unpaired, scored against the true pairs.

Trains CycleGAN and "GAN alone" (no cycle, no identity loss) on `trainA` / `trainB` of maps_128 with
the same budget (each A image meets a random B image: unpaired), translates `testA` and scores the
results against `testB` (same file names) with the maps protocol of the literature (256x256
bilinear; RMSE and pixel accuracy at δ = 5 and 10, see `cyclegan.metrics.paired`), next to three
trivial baselines: output = input, and constant images of the mean and of the median trainB colour
(the median is the background colour of most tiles, a much stronger baseline than the mean).

The default budget fits ~20 minutes on 2 CPU cores: resnet_6blocks at width 32, trained on 64 px
crops of the 128 px images (translation runs on the whole 128 px image), 2 epochs (1 constant + 1
linear decay) of 1096 steps. Every other setting is the paper's (LSGAN, λ = 10, identity 0.5,
pool 50, Adam 2e-4 / 0.5, batch 1).

    python3 benchmarks/maps_quality.py [--data ../shared/data/maps_128] [--epochs 1 1] [--ngf 32] [--crop 64]

With `--work DIR`, a run already finished there is reused (only translated and scored again: e.g.
with other `--palette-colors` / `--palette-median`). One JSON per seed; `--merge-seeds` makes one table of
several (mean ± sample std, and each seed's value):

    python3 benchmarks/maps_quality.py --merge-seeds seed0.json seed1.json seed2.json --json seeds.json
"""

from __future__ import annotations

import argparse
import itertools
import json
import logging
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cyclegan.checkpoint import load_checkpoint
from cyclegan.config import Config, build_config
from cyclegan.data.image_io import find_images, load_image
from cyclegan.data.palette import load_palette, snap
from cyclegan.inference import load_generator, load_translation, translate_paths
from cyclegan.metrics.paired import paired_metrics
from cyclegan.training.loop import train

sys.path.insert(0, str(Path(__file__).parent))
from train_speed import cpu_name  # noqa: E402

METHODS = {
    "CycleGAN": [],
    "GAN alone": ["loss.lambda_a=0", "loss.lambda_b=0", "loss.lambda_identity=0"],
}
# Published full-scale anchors (256 px, 200 epochs), from GcGAN (Fu et al. CVPR 2019), Table 2.
PUBLISHED = {"CycleGAN": (28.15, 41.8), "GAN alone": (33.27, 19.3)}
METRICS = ("rmse", "acc@5", "acc@10")


def train_b_colours(train_b: Path) -> dict[str, np.ndarray]:
    """The mean and the per-channel median colour over every trainB pixel, as uint8 RGB."""
    pixels = np.concatenate([np.asarray(load_image(p)).reshape(-1, 3) for p in find_images(train_b)])
    return {"mean": np.rint(pixels.mean(0)).astype(np.uint8), "median": np.median(pixels, 0).astype(np.uint8)}


def constant_images(colour: np.ndarray, test_a: Path, out: Path) -> Path:
    """A constant image of `colour` for every testA name."""
    out.mkdir(parents=True, exist_ok=True)
    for p in find_images(test_a):
        w, h = Image.open(p).size
        Image.fromarray(np.broadcast_to(colour, (h, w, 3)).copy()).save(out / f"{p.stem}.png")
    return out


def train_and_translate(name: str, overrides: list[str], args: argparse.Namespace, work: Path) -> dict:
    if args.preset:  # the preset's own budget and settings; only the seed and logging are set here
        cfg = build_config(["maps_128", args.preset], [
            f"train.seed={args.seed}", "data.num_workers=1", "train.log_every=100", "train.sample_every=1000000",
            "train.checkpoint_every=1000000", "train.keep_epoch_checkpoints=0",
            f"data.max_dataset_size={args.max_train if args.max_train else 'null'}", *overrides, *args.set])
        return _train(name, cfg, args, work)
    cfg = build_config(["maps_128"], [
        f"model.ngf={args.ngf}", f"model.ndf={args.ngf}", "data.preprocess=crop", f"data.crop_size={args.crop}",
        f"optim.n_epochs={args.epochs[0]}", f"optim.n_epochs_decay={args.epochs[1]}", "data.num_workers=1",
        f"train.seed={args.seed}", f"train.precision={args.precision}", f"train.merge_passes={args.merge}",
        f"train.low_precision_discriminators={args.low_precision_discriminators}",
        "train.log_every=100", "train.sample_every=1000000",
        "train.checkpoint_every=1000000", "train.keep_epoch_checkpoints=0",
        f"data.max_dataset_size={args.max_train if args.max_train else 'null'}", *overrides, *args.set,
    ])
    return _train(name, cfg, args, work)


def _train(name: str, cfg, args: argparse.Namespace, work: Path) -> dict:
    """Train (or finish a run already in `work`), then translate testA with the run's generator (its
    EMA when trained with one) and, with `--raw-weights-too`, with its raw weights as well."""
    run_dir = work / name.replace(" ", "_")
    reuse = (run_dir / "checkpoints" / "latest.pt").exists()
    if reuse:  # a run trained with other settings would be scored under this command's name
        trained = Config.from_dict(load_checkpoint(run_dir)["config"])
        if (_effective(trained), trained.train.seed) != (_effective(cfg), cfg.train.seed):
            sys.exit(f"{run_dir} holds a run with other settings ({_effective(trained)}, seed {trained.train.seed}) "
                     f"than these ({_effective(cfg)}, seed {cfg.train.seed}); use another --work folder")
    t0 = time.perf_counter()
    progress = train(None if reuse else args.data, run_dir, cfg, resume=reuse, progress=False)
    train_s = time.perf_counter() - t0
    out = work / f"{run_dir.name}_fake_B"
    translate_paths(load_generator(run_dir, "AtoB"), [args.data / "testA"], out, batch_size=8, progress=False,
                    skip_existing=reuse)
    result = {"out": out, "steps": progress.step, "settings": _effective(cfg)}
    if not reuse:  # a reused run's training time is in the JSON of the run that trained it
        result["train_s"] = train_s
    if args.raw_weights_too and cfg.train.ema:
        raw = work / f"{run_dir.name}_raw_fake_B"
        translate_paths(load_translation(run_dir, "AtoB", reverse=False, ema=False).generator, [args.data / "testA"],
                        raw, batch_size=8, progress=False, skip_existing=reuse)
        result["raw"] = raw
    return result


def _effective(cfg) -> dict:
    """The settings that decide a run's quality, as the run used them (a preset's, not the defaults)."""
    return {"generator": cfg.model.generator, "ngf": cfg.model.ngf, "ndf": cfg.model.ndf,
            "crop": cfg.data.crop_size if cfg.data.preprocess != "none" else "whole image",
            "epochs": [cfg.optim.n_epochs, cfg.optim.n_epochs_decay], "precision": cfg.train.precision,
            "merge_passes": cfg.train.merge_passes, "compile": cfg.train.compile, "ema": cfg.train.ema,
            "low_precision_discriminators": cfg.train.low_precision_discriminators}


def merge_seeds(paths: list[Path]) -> dict:
    """One table of several seeds' JSONs (same rows): each metric's mean, sample std and per-seed values."""
    runs = [json.loads(p.read_text()) for p in paths]
    seeds = [r["settings"]["seed"] for r in runs]
    rows = []
    for i, first in enumerate(runs[0]["rows"]):
        same = [r["rows"][i] for r in runs]
        if any(s["method"] != first["method"] for s in same):
            sys.exit(f"the JSONs do not have the same rows (row {i}: {[s['method'] for s in same]})")
        row = {"method": first["method"], "n": len(same), "seeds": seeds, "images": first["images"]}
        for key in (*METRICS, "train_s", "steps"):
            values = [s[key] for s in same if key in s]
            if values:
                row.update({key: float(np.mean(values)), f"{key}.std": float(np.std(values, ddof=1)) if len(values) > 1
                            else 0.0, f"{key}.per_seed": values})
        rows.append(row)
    settings = {k: v for k, v in runs[0]["settings"].items() if k != "seed"}
    return {"settings": {**settings, "seeds": seeds}, "machine": runs[0]["machine"], "rows": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared/data/maps_128")
    ap.add_argument("--epochs", type=int, nargs=2, default=[1, 1], metavar=("CONSTANT", "DECAY"))
    ap.add_argument("--ngf", type=int, default=32, help="generator and discriminator width")
    ap.add_argument("--crop", type=int, default=64, help="training crop size (translation uses the whole image)")
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="train.precision")
    ap.add_argument("--merge", action="store_true", help="train.merge_passes (same maths, faster)")
    ap.add_argument("--low-precision-discriminators", action="store_true",
                    help="train.low_precision_discriminators (bf16 discriminators too)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-train", type=int, help="use only the first N training images (a quick smoke run)")
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--work", type=Path, help="keep runs and outputs here (default: a temporary folder)")
    ap.add_argument("--preset", help="train with this preset's settings and budget (e.g. maps_128_fast) instead of "
                    "--ngf/--crop/--epochs/--precision")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override (repeatable)")
    ap.add_argument("--palette-colors", type=int, nargs="*", default=[], metavar="K",
                    help="also score the translations snapped to K colours fitted to trainB (translate --palette)")
    ap.add_argument("--palette-median", type=int, nargs="+", default=[0], metavar="N",
                    help="with --palette-colors: median-filter the outputs over N x N pixels before snapping "
                         "(translate --palette-median); several: a row each (default 0: none)")
    ap.add_argument("--raw-weights-too", action="store_true",
                    help="with train.ema: also score the raw generator weights")
    ap.add_argument("--merge-seeds", type=Path, nargs="+", metavar="JSON",
                    help="merge these per-seed JSONs into one table (--json) instead of running")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/maps_quality.json"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.merge_seeds:
        args.json.write_text(json.dumps(merge_seeds(args.merge_seeds), indent=2) + "\n")
        print(f"wrote {args.json}")
        return
    if not (args.data / "testB").is_dir():
        sys.exit(f"maps data not found at {args.data}; pass --data DIR (with trainA/trainB/testA/testB)")

    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        rows = []
        colours = train_b_colours(args.data / "trainB")
        outputs = {"output = input": {"out": args.data / "testA"}}
        for stat, colour in colours.items():
            outputs[f"{stat} map colour {tuple(int(c) for c in colour)}"] = {
                "out": constant_images(colour, args.data / "testA", work / stat)}
        for name in args.methods:
            outputs[name] = train_and_translate(name, METHODS[name], args, work)
            took = f"in {outputs[name]['train_s']:.0f} s" if "train_s" in outputs[name] else "(reused)"
            print(f"{name}: trained {outputs[name]['steps']} steps {took}", flush=True)
            if "raw" in outputs[name]:
                outputs[f"{name} (raw weights, no EMA)"] = {"out": outputs[name].pop("raw")}
        trained = [n for n in outputs if n in args.methods or n.endswith("(raw weights, no EMA)")]
        for k in args.palette_colors:  # fitted on the training maps only: unpaired, no test image involved
            palette = load_palette(args.data / "trainB", k)
            for name, size in itertools.product(trained, args.palette_median):
                median = f", median {size}" if size else ""
                snapped = work / f"{name.replace(' ', '_')}_palette{k}{f'_median{size}' if size else ''}"
                snapped.mkdir(parents=True, exist_ok=True)
                for p in find_images(outputs[name]["out"]):
                    fake = snap(np.asarray(load_image(p)), palette, median=size)
                    Image.fromarray(fake).save(snapped / f"{p.stem}.png")
                outputs[f"{name} + palette {k}{median}"] = {"out": snapped}
        for name, o in outputs.items():
            result = paired_metrics(o["out"], args.data / "testB", max_images=None)
            row = {"method": name, "images": result.count, **{k: result.means[k] for k in METRICS}}
            row.update({k: round(o[k], 1) if isinstance(o[k], float) else o[k] for k in ("train_s", "steps") if k in o})
            rows.append(row)

    print(f"\nmaps_128 testA -> testB ({rows[0]['images']} images), maps protocol (256² bilinear)\n")
    print("| method | RMSE ↓ | acc δ=5 ↑ | acc δ=10 ↑ | train time | published RMSE / acc δ=5 (256 px, 200 ep) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        pub = PUBLISHED.get(r["method"])
        print(f"| {r['method']} | {r['rmse']:.2f} | {100 * r['acc@5']:.1f} % | {100 * r['acc@10']:.1f} % | "
              f"{(str(round(r['train_s'])) + ' s') if 'train_s' in r else '-'} | "
              f"{f'{pub[0]} / {pub[1]} %' if pub else '-'} |")
    machine = {"cpu": cpu_name(), "threads": torch.get_num_threads(),
               "torch": torch.__version__, "python": platform.python_version()}
    trained = next((o["settings"] for o in outputs.values() if "settings" in o), {})
    settings = {**trained, "seed": args.seed, "data": str(args.data), "preset": args.preset, "max_train": args.max_train,
                "set": args.set,
                "palette_colors": args.palette_colors, "palette_median": args.palette_median}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"settings": settings, "machine": machine, "rows": rows}, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
