"""Export a run's generators in the official pytorch-CycleGAN-and-pix2pix file layout."""

from __future__ import annotations

from pathlib import Path

from ..checkpoint import load_checkpoint
from .loading import method_from_checkpoint


def export_official(checkpoint: str | Path, out_dir: Path, *, suffix: str = ".pth") -> list[Path]:
    """Write the run's generators as plain state dicts in the official layout: CycleGAN's
    `latest_net_G_A.pth` (A->B) and `latest_net_G_B.pth` (B->A), pix2pix's `latest_net_G.pth`.

    The official `test.py --model test --no_dropout` (or `--model cycle_gan`) loads them directly;
    `suffix=".safetensors"` writes the same keys as safetensors files (no pickle). Raises ValueError
    for a method or generator without an official layout.
    """
    model = method_from_checkpoint(load_checkpoint(checkpoint))
    files = model.export_official(Path(out_dir), suffix=suffix)
    if not files:
        raise ValueError(f"model.method={model.name} with model.generator={model.cfg.model.generator} has no official "
                         "file layout; export it with --format onnx or torchscript instead")
    return files
