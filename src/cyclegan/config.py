"""Typed configuration: one dataclass per component, composed into `Config`.

Defaults are the paper's (Zhu et al. 2017, Sec. 4 and Appendix 7) and the official implementation's
`cycle_gan` defaults. A config is built once (preset YAML, then a user YAML, then dotted overrides),
saved into the run dir and every checkpoint, and never mutated afterwards.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .atomic import atomic_write_text

PRESET_DIR = Path(__file__).parent / "configs"


class ConfigError(ValueError):
    """A config file or override names an unknown field or holds a value of the wrong type."""


@dataclass(frozen=True)
class ModelConfig:
    method: str = "cyclegan"  # a registered method (cyclegan.methods): cyclegan | pix2pix | bigan | cogan
    generator: str = "resnet_9blocks"  # resnet_9blocks | resnet_6blocks | unet_128 | unet_256
    discriminator: str = "basic"  # basic (70x70 PatchGAN) | n_layers | pixel (1x1 PixelGAN)
    n_layers_d: int = 3  # only for discriminator = n_layers
    ngf: int = 64  # generator width (filters in the first conv)
    ndf: int = 64  # discriminator width
    norm: str = "instance"  # instance (affine off) | batch | syncbatch (batch over all ranks) | none
    dropout: bool = False  # dropout 0.5 in the ResNet blocks / U-Net inner decoder
    downsample: str = "conv"  # conv (strided, the paper) | antialias (stride-1 conv + blur pool, CUT): G and PatchGAN
    upsample: str = "transpose"  # transpose (the paper) | antialias (blur upsampling + conv, CUT) | resize (nearest + conv)
    spectral_norm: bool = False  # spectral normalisation of every discriminator convolution (Miyato et al. 2018)
    init_type: str = "normal"  # normal | xavier | kaiming | orthogonal
    init_gain: float = 0.02
    channels_a: int = 3  # 1 for grayscale domains; 2 to MAX_CHANNELS for multi-band TIFFs (docs/guides/bands.md)
    channels_b: int = 3


@dataclass(frozen=True)
class LossConfig:
    gan_mode: str = "lsgan"  # lsgan | vanilla | wgangp | hinge
    lambda_a: float = 10.0  # weight of the cycle loss A -> B -> A
    lambda_b: float = 10.0  # weight of the cycle loss B -> A -> B
    lambda_identity: float = 0.5  # identity loss weight, relative to lambda_a / lambda_b
    lambda_gan: float = 1.0  # weight of the adversarial losses of the generators (0: "cycle alone", no discriminators)
    lambda_self_reg: float = 0.0  # SimGAN-style baseline: weight of |G(a) - a| and |F(b) - b|
    lambda_feature: float = 0.0  # feature-loss baseline: weight of |phi(G(a)) - phi(a)| and |phi(F(b)) - phi(b)|
    feature_network: str = "vgg16"  # phi: a pretrained network of cyclegan.nn.features (vgg16 | vgg19)
    feature_layer: str = "relu4_2"  # phi's layer (the paper: VGG-16 relu4_2)
    feature_weights: str | None = None  # phi's weights file (torchvision's vgg16-397923af.pth); None: download once
    lambda_l1: float = 100.0  # pix2pix only: weight of |G(a) - b|, the L1 distance to the paired target
    lambda_gp: float = 10.0  # gradient-penalty weight (wgangp only)
    pool_size: int = 50  # image history buffer (Shrivastava et al. 2017); 0 disables it
    r1_gamma: float = 0.0  # zero-centred gradient penalty gamma/2 E|grad D(x)|^2 on the discriminators (0: off)
    r1_on: str = "real"  # real (R1, Mescheder et al. 2018) | mix (random mixes of real and fake, UVCGAN2)
    r1_every: int = 1  # lazy regularisation: the penalty every k steps, weighted x k (StyleGAN2)
    diffaugment: str = ""  # DiffAugment policy for all the discriminators see, e.g. color,translation,cutout
    ada_target: float = 0.0  # adaptive augmentation (ADA): the target of E[sign(D(real) - midpoint)] (ADA: 0.6; 0: off)
    ada_interval: int = 4  # ADA: steps between two adjustments of the augmentation probability p
    ada_images: int = 2000  # ADA: images over which p can move from 0 to 1 (ADA's 500k suits millions of images)


@dataclass(frozen=True)
class DataConfig:
    name: str | None = None  # the official dataset a preset is for (`cyclegan datasets download NAME`)
    direction: str = "AtoB"  # what a one-way method (pix2pix) learns: AtoB, or BtoA (e.g. facades labels -> photo)
    mode: str = "unaligned"  # unaligned (trainA/trainB) | aligned (pairs: train/ with A|B side by side, or trainA/trainB by name)
    preprocess: str = "resize_and_crop"  # resize_and_crop | crop | scale_width | scale_width_and_crop | none
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True  # random horizontal flip
    serial_batches: bool = False  # pair A[i] with B[i] instead of a random B
    max_dataset_size: int | None = None
    batch_size: int = 1
    num_workers: int = 2


@dataclass(frozen=True)
class OptimConfig:
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    lr_policy: str = "linear"  # linear | step | plateau | cosine
    n_epochs: int = 100  # epochs at the initial learning rate
    n_epochs_decay: int = 100  # epochs of linear decay (linear policy)
    lr_decay_iters: int = 50  # step policy: multiply by 0.1 every this many epochs


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    deterministic: bool = False  # deterministic kernels on one CPU thread (bit-exact resume; slower)
    precision: str = "fp32"  # fp32 (official arithmetic) | bf16 (generators under autocast; CPU and GPU) | fp16 (+ scaler; CUDA)
    low_precision_discriminators: bool = False  # bf16/fp16: the discriminators too (faster; lost quality on maps)
    merge_passes: bool = False  # run each generator once on its concatenated inputs (4 passes instead of 6)
    compile: bool = False  # torch.compile the four networks (compile time is paid at the start)
    dist_timeout_s: int = 1800  # data-parallel: a collective waiting longer fails (a rank died or hangs)
    log_every: int = 50  # iterations between loss-log lines
    sample_every: int = 500  # iterations between sample grids
    checkpoint_every: int = 1000  # iterations between `latest` checkpoints (also at each epoch end)
    keep_epoch_checkpoints: int = 5  # keep a checkpoint every this many epochs (0: only `latest`)
    export_official: bool = True  # at the end, write the generators in the official layout (run_dir/generators)
    ema: float = 0.0  # generator EMA momentum (e.g. 0.999; 0: off): used for samples, evaluation, export, translate
    ema_start: int = 0  # the EMA copies the weights until this step
    on_divergence: str = "stop"  # non-finite losses or weights: stop (keep the last good checkpoint) | rollback
    rollback_lr_factor: float = 0.5  # rollback: resume from the last good checkpoint with the learning rate x this
    max_rollbacks: int = 3  # rollback: give up (stop) after this many in one process
    # Experiment trackers that also receive the losses, sample grids and evaluation scores (the run
    # dir's losses.jsonl and evals.jsonl are always written): tensorboard (when installed) | wandb.
    loggers: tuple[str, ...] = ("tensorboard",)
    wandb_project: str | None = None  # W&B project; None: $WANDB_PROJECT, else "cyclegan"
    wandb_entity: str | None = None  # W&B entity (user or team); None: $WANDB_ENTITY, else your default
    wandb_name: str | None = None  # W&B run name; None: the run dir's name


@dataclass(frozen=True)
class EvalConfig:
    every_epochs: int = 0  # evaluate every N epochs and at the end (0: never)
    split: str = "val"  # val: pick best.pt on valA/valB or the held-out images | test: log test scores, keep no best.pt
    holdout: int = 0  # hold N images per domain out of trainA/trainB as the validation split (pairs if paired)
    data: str | None = None  # folder holding testA/testB (and valA/valB); default: the training dataroot
    max_images: int | None = None  # first N test images per domain (None: all)
    best_metric: str = "auto"  # keeps checkpoints/best.pt by it, e.g. AtoB.acc@5; auto: AtoB.l1 if paired, else cycle_l1
    fid: bool = False  # also FID/KID (pytorch-fid's Inception; downloaded once unless inception_weights is set)
    inception_weights: str | None = None  # pt_inception-2015-12-05-6726825d.pth


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    # Options of model.method's own (its `Options` dataclass checks them), e.g. CoGAN's nz.
    method_options: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (tuples become lists), as YAML and JSON hold them."""
        return dataclasses.asdict(self, dict_factory=lambda items: {k: _plain(v) for k, v in items})

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Config:
        return merge(cls(), d)

    def save(self, path: str | Path) -> None:
        """Write as YAML, atomically (a crash never leaves a truncated file)."""
        atomic_write_text(path, yaml.safe_dump(self.to_dict(), sort_keys=False))


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _coerce(value: Any, current: Any, key: str, annotation: str) -> Any:
    """Check/convert `value` to the type of the field it replaces."""
    if value is None:
        if "None" in annotation:
            return None
        raise ConfigError(f"{key} may not be null")
    if isinstance(current, bool) or annotation == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{key} must be true or false, got {value!r}")
    if annotation.startswith("int"):
        whole = (
            (isinstance(value, int) and not isinstance(value, bool))
            or (isinstance(value, float) and value.is_integer())
            or (isinstance(value, str) and value.lstrip("-").isdigit())
        )
        if not whole:
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return int(value)
    if annotation == "float":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key} must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{key} must be a finite number, got {value!r}")
        return number
    if annotation == "str":
        return str(value)
    if annotation == "tuple[str, ...]":  # a YAML list, or one comma-separated string
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, (list, tuple)) or not all(isinstance(x, str) for x in items):
            raise ConfigError(f"{key} must be a list of names, e.g. {key}=[a,b], got {value!r}")
        return tuple(x.strip() for x in items if x.strip())
    if annotation.startswith("dict"):
        if not isinstance(value, dict):
            raise ConfigError(f"{key} must be a mapping of names to values, e.g. {key}.NAME=VALUE")
        return {**current, **value}  # later sources add to earlier ones
    return value


def merge(cfg: Any, updates: dict[str, Any], prefix: str = "") -> Any:
    """Return a copy of dataclass `cfg` with nested `updates` applied; unknown keys raise ConfigError."""
    fields = {f.name: f for f in dataclasses.fields(cfg)}
    changes = {}
    for key, value in (updates or {}).items():
        name = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(f"unknown config key {name!r}; valid keys here: {', '.join(sorted(fields))}")
        current = getattr(cfg, key)
        if dataclasses.is_dataclass(current):
            if not isinstance(value, dict):
                raise ConfigError(f"{name} is a section; give its fields, e.g. {name}.{next(iter(fields))}")
            changes[key] = merge(current, value, prefix=f"{name}.")
        else:
            changes[key] = _coerce(value, current, name, str(fields[key].type))
    return dataclasses.replace(cfg, **changes)


def parse_override(text: str) -> dict[str, Any]:
    """Turn `model.ngf=32` into `{"model": {"ngf": 32}}` (the value is parsed as YAML)."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} must look like section.key=value, e.g. model.ngf=32")
    dotted, raw = text.split("=", 1)
    value = yaml.safe_load(raw) if raw.strip() else ""
    out: dict[str, Any] = {}
    node = out
    parts = dotted.strip().split(".")
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value
    return out


def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESET_DIR.glob("*.yaml"))


def load_yaml(path_or_preset: str | Path) -> dict[str, Any]:
    """Read a YAML config file, or a preset shipped with the package by name (e.g. `maps_128`)."""
    path = Path(path_or_preset)
    if not path.exists():
        preset = PRESET_DIR / f"{path_or_preset}.yaml"
        if not preset.exists():
            raise ConfigError(
                f"config {str(path_or_preset)!r} is neither a file nor a preset; presets: {', '.join(list_presets())}"
            )
        path = preset
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of sections (model, loss, data, optim, train, eval)")
    return data


def build_config(configs: list[str | Path] = (), overrides: list[str] = ()) -> Config:
    """Defaults, then each YAML file or preset in order, then `key=value` overrides."""
    cfg = Config()
    for c in configs:
        cfg = merge(cfg, load_yaml(c))
    for o in overrides:
        cfg = merge(cfg, parse_override(o))
    validate(cfg)
    return cfg


# The config fields with a fixed set of values (model.method is the methods registry's).
CHOICES = {
    "data.mode": ("unaligned", "aligned"),
    "data.direction": ("AtoB", "BtoA"),
    "model.generator": ("resnet_9blocks", "resnet_6blocks", "unet_128", "unet_256"),
    "model.discriminator": ("basic", "n_layers", "pixel"),
    "model.norm": ("instance", "batch", "syncbatch", "none"),
    "model.downsample": ("conv", "antialias"),
    "model.upsample": ("transpose", "antialias", "resize"),
    "model.init_type": ("normal", "xavier", "kaiming", "orthogonal"),
    "loss.gan_mode": ("lsgan", "vanilla", "wgangp", "hinge"),
    "data.preprocess": ("resize_and_crop", "crop", "scale_width", "scale_width_and_crop", "none"),
    "optim.lr_policy": ("linear", "step", "plateau", "cosine"),
    "train.precision": ("fp32", "bf16", "fp16"),
    "eval.split": ("val", "test"),
    "train.on_divergence": ("stop", "rollback"),
    "loss.r1_on": ("real", "mix"),
}

MAX_CHANNELS = 16  # the most bands a domain's images may have (model.channels_a / channels_b)
DIFFAUGMENT_OPS = ("color", "translation", "cutout")  # nn.diffaugment.OPS
LOGGERS = ("tensorboard", "wandb")  # train.loggers: training.loggers.LOGGERS
EVAL_METRICS = ("l1", "psnr", "ssim", "rmse", "acc@5", "acc@10", "cycle_l1", "fid", "kid")


def validate(cfg: Config) -> None:
    """Raise ConfigError for values that would only fail later, deep inside training. The rules of
    `model.method` are the method's (`methods.check_config`)."""
    for dotted, choices in CHOICES.items():
        section, key = dotted.split(".")
        value = getattr(getattr(cfg, section), key)
        if value not in choices:
            raise ConfigError(f"{dotted}={value!r} is not valid; choose one of: {', '.join(choices)}")
    at_least = {
        1: ("model.ngf", "model.ndf", "model.n_layers_d", "data.batch_size", "data.crop_size", "data.load_size",
            "loss.r1_every", "loss.ada_interval", "loss.ada_images",
            "train.log_every", "train.sample_every", "train.checkpoint_every", "train.dist_timeout_s"),
        0: ("data.num_workers", "optim.n_epochs", "optim.n_epochs_decay", "train.keep_epoch_checkpoints",
            "eval.every_epochs", "eval.holdout", "train.max_rollbacks", "train.ema_start"),
    }
    for minimum, names in at_least.items():
        for dotted in names:
            section, key = dotted.split(".")
            if getattr(getattr(cfg, section), key) < minimum:
                raise ConfigError(f"{dotted} must be at least {minimum}")
    channels = (cfg.model.channels_a, cfg.model.channels_b)
    if not all(1 <= c <= MAX_CHANNELS for c in channels):
        raise ConfigError(f"model.channels_a / channels_b must be 1 (grayscale), 3 (RGB) or another band count up to "
                          f"{MAX_CHANNELS} (multi-band TIFF), got {channels[0]} and {channels[1]}")
    if any(c not in (1, 3) for c in channels) and (cfg.eval.every_epochs or cfg.eval.fid):
        raise ConfigError("evaluation during training (eval.every_epochs, eval.fid) reads 1- or 3-channel images; "
                          "set eval.every_epochs=0 and eval.fid=false for multi-band data, and score the translations "
                          "with `cyclegan evaluate paired FAKE_DIR REAL_DIR`")
    if "crop" in cfg.data.preprocess and "resize" in cfg.data.preprocess and cfg.data.load_size < cfg.data.crop_size:
        raise ConfigError(
            f"data.load_size ({cfg.data.load_size}) must be >= data.crop_size ({cfg.data.crop_size})"
        )
    for name in cfg.train.loggers:
        if name not in LOGGERS:
            raise ConfigError(f"train.loggers: unknown logger {name!r}; choose from: {', '.join(LOGGERS)}")
    if len(set(cfg.train.loggers)) != len(cfg.train.loggers):
        raise ConfigError(f"train.loggers names a logger twice: {list(cfg.train.loggers)}")
    metric = cfg.eval.best_metric
    direction, _, name = metric.rpartition(".")
    if metric not in ("auto", "cycle_l1") and (direction not in ("AtoB", "BtoA") or name not in EVAL_METRICS):
        raise ConfigError(
            f"eval.best_metric={metric!r} is not valid; use auto, cycle_l1, or AtoB.NAME / BtoA.NAME with NAME one of: "
            + ", ".join(EVAL_METRICS)
        )
    if cfg.eval.fid is False and name in ("fid", "kid"):
        raise ConfigError(f"eval.best_metric={metric!r} needs eval.fid=true")
    if cfg.eval.max_images is not None and cfg.eval.max_images < 1:
        raise ConfigError("eval.max_images must be at least 1 (or null for all)")
    for name in ("lambda_a", "lambda_b", "lambda_identity", "lambda_gan", "lambda_self_reg", "lambda_l1", "lambda_feature"):
        if getattr(cfg.loss, name) < 0:
            raise ConfigError(f"loss.{name} must be >= 0")
    if cfg.loss.pool_size < 0:
        raise ConfigError("loss.pool_size must be >= 0")
    unknown = [op for op in (x.strip() for x in cfg.loss.diffaugment.split(",")) if op and op not in DIFFAUGMENT_OPS]
    if unknown:
        raise ConfigError(f"loss.diffaugment: unknown op {unknown[0]!r}; a comma-separated list of: "
                          f"{', '.join(DIFFAUGMENT_OPS)}")
    if cfg.loss.ada_target > 0 and not cfg.loss.diffaugment.strip(" ,"):
        raise ConfigError("loss.ada_target adapts how often the loss.diffaugment ops apply, and no policy is set; "
                          "add e.g. loss.diffaugment=color,translation,cutout")
    # Numbers that would only fail (or silently diverge) deep inside training.
    ranges = {  # field: (low, high, low inclusive, high inclusive)
        "optim.lr": (0, 1, False, True), "optim.beta1": (0, 1, True, False), "optim.beta2": (0, 1, True, False),
        "model.init_gain": (0, 100, False, True), "loss.lambda_gp": (0, 1e6, True, True),
        "loss.r1_gamma": (0, 1e6, True, True), "loss.ada_target": (0, 1, True, False),
        "train.rollback_lr_factor": (0, 1, False, False), "train.ema": (0, 1, True, False),
    }
    for dotted, (low, high, low_in, high_in) in ranges.items():
        section, key = dotted.split(".")
        v = getattr(getattr(cfg, section), key)
        if not ((v >= low if low_in else v > low) and (v <= high if high_in else v < high)):
            interval = f"{'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}"
            raise ConfigError(f"{dotted}={v!r} is out of range: it must lie in {interval}")
    for name in ("lambda_a", "lambda_b", "lambda_identity", "lambda_gan", "lambda_self_reg", "lambda_l1", "lambda_feature"):
        if getattr(cfg.loss, name) > 1e6:
            raise ConfigError(f"loss.{name}={getattr(cfg.loss, name)!r} is out of range: at most 1e6")
