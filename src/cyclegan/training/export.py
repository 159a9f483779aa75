"""Export a run's generators in the official pytorch-CycleGAN-and-pix2pix file layout."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..config import Config
from ..cyclegan import CycleGAN
from ..nn import to_official
from .checkpoint import atomic_save, load_checkpoint


def write_official_generators(g_ab: nn.Module, g_ba: nn.Module, out_dir: Path) -> list[Path]:
    """`latest_net_G_A.pth` is A->B (the paper's G), `latest_net_G_B.pth` is B->A (F)."""
    return [
        atomic_save(to_official(g_ab), out_dir / "latest_net_G_A.pth"),
        atomic_save(to_official(g_ba), out_dir / "latest_net_G_B.pth"),
    ]


def export_official(checkpoint: str | Path, out_dir: Path) -> list[Path]:
    """Write `latest_net_G_A.pth` (A->B) and `latest_net_G_B.pth` (B->A) as plain state dicts.

    The official `test.py --model test --no_dropout` (or `--model cycle_gan`) loads them directly.
    """
    ckpt = load_checkpoint(checkpoint)
    cfg = Config.from_dict(ckpt["config"])
    model = CycleGAN.from_config(cfg.model, cfg.loss)
    model.g_ab.load_state_dict(ckpt["nets"]["g_ab"])
    model.g_ba.load_state_dict(ckpt["nets"]["g_ba"])
    return write_official_generators(model.g_ab, model.g_ba, out_dir)
