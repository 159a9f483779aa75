"""Train a CoGAN on unpaired images (`train_cogan`), load it for translation (`load_translators`) and
score it like a CycleGAN run (`evaluate_cogan`; used by `cyclegan reproduce baselines`).

Each step draws a batch of A images, a batch of B images (unpaired, as `UnalignedDataset` serves
them, resized to `size` x `size`) and z ~ N(0, 1), then takes one Adam step on the discriminators and
one on the generator (CoGAN, Liu & Tuzel 2016, Algorithm 1).

A run dir holds `cogan.yaml` (the config) and `checkpoints/latest.pt`, a dict of tensors, numbers and
strings (read with `weights_only=True`):
    format "cyclegan-cogan", version, config, nets {generator, discriminator}, optim {g, d},
    rng {z}, progress {epoch, samples_in_epoch, step}, run {dataroot}
Resume is exact: the data order is a pure function of (seed, epoch), and the z generator's state is
in the checkpoint (bit for bit on the CPU with `deterministic=true`).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
import yaml
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..atomic import atomic_write_text
from ..config import Config, ConfigError, DataConfig
from ..data.unaligned import UnalignedDataset
from ..training.checkpoint import atomic_save, load_checkpoint
from ..training.control import StopRequest, deterministic_mode
from ..training.schedule import linear_factor
from ..training.state import EpochSampler, resolve_device
from .cogan import CoGANConfig, CoupledDiscriminator, CoupledGenerator, build_cogan, discriminator_losses, generator_losses
from .cogan_search import CoGANTranslator

logger = logging.getLogger(__name__)

FORMAT = "cyclegan-cogan"
VERSION = 1


def train_step(
    gen: CoupledGenerator, disc: CoupledDiscriminator, opt_g: torch.optim.Optimizer, opt_d: torch.optim.Optimizer,
    real_a: torch.Tensor, real_b: torch.Tensor, z: torch.Tensor, gan_mode: str,
) -> dict[str, float]:
    """One CoGAN step: a discriminator step on real and fake images of both domains, then a generator
    step on the same fakes. Returns the losses (d_a, d_b, g_a, g_b)."""
    fake_a, fake_b = gen(z)  # (B, C_a, S, S), (B, C_b, S, S) from the same z
    opt_d.zero_grad(set_to_none=True)
    d = discriminator_losses(disc, real_a, real_b, fake_a, fake_b, gan_mode)
    (d["d_a"] + d["d_b"]).backward()
    opt_d.step()
    disc.requires_grad_(False)  # the generator step needs no discriminator gradients
    try:
        opt_g.zero_grad(set_to_none=True)
        g = generator_losses(disc, fake_a, fake_b, gan_mode)
        (g["g_a"] + g["g_b"]).backward()
        opt_g.step()
    finally:
        disc.requires_grad_(True)
    return {k: float(v.detach()) for k, v in {**d, **g}.items()}


def data_config(cfg: CoGANConfig) -> DataConfig:
    """The project's preprocessing, resizing every image to the CoGAN's square size (no crop)."""
    return DataConfig(preprocess="resize_and_crop", load_size=cfg.size, crop_size=cfg.size, flip=cfg.flip,
                      max_dataset_size=cfg.max_dataset_size, batch_size=cfg.batch_size, num_workers=0)


def train_cogan(
    dataroot: str | Path | None, run_dir: str | Path, cfg: CoGANConfig | None = None, *, resume: bool = False,
    max_steps: int | None = None, device: str | None = None, progress: bool = True,
) -> dict[str, Any]:
    """Train a CoGAN on `dataroot/trainA` + `trainB` into `run_dir`, or resume the run in `run_dir`.

    Args:
        dataroot: dataset folder; on resume, None means the one recorded in the checkpoint.
        cfg: the configuration of a new run (on resume the checkpoint's is used; giving another raises).
        max_steps: stop once the run's total step count reaches this (across resumes).
        device: auto (default: CUDA if available), cpu, cuda, cuda:N.

    Returns:
        The progress {epoch, samples_in_epoch, step} and the last step's `losses`.
    """
    run_dir = Path(run_dir)
    latest = run_dir / "checkpoints" / "latest.pt"
    ckpt = None
    if resume:
        ckpt = load_cogan(run_dir)
        recorded = CoGANConfig.from_dict(ckpt["config"])
        if cfg is not None and cfg != recorded:
            raise ConfigError(f"{run_dir} holds a run with another config; resume it without a config or pick a new run dir")
        cfg = recorded
        dataroot = dataroot if dataroot is not None else ckpt["run"]["dataroot"]
    elif latest.exists():
        raise FileExistsError(f"{run_dir} already holds a run; resume it (`cyclegan cogan train --resume --run-dir "
                              f"{run_dir}`) or pick a new run dir")
    if dataroot is None:
        raise ValueError("a dataset folder (DATAROOT) is needed for a new run")
    cfg = cfg or CoGANConfig()
    dev = resolve_device(device or "auto")
    dataset = UnalignedDataset.from_root(dataroot, data_config(cfg), channels_a=cfg.channels_a,
                                         channels_b=cfg.channels_b)  # a bad DATAROOT fails before anything is written
    gen, disc = build_cogan(cfg)
    gen, disc = gen.to(dev), disc.to(dev)
    betas = (cfg.beta1, cfg.beta2)
    opt_g = torch.optim.Adam(gen.parameters(), lr=cfg.lr, betas=betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.lr, betas=betas)
    z_rng = torch.Generator().manual_seed(cfg.seed + 1)
    p = {"epoch": 1, "samples_in_epoch": 0, "step": 0}
    if ckpt is not None:
        gen.load_state_dict(ckpt["nets"]["generator"])
        disc.load_state_dict(ckpt["nets"]["discriminator"])
        opt_g.load_state_dict(ckpt["optim"]["g"])
        opt_d.load_state_dict(ckpt["optim"]["d"])
        z_rng.set_state(ckpt["rng"]["z"])
        p = dict(ckpt["progress"])
        logger.info("resumed %s at epoch %d, step %d", run_dir, p["epoch"], p["step"])
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "cogan.yaml", yaml.safe_dump(cfg.to_dict(), sort_keys=False))

    saved = dict(p) if ckpt is not None else None

    def save() -> None:
        nonlocal saved
        if saved == p:  # nothing new since the last save (e.g. a finished run resumed)
            return
        saved = dict(p)
        atomic_save({
            "format": FORMAT, "version": VERSION, "config": cfg.to_dict(),
            "nets": {"generator": gen.state_dict(), "discriminator": disc.state_dict()},
            "optim": {"g": opt_g.state_dict(), "d": opt_d.state_dict()}, "rng": {"z": z_rng.get_state()},
            "progress": dict(p), "run": {"dataroot": str(Path(dataroot).resolve())},
        }, latest)

    total_epochs = cfg.epochs + cfg.epochs_decay
    total = total_epochs * math.ceil(len(dataset) / cfg.batch_size)
    total = total if max_steps is None else min(total, max_steps)
    bar = tqdm(total=total, initial=min(p["step"], total), disable=not progress, unit="it", dynamic_ncols=True)
    losses: dict[str, float] = {}
    gen.train()
    disc.train()
    with deterministic_mode(cfg.deterministic), StopRequest() as stop:
        while p["epoch"] <= total_epochs and (max_steps is None or p["step"] < max_steps) and not stop.requested:
            lr = cfg.lr * linear_factor(p["epoch"] - 1, cfg.epochs, cfg.epochs_decay)
            for opt in (opt_g, opt_d):
                for group in opt.param_groups:
                    group["lr"] = lr
            sampler = EpochSampler(len(dataset), seed=cfg.seed, epoch=p["epoch"], start=p["samples_in_epoch"])
            for batch in DataLoader(dataset, batch_size=cfg.batch_size, sampler=sampler, generator=torch.Generator()):
                if stop.requested or (max_steps is not None and p["step"] >= max_steps):
                    break
                real_a, real_b = batch["a"].to(dev), batch["b"].to(dev)
                z = torch.randn(real_a.shape[0], cfg.nz, generator=z_rng).to(dev)
                losses = train_step(gen, disc, opt_g, opt_d, real_a, real_b, z, cfg.gan_mode)
                if not all(math.isfinite(v) for v in losses.values()):
                    raise ValueError(f"CoGAN losses became infinite or NaN at step {p['step'] + 1}: {losses}; "
                                             "lower lr or try gan_mode=lsgan")
                p["step"] += 1
                p["samples_in_epoch"] += real_a.shape[0]
                bar.update(1)
                bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
                if p["step"] % cfg.log_every == 0:
                    logger.info("step %d epoch %d: %s", p["step"], p["epoch"], " ".join(f"{k} {v:.4f}" for k, v in losses.items()))
                if p["step"] % cfg.checkpoint_every == 0:
                    save()
            else:  # the epoch ended
                p["epoch"], p["samples_in_epoch"] = p["epoch"] + 1, 0
                save()
    bar.close()
    save()
    if stop.requested:
        logger.warning("stopped at step %d; checkpoint saved. Resume with: cyclegan cogan train --resume --run-dir %s",
                       p["step"], run_dir)
        raise KeyboardInterrupt
    return {**p, "losses": losses}


def load_cogan(source: str | Path) -> dict[str, Any]:
    """A CoGAN checkpoint (file, or run dir: its latest), read with `weights_only=True`."""
    return load_checkpoint(source, format=FORMAT, version=VERSION,
                           what="a CoGAN checkpoint (train one with `cyclegan cogan train`)")


def load_translators(
    source: str | Path | dict[str, Any], device: str | torch.device = "cpu", *, steps: int | None = None,
    restarts: int | None = None,
) -> tuple[CoGANTranslator, CoGANTranslator]:
    """(AtoB, BtoA) translators of a CoGAN run dir, checkpoint file or loaded checkpoint, in eval mode
    on `device`; `steps` / `restarts` override the config's search_steps / search_restarts."""
    ckpt = source if isinstance(source, dict) else load_cogan(source)
    cfg = CoGANConfig.from_dict(ckpt["config"])
    gen, _ = build_cogan(cfg)
    gen.load_state_dict(ckpt["nets"]["generator"], strict=True)
    gen = gen.to(device).eval()
    kwargs = {"steps": cfg.search_steps if steps is None else steps,
              "restarts": cfg.search_restarts if restarts is None else restarts,
              "lr": cfg.search_lr, "seed": cfg.search_seed}
    return CoGANTranslator(gen, "AtoB", **kwargs).eval(), CoGANTranslator(gen, "BtoA", **kwargs).eval()


def evaluate_cogan(
    source: str | Path, *, data: str | Path | None = None, device: str | torch.device = "cpu",
    max_images: int | None = None, feature_model: torch.nn.Module | None = None,
) -> tuple[dict[str, float], dict[str, object]]:
    """`evaluation.evaluate_checkpoint` for a CoGAN run: the same keys (AtoB.*, BtoA.*), the
    translations and cycle reconstructions (A -> B -> A by two latent searches) made by latent search
    at the CoGAN's size and resized to each test image's size."""
    from ..evaluation import evaluate_generators, test_split

    ckpt = load_cogan(source)
    cfg = CoGANConfig.from_dict(ckpt["config"])
    root = Path(data or ckpt["run"]["dataroot"])
    test_a, test_b = test_split(root)
    t_ab, t_ba = load_translators(ckpt, device)
    with torch.inference_mode():
        scores = evaluate_generators(t_ab, t_ba, test_a, test_b, channels_a=cfg.channels_a, channels_b=cfg.channels_b,
                                     max_images=max_images, feature_model=feature_model)
    p = ckpt["progress"]
    return scores, {"epoch": int(p["epoch"]) - 1, "step": int(p["step"]), "data": str(root)}


def config_from_experiment(cfg: Config) -> CoGANConfig:
    """The CoGAN config that matches a CycleGAN experiment's: image size (`data.crop_size`), widths,
    channels, batch size, epochs, optimiser, seed (for `cyclegan reproduce baselines`)."""
    try:
        return CoGANConfig(
            size=cfg.data.crop_size, ngf=cfg.model.ngf, ndf=cfg.model.ndf, channels_a=cfg.model.channels_a,
            channels_b=cfg.model.channels_b, lr=cfg.optim.lr, beta1=cfg.optim.beta1, beta2=cfg.optim.beta2,
            epochs=cfg.optim.n_epochs, epochs_decay=cfg.optim.n_epochs_decay, batch_size=cfg.data.batch_size,
            flip=cfg.data.flip, max_dataset_size=cfg.data.max_dataset_size, seed=cfg.train.seed,
            deterministic=cfg.train.deterministic, checkpoint_every=cfg.train.checkpoint_every,
            log_every=cfg.train.log_every,
        )
    except ConfigError as e:
        raise ConfigError(f"CoGAN baseline: {e} (from data.crop_size and the other experiment settings)") from None


def reproduce_cogan(cfg: Config, data: Path, run_dir: Path, *, device: str | None = None, progress: bool = True) -> None:
    """Train the CoGAN baseline of an experiment in `run_dir`: resume it if interrupted, reuse it if done."""
    cogan_cfg = config_from_experiment(cfg)
    if (run_dir / "checkpoints" / "latest.pt").exists():
        ckpt = load_cogan(run_dir)
        if ckpt["config"] != cogan_cfg.to_dict():
            raise ValueError(f"{run_dir} holds a CoGAN run with another config; use another --out or remove it")
        if ckpt["progress"]["epoch"] <= cogan_cfg.epochs + cogan_cfg.epochs_decay:
            logger.info("CoGAN: resuming at epoch %d", ckpt["progress"]["epoch"])
            train_cogan(data, run_dir, resume=True, device=device, progress=progress)
    else:
        logger.info("CoGAN: training in %s", run_dir)
        train_cogan(data, run_dir, cogan_cfg, device=device, progress=progress)
