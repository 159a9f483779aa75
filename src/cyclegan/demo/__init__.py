"""`cyclegan demo`: a complete CycleGAN experiment that needs no data and no network.

Draws a synthetic paired aerial-photo <-> map dataset (`data.synthetic`), trains on it *unpaired*
(like the paper's maps experiment, Sec. 5.1.2), translates the held-out tiles both ways and scores
them against the true pairs, then writes `OUT/index.html`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_checkpoint
from ..config import Config, ConfigError, build_config
from ..data.image_io import find_images, load_image, save_image, to_tensor
from ..device import resolve_device
from ..inference import load_generator, translate_tensor
from ..report import write_results_page
from ..training.loop import train
from .city import write_city_dataset

logger = logging.getLogger(__name__)


def _grey_levels(x: torch.Tensor) -> np.ndarray:
    """(C, H, W) in [-1, 1] -> float array in [0, 255]."""
    return ((x.clamp(-1, 1) + 1) * 127.5).numpy()


def run_demo(
    out: Path, *, steps: int | None = None, device: str = "auto", n_train: int = 400, n_test: int = 12,
    size: int = 128, progress: bool = True, overrides: Sequence[str] = (),
) -> Path:
    """Build the data, train (or resume an interrupted demo), evaluate, and write the results page.

    Args:
        out: output folder (data/, run/, results/, index.html).
        steps: stop training after this many steps (default: the `demo` preset's full schedule).
        device: auto, cpu, cuda...
        n_train, n_test, size: synthetic dataset size and image side in pixels.
        overrides: `key=value` changes to the `demo` preset (e.g. model.upsample=resize).

    Raises:
        ConfigError: a bad override, or `out` holds a demo trained with other settings.
    """
    out = Path(out)
    cfg = build_config(["demo"], list(overrides))
    run_dir = out / "run"
    resume = (run_dir / "checkpoints" / "latest.pt").exists()
    if resume and Config.from_dict(load_checkpoint(run_dir)["config"]) != cfg:
        raise ConfigError(f"{out} holds a demo trained with other settings; give the same --set as before, "
                          "or another --out")
    data = write_city_dataset(out / "data", n_train=n_train, n_test=n_test, size=size, seed=0)
    t0 = time.perf_counter()
    if resume:
        logger.info("continuing the demo run in %s", run_dir)
        train(data, run_dir, resume=True, max_steps=steps, device=device, progress=progress)
    else:
        train(data, run_dir, cfg, max_steps=steps, device=device, progress=progress)
    train_seconds = time.perf_counter() - t0

    dev = resolve_device(device)
    g_ab = load_generator(run_dir, "AtoB", device=dev)
    g_ba = load_generator(run_dir, "BtoA", device=dev)
    rows, errors_b, errors_a, baseline = [], [], [], []
    results = out / "results"
    for path_a in find_images(data / "testA"):
        path_b = data / "testB" / path_a.name  # the true pair: same file name
        real_a, real_b = to_tensor(load_image(path_a)), to_tensor(load_image(path_b))
        fake_b = translate_tensor(g_ab, real_a[None])[0]
        rec_a = translate_tensor(g_ba, fake_b[None])[0]
        fake_a = translate_tensor(g_ba, real_b[None])[0]
        rec_b = translate_tensor(g_ab, fake_a[None])[0]
        row = {}
        for key, image in [("real_a", real_a), ("fake_b", fake_b), ("rec_a", rec_a),
                           ("real_b", real_b), ("fake_a", fake_a), ("rec_b", rec_b)]:
            row[key] = save_image(image, results / key / f"{path_a.stem}.png").relative_to(out).as_posix()
        row["l1_b"] = float(np.abs(_grey_levels(fake_b) - _grey_levels(real_b)).mean())
        row["l1_a"] = float(np.abs(_grey_levels(fake_a) - _grey_levels(real_a)).mean())
        errors_b.append(row["l1_b"])
        errors_a.append(row["l1_a"])
        baseline.append(float(np.abs(_grey_levels(real_a) - _grey_levels(real_b)).mean()))
        row["name"] = path_a.name
        rows.append(row)

    summary = {
        "test tiles": len(rows),
        "mean L1 of G(aerial) vs the true map (grey levels, 0-255)": float(np.mean(errors_b)),
        "mean L1 of F(map) vs the true aerial photo": float(np.mean(errors_a)),
        "for scale: mean L1 of the aerial photo itself vs its map": float(np.mean(baseline)),
        "training time this call (s)": round(train_seconds, 1),
        "training run (losses, samples)": "run/index.html",
    }
    columns = [
        ("tile", "name", "text"),
        ("aerial A", "real_a", "image"), ("G(A): map", "fake_b", "image"), ("F(G(A))", "rec_a", "image"),
        ("true map", "real_b", "image"), ("L1 map", "l1_b", "text"),
        ("F(B): aerial", "fake_a", "image"), ("G(F(B))", "rec_b", "image"), ("L1 aerial", "l1_a", "text"),
    ]
    page = write_results_page(
        out, rows, title="cyclegan demo: synthetic aerial photo <-> map, trained unpaired",
        columns=columns, summary=summary,
    )
    logger.info("mean L1 vs ground truth: map %.1f, aerial %.1f grey levels (input vs map: %.1f)",
                np.mean(errors_b), np.mean(errors_a), np.mean(baseline))
    return page
