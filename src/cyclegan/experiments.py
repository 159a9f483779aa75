"""The paper's experiments as configurations: the loss ablation (Sec. 5.1.4, Tables 4-5), the
baselines that are variants of the same objective, and `reproduce`, which trains each variant,
evaluates it and writes a table shaped like the paper's.

Every variant is a list of config overrides on top of the user's config (e.g. a preset), so an
ablation is the same networks and training details with one loss term changed, as in the paper.
The ablation rows run without the identity loss (the paper uses it only for painting -> photo), and
"CycleGAN + identity" adds it back as its own row. A baseline with other networks (pix2pix, BiGAN,
CoGAN) is a method (`cyclegan.methods`) chosen by `model.method`, trained by the same loop.

The tables here import no torch (`cyclegan reproduce --help` lists them); the training and scoring
functions import it when called.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .atomic import atomic_write_text
from .config import Config, build_config

logger = logging.getLogger(__name__)

NO_IDENTITY = "loss.lambda_identity=0"
ABLATION: dict[str, list[str]] = {
    "Cycle alone": [NO_IDENTITY, "loss.lambda_gan=0"],
    "GAN alone": [NO_IDENTITY, "loss.lambda_a=0", "loss.lambda_b=0"],
    "GAN + forward cycle": [NO_IDENTITY, "loss.lambda_b=0"],  # only |F(G(a)) - a|
    "GAN + backward cycle": [NO_IDENTITY, "loss.lambda_a=0"],  # only |G(F(b)) - b|
    "CycleGAN": [NO_IDENTITY],
    "CycleGAN + identity": [],  # identity loss 0.5 lambda, the official default
}


BASELINES: dict[str, list[str]] = {
    # SimGAN (Shrivastava et al. 2017) as the paper adapts it: adversarial loss + an L1 term keeping
    # the translation close to its input, no cycle.
    "SimGAN": [NO_IDENTITY, "loss.lambda_a=0", "loss.lambda_b=0", "loss.lambda_self_reg=10"],
    # "Feature loss + GAN" (Sec. 5.1.3): SimGAN with its L1 term computed on VGG-16 relu4_2 features,
    # |phi(G(a)) - phi(a)|, no cycle. The paper gives no weight. Features are on another scale than
    # pixels (ImageNet-normalised inputs, unbounded ReLU activations), so SimGAN's 10 does not carry
    # over; 2.5 is the weight pix2pixHD (Wang et al. 2018) gives its L1 on relu4_1 VGG features next
    # to an LSGAN loss of weight 1, as here (10 x 1/4 in its VGGLoss).
    "Feature loss + GAN": [NO_IDENTITY, "loss.lambda_a=0", "loss.lambda_b=0", "loss.lambda_feature=2.5"],
    # BiGAN/ALI as the paper adapts them: G and F against one discriminator on (a, G(a)) vs (F(b), b).
    "BiGAN/ALI": [NO_IDENTITY, "model.method=bigan", "loss.pool_size=0"],
    "GAN alone": ABLATION["GAN alone"],
    "CycleGAN": ABLATION["CycleGAN"],
    # The paired upper bound, with pix2pix's own settings (Isola et al. 2017): U-Net, batch norm,
    # dropout, vanilla GAN, L1 x 100, no pool, trained on the pairs (trainA/trainB by name).
    "pix2pix": [NO_IDENTITY, "model.method=pix2pix", "data.mode=aligned", "loss.pool_size=0", "loss.gan_mode=vanilla",
                "loss.lambda_l1=100", "model.generator=unet_256", "model.norm=batch", "model.dropout=true"],
    # Coupled GANs (Liu & Tuzel 2016) with CoGAN's own settings: DCGAN networks at the crop size
    # (every image resized to it), vanilla GAN, no pool; translation by latent search (methods.cogan).
    "CoGAN": [NO_IDENTITY, "model.method=cogan", "loss.pool_size=0", "loss.gan_mode=vanilla",
              "data.preprocess=resize_and_crop"],
}
EXPERIMENTS = {"ablation": ABLATION, "baselines": BASELINES}
# SMALL fits a laptop CPU (the maps benchmark's setting: width 32, 64 px crops of the images,
# 1 + 1 epochs; best.pt picked after each epoch on 50 images per domain held out of training);
# PAPER keeps the config as given (the paper's 100 + 100 epochs by default).
BUDGETS: dict[str, list[str]] = {
    "small": ["model.generator=resnet_6blocks", "model.ngf=32", "model.ndf=32", "data.preprocess=crop",
              "data.crop_size=64", "optim.n_epochs=1", "optim.n_epochs_decay=1", "train.sample_every=500",
              "eval.every_epochs=1", "eval.split=val", "eval.holdout=50"],
    "paper": [],
}
# Per-budget adjustments of a variant, applied after its own overrides: the U-Net cannot take the
# small budget's 64 px crops (7 stride-2 levels need 128 px), so pix2pix trains on whole 128 px images.
# CoGAN resizes whole images to its square size (load_size = crop_size).
VARIANT_BUDGETS: dict[str, dict[str, list[str]]] = {
    "pix2pix": {"small": ["model.generator=unet_128", "data.crop_size=128"]},
    # CoGAN's latent search (seconds per image) makes evaluating during training too slow: it keeps no best.pt.
    "CoGAN": {"small": ["data.load_size=64", "eval.every_epochs=0"], "paper": ["data.load_size=256"]},
}
# Published full-scale numbers on maps (aerial -> map, 256 px, 200 epochs; GcGAN, Fu et al. CVPR 2019,
# Table 2), for orientation only: RMSE and pixel accuracy at delta 5.
PUBLISHED_MAPS = {"CycleGAN": (28.15, 0.418), "GAN alone": (33.27, 0.193)}


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def variant_config(experiment: str, name: str, budget: str = "small", configs: Sequence[str] = (),
                   overrides: Sequence[str] = ()) -> Config:
    """The config of one variant: the user's configs, then the budget, the variant's overrides, its
    per-budget adjustments, and the user's overrides last; checked against its method's rules."""
    from .methods import check_config  # lazy: the tables above stay torch-free for --help

    cfg = build_config(list(configs), [*BUDGETS[budget], *EXPERIMENTS[experiment][name],
                                       *VARIANT_BUDGETS.get(name, {}).get(budget, []), *overrides])
    check_config(cfg)
    return cfg


def reproduce(
    experiment: str, data: str | Path, out: str | Path, *, budget: str = "small", configs: Sequence[str] = (),
    overrides: Sequence[str] = (), variants: Sequence[str] | None = None, max_test: int | None = None,
    segmentation: str | None = None, seeds: Sequence[int] | None = None, device: str | None = None,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Train, evaluate and tabulate the variants of `experiment` ("ablation" or "baselines").

    Each variant trains in `out/<variant>` (with `seeds`, once per seed in `out/<variant>-seed<k>`,
    `train.seed=k`); a finished run is not trained again and an interrupted one is resumed, so
    re-running the command after a crash or Ctrl-C continues where it stopped. Scores come from
    `evaluation.evaluate_checkpoint` on the test split (paired metrics when it is paired, cycle error
    always), plus segmentation scores of the A -> B translations with `segmentation` ("cityscapes",
    "facades" or a palette file) for photo -> labels, for the final checkpoint and, when the run kept
    one, the checkpoint selected on its validation split (`best.pt`); never one selected on the test
    split. Writes `out/results.json` and `out/results.md` and returns the rows: per variant its final
    checkpoints' scores (`checkpoint` "final"), then those of the validation-selected ones
    ("selected"), each the mean over the seeds with `<metric>.std` (sample standard deviation) and `n`.
    """
    # lazy (here and below): keeps the torch-free tables importable by the CLI's --help
    from .data.image_io import paired_files

    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; choose one of: {', '.join(EXPERIMENTS)}")
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; choose one of: {', '.join(BUDGETS)}")
    table = EXPERIMENTS[experiment]
    chosen = list(variants or table)
    unknown = [v for v in chosen if v not in table]
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(map(repr, unknown))}; choose from: {', '.join(table)}")
    if seeds is not None and (not seeds or len(set(seeds)) != len(seeds)):
        raise ValueError("--seeds needs one or more different seeds")
    data, out = Path(data), Path(out)
    runs = [(name, seed) for name in chosen for seed in (seeds if seeds is not None else [None])]
    cfgs = {(name, seed): variant_config(experiment, name, budget, configs,
                                         [*overrides, *([f"train.seed={seed}"] if seed is not None else [])])
            for name, seed in runs}
    if segmentation:  # photo -> labels is scored against testB's label maps: fail before any training
        paired_files(data / "testA", data / "testB")
    records = []
    for name, seed in runs:
        run_dir = out / (slug(name) if seed is None else f"{slug(name)}-seed{seed}")
        _train_variant(name, run_dir, data, cfgs[name, seed], device, progress)
        records.append({"variant": name, "seed": cfgs[name, seed].train.seed, "run_dir": str(run_dir),
                        **_scores(run_dir, data, max_test, segmentation, device)})
    rows = summary_rows(records)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", json.dumps({"experiment": experiment, "budget": budget, "data": str(data),
                                                        "configs": list(configs), "overrides": list(overrides),
                                                        "seeds": seeds, "rows": rows, "runs": records}, indent=2) + "\n")
    atomic_write_text(out / "results.md", markdown_table(rows) + "\n")
    return rows


def _train_variant(name: str, run_dir: Path, data: Path, cfg: Config, device: str | None, progress: bool) -> None:
    """Train one variant's run to its end: anew, resumed, or not at all when it has finished."""
    from .checkpoint import load_checkpoint  # lazy: as above
    from .training.loop import train

    if not (run_dir / "checkpoints" / "latest.pt").exists():
        logger.info("%s: training in %s", name, run_dir)
        train(data, run_dir, cfg, device=device, progress=progress)
        return
    ckpt = load_checkpoint(run_dir)
    if not _same_training(Config.from_dict(ckpt["config"]), cfg):
        raise ValueError(f"{run_dir} holds a run with another config; use another --out or remove it")
    if ckpt["progress"]["epoch"] <= cfg.optim.n_epochs + cfg.optim.n_epochs_decay:
        logger.info("%s: resuming at epoch %d", name, ckpt["progress"]["epoch"])
        train(data, run_dir, resume=True, device=device, progress=progress)


def _same_training(a: Config, b: Config) -> bool:
    """Whether two configs train the same run: equal except where the feature network's weights are
    read from (a local file or the download cache). Fields added since a run was written take their
    defaults (`Config.from_dict`)."""
    def strip(c: Config) -> Config:
        return dataclasses.replace(c, loss=dataclasses.replace(c.loss, feature_weights=None))

    return strip(a) == strip(b)


def _scores(run_dir: Path, data: Path, max_test: int | None, segmentation: str | None,
            device: str | None) -> dict[str, Any]:
    """{"final": scores of the last checkpoint, "selected": those of the validation-selected one
    (None if the run kept none) and "selected_epoch"}, cached in `run_dir/reproduce_scores.json` by
    checkpoint step."""
    from .checkpoint import load_checkpoint  # lazy: as above
    from .evaluation import selected_checkpoint

    cache_file = run_dir / "reproduce_scores.json"
    cache = json.loads(cache_file.read_text()) if cache_file.exists() else {}
    out: dict[str, Any] = {"final": None, "selected": None, "selected_epoch": None}
    best = selected_checkpoint(run_dir)
    for kind, checkpoint in (("final", run_dir / "checkpoints" / "latest.pt"), ("selected", best)):
        if checkpoint is None:
            continue
        progress = load_checkpoint(checkpoint)["progress"]
        key = {"step": progress["step"], "max_test": max_test, "segmentation": segmentation}
        cached = cache.get(kind)
        if kind == "selected" and cache.get("final", {}).get("key") == key:  # best.pt is the final checkpoint
            cached = cache["final"]
        if not (isinstance(cached, dict) and cached.get("key") == key):
            cached = cache[kind] = {"key": key, "scores": _checkpoint_scores(checkpoint, run_dir / f"test_{kind}", data,
                                                                             max_test, segmentation, device)}
            atomic_write_text(cache_file, json.dumps(cache) + "\n")
        out[kind] = cached["scores"]
        if kind == "selected":
            out["selected_epoch"] = int(progress["epoch"]) - 1
    return out


def _checkpoint_scores(checkpoint: Path, fakes: Path, data: Path, max_test: int | None, segmentation: str | None,
                       device: str | None) -> dict[str, float]:
    from .evaluation import evaluate_checkpoint  # lazy: as above

    scores, _ = evaluate_checkpoint(checkpoint, data=data, device=device or "cpu", max_images=max_test)
    if segmentation:
        scores.update(_segmentation_scores(checkpoint, fakes, data, segmentation, max_test, device))
    return scores


def _segmentation_scores(checkpoint: Path, fakes: Path, data: Path, palette_name: str, max_test: int | None,
                         device: str | None) -> dict[str, float]:
    """Per-pixel / per-class accuracy and mean IoU of testA translated to labels (A -> B), written to `fakes`."""
    # lazy: as above
    from .data.image_io import find_images
    from .inference import load_generator, translate_paths
    from .metrics.palette import palette_by_name
    from .metrics.segmentation import segmentation_metrics

    palette = palette_by_name(palette_name)
    generator = load_generator(checkpoint, "AtoB", device or "cpu")  # any method's (CoGAN: latent search)
    translate_paths(generator, find_images(data / "testA", max_count=max_test), fakes, progress=False)
    s = segmentation_metrics(fakes, data / "testB", palette)
    return {"AtoB.pixel_accuracy": s.pixel_accuracy, "AtoB.class_accuracy": s.class_accuracy,
            "AtoB.mean_iou": s.mean_iou, "AtoB.class_accuracy_all": s.class_accuracy_all,
            "AtoB.mean_iou_all": s.mean_iou_all}


def summary_rows(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per variant (in order) and checkpoint kind ("final", then "selected"): the mean of every
    score over its seeds, `<score>.std` (sample standard deviation; 0 for one seed), `n` and `seeds`
    (and `epochs`, the selected checkpoints' epochs)."""
    rows = []
    for kind in ("final", "selected"):
        for name in dict.fromkeys(r["variant"] for r in records):
            runs = [r for r in records if r["variant"] == name and r[kind] is not None]
            if not runs:
                continue
            row: dict[str, Any] = {"variant": name, "checkpoint": kind, "n": len(runs), "seeds": [r["seed"] for r in runs]}
            if kind == "selected":
                row["epochs"] = [r["selected_epoch"] for r in runs]
            for key in dict.fromkeys(k for r in runs for k in r[kind]):
                values = [float(r[kind][key]) for r in runs if key in r[kind]]
                row[key] = statistics.fmean(values)
                row[f"{key}.std"] = statistics.stdev(values) if len(values) > 1 else 0.0
            rows.append(row)
    return rows


COLUMNS = [  # (key, header, as percent)
    ("AtoB.rmse", "A→B RMSE ↓", False), ("AtoB.acc@5", "A→B acc δ=5 ↑", True), ("AtoB.acc@10", "A→B acc δ=10 ↑", True),
    ("AtoB.pixel_accuracy", "per-pixel acc. ↑", False),
    ("AtoB.class_accuracy", "per-class acc. (mean over present classes) ↑", False),
    ("AtoB.class_accuracy_all", "per-class acc. (mean over all classes) ↑", False),
    ("AtoB.mean_iou", "class IoU (mean over present classes) ↑", False),
    ("AtoB.mean_iou_all", "class IoU (mean over all classes) ↑", False),
    ("AtoB.l1", "A→B L1 ↓", False), ("AtoB.ssim", "A→B SSIM ↑", False),
    ("AtoB.cycle_l1", "A→B→A L1 ↓", False), ("BtoA.cycle_l1", "B→A→B L1 ↓", False),
]


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """The rows as markdown: a table of the final checkpoints and, when some run kept one, a table of
    the validation-selected checkpoints, with the columns that some row has ("—" where a row has
    none: pix2pix has no B -> A mapping and no cycle). Over several seeds a cell is mean ± std."""
    parts = []
    for kind in ("final", "selected"):
        group = [r for r in rows if r.get("checkpoint", "final") == kind]
        if not group:
            continue
        if kind == "selected":
            parts.append("Checkpoints selected on the validation split (best.pt), scored on the test split:")
        parts.append(_table(group, epochs=kind == "selected"))
        ns = {r.get("n", 1) for r in group}
        if ns != {1}:
            seeds = sorted({s for r in group for s in r.get("seeds", [])})
            parts.append(f"mean ± sample std over seeds {', '.join(map(str, seeds))} (n = "
                         f"{'/'.join(map(str, sorted(ns)))} per variant)")
    return "\n\n".join(parts)


def _table(rows: list[dict[str, Any]], *, epochs: bool) -> str:
    cols = [c for c in COLUMNS if any(c[0] in r for r in rows)]
    extra = ["epoch"] if epochs else []
    lines = ["| variant | " + " | ".join([*extra, *(h for _, h, _ in cols)]) + " |",
             "|---" * (len(cols) + len(extra) + 1) + "|"]
    for r in rows:
        cells = [", ".join(map(str, r.get("epochs", [])))] if epochs else []
        for key, _, pct in cols:
            if key not in r:
                cells.append("—")
                continue
            scale, unit = (100, " %") if pct else (1, "")
            mean, std = scale * r[key], scale * r.get(f"{key}.std", 0.0)
            digits = 1 if pct else 3 if abs(mean) < 1 else 2
            spread = f" ± {std:.{digits}f}" if r.get("n", 1) > 1 else ""
            cells.append(f"{mean:.{digits}f}{spread}{unit}")
        lines.append(f"| {r['variant']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
