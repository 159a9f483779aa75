"""The scorer network (pix2pix's U-Net with a class-logit head), its settings, and the scorer file.

A scorer file is a dict of plain data and tensors, read with `torch.load(..., weights_only=True)`
(`safe_load.load_tensors`) and written atomically:
    format, version, config (ScorerConfig as a dict: architecture and training settings),
    palette (Palette.to_dict()), classes (the scored class names, one logit each), state_dict,
    train (losses per epoch, seconds, images, dataroot), real_scores (SegmentationScores.as_dict()
    of the real test photos: the "ground truth" row).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..atomic import save_verified, verify_digest
from ..metrics.palette import Palette
from ..metrics.segmentation import SegmentationScores
from ..nn import UnetGenerator
from ..safe_load import load_tensors

FORMAT = "cyclegan-fcn-scorer"
VERSION = 1
MAX_DOWNS = 7  # a 128 px input down to 1x1, the receptive field of the whole image


@dataclass(frozen=True)
class ScorerConfig:
    size: int = 128  # photos (and label maps, nearest neighbour) are resized to size x size
    num_downs: int | None = None  # U-Net levels; None: as many as `size` allows, at most MAX_DOWNS
    ngf: int = 32  # width of the first level (x2 per level, at most 8 ngf)
    norm: str = "batch"
    epochs: int = 30
    batch_size: int = 8
    lr: float = 2e-3  # Adam (0.9, 0.999), decayed linearly to 0 over the epochs
    seed: int = 0
    flip: bool = True  # random horizontal flips of photo and label map together
    photos: str = "A"  # the domain of DATAROOT that holds the photos; the other holds the label maps

    def resolved(self) -> ScorerConfig:
        """The config with `num_downs` chosen and every field checked.

        Raises:
            ValueError: a field is out of range, or `size` is no multiple of 2**num_downs.
        """
        if self.photos not in ("A", "B"):
            raise ValueError(f"photos must be A or B (the domain of the photos), got {self.photos!r}")
        for name in ("size", "ngf", "epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        downs = self.num_downs
        if downs is None:
            downs = 0
            while downs < MAX_DOWNS and self.size % 2 ** (downs + 1) == 0:
                downs += 1
        if downs < 5 or self.size % 2**downs:
            raise ValueError(f"the scorer's U-Net needs at least 5 levels and a size that divides by 2**levels; "
                             f"size {self.size} with {downs} levels does not work (use a multiple of 32)")
        return dataclasses.replace(self, num_downs=downs)


class SegmentationUnet(nn.Module):
    """pix2pix's U-Net (`nn.UnetGenerator`) with a class-logit head: its outermost transposed conv
    gives one channel per class and the tanh is dropped. (B, 3, H, W) in [-1, 1] -> (B, K, H, W) logits."""

    def __init__(self, num_classes: int, *, num_downs: int = 7, ngf: int = 32, norm: str = "batch") -> None:
        super().__init__()
        self.unet = UnetGenerator(3, num_classes, num_downs=num_downs, ngf=ngf, norm=norm)
        self.unet.ups[0][-1] = nn.Identity()  # logits, not tanh

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.unet(x)


@dataclass
class Scorer:
    """A trained scorer: the network (eval mode, on the CPU unless moved), what it was trained with,
    and its scores on the real test photos."""

    net: SegmentationUnet
    config: ScorerConfig
    palette: Palette
    real_scores: SegmentationScores | None
    train: dict[str, Any] = field(default_factory=dict)

    @property
    def classes(self) -> list[str]:
        """The scored classes, one logit each, in the network's channel order."""
        return [self.palette.names[k] for k in self.palette.scored]


def build_network(config: ScorerConfig, palette: Palette) -> SegmentationUnet:
    """The (untrained) network of a resolved config."""
    return SegmentationUnet(len(palette.scored), num_downs=config.num_downs or MAX_DOWNS, ngf=config.ngf,
                            norm=config.norm)


def save_scorer(scorer: Scorer, path: str | Path) -> Path:
    """Write `scorer` to `path` atomically, as plain data readable with weights_only=True."""
    state = {k: v.detach().cpu().clone() for k, v in scorer.net.state_dict().items()}
    return save_verified({
        "format": FORMAT, "version": VERSION, "config": dataclasses.asdict(scorer.config),
        "palette": scorer.palette.to_dict(), "classes": scorer.classes, "state_dict": state,
        "train": scorer.train, "real_scores": scorer.real_scores.as_dict() if scorer.real_scores else None,
    }, path)


def load_scorer(path: str | Path) -> Scorer:
    """Read a scorer file safely (no unpickling of code) and rebuild its network, strictly.

    Raises:
        ValueError: the file is missing, not a scorer, of a newer version, or its weights do not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"scorer file {path} does not exist; `cyclegan scorer train` writes one")
    if verify_digest(path) is False:
        raise ValueError(f"{path} does not match its checksum ({path.name}.sha256): the file is corrupt")
    data = load_tensors(path, message=f"cannot read {path} as an FCN scorer")
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValueError(f"{path} is not an FCN scorer file (`cyclegan scorer train` writes one)")
    if data.get("version", 0) > VERSION:
        raise ValueError(f"{path} was written by a newer cyclegan ({FORMAT} version {data['version']}); upgrade")
    try:
        config = ScorerConfig(**data["config"]).resolved()
        palette = Palette.from_dict(data["palette"], f"{path} (palette)")
        net = build_network(config, palette)
        net.load_state_dict(data["state_dict"], strict=True)
    except (KeyError, TypeError, RuntimeError) as e:
        reason = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ValueError(f"{path} is a damaged FCN scorer file: {reason}") from None
    real = data.get("real_scores")
    return Scorer(net.eval(), config, palette, SegmentationScores.from_dict(real) if real else None,
                  data.get("train", {}))
