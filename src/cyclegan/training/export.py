"""Export a run's generators in the official pytorch-CycleGAN-and-pix2pix file layout."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from ..config import Config
from ..methods import build_model
from ..nn import to_official
from .checkpoint import atomic_save, load_checkpoint


def write_official_generators(g_ab: nn.Module, g_ba: nn.Module | None, out_dir: Path) -> list[Path]:
    """`latest_net_G_A.pth` is A->B (the paper's G), `latest_net_G_B.pth` is B->A (F); a single
    generator (pix2pix) is `latest_net_G.pth`, the official pix2pix name."""
    if g_ba is None:
        return [atomic_save(to_official(g_ab), out_dir / "latest_net_G.pth")]
    return [
        atomic_save(to_official(g_ab), out_dir / "latest_net_G_A.pth"),
        atomic_save(to_official(g_ba), out_dir / "latest_net_G_B.pth"),
    ]


def export_official(checkpoint: str | Path, out_dir: Path) -> list[Path]:
    """Write `latest_net_G_A.pth` (A->B) and `latest_net_G_B.pth` (B->A) as plain state dicts
    (pix2pix: `latest_net_G.pth`).

    The official `test.py --model test --no_dropout` (or `--model cycle_gan`) loads them directly.
    """
    ckpt = load_checkpoint(checkpoint)
    cfg = Config.from_dict(ckpt["config"])
    nets = build_model(cfg.model, cfg.loss).networks()
    for name in ("g_ab", "g_ba"):
        if name in nets:
            nets[name].load_state_dict(ckpt["nets"][name])
    return write_official_generators(nets["g_ab"], nets.get("g_ba"), out_dir)
