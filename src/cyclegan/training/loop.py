"""The training loop: epochs of `train_step`, logs, sample grids, checkpoints and exact resume.

Reads top to bottom: `train` prepares a run (fresh or resumed), then calls `train_one_epoch` per
epoch and steps the learning-rate schedules between epochs (paper Sec. 4: 100 epochs at 2e-4, then
100 epochs of linear decay to zero).

Exact resume: every source of randomness is either in the checkpoint (torch RNG, pool RNGs) or a pure
function of (seed, epoch, position) (data order, B choice, crops, flips), so N steps + resume + N
steps reproduce 2N uninterrupted steps bit for bit on the CPU in deterministic mode.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Sampler
from tqdm import tqdm

from ..config import Config
from ..cyclegan import CycleGAN
from ..data.image_io import save_image
from ..data.unaligned import UnalignedDataset
from ..pool import ImagePool
from .checkpoint import FORMAT, VERSION, atomic_copy, atomic_save, load_checkpoint
from .export import write_official_generators
from .periodic_eval import EVALS_FILE, PeriodicEvaluation, truncate_jsonl
from .schedule import build_scheduler, step_scheduler
from .step import GradScalers, build_optimizers, train_step

logger = logging.getLogger(__name__)


@dataclass
class Progress:
    """Where a run stands. `epoch` is 1-based; `batch_in_epoch` batches of it are done."""

    epoch: int = 1
    batch_in_epoch: int = 0
    step: int = 0
    skipped: int = 0  # unreadable images skipped so far
    epoch_g_loss: float = 0.0  # sum of the generator losses in this epoch (plateau policy metric)
    best_score: float | None = None  # best value of eval.best_metric so far (checkpoints/best.pt)
    best_epoch: int = 0


class EpochSampler(Sampler):
    """Yields `(index, item_seed)` keys for one epoch, from position `start` on.

    Order and seeds are a pure function of (seed, epoch), so the data of a resumed epoch is the data
    the uninterrupted run would have seen, whatever the number of loader workers.
    """

    def __init__(self, n: int, *, seed: int, epoch: int, shuffle: bool = True, start: int = 0) -> None:
        self.n, self.seed, self.epoch, self.shuffle, self.start = n, seed, epoch, shuffle, start

    def __iter__(self) -> Iterator[tuple[int, int]]:
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n, generator=g) if self.shuffle else torch.arange(self.n)
        seeds = torch.randint(0, 2**62, (self.n,), generator=g)
        for i in range(self.start, self.n):
            yield int(order[i]), int(seeds[i])

    def __len__(self) -> int:
        return self.n - self.start


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

    def __init__(self, cfg: Config, run_dir: Path, dataroot: Path, device: torch.device) -> None:
        self.cfg, self.run_dir, self.dataroot, self.device = cfg, run_dir, dataroot, device
        torch.manual_seed(cfg.train.seed)
        self.model = CycleGAN.from_config(cfg.model, cfg.loss).to(device)
        self.opt_g, self.opt_d = build_optimizers(self.model, cfg.optim)
        self.sched_g = build_scheduler(self.opt_g, cfg.optim)
        self.sched_d = build_scheduler(self.opt_d, cfg.optim)
        self.pool_a = ImagePool(cfg.loss.pool_size, seed=cfg.train.seed + 1)
        self.pool_b = ImagePool(cfg.loss.pool_size, seed=cfg.train.seed + 2)
        self.scalers = GradScalers(device, cfg.train.precision)
        self.progress = Progress()
        if cfg.train.compile:
            for net in (self.model.g_ab, self.model.g_ba, self.model.d_a, self.model.d_b):
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
            "nets": {name: getattr(m, name).state_dict() for name in ("g_ab", "g_ba", "d_a", "d_b")},
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

    def load_state_dict(self, ckpt: dict[str, Any]) -> None:
        for name, sd in ckpt["nets"].items():
            getattr(self.model, name).load_state_dict(sd)
        self.opt_g.load_state_dict(ckpt["optim"]["g"])
        self.opt_d.load_state_dict(ckpt["optim"]["d"])
        self.sched_g.load_state_dict(ckpt["sched"]["g"])
        self.sched_d.load_state_dict(ckpt["sched"]["d"])
        self.pool_a.load_state_dict(ckpt["pools"]["a"], self.device)
        self.pool_b.load_state_dict(ckpt["pools"]["b"], self.device)
        if "scalers" in ckpt:
            self.scalers.load_state_dict(ckpt["scalers"])
        torch.set_rng_state(ckpt["rng"]["torch"])
        if ckpt["rng"]["cuda"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(ckpt["rng"]["cuda"])
        self.progress = Progress(**ckpt["progress"])

    def save(self) -> Path:
        """Write `checkpoints/latest.pt` atomically (and keep a copy at chosen epoch ends)."""
        path = atomic_save(self.state_dict(), self.run_dir / "checkpoints" / "latest.pt")
        keep = self.cfg.train.keep_epoch_checkpoints
        p = self.progress
        if keep and p.batch_in_epoch == 0 and p.epoch > 1 and (p.epoch - 1) % keep == 0:
            epoch_file = self.run_dir / "checkpoints" / f"epoch_{p.epoch - 1:03d}.pt"
            if not epoch_file.exists():
                atomic_copy(path, epoch_file)
        return path

    def export_official(self, folder: Path | None = None) -> list[Path]:
        """Write both generators as official-layout state dicts (`latest_net_G_A.pth`: A->B,
        `latest_net_G_B.pth`: B->A), loadable by the official test.py."""
        return write_official_generators(self.model.g_ab, self.model.g_ba, folder or self.run_dir / "generators")


class LossLog:
    """Averages losses over `every` steps and appends them as JSON lines to `losses.jsonl`."""

    def __init__(self, path: Path, every: int) -> None:
        self.path, self.every = path, max(1, every)
        self.sums: dict[str, float] = defaultdict(float)
        self.count = 0
        self.t0 = time.perf_counter()

    def add(self, losses: dict[str, float], step: int, epoch: int, lr: float, writer: Any = None) -> None:
        for k, v in losses.items():
            self.sums[k] += v
        self.count += 1
        if step % self.every == 0:
            self.flush(step, epoch, lr, writer)

    def flush(self, step: int, epoch: int, lr: float, writer: Any = None) -> None:
        """Write the average of the losses added since the last line (if any)."""
        if not self.count:
            return
        now = time.perf_counter()
        record = {"step": step, "epoch": epoch, "lr": lr, "sec_per_step": (now - self.t0) / self.count}
        record.update({k: v / self.count for k, v in self.sums.items()})
        with self.path.open("a") as f:
            f.write(json.dumps(record) + "\n")
        if writer is not None:
            for k, v in record.items():
                if k not in ("step", "epoch"):
                    writer.add_scalar(f"train/{k}", v, step)
        self.sums.clear()
        self.count = 0
        self.t0 = now


def save_sample_grid(path: Path, real_a: torch.Tensor, real_b: torch.Tensor, t: Any) -> torch.Tensor:
    """Write real_a | fake_b | rec_a over real_b | fake_a | rec_b (first image of the batch) and
    return the grid, (3, H, W) in [-1, 1]."""

    def rgb(x: torch.Tensor) -> torch.Tensor:
        x = x[0].detach().float().cpu()
        return x.expand(3, -1, -1) if x.shape[0] == 1 else x

    top = torch.cat([rgb(real_a), rgb(t.fake_b), rgb(t.rec_a)], dim=2)
    bottom = torch.cat([rgb(real_b), rgb(t.fake_a), rgb(t.rec_b)], dim=2)
    if top.shape[2] != bottom.shape[2]:  # domains of different sizes: pad the narrower row
        w = max(top.shape[2], bottom.shape[2])
        top, bottom = (torch.nn.functional.pad(r, (0, w - r.shape[2]), value=1.0) for r in (top, bottom))
    grid = torch.cat([top, bottom], dim=1)
    save_image(grid, path)
    return grid


def tensorboard_writer(run_dir: Path, resume_step: int | None) -> Any:
    """A SummaryWriter when the optional `tensorboard` package is installed, else None.

    On resume, events logged after the checkpoint's step are purged.
    """
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    purge = None if resume_step is None else resume_step + 1
    return SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge)


class StopRequest:
    """First Ctrl-C: finish the current step, save, stop. A second one interrupts at once."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: Any = None

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        logger.warning("stopping after this step (Ctrl-C again to abort without saving)")

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


@contextlib.contextmanager
def deterministic_mode(enabled: bool) -> Iterator[None]:
    """Reproducible kernels while training, restored afterwards.

    On the CPU, `torch.use_deterministic_algorithms` is not enough: when the cores are busy with other
    work, multi-threaded kernels round differently from run to run. Seen here: MKL's matrix
    products (also with its dynamic threading off; only MKL_CBWR=COMPATIBLE, an environment variable
    read once at start-up, fixed them) and oneDNN's convolutions (also with oneDNN's own
    deterministic flag). Adam amplifies any such difference into a visible drift within a few steps.
    So the mode runs PyTorch on one CPU thread; oneDNN stays on, since on one thread it is both
    reproducible and the fastest CPU path.
    """
    if not enabled:
        yield
        return
    previous = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0])
        torch.set_num_threads(previous[1])


def make_loader(dataset: UnalignedDataset, run: Run) -> DataLoader:
    p, cfg = run.progress, run.cfg
    sampler = EpochSampler(
        len(dataset), seed=cfg.train.seed, epoch=p.epoch, shuffle=not cfg.data.serial_batches,
        start=p.batch_in_epoch * cfg.data.batch_size,
    )
    return DataLoader(
        dataset,
        batch_size=cfg.data.batch_size,
        sampler=sampler,
        num_workers=cfg.data.num_workers,
        pin_memory=run.device.type == "cuda",
        generator=torch.Generator(),  # keeps the loader from drawing on the global RNG
    )


def train_one_epoch(
    run: Run, dataset: UnalignedDataset, log: LossLog, bar: tqdm, writer: Any, max_steps: int | None,
    stop: StopRequest,
) -> bool:
    """Train until the end of the epoch, `max_steps` or a stop request; returns whether the epoch ended."""
    cfg, p, model = run.cfg, run.progress, run.model
    model.train()
    for batch in make_loader(dataset, run):
        if stop.requested or (max_steps is not None and p.step >= max_steps):
            return False
        real_a = batch["a"].to(run.device, non_blocking=True)
        real_b = batch["b"].to(run.device, non_blocking=True)
        losses, t = train_step(
            model, real_a, real_b, run.opt_g, run.opt_d, run.pool_a, run.pool_b, precision=cfg.train.precision,
            merge_passes=cfg.train.merge_passes, scalers=run.scalers,
        )
        p.step += 1
        p.batch_in_epoch += 1
        p.skipped += int(batch["skipped"].sum())
        p.epoch_g_loss += sum(v for k, v in losses.items() if not k.startswith("d_"))
        log.add(losses, p.step, p.epoch, run.opt_g.param_groups[0]["lr"], writer)
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
        if p.step % cfg.train.sample_every == 0:
            grid = save_sample_grid(run.run_dir / "samples" / f"step_{p.step:07d}.png", real_a, real_b, t)
            if writer is not None:
                writer.add_image("samples", (grid + 1) / 2, p.step)
            write_page(run.run_dir)
        if p.step % cfg.train.checkpoint_every == 0:
            run.save()
    return p.batch_in_epoch >= math.ceil(len(dataset) / cfg.data.batch_size)


def write_page(run_dir: Path) -> None:
    from ..report import (
        write_run_page,  # the report is optional polish: never kill training for it
    )

    try:
        write_run_page(run_dir)
    except Exception as e:  # noqa: BLE001
        logger.warning("could not write %s/index.html: %s", run_dir, e)


def train(
    dataroot: str | Path | None,
    run_dir: str | Path,
    cfg: Config | None = None,
    *,
    resume: bool = False,
    max_steps: int | None = None,
    device: str | None = None,
    progress: bool = True,
) -> Progress:
    """Train a CycleGAN on `dataroot` (trainA/trainB) into `run_dir`, or resume the run in `run_dir`.

    Args:
        dataroot: dataset folder; on resume, None means the one recorded in the checkpoint.
        run_dir: where config, logs, samples, checkpoints and index.html go.
        cfg: the configuration of a new run (ignored on resume: the checkpoint's is used).
        resume: continue from `run_dir/checkpoints/latest.pt`.
        max_steps: stop once the run's total step count reaches this (across resumes).
        device: overrides cfg.train.device.
        progress: show a tqdm bar.
    """
    run_dir = Path(run_dir)
    ckpt = None
    if resume:
        ckpt = load_checkpoint(run_dir)
        cfg = Config.from_dict(ckpt["config"])
        dataroot = Path(dataroot) if dataroot is not None else Path(ckpt["run"]["dataroot"])
    elif (run_dir / "checkpoints" / "latest.pt").exists():
        raise FileExistsError(
            f"{run_dir} already holds a run; resume it with `cyclegan train --resume {run_dir}` or pick a new --run-dir"
        )
    if dataroot is None:
        raise ValueError("a dataset folder (DATAROOT) is needed for a new run")
    cfg = cfg or Config()
    dev = resolve_device(device or cfg.train.device)
    if cfg.train.precision == "fp16" and dev.type != "cuda":
        raise ValueError("train.precision=fp16 needs a CUDA device; on the CPU use train.precision=bf16")

    # Open the data first: a bad DATAROOT fails before anything is written.
    dataset = UnalignedDataset.from_root(
        dataroot, cfg.data, channels_a=cfg.model.channels_a, channels_b=cfg.model.channels_b
    )
    evaluator = None
    if cfg.eval.every_epochs:  # before Run: loading the Inception network must not draw on the seeded RNG
        evaluator = PeriodicEvaluation(cfg.eval, Path(dataroot), run_dir, channels_a=cfg.model.channels_a,
                                       channels_b=cfg.model.channels_b, device=dev)
    run = Run(cfg, run_dir, Path(dataroot).resolve(), dev)
    run_dir.mkdir(parents=True, exist_ok=True)
    cfg.save(run_dir / "config.yaml")
    log = LossLog(run_dir / "losses.jsonl", cfg.train.log_every)
    if ckpt is not None:
        run.load_state_dict(ckpt)
        logger.info("resumed %s at epoch %d, step %d", run_dir, run.progress.epoch, run.progress.step)
    for name in (log.path, run_dir / EVALS_FILE):  # a fresh run (step 0) starts with empty logs
        truncate_jsonl(name, run.progress.step)
    logger.info("training on %s: %r", dev, dataset)

    steps_per_epoch = math.ceil(len(dataset) / cfg.data.batch_size)
    total = run.total_epochs * steps_per_epoch
    if max_steps is not None:
        total = min(total, max_steps)
    writer = tensorboard_writer(run_dir, run.progress.step if ckpt is not None else None)
    bar = tqdm(total=total, initial=min(run.progress.step, total), disable=not progress, unit="it", dynamic_ncols=True)
    p = run.progress
    try:
        with deterministic_mode(cfg.train.deterministic), StopRequest() as stop:
            while p.epoch <= run.total_epochs and (max_steps is None or p.step < max_steps):
                if not train_one_epoch(run, dataset, log, bar, writer, max_steps, stop):
                    break
                mean_g_loss = p.epoch_g_loss / max(p.batch_in_epoch, 1)
                step_scheduler(run.sched_g, mean_g_loss)
                step_scheduler(run.sched_d, mean_g_loss)
                completed = p.epoch
                p.epoch, p.batch_in_epoch, p.epoch_g_loss = p.epoch + 1, 0, 0.0
                improved = False
                if evaluator is not None and evaluator.due(completed, run.total_epochs):
                    value, improved = evaluator(run.model, epoch=completed, step=p.step, best=p.best_score)
                    if improved:
                        p.best_score, p.best_epoch = value, completed
                    write_page(run_dir)
                latest = run.save()
                if improved:
                    atomic_copy(latest, run_dir / "checkpoints" / "best.pt")
    finally:
        bar.close()
    if stop.requested:
        run.save()
        logger.warning("stopped at step %d; checkpoint saved. Resume with: cyclegan train --resume %s", p.step, run_dir)
        raise KeyboardInterrupt
    log.flush(p.step, p.epoch, run.opt_g.param_groups[0]["lr"], writer)
    run.save()
    run.export_official()
    if writer is not None:
        writer.close()
    write_page(run_dir)
    if p.skipped:
        logger.warning("%d unreadable images were skipped during training (see the warnings above)", p.skipped)
    return p
