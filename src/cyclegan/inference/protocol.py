"""Test-time protocols: how test images go through a generator.

- `full` (the default): every image at its own size (padded to the generator's size multiple and
  cropped back, `translate.translate_tensor`), networks in eval mode (dropout off, batch norm on its
  running statistics). The output has the input's size, so it can be laid over the input or scored
  against a full-size ground truth.
- `official`: what the official `test.py` does, so numbers can be set beside published ones. Each
  image is resized to `crop_size` x `crop_size` (test.py sets `load_size = crop_size`, and its
  `resize_and_crop` is torchvision's `Resize([s, s], BICUBIC)`: PIL's bicubic, antialiased when it
  shrinks), the output stays at that size, one image per pass (`batch_size = 1`), and the networks
  stay in **train mode** unless `eval_mode` (test.py calls `model.eval()` only with `--eval`):
  dropout stays on and batch norm normalises each image with its own statistics. Instance norm
  without running statistics (CycleGAN's) is the same in both modes, so a CycleGAN differs from
  `full` only by the resize. The paired reference is resized the same way and goes through the
  tensor round trip test.py saves `real_B` with (`tensor2im` truncates). Each image's dropout draws
  come from a generator seeded afresh (test.py's are unseeded), so an image's output does not depend
  on the images translated before it and a rerun repeats its numbers.

When each fits: `official` to compare with a paper's table (which used it) or with the official
code's outputs; `full` for everything else (translations at the resolution of the input).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import nn

from ..data.image_io import array_to_tensor, tensor_to_uint8
from ..names import PROTOCOLS
OFFICIAL_SEED = 0  # the dropout draws of each image under the official protocol in train mode


@dataclass(frozen=True)
class Protocol:
    """A test-time protocol; `Protocol()` is `full`, `Protocol.official(size)` the official one."""

    name: str = "full"
    size: int | None = None  # resize every image to size x size (bicubic); None: full resolution
    train_mode: bool = False  # run the networks in train mode (dropout on, batch norm on the image's statistics)

    @classmethod
    def official(cls, size: int, *, eval_mode: bool = False) -> Protocol:
        if size < 1:
            raise ValueError(f"the official protocol's crop size must be at least 1, got {size}")
        return cls("official", int(size), not eval_mode)

    @classmethod
    def named(cls, name: str, *, crop_size: int = 256, eval_mode: bool = False) -> Protocol:
        """The protocol `name` ("full" or "official", at `crop_size`)."""
        if name == "full":
            return cls()
        if name == "official":
            return cls.official(crop_size, eval_mode=eval_mode)
        raise ValueError(f"unknown protocol {name!r}; choose one of: {', '.join(PROTOCOLS)}")

    def describe(self) -> str:
        if self.size is None:
            return "full: full resolution, eval mode"
        return (f"official: resized to {self.size}x{self.size} (bicubic), one image per pass, "
                f"{'train' if self.train_mode else 'eval'} mode")

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "size": self.size, "train_mode": self.train_mode}

    def prepare(self, image: Image.Image) -> Image.Image:
        """The image a generator gets: `image` itself, or resized to size x size (bicubic)."""
        if self.size is None or image.size == (self.size, self.size):
            return image
        return image.resize((self.size, self.size), Image.BICUBIC)

    def reference(self, image: Image.Image) -> np.ndarray:
        """The ground truth a translation is scored against, as uint8: as it is, or resized like
        the input and converted as test.py saves `real_B` (to a tensor and back, truncating)."""
        if self.size is None:
            return np.asarray(image)
        return tensor_to_uint8(array_to_tensor(np.asarray(self.prepare(image))))

    @contextmanager
    def modes(self, *networks: nn.Module | None) -> Iterator[None]:
        """Put `networks` in the protocol's mode for the block; in train mode, leave batch-norm
        running statistics as they were. Modes and buffers are restored afterwards."""
        nets = [n for n in networks if n is not None]
        modes = [[(m, m.training) for m in n.modules()] for n in nets]
        buffers = [{k: b.clone() for k, b in n.named_buffers()} for n in nets] if self.train_mode else []
        try:
            for n in nets:
                n.train(self.train_mode)
            yield
        finally:
            for saved in modes:
                for m, training in saved:
                    m.training = training
            for n, saved_buffers in zip(nets, buffers):
                with torch.no_grad():
                    for k, b in n.named_buffers():
                        b.copy_(saved_buffers[k])

    @contextmanager
    def draws(self, network: nn.Module) -> Iterator[None]:
        """Around one image's pass through `network`: in train mode, its dropout draws come from the
        random state seeded with OFFICIAL_SEED, and the caller's random state is kept."""
        if not self.train_mode:
            yield
            return
        devices = sorted({p.device.index or 0 for p in network.parameters() if p.device.type == "cuda"})
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(OFFICIAL_SEED)
            yield


FULL = Protocol()
