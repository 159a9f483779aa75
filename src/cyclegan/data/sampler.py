"""The order of training data: which items each step sees, as a pure function of (seed, epoch)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch.utils.data import Sampler


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
