"""Data-parallel training on torchrun: process group, DDP wrappers, data shards, rank checks.

`torchrun --nproc_per_node=N -m cyclegan train ...` starts N processes that each hold a full copy of
the method's networks. Each rank trains on its own shard of domain A (with its own random B images),
and DistributedDataParallel averages the gradients, so every rank takes the same optimiser step.

Why two wrappers (`GeneratorPass`, `DiscriminatorPass`) instead of one DDP per network: a step runs
each generator several times (CycleGAN: two or three) and runs the discriminators frozen inside the
generator step. DDP expects one forward per backward over parameters that all receive a gradient.
So the method's `translate` (the only place a step runs its generators) is one forward over all of
them (`GeneratorPass`, DDP-wrapped), the discriminators of the generator step run as plain modules
(frozen: no gradient, no all-reduce), and the method's `discriminator_losses` is one forward over
its discriminators (`DiscriminatorPass`, DDP-wrapped). Nothing here knows a method's networks.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands: `world_size` 1 and rank 0 when not launched by torchrun."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def launched_by_torchrun() -> bool:
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1


def init_distributed(device_name: str, timeout_s: float) -> tuple[DistributedContext, torch.device]:
    """Join the process group torchrun describes (NCCL on GPUs, gloo on CPUs) and pick this rank's
    device; without torchrun, a single-process context. `timeout_s` bounds every collective, so a
    rank that dies makes the others fail with an error instead of hanging."""
    if not launched_by_torchrun():
        return DistributedContext(), None
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", rank))
    use_cuda = device_name != "cpu" and torch.cuda.is_available()
    if use_cuda:
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu")
    if not dist.is_initialized():
        dist.init_process_group(
            backend="nccl" if use_cuda else "gloo", timeout=datetime.timedelta(seconds=timeout_s),
            **({"device_id": device} if use_cuda else {}),
        )
    ctx = DistributedContext(rank=rank, local_rank=local_rank, world_size=world)
    logger.info("rank %d of %d on %s (%s)", rank, world, device, dist.get_backend())
    return ctx, device


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


class GeneratorPass(nn.Module):
    """The method's `translate` as one forward over its generators: a tuple of `GeneratorOutputs`
    fields (None for what the method does not compute). Holds the method's generators, not copies."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.generators = nn.ModuleList(model.generators)  # the only registered modules: DDP sees exactly these
        object.__setattr__(self, "objective", model)  # not a submodule (it also holds the discriminators)

    def forward(self, real_a: torch.Tensor, real_b: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        return self.objective.translate(real_a, real_b).as_tuple()


class DiscriminatorPass(nn.Module):
    """The method's `discriminator_step_losses` as one forward over its discriminators (a dict of losses)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.discriminators = nn.ModuleList(model.discriminators)
        object.__setattr__(self, "objective", model)

    def forward(self, real_a: torch.Tensor, real_b: torch.Tensor, fake_a: torch.Tensor | None,
                fake_b: torch.Tensor, regularize: bool = False) -> dict[str, torch.Tensor]:
        return self.objective.discriminator_step_losses(real_a, real_b, fake_a, fake_b, regularize)


def wrap(model: nn.Module, device: torch.device) -> tuple[nn.Module, nn.Module]:
    """DDP-wrapped `GeneratorPass` and `DiscriminatorPass` of any method. DDP broadcasts rank 0's
    weights at construction, so all ranks start equal whatever their seeds."""
    from torch.nn.parallel import DistributedDataParallel as DDP  # lazy: only data-parallel runs need it

    ids = [device.index] if device.type == "cuda" else None
    kwargs = {"device_ids": ids, "output_device": ids[0] if ids else None, "broadcast_buffers": True}
    passes = [DDP(GeneratorPass(model), **kwargs)]
    if model.discriminators and model.adversarial:
        passes.append(DDP(DiscriminatorPass(model), **kwargs))
    else:  # nothing to all-reduce: no discriminator step
        passes.append(DiscriminatorPass(model))
    return passes[0], passes[1]


def mean_over_ranks(values: torch.Tensor) -> torch.Tensor:
    """The element-wise mean of a tensor over all ranks (the tensor itself without a process group)."""
    if not dist.is_initialized():
        return values
    values = values.clone()
    dist.all_reduce(values)
    return values / dist.get_world_size()


def broadcast_buffers(model: nn.Module) -> None:
    """Give every rank rank 0's buffers (batch-norm running statistics), as DDP does before each
    wrapped forward: a discriminator run frozen outside DDP updates its statistics on local data."""
    if not dist.is_initialized():
        return
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def weights_fingerprint(model: nn.Module) -> str:
    """sha256 of every parameter and buffer, in order: equal on all ranks iff their weights are equal."""
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def gather_fingerprints(model: nn.Module) -> list[str]:
    """Every rank's `weights_fingerprint`, in rank order (a one-item list without a process group)."""
    mine = weights_fingerprint(model)
    if not dist.is_initialized():
        return [mine]
    out: list[str] = [""] * dist.get_world_size()
    dist.all_gather_object(out, mine)
    return out
