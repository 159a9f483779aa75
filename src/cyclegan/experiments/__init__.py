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

from ..atomic import atomic_write_text
from ..config import Config, build_config
from .scoring import Scoring, checkpoint_scores, fcn_scorer_file
from .tables import markdown_table, summary_rows

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
    # pix2pix learns one direction: B -> A (map -> aerial, labels -> photo: the FCN-score's) is a run of its own.
    "pix2pix BtoA": [NO_IDENTITY, "model.method=pix2pix", "data.mode=aligned", "loss.pool_size=0",
                    "loss.gan_mode=vanilla", "loss.lambda_l1=100", "model.generator=unet_256", "model.norm=batch",
                    "model.dropout=true", "data.direction=BtoA"],
    # CUT and FastCUT (Park et al. 2020), the one-sided successors the official README points to, with the
    # reference code's settings (the `cut` / `fastcut` presets: anti-aliased G and D, xavier init, no pool).
    "CUT": [NO_IDENTITY, "model.method=cut", "loss.pool_size=0", "model.downsample=antialias",
            "model.upsample=antialias", "model.init_type=xavier"],
    "FastCUT": [NO_IDENTITY, "model.method=fastcut", "loss.pool_size=0", "model.downsample=antialias",
                "model.upsample=antialias", "model.init_type=xavier"],
    # Coupled GANs (Liu & Tuzel 2016) with CoGAN's own settings: DCGAN networks at the crop size
    # (every image resized to it), vanilla GAN, no pool; translation by latent search (methods.cogan).
    "CoGAN": [NO_IDENTITY, "model.method=cogan", "loss.pool_size=0", "loss.gan_mode=vanilla",
              "data.preprocess=resize_and_crop"],
}
# The stabilisers of later systems (UVCGAN2, StarGAN v2, DiffAugment), each switched on alone and all
# together, for CycleGAN and CUT/FastCUT. The EMA momentum suits short runs (a half-life of ~140 steps;
# UVCGAN2's 0.9999 is for runs of 10^5+ steps); the penalty is the zero-centred one of UVCGAN2 (weight 1,
# on real/fake mixes).
_STABILISERS = {
    "EMA": ["train.ema=0.995"],
    "SN": ["model.spectral_norm=true"],
    "GP": ["loss.r1_gamma=1", "loss.r1_on=mix"],
    "augmentation": ["loss.diffaugment=color,translation,cutout"],
}
# ADA's adaptive strength of the same augmentation: an alternative to "augmentation", so not in "all".
_ADAPTIVE = {"adaptive augmentation": [*_STABILISERS["augmentation"], "loss.ada_target=0.6"]}
STABILISERS: dict[str, list[str]] = {
    f"{base}{suffix}": [*BASELINES[base], *extra]
    for base in ("CycleGAN", "CUT", "FastCUT")
    for suffix, extra in [("", []), *((f" + {k}", v) for k, v in _STABILISERS.items()),
                          (" + all", [o for v in _STABILISERS.values() for o in v]),
                          *((f" + {k}", v) for k, v in _ADAPTIVE.items())]
}
EXPERIMENTS = {"ablation": ABLATION, "baselines": BASELINES, "stabilisers": STABILISERS}
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
    "pix2pix BtoA": {"small": ["model.generator=unet_128", "data.crop_size=128"]},
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
    from ..methods import check_config  # lazy: the tables above stay torch-free for --help

    cfg = build_config(list(configs), [*BUDGETS[budget], *EXPERIMENTS[experiment][name],
                                       *VARIANT_BUDGETS.get(name, {}).get(budget, []), *overrides])
    check_config(cfg)
    return cfg


def reproduce(
    experiment: str, data: str | Path, out: str | Path, *, budget: str = "small", configs: Sequence[str] = (),
    overrides: Sequence[str] = (), variants: Sequence[str] | None = None, max_test: int | None = None,
    segmentation: str | None = None, fcn_scorer: str | Path | None = None, seeds: Sequence[int] | None = None,
    protocol: str = "full", eval_mode: bool = False, device: str | None = None, progress: bool = True,
) -> list[dict[str, Any]]:
    """Train, evaluate and tabulate the variants of `experiment` ("ablation" or "baselines").

    Each variant trains in `out/<variant>` (with `seeds`, once per seed in `out/<variant>-seed<k>`,
    `train.seed=k`); a finished run is not trained again and an interrupted one is resumed, so
    re-running the command after a crash or Ctrl-C continues where it stopped. Scores come from
    `evaluation.evaluate_checkpoint` on the test split (paired metrics when it is paired, cycle error
    always), plus segmentation scores of the A -> B translations with `segmentation` ("cityscapes",
    "facades" or a palette file) for photo -> labels, and the FCN-score of the label -> photo
    translations with `fcn_scorer` (a `cyclegan scorer train` file; its `photos` domain says which
    direction that is), for the final checkpoint and, when the run kept one, the checkpoint selected
    on its validation split (`best.pt`); never one selected on the test split. Test images go
    through the test-time `protocol` ("full", or "official" as test.py: `inference.protocol`).
    Writes `out/results.json` and `out/results.md` and returns the rows: per variant its final
    checkpoints' scores (`checkpoint` "final"), then those of the validation-selected ones
    ("selected"), each the mean over the seeds with `<metric>.std` (sample standard deviation) and `n`.
    """
    # lazy (here and below): keeps the torch-free tables importable by the CLI's --help
    from ..data.image_io import paired_files

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
    scoring = Scoring(max_test, segmentation, fcn_scorer and fcn_scorer_file(fcn_scorer), protocol, eval_mode)
    if segmentation or fcn_scorer:  # both are scored against testB's label maps: fail before any training
        paired_files(data / "testA", data / "testB")
    records = []
    for name, seed in runs:
        run_dir = out / (slug(name) if seed is None else f"{slug(name)}-seed{seed}")
        _train_variant(name, run_dir, data, cfgs[name, seed], device, progress)
        records.append({"variant": name, "seed": cfgs[name, seed].train.seed, "run_dir": str(run_dir),
                        **checkpoint_scores(run_dir, data, scoring, device)})
    rows = summary_rows(records)
    out.mkdir(parents=True, exist_ok=True)
    header = scoring.header()
    atomic_write_text(out / "results.json", json.dumps({"experiment": experiment, "budget": budget, "data": str(data),
                                                        "configs": list(configs), "overrides": list(overrides),
                                                        "seeds": seeds, **header, "rows": rows, "runs": records},
                                                       indent=2) + "\n")
    atomic_write_text(out / "results.md", markdown_table(rows, notes=scoring.notes()) + "\n")
    return rows


def _train_variant(name: str, run_dir: Path, data: Path, cfg: Config, device: str | None, progress: bool) -> None:
    """Train one variant's run to its end: anew, resumed, or not at all when it has finished."""
    from ..checkpoint import load_checkpoint  # lazy: as above
    from ..training.loop import train

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


