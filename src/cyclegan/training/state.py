"""A training run's state: its progress, its data order, and the networks, optimisers, schedules,
pools and scalers that a checkpoint holds (and exact resume restores)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import Sampler

from ..config import Config
from ..methods import build_model
from ..precision import discriminators_in_float32
from ..pool import ImagePool
from .checkpoint import FORMAT, VERSION, atomic_copy, atomic_save
from .distributed import DistributedContext, barrier
from .export import write_official_generators
from .schedule import build_scheduler
from .step import GradScalers, build_optimizers

logger = logging.getLogger(__name__)


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


class EpochSampler(Sampler):
    """Yields `(index, item_seed)` keys for one epoch, from position `start` on, for one rank.

    Order and seeds are a pure function of (seed, epoch), so the data of a resumed epoch is the data
    the uninterrupted run would have seen, whatever the number of loader workers. With `world_size`
    ranks, rank r takes positions start + r, start + r + world_size, ...; the positions are padded by
    wrapping around to a multiple of world_size, so every rank runs the same number of steps (a rank
    with one step more would wait for the others forever).
    """

    def __init__(self, n: int, *, seed: int, epoch: int, shuffle: bool = True, start: int = 0, rank: int = 0,
                 world_size: int = 1) -> None:
        self.n, self.seed, self.epoch, self.shuffle, self.start = n, seed, epoch, shuffle, min(start, n)
        self.rank, self.world_size = rank, world_size

    def positions(self) -> list[int]:
        remaining = list(range(self.start, self.n))
        pad = (-len(remaining)) % self.world_size
        padded = remaining + [remaining[i % len(remaining)] for i in range(pad)] if remaining else []
        return padded[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=g) if self.shuffle else torch.arange(self.n)
        seeds = torch.randint(0, 2**62, (self.n,), generator=g)
        for i in self.positions():
            yield int(order[i]), int(seeds[i])

    def __len__(self) -> int:
        return len(self.positions())


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise ValueError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {name!r} requested but CUDA is not available; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
    return device


class Run:
    """Everything a training run holds: config, networks, optimisers, schedules, pools, progress."""

    def __init__(self, cfg: Config, run_dir: Path, dataroot: Path, device: torch.device,
                 ctx: DistributedContext | None = None) -> None:
        self.cfg, self.run_dir, self.dataroot, self.device = cfg, run_dir, dataroot, device
        self.ctx = ctx or DistributedContext()
        torch.manual_seed(cfg.train.seed)
        self.model = build_model(cfg.model, cfg.loss).to(device)
        if cfg.loss.lambda_feature > 0:  # validated: cyclegan only
            # Load the feature loss's frozen network now (a missing file fails before any step), rank 0
            # first: it downloads the weights into the cache that the other ranks then read.
            # If rank 0 fails, it still releases the others (which then fail on the missing file themselves).
            if not self.ctx.is_main:
                barrier()
            try:
                self.model.feature_extractor(device)
            finally:
                if self.ctx.is_main:
                    barrier()
        discriminators_in_float32(self.model.discriminators, cfg.train.precision, cfg.train.low_precision_discriminators)
        if cfg.model.norm == "syncbatch" and self.ctx.enabled:
            self.model = nn.SyncBatchNorm.convert_sync_batchnorm(self.model)
        rank = self.ctx.rank
        if rank:  # same initial weights on every rank, then a rank's own stream (dropout, penalties)
            torch.manual_seed(cfg.train.seed + 7919 * rank)
        self.opt_g, self.opt_d = build_optimizers(self.model, cfg.optim)
        self.sched_g = build_scheduler(self.opt_g, cfg.optim)
        self.sched_d = build_scheduler(self.opt_d, cfg.optim)
        self.pool_a = ImagePool(cfg.loss.pool_size, seed=cfg.train.seed + 1 + 7919 * rank)  # each rank its own pool
        self.pool_b = ImagePool(cfg.loss.pool_size, seed=cfg.train.seed + 2 + 7919 * rank)
        self.passes = None  # the DDP wrappers of data-parallel training (`wrap_for_ddp`)
        self.scalers = GradScalers(device, cfg.train.precision)
        self.progress = Progress(samples_in_epoch=0, world_size=self.ctx.world_size)
        if cfg.train.compile:
            for net in self.model.networks().values():
                net.compile()  # in place: parameter names and checkpoints stay as they are

    @property
    def total_epochs(self) -> int:
        return self.cfg.optim.n_epochs + self.cfg.optim.n_epochs_decay

    def state_dict(self) -> dict[str, Any]:
        m = self.model
        return {
            "format": FORMAT,
            "version": VERSION,
            "config": self.cfg.to_dict(),
            "run": {"dataroot": str(self.dataroot)},
            "nets": {name: net.state_dict() for name, net in m.networks().items()},
            "optim": {"g": self.opt_g.state_dict(), "d": self.opt_d.state_dict()},
            "sched": {"g": self.sched_g.state_dict(), "d": self.sched_d.state_dict()},
            "pools": {"a": self.pool_a.state_dict(), "b": self.pool_b.state_dict()},
            "scalers": self.scalers.state_dict(),
            "rng": {
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
            },
            "progress": asdict(self.progress),
        }

    def wrap_for_ddp(self) -> None:
        from .distributed import wrap

        self.passes = wrap(self.model, self.device, merge=self.cfg.train.merge_passes)

    def load_state_dict(self, ckpt: dict[str, Any]) -> None:
        nets = self.model.networks()
        for name, sd in ckpt["nets"].items():
            nets[name].load_state_dict(sd)
        self.opt_g.load_state_dict(ckpt["optim"]["g"])
        self.opt_d.load_state_dict(ckpt["optim"]["d"])
        self.sched_g.load_state_dict(ckpt["sched"]["g"])
        self.sched_d.load_state_dict(ckpt["sched"]["d"])
        # Rank 0's pools and RNG are saved; another rank starts from them with its own random stream.
        self.pool_a.load_state_dict(ckpt["pools"]["a"], self.device)
        self.pool_b.load_state_dict(ckpt["pools"]["b"], self.device)
        if "scalers" in ckpt:
            self.scalers.load_state_dict(ckpt["scalers"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if ckpt["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
        self.progress = p = Progress(**ckpt["progress"])
        if p.samples_in_epoch is None:
            p.samples_in_epoch = p.batch_in_epoch * self.cfg.data.batch_size * p.world_size
        if self.ctx.rank:
            step = p.step
            torch.manual_seed(self.cfg.train.seed + 7919 * self.ctx.rank + step)
            self.pool_a.reseed(self.cfg.train.seed + 1 + 7919 * self.ctx.rank + step)
            self.pool_b.reseed(self.cfg.train.seed + 2 + 7919 * self.ctx.rank + step)
        if p.world_size != self.ctx.world_size:
            logger.info("resuming a %d-process run on %d processes", p.world_size, self.ctx.world_size)
            p.world_size, p.batch_in_epoch = self.ctx.world_size, 0

    def save(self) -> Path | None:
        """Write `checkpoints/latest.pt` atomically (and keep a copy at chosen epoch ends); only the
        main rank writes (the weights are the same on every rank)."""
        if not self.ctx.is_main:
            return None
        path = atomic_save(self.state_dict(), self.run_dir / "checkpoints" / "latest.pt")
        keep = self.cfg.train.keep_epoch_checkpoints
        p = self.progress
        if keep and p.batch_in_epoch == 0 and p.epoch > 1 and (p.epoch - 1) % keep == 0:
            epoch_file = self.run_dir / "checkpoints" / f"epoch_{p.epoch - 1:03d}.pt"
            if not epoch_file.exists():
                atomic_copy(path, epoch_file)
        return path

    def export_official(self, folder: Path | None = None) -> list[Path]:
        """Write the generators as official-layout state dicts (`latest_net_G_A.pth`: A->B,
        `latest_net_G_B.pth`: B->A; pix2pix: `latest_net_G.pth`), loadable by the official test.py."""
        if not self.ctx.is_main:
            return []
        nets = self.model.networks()
        return write_official_generators(nets["g_ab"], nets.get("g_ba"), folder or self.run_dir / "generators")
