"""FID and KID between two image sets given as paths, as records: what `cyclegan evaluate fid|kid`
reports. A side is an image folder; for FID also an `.npz` of statistics (pytorch-fid's format)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from .fid import fid, inception_features, save_statistics, statistics
from .inception import load_fid_inception
from .kid import kid


def _existing(a: str | Path, b: str | Path, *, npz: bool) -> tuple[Path, Path]:
    sides = Path(a), Path(b)
    for side in sides:
        if not side.exists():
            raise FileNotFoundError(f"{side} does not exist; give an image folder" + (" or an .npz" if npz else ""))
    return sides


def fid_between(
    a: str | Path, b: str | Path, *, weights: str | Path | None = None, batch_size: int = 50,
    device: torch.device | str = "cpu", save_stats: str | Path | None = None,
) -> dict[str, Any]:
    """{"metric": "fid", "a", "b", "fid"} and, with `save_stats`, A's statistics saved there for reuse
    ("saved_stats", "n_a"). The Inception network (`weights`, default pytorch-fid's) is loaded only
    when a side is an image folder."""
    side_a, side_b = _existing(a, b, npz=True)
    npz = [s.suffix == ".npz" for s in (side_a, side_b)]
    if save_stats and npz[0]:
        raise ValueError(f"cannot save the statistics of {side_a}: it is statistics already; give an image folder")
    model = None if all(npz) else load_fid_inception(weights).to(device)
    record: dict[str, Any] = {"metric": "fid", "a": str(side_a), "b": str(side_b)}
    if save_stats:
        features = inception_features(model, side_a, batch_size=batch_size, device=device)
        record["saved_stats"] = str(save_statistics(save_stats, *statistics(features)))
        record["n_a"] = len(features)
    record["fid"] = fid(side_a, side_b, model=model, batch_size=batch_size, device=device)
    return record


def kid_between(
    a: str | Path, b: str | Path, *, weights: str | Path | None = None, batch_size: int = 50,
    device: torch.device | str = "cpu", subsets: int = 100, subset_size: int = 1000,
) -> dict[str, Any]:
    """{"metric": "kid", "a", "b", "kid_mean", "kid_std", "n_a", "n_b"} between two image folders."""
    sides = _existing(a, b, npz=False)
    model = load_fid_inception(weights).to(device)
    fa, fb = (inception_features(model, s, batch_size=batch_size, device=device) for s in sides)
    k = kid(fa, fb, num_subsets=subsets, subset_size=subset_size)
    return {"metric": "kid", "a": str(sides[0]), "b": str(sides[1]), "kid_mean": k.mean, "kid_std": k.std,
            "n_a": len(fa), "n_b": len(fb)}
