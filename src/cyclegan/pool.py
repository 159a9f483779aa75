"""Image history pool (Shrivastava et al. 2017; paper Sec. 4): the discriminators are updated with a
history of generated images rather than only the latest ones, to reduce model oscillation.
"""

from __future__ import annotations

import random
from typing import Any

import torch


class ImagePool:
    """Holds up to `size` past generated images.

    `query` behaves like the official implementation: while the pool fills, images are stored and
    returned as is; afterwards each image, with probability 1/2, is swapped with a random stored one
    (the stored one is returned), else returned as is. The pool has its own RNG so that its state
    can be checkpointed and resumed exactly.
    """

    def __init__(self, size: int = 50, *, seed: int = 0) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []
        self.rng = random.Random(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """images: (B, C, H, W), already detached. Returns a (B, C, H, W) batch to train D on."""
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif self.rng.uniform(0, 1) > 0.5:
                i = self.rng.randint(0, self.size - 1)
                out.append(self.images[i].clone())
                self.images[i] = image
            else:
                out.append(image)
        return torch.cat(out, 0)

    def reseed(self, seed: int) -> None:
        """Restart the pool's random stream (a data-parallel rank resuming from rank 0's pool)."""
        self.rng = random.Random(seed)

    def state_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "images": [im.cpu() for im in self.images],
            "rng": _rng_state_to_tensor(self.rng.getstate()),
        }

    def load_state_dict(self, state: dict[str, Any], device: torch.device | str | None = None) -> None:
        self.size = int(state["size"])
        self.images = [im.to(device) if device is not None else im for im in state["images"]]
        self.rng.setstate(_rng_state_from_tensor(state["rng"]))


def _rng_state_to_tensor(state: tuple) -> torch.Tensor:
    """Python's Mersenne Twister state as an int64 tensor (checkpoints hold tensors only)."""
    version, internal, gauss = state
    return torch.tensor([version, *internal, -1 if gauss is None else 0], dtype=torch.int64)


def _rng_state_from_tensor(t: torch.Tensor) -> tuple:
    values = t.tolist()
    return (values[0], tuple(values[1:-1]), None)
