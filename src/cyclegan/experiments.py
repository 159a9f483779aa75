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
# 1 + 1 epochs); PAPER keeps the config as given (the paper's 100 + 100 epochs by default).
BUDGETS: dict[str, list[str]] = {
    "small": ["model.generator=resnet_6blocks", "model.ngf=32", "model.ndf=32", "data.preprocess=crop",
              "data.crop_size=64", "optim.n_epochs=1", "optim.n_epochs_decay=1", "train.sample_every=500"],
    "paper": [],
}
# Per-budget adjustments of a variant, applied after its own overrides: the U-Net cannot take the
# small budget's 64 px crops (7 stride-2 levels need 128 px), so pix2pix trains on whole 128 px images.
# CoGAN resizes whole images to its square size (load_size = crop_size).
VARIANT_BUDGETS: dict[str, dict[str, list[str]]] = {
    "pix2pix": {"small": ["model.generator=unet_128", "data.crop_size=128"]},
    "CoGAN": {"small": ["data.load_size=64"], "paper": ["data.load_size=256"]},
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
    segmentation: str | None = None, device: str | None = None, progress: bool = True,
) -> list[dict[str, Any]]:
    """Train, evaluate and tabulate the variants of `experiment` ("ablation" or "baselines").

    Each variant trains in `out/<variant>`; a finished run is not trained again and an interrupted
    one is resumed, so re-running the command after a crash or Ctrl-C continues where it stopped.
    Scores come from `evaluation.evaluate_checkpoint` on the test split (paired metrics when it is
    paired, cycle error always), plus segmentation scores of the A -> B translations with
    `segmentation` ("cityscapes", "facades" or a palette file) for photo -> labels. Writes `out/results.json`
    and `out/results.md` and returns the rows.
    """
    # lazy (here and below): keeps the torch-free tables importable by the CLI's --help
    from .checkpoint import load_checkpoint
    from .data.image_io import paired_files
    from .evaluation import evaluate_checkpoint
    from .training.loop import train

    if experiment not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {experiment!r}; choose one of: {', '.join(EXPERIMENTS)}")
    if budget not in BUDGETS:
        raise ValueError(f"unknown budget {budget!r}; choose one of: {', '.join(BUDGETS)}")
    table = EXPERIMENTS[experiment]
    chosen = list(variants or table)
    unknown = [v for v in chosen if v not in table]
    if unknown:
        raise ValueError(f"unknown variant(s) {', '.join(map(repr, unknown))}; choose from: {', '.join(table)}")
    data, out = Path(data), Path(out)
    cfgs = {name: variant_config(experiment, name, budget, configs, overrides) for name in chosen}
    if segmentation:  # photo -> labels is scored against testB's label maps: fail before any training
        paired_files(data / "testA", data / "testB")
    rows = []
    for name in chosen:
        run_dir = out / slug(name)
        latest = run_dir / "checkpoints" / "latest.pt"
        if latest.exists():
            ckpt = load_checkpoint(run_dir)
            if not _same_training(Config.from_dict(ckpt["config"]), cfgs[name]):
                raise ValueError(f"{run_dir} holds a run with another config; use another --out or remove it")
            p, total = ckpt["progress"], cfgs[name].optim.n_epochs + cfgs[name].optim.n_epochs_decay
            if p["epoch"] <= total:
                logger.info("%s: resuming at epoch %d", name, p["epoch"])
                train(data, run_dir, resume=True, device=device, progress=progress)
        else:
            logger.info("%s: training in %s", name, run_dir)
            train(data, run_dir, cfgs[name], device=device, progress=progress)
        rows.append({"variant": name, **_scores(run_dir, data, max_test, segmentation, device, evaluate_checkpoint)})
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "results.json", json.dumps({"experiment": experiment, "budget": budget, "data": str(data),
                                                        "configs": list(configs), "overrides": list(overrides),
                                                        "rows": rows}, indent=2) + "\n")
    atomic_write_text(out / "results.md", markdown_table(rows) + "\n")
    return rows


def _same_training(a: Config, b: Config) -> bool:
    """Whether two configs train the same run: equal except where the feature network's weights are
    read from (a local file or the download cache). Fields added since a run was written take their
    defaults (`Config.from_dict`)."""
    def strip(c: Config) -> Config:
        return dataclasses.replace(c, loss=dataclasses.replace(c.loss, feature_weights=None))

    return strip(a) == strip(b)


def _scores(run_dir: Path, data: Path, max_test: int | None, segmentation: str | None, device: str | None,
            evaluate_checkpoint: Any) -> dict[str, Any]:
    """The variant's scores, cached in `run_dir/reproduce_scores.json` for its checkpoint's step."""
    from .checkpoint import load_checkpoint  # lazy: as above

    step = load_checkpoint(run_dir)["progress"]["step"]
    cache = run_dir / "reproduce_scores.json"
    key = {"step": step, "max_test": max_test, "segmentation": segmentation}
    if cache.exists():
        cached = json.loads(cache.read_text())
        if cached.get("key") == key:
            return cached["scores"]
    scores, _ = evaluate_checkpoint(run_dir, data=data, device=device or "cpu", max_images=max_test)
    if segmentation:
        scores.update(_segmentation_scores(run_dir, data, segmentation, max_test, device))
    atomic_write_text(cache, json.dumps({"key": key, "scores": scores}) + "\n")
    return scores


def _segmentation_scores(run_dir: Path, data: Path, palette_name: str, max_test: int | None,
                         device: str | None) -> dict[str, float]:
    """Per-pixel / per-class accuracy and mean IoU of testA translated to labels (A -> B)."""
    # lazy: as above
    from .data.image_io import find_images
    from .inference import load_generator, translate_paths
    from .metrics.palette import palette_by_name
    from .metrics.segmentation import segmentation_metrics

    palette = palette_by_name(palette_name)
    fakes = run_dir / "test_AtoB"
    generator = load_generator(run_dir, "AtoB", device or "cpu")  # any method's (CoGAN: latent search)
    translate_paths(generator, find_images(data / "testA", max_count=max_test), fakes, progress=False)
    s = segmentation_metrics(fakes, data / "testB", palette)
    return {"AtoB.pixel_accuracy": s.pixel_accuracy, "AtoB.class_accuracy": s.class_accuracy,
            "AtoB.mean_iou": s.mean_iou, "AtoB.class_accuracy_all": s.class_accuracy_all,
            "AtoB.mean_iou_all": s.mean_iou_all}


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
    """The rows as a markdown table with the columns that some row has ("—" where a row has none:
    pix2pix has no B -> A mapping and no cycle)."""
    cols = [c for c in COLUMNS if any(c[0] in r for r in rows)]
    lines = ["| variant | " + " | ".join(h for _, h, _ in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for r in rows:
        cells = ["—" if k not in r else f"{100 * r[k]:.1f} %" if pct else f"{r[k]:.3f}" if abs(r[k]) < 1
                 else f"{r[k]:.2f}" for k, _, pct in cols]
        lines.append(f"| {r['variant']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
