"""A training run's state: its progress and everything a checkpoint holds (networks, optimisers,
schedules, pools, scalers, random streams), built explicitly by `build_training_state` for any
registered method, and restored exactly from a checkpoint."""

from __future__ import annotations

import itertools
import logging
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..checkpoint import copy_verified, save_verified
from ..config import Config, OptimConfig
from ..methods import Method, build_method
from ..nn.diffaugment import Strength, augment_inputs
from ..pool import ImagePool
from ..checkpoint import FORMAT, VERSION
from .ada import AdaptiveAugment
from .distributed import DistributedContext, barrier
from .ema import GeneratorEMA
from .safety import check_finite_state
from .schedule import build_scheduler, step_scheduler

logger = logging.getLogger(__name__)

RANK_SEED_STRIDE = 7919  # rank r draws from seed + 7919 r: its own streams, the same for every run


@dataclass
class Progress:
    """Where a run stands. `epoch` is 1-based; `samples_in_epoch` of its (shuffled) A images are done,
    over all ranks, which is what lets a run resume on another number of processes."""

    epoch: int = 1
    batch_in_epoch: int = 0  # batches of this epoch done by each rank
    samples_in_epoch: int | None = None  # None in checkpoints written before data-parallel training
    world_size: int = 1  # processes that trained the run last
    step: int = 0
    skipped: int = 0  # unreadable images skipped so far
    epoch_g_loss: float = 0.0  # sum of the generator losses in this epoch (plateau policy metric)
    best_score: float | None = None  # best value of eval.best_metric so far (checkpoints/best.pt)
    best_epoch: int = 0


class GradScalers:
    """One gradient scaler per optimiser for `fp16` (float16 gradients underflow without one);
    disabled, and free, for the other precisions."""

    def __init__(self, device: torch.device, precision: str) -> None:
        enabled = precision == "fp16"
        self.g = torch.amp.GradScaler(device.type, enabled=enabled)
        self.d = torch.amp.GradScaler(device.type, enabled=enabled)

    def state_dict(self) -> dict:
        return {"g": self.g.state_dict(), "d": self.d.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.g.load_state_dict(state["g"])
        self.d.load_state_dict(state["d"])


def build_optimizers(model: Method, cfg: OptimConfig) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam over the method's generators, and Adam over its discriminators (lr 2e-4, betas (0.5, 0.999))."""
    betas = (cfg.beta1, cfg.beta2)
    opt_g = torch.optim.Adam(itertools.chain(*(g.parameters() for g in model.generators)), lr=cfg.lr, betas=betas)
    opt_d = torch.optim.Adam(itertools.chain(*(d.parameters() for d in model.discriminators)), lr=cfg.lr, betas=betas)
    return opt_g, opt_d


@dataclass
class TrainingState:
    """Everything a training run holds; `state_dict` is the checkpoint."""

    cfg: Config
    run_dir: Path
    dataroot: Path
    device: torch.device
    ctx: DistributedContext
    model: Method
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    sched_g: Any
    sched_d: Any
    pool_a: ImagePool  # generated A images, for the discriminator of domain A
    pool_b: ImagePool
    scalers: GradScalers
    progress: Progress = field(default_factory=Progress)
    passes: tuple[nn.Module, nn.Module] | None = None  # the DDP wrappers of data-parallel training
    saved_step: int | None = None  # the step of the checkpoint last written or resumed from
    saved_progress: dict[str, Any] | None = None  # its progress
    ema: GeneratorEMA | None = None  # the generators' moving average (train.ema)
    ada: AdaptiveAugment | None = None  # the augmentation strength's controller (loss.ada_target)

    @property
    def total_epochs(self) -> int:
        return self.cfg.optim.n_epochs + self.cfg.optim.n_epochs_decay

    def state_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "config": self.cfg.to_dict(),
            "run": {"dataroot": str(self.dataroot)},
            "nets": {name: net.state_dict() for name, net in self.model.networks().items()},
            "method": self.model.extra_state(),
            "optim": {"g": self.opt_g.state_dict(), "d": self.opt_d.state_dict()},
            "sched": {"g": self.sched_g.state_dict(), "d": self.sched_d.state_dict()},
            "pools": {"a": self.pool_a.state_dict(), "b": self.pool_b.state_dict()},
            "scalers": self.scalers.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
            "progress": asdict(self.progress),
            **({"ema": self.ema.state_dict()} if self.ema is not None else {}),
            **({"ada": self.ada.state_dict()} if self.ada is not None else {}),
        }

    def load_state_dict(self, ckpt: dict[str, Any]) -> None:
        """Restore a checkpoint (of this version, or one upgraded by `checkpoint.load_checkpoint`)."""
        nets = self.model.networks()
        for name, sd in ckpt["nets"].items():
            nets[name].load_state_dict(sd)
        self.model.load_extra_state(ckpt.get("method", {}))
        if self.ema is not None:  # a run that had none starts its average from the resumed weights
            if "ema" in ckpt:
                self.ema.load_state_dict(ckpt["ema"])
            else:
                self.ema = GeneratorEMA(self.model, self.cfg.train.ema, self.cfg.train.ema_start)
        if self.ada is not None and "ada" in ckpt:  # a run that had none starts from p = 0
            self.ada.load_state_dict(ckpt["ada"])
        self.opt_g.load_state_dict(ckpt["optim"]["g"])
        self.opt_d.load_state_dict(ckpt["optim"]["d"])
        self.progress = p = Progress(**ckpt["progress"])
        if "sched" in ckpt:
            self.sched_g.load_state_dict(ckpt["sched"]["g"])
            self.sched_d.load_state_dict(ckpt["sched"]["d"])
        else:  # an upgraded checkpoint without schedules: replay the epochs completed
            with warnings.catch_warnings():  # "scheduler.step() before optimizer.step()": intended here
                warnings.simplefilter("ignore", UserWarning)
                for _ in range(p.epoch - 1):
                    step_scheduler(self.sched_g)
                    step_scheduler(self.sched_d)
        # Rank 0's pools and RNG are saved; another rank starts from them with its own random stream.
        if "pools" in ckpt:
            self.pool_a.load_state_dict(ckpt["pools"]["a"], self.device)
            self.pool_b.load_state_dict(ckpt["pools"]["b"], self.device)
        if "scalers" in ckpt:
            self.scalers.load_state_dict(ckpt["scalers"])
        if "rng" in ckpt:
            torch.set_rng_state(ckpt["rng"]["torch"])
            if ckpt["rng"]["cuda"] and torch.cuda.is_available():
                torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
        if p.samples_in_epoch is None:
            p.samples_in_epoch = p.batch_in_epoch * self.cfg.data.batch_size * p.world_size
        # An upgraded checkpoint (an earlier format) is rewritten in the current one at the next save.
        self.saved_step, self.saved_progress = p.step, None if ckpt.get("upgraded") else asdict(p)
        if self.ctx.rank:
            _seed_rank(self, self.cfg.train.seed + RANK_SEED_STRIDE * self.ctx.rank + p.step)
        if p.world_size != self.ctx.world_size:
            logger.info("resuming a %d-process run on %d processes", p.world_size, self.ctx.world_size)
            p.world_size, p.batch_in_epoch = self.ctx.world_size, 0

    def save(self) -> Path | None:
        """Write `checkpoints/latest.pt` (checksummed and verified, the previous one kept as
        `latest.prev.pt`; `checkpoint.save_verified`) and a copy at chosen epoch ends; only the main
        rank writes (the weights are the same on every rank).

        Raises:
            TrainingDiverged: a weight or optimiser moment is not finite; nothing is written, so the
                last good checkpoint stays in place.
        """
        if not self.ctx.is_main:
            return None
        path = self.run_dir / "checkpoints" / "latest.pt"
        if self.saved_progress == asdict(self.progress) and path.is_file():
            return path  # nothing happened since: keep latest.prev.pt an older checkpoint
        check_finite_state(self.model, (self.opt_g, self.opt_d), self.progress.step, self.run_dir)
        save_verified(self.state_dict(), path, keep_previous=True)
        self.saved_step, self.saved_progress = self.progress.step, asdict(self.progress)
        keep = self.cfg.train.keep_epoch_checkpoints
        p = self.progress
        if keep and p.batch_in_epoch == 0 and p.epoch > 1 and (p.epoch - 1) % keep == 0:
            epoch_file = self.run_dir / "checkpoints" / f"epoch_{p.epoch - 1:03d}.pt"
            if not epoch_file.exists():
                copy_verified(path, epoch_file)
        return path


def build_training_state(cfg: Config, run_dir: Path, dataroot: Path, device: torch.device,
                         ctx: DistributedContext | None = None) -> TrainingState:
    """The method's networks (seeded by `train.seed`, the same on every rank), its optimisers,
    learning-rate schedules, image pools and gradient scalers, at step 0."""
    ctx = ctx or DistributedContext()
    torch.manual_seed(cfg.train.seed)
    model = build_method(cfg).to(device)
    if cfg.loss.lambda_feature > 0:
        # Load the feature loss's frozen network now (a missing file fails before any step), rank 0
        # first: it downloads the weights into the cache that the other ranks then read.
        # If rank 0 fails, it still releases the others (which then fail on the missing file themselves).
        if not ctx.is_main:
            barrier()
        try:
            model.feature_extractor(device)
        finally:
            if ctx.is_main:
                barrier()
    if cfg.model.norm == "syncbatch" and ctx.enabled:
        model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
    strength = Strength()
    if cfg.loss.diffaugment:  # every image the discriminators see, in both steps, goes through the policy
        augment_inputs(model.discriminators, cfg.loss.diffaugment, strength)
    opt_g, opt_d = build_optimizers(model, cfg.optim)
    seed = cfg.train.seed
    state = TrainingState(
        cfg=cfg, run_dir=run_dir, dataroot=dataroot, device=device, ctx=ctx, model=model, opt_g=opt_g, opt_d=opt_d,
        sched_g=build_scheduler(opt_g, cfg.optim), sched_d=build_scheduler(opt_d, cfg.optim),
        pool_a=ImagePool(cfg.loss.pool_size, seed=seed + 1), pool_b=ImagePool(cfg.loss.pool_size, seed=seed + 2),
        scalers=GradScalers(device, cfg.train.precision),
        progress=Progress(samples_in_epoch=0, world_size=ctx.world_size),
        ema=GeneratorEMA(model, cfg.train.ema, cfg.train.ema_start) if cfg.train.ema > 0 else None,
        ada=AdaptiveAugment(cfg.loss, strength) if cfg.loss.ada_target > 0 else None,
    )
    if ctx.rank:  # same initial weights on every rank, then a rank's own streams (dropout, pools, noise)
        _seed_rank(state, seed + RANK_SEED_STRIDE * ctx.rank)
    if cfg.train.compile:
        for net in model.networks().values():
            net.compile()  # in place: parameter names and checkpoints stay as they are
    return state


def _seed_rank(state: TrainingState, seed: int) -> None:
    torch.manual_seed(seed)
    state.pool_a.reseed(seed + 1)
    state.pool_b.reseed(seed + 2)
    state.model.reseed(seed)
