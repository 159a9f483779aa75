"""The training loop: epochs of `train_step`, logs, sample grids, checkpoints and exact resume.

Reads top to bottom: `train` prepares a run (fresh or resumed), then calls `train_one_epoch` per
epoch and steps the learning-rate schedules between epochs (paper Sec. 4: 100 epochs at 2e-4, then
100 epochs of linear decay to zero).

Exact resume: every source of randomness is either in the checkpoint (torch RNG, pool RNGs) or a pure
function of (seed, epoch, position) (data order, B choice, crops, flips), so N steps + resume + N
steps reproduce 2N uninterrupted steps bit for bit on the CPU in deterministic mode.

Data-parallel (torchrun): every rank runs this loop on its shard of the data; gradients are
averaged by DDP (`training.distributed`), logged losses are averaged over ranks, and only rank 0
writes files.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from ..atomic import atomic_write_text
from ..config import Config
from ..data.aligned import AlignedDataset
from ..data.sampler import EpochSampler
from ..data.splits import Split, evaluation_split, holdout_of, save_holdout
from ..data.unaligned import UnalignedDataset
from ..device import resolve_device
from ..methods import GeneratorOutputs, check_config
from ..precision import autocast
from . import distributed
from ..checkpoint import CheckpointError, copy_verified, load_checkpoint, remove_stale_temporaries
from .control import StopRequest, TrainingStopped, deterministic_mode
from .loggers import Loggers, check_loggers, open_loggers
from .logs import LossLog, save_sample_grid, write_page
from .periodic_eval import EVALS_FILE, PeriodicEvaluation, check_split, truncate_jsonl
from .safety import RunLock, TrainingDiverged, check_losses, last_good_message, scale_learning_rate
from .schedule import step_scheduler
from .state import Progress, TrainingState, build_training_state
from .step import train_step

__all__ = ["EpochStats", "make_loader", "train", "train_one_epoch"]

DATASETS = {"unaligned": UnalignedDataset, "aligned": AlignedDataset}  # by data.mode

logger = logging.getLogger(__name__)


def make_loader(dataset: UnalignedDataset | AlignedDataset, run: TrainingState) -> DataLoader:
    p, cfg = run.progress, run.cfg
    sampler = EpochSampler(
        len(dataset), seed=cfg.train.seed, epoch=p.epoch, shuffle=not cfg.data.serial_batches,
        start=p.samples_in_epoch or 0, rank=run.ctx.rank, world_size=run.ctx.world_size,
    )
    return DataLoader(
        dataset,
        batch_size=cfg.data.batch_size,
        sampler=sampler,
        num_workers=cfg.data.num_workers,
        pin_memory=run.device.type == "cuda",
        generator=torch.Generator(),  # keeps the loader from drawing on the global RNG
    )


def _losses_over_ranks(run: TrainingState, losses: dict[str, torch.Tensor], stop: StopRequest) -> dict[str, float]:
    """The losses as floats, averaged over ranks; a stop request on any rank becomes everyone's (so
    all ranks stop after the same step). One device sync and at most one all-reduce per step."""
    values = torch.stack(list(losses.values())).float()
    if run.ctx.enabled:
        flag = torch.tensor([float(stop.requested)], device=values.device)
        values = distributed.mean_over_ranks(torch.cat([values, flag]))
        if values[-1].item() > 0:
            stop.requested = True
        values = values[:-1]
    return dict(zip(losses, values.tolist()))


@dataclass
class EpochStats:
    """What one call of `train_one_epoch` did."""

    steps: int = 0  # optimisation steps taken
    finished: bool = False  # the epoch's data ran out (False: max_steps or a stop request came first)
    mean_losses: dict[str, float] = field(default_factory=dict)  # each loss averaged over those steps


def train_one_epoch(
    run: TrainingState, dataset: UnalignedDataset | AlignedDataset, log: LossLog | None, bar: tqdm,
    loggers: Loggers | None, max_steps: int | None, stop: StopRequest,
) -> EpochStats:
    """Train until the end of the epoch, `max_steps` or a stop request."""
    cfg, p, model = run.cfg, run.progress, run.model
    stats, sums = EpochStats(), {}
    model.train()
    for batch in make_loader(dataset, run):
        if stop.requested or (max_steps is not None and p.step >= max_steps):
            return _averaged(stats, sums)
        real_a = batch["a"].to(run.device, non_blocking=True)
        real_b = batch["b"].to(run.device, non_blocking=True)
        losses, t = train_step(
            model, real_a, real_b, run.opt_g, run.opt_d, run.pool_a, run.pool_b, precision=cfg.train.precision,
            scalers=run.scalers, sync_losses=False, passes=run.passes,
            regularize=cfg.loss.r1_gamma > 0 and (p.step + 1) % cfg.loss.r1_every == 0,
        )
        losses = _losses_over_ranks(run, losses, stop)
        check_losses(losses, p.step + 1, last_good_message(run.run_dir, run.saved_step))
        if run.ema is not None:
            run.ema.update(model, p.step + 1)
        if run.ada is not None and run.ada.due(p.step + 1):
            _adjust_augmentation(run, real_a, real_b)
        stats.steps += 1
        for k, v in losses.items():
            sums[k] = sums.get(k, 0.0) + v
        p.step += 1
        p.batch_in_epoch += 1
        p.samples_in_epoch = min(len(dataset), (p.samples_in_epoch or 0) + real_a.shape[0] * run.ctx.world_size)
        p.skipped += int(batch["skipped"].sum())
        p.epoch_g_loss += sum(v for k, v in losses.items() if not k.startswith("d_"))
        if log is not None:
            log.add({**losses, **({"ada_p": run.ada.p} if run.ada is not None else {})}, p.step, p.epoch,
                    run.opt_g.param_groups[0]["lr"], loggers)
        bar.update(1)
        bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
        if p.step % cfg.train.sample_every == 0 and run.ctx.is_main:
            grid = save_sample_grid(run.run_dir / "samples" / f"step_{p.step:07d}.png", real_a, real_b,
                                    t if run.ema is None else _ema_outputs(run, real_a, real_b))
            if loggers is not None:
                loggers.image("samples", (grid + 1) / 2, p.step)
            write_page(run.run_dir)
        if p.step % cfg.train.checkpoint_every == 0:
            run.save()
    stats.finished = True
    return _averaged(stats, sums)


def _adjust_augmentation(run: TrainingState, real_a: torch.Tensor, real_b: torch.Tensor) -> None:
    """ADA's adjustment of the augmentation probability after this step (`training.ada`), measured on
    this step's real images in the training precision, averaged over ranks."""
    judged = [(d, real) for d, real, _ in run.model.judged_images(real_a, real_b, None, None)]
    with autocast(run.device, run.cfg.train.precision):
        run.ada.update(judged, run.ada.interval * real_a.shape[0] * run.ctx.world_size,
                       distributed.mean_over_ranks if run.ctx.enabled else None)


def _averaged(stats: EpochStats, sums: dict[str, float]) -> EpochStats:
    stats.mean_losses = {k: v / max(stats.steps, 1) for k, v in sums.items()}
    return stats


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
    """Train `cfg.model.method` (CycleGAN by default) on `dataroot` into `run_dir`, or resume the run in `run_dir`.

    Launched by torchrun (several processes), this trains data-parallel: see `training.distributed`.

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
    check_config(cfg)  # the method's rules, before anything is read or written
    check_loggers(cfg)  # a chosen logger's package is installed
    dev = resolve_device(device or cfg.train.device)
    if cfg.train.precision == "fp16" and dev.type != "cuda":
        raise ValueError("train.precision=fp16 needs a CUDA device; on the CPU use train.precision=bf16")

    # Open the data first: a bad DATAROOT or a missing evaluation split fails before anything is written.
    holdout = holdout_of(cfg, dataroot, run_dir if resume else None)  # a new run draws its own
    selection = None
    if cfg.eval.every_epochs:
        selection = holdout if cfg.eval.split == "val" and holdout else evaluation_split(cfg.eval.split, cfg, dataroot)
        check_split(cfg.eval, selection)
    dataset = DATASETS[cfg.data.mode].from_root(
        dataroot, cfg.data, channels_a=cfg.model.channels_a, channels_b=cfg.model.channels_b, holdout=holdout
    )
    ctx, dist_device = distributed.init_distributed(device or cfg.train.device, cfg.train.dist_timeout_s)
    try:
        with RunLock(run_dir) if ctx.is_main else contextlib.nullcontext():  # one trainer per run dir
            if ctx.is_main:  # the temporary files of writes a killed trainer left behind
                for folder in (run_dir, run_dir / "checkpoints", run_dir / "generators"):
                    remove_stale_temporaries(folder)
            if ctx.enabled:
                dev = dist_device
                distributed.barrier()  # every rank has checked the run dir before rank 0 writes into it
            return _train(cfg, Path(dataroot), run_dir, dev, ctx, ckpt, dataset, holdout, selection,
                          max_steps=max_steps, progress=progress and ctx.is_main)
    finally:
        distributed.shutdown()


def _train(
    cfg: Config, dataroot: Path, run_dir: Path, dev: torch.device, ctx: distributed.DistributedContext,
    ckpt: dict[str, Any] | None, dataset: UnalignedDataset | AlignedDataset, holdout: Split | None,
    selection: Split | None, *, max_steps: int | None, progress: bool,
) -> Progress:
    main = ctx.is_main
    if cfg.model.norm == "syncbatch" and ctx.enabled and dev.type != "cuda":
        raise ValueError("model.norm=syncbatch needs CUDA processes (PyTorch's SyncBatchNorm); with CPU "
                         "processes use model.norm=batch (statistics per process)")
    evaluator = None
    if selection is not None and main:  # before Run: loading the Inception network must not draw on the seeded RNG
        evaluator = PeriodicEvaluation(cfg.eval, selection, run_dir, channels_a=cfg.model.channels_a,
                                       channels_b=cfg.model.channels_b, device=dev)
    run = build_training_state(cfg, run_dir, dataroot.resolve(), dev, ctx)
    if ckpt is not None:  # before anything in the run dir is rewritten
        _restore(run, ckpt, run_dir)
        logger.info("resumed %s at epoch %d, step %d", run_dir, run.progress.epoch, run.progress.step)
    log = None
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(run_dir / "config.yaml")
        if holdout is not None:
            save_holdout(run_dir, holdout, cfg.train.seed)
        log = LossLog(run_dir / "losses.jsonl", cfg.train.log_every)
    if ctx.enabled:
        run.passes = distributed.wrap(run.model, dev)
    if main:
        for name in (log.path, run_dir / EVALS_FILE):  # a fresh run (step 0) starts with empty logs
            truncate_jsonl(name, run.progress.step)
    logger.info("training on %s: %r", dev, dataset)

    steps_per_epoch = len(EpochSampler(len(dataset), seed=0, epoch=0, world_size=ctx.world_size))
    steps_per_epoch = -(-steps_per_epoch // cfg.data.batch_size)
    total = run.total_epochs * steps_per_epoch
    if max_steps is not None:
        total = min(total, max_steps)
    loggers = open_loggers(cfg, run_dir, run.progress.step if ckpt is not None else None) if main else None
    try:
        p = _run(run, dataset, log, loggers, ctx, total=total, max_steps=max_steps, progress=progress,
                 evaluator=evaluator)
    except BaseException as e:
        if loggers is not None:  # a stopped run (resumable) ended normally; any other error is a failure
            loggers.close(failed=not isinstance(e, TrainingStopped))
        raise
    if loggers is not None:
        loggers.close()
    if main:
        write_page(run_dir)
    if p.skipped:
        logger.warning("%d unreadable images were skipped during training (see the warnings above)", p.skipped)
    return p


def _run(run: TrainingState, dataset: UnalignedDataset | AlignedDataset, log: LossLog | None, loggers: Loggers | None,
         ctx: distributed.DistributedContext, *, total: int, max_steps: int | None,
         progress: bool, evaluator: PeriodicEvaluation | None) -> Progress:
    """Train to the end (or a stop), then the final log line, checkpoint and export."""
    cfg, run_dir, main = run.cfg, run.run_dir, ctx.is_main
    bar = tqdm(total=total, initial=min(run.progress.step, total), disable=not progress, unit="it", dynamic_ncols=True)
    p = run.progress
    rollbacks = 0
    try:
        with deterministic_mode(cfg.train.deterministic), StopRequest() as stop:
            while True:
                try:
                    _epochs(run, dataset, log, bar, loggers, max_steps, stop, evaluator)
                    break
                except TrainingDiverged as e:
                    if cfg.train.on_divergence != "rollback" or rollbacks >= cfg.train.max_rollbacks or \
                            run.saved_step is None or ctx.enabled:
                        raise
                    rollbacks += 1
                    _roll_back(run, str(e), rollbacks)
                    p = run.progress
                    if log is not None:  # the lines of the steps rolled back
                        log.reset()
                        for name in (log.path, run_dir / EVALS_FILE):
                            truncate_jsonl(name, p.step)
    finally:
        bar.close()
    if stop.requested:
        run.save()
        logger.warning("stopped at step %d; checkpoint saved. Resume with: cyclegan train --resume %s", p.step, run_dir)
        raise TrainingStopped(stop.signum)
    if ctx.enabled:
        _check_ranks_agree(run)
    if main:
        log.flush(p.step, p.epoch, run.opt_g.param_groups[0]["lr"], loggers)
    run.save()
    if main and cfg.train.export_official:
        with run.ema.applied(run.model) if run.ema is not None else contextlib.nullcontext():
            run.model.export_official(run_dir / "generators")
    return p


def _epochs(run: TrainingState, dataset: UnalignedDataset | AlignedDataset, log: LossLog | None, bar: tqdm,
            loggers: Loggers | None, max_steps: int | None, stop: StopRequest,
            evaluator: PeriodicEvaluation | None) -> None:
    """Train epoch after epoch until the schedule ends, `max_steps` or a stop request; schedules step,
    evaluations run and checkpoints are written at each epoch's end."""
    cfg, p, run_dir = run.cfg, run.progress, run.run_dir
    while p.epoch <= run.total_epochs and (max_steps is None or p.step < max_steps):
        if not train_one_epoch(run, dataset, log, bar, loggers, max_steps, stop).finished:
            return
        mean_g_loss = p.epoch_g_loss / max(p.batch_in_epoch, 1)
        step_scheduler(run.sched_g, mean_g_loss)
        if run.model.adversarial:  # without an adversarial loss the discriminators never train
            step_scheduler(run.sched_d, mean_g_loss)
        completed = p.epoch
        p.epoch, p.batch_in_epoch, p.samples_in_epoch, p.epoch_g_loss = p.epoch + 1, 0, 0, 0.0
        improved = False
        if evaluator is not None and evaluator.due(completed, run.total_epochs):
            with run.ema.applied(run.model) if run.ema is not None else contextlib.nullcontext():
                value, improved = evaluator(run.model, epoch=completed, step=p.step, best=p.best_score,
                                            loggers=loggers)
            if improved:
                p.best_score, p.best_epoch = value, completed
            write_page(run_dir)
        if cfg.eval.every_epochs:
            distributed.barrier()  # the other ranks wait here while rank 0 evaluates
        latest = run.save()
        if improved:
            copy_verified(latest, run_dir / "checkpoints" / "best.pt")


@torch.no_grad()
def _ema_outputs(run: TrainingState, real_a: torch.Tensor, real_b: torch.Tensor) -> GeneratorOutputs:
    """The images of a sample grid made with the averaged generators (their translators, in eval mode)."""
    model = run.model
    with run.ema.applied(model):
        was_training = model.training
        model.eval()
        try:
            g = {d: model.translator(d) for d in model.directions}
            fake_b = g["AtoB"](real_a) if "AtoB" in g else None
            fake_a = g["BtoA"](real_b) if "BtoA" in g else None
            both = len(g) == 2
            return GeneratorOutputs(fake_b=fake_b, fake_a=fake_a, rec_a=g["BtoA"](fake_b) if both else None,
                                    rec_b=g["AtoB"](fake_a) if both else None)
        finally:
            model.train(was_training)


def _restore(run: TrainingState, ckpt: dict[str, Any], run_dir: Path) -> None:
    """`run.load_state_dict(ckpt)`, with a CheckpointError naming what does not fit (a checkpoint of
    the right format with missing keys or other shapes)."""
    missing = [k for k in ("config", "nets", "optim", "progress") if k not in ckpt]
    if missing:
        raise CheckpointError(f"the checkpoint of {run_dir} lacks {', '.join(missing)}: it is incomplete or damaged")
    try:
        run.load_state_dict(ckpt)
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise CheckpointError(f"the checkpoint of {run_dir} does not fit its own config ({reason}): it is "
                              "damaged or was edited") from None


def _roll_back(run: TrainingState, reason: str, count: int) -> None:
    """Resume from the last good checkpoint with the learning rate scaled by train.rollback_lr_factor."""
    factor = run.cfg.train.rollback_lr_factor
    logger.warning("%s", reason)
    _restore(run, load_checkpoint(run.run_dir), run.run_dir)
    scale_learning_rate((run.opt_g, run.opt_d), (run.sched_g, run.sched_d), factor)
    logger.warning("rollback %d of %d: back to step %d with the learning rate x %g (now %.3g)", count,
                   run.cfg.train.max_rollbacks, run.progress.step, factor, run.opt_g.param_groups[0]["lr"])


def _check_ranks_agree(run: TrainingState) -> None:
    """Compare every rank's weights (sha256) and record it in `distributed.json`: data-parallel
    ranks must end bit-identical, or the saved checkpoint would not be the run's model. Buffers are
    rank 0's first (the checkpoint's), as DDP makes them at every wrapped forward."""
    distributed.broadcast_buffers(run.model)
    prints = distributed.gather_fingerprints(run.model)
    if not run.ctx.is_main:
        return
    identical = len(set(prints)) == 1
    record = {"world_size": run.ctx.world_size, "step": run.progress.step, "identical": identical,
              "fingerprints": prints}
    atomic_write_text(run.run_dir / "distributed.json", json.dumps(record, indent=2) + "\n")
    if not identical:
        logger.error("the ranks' weights differ at the end of training (see %s/distributed.json)", run.run_dir)
