"""Evaluate a generator pair on a split (`data.splits`: testA/testB, or the validation images): what
`cyclegan evaluate run` prints and what training records every `eval.every_epochs` epochs.

For each direction (AtoB: the A images through g_ab; BtoA: the B images through g_ba), under a test-time
protocol (`inference.protocol`: full resolution in eval mode by default, or the official test.py's):
- the cycle reconstruction error `cycle_l1`: mean |x - F(G(x))| in grey levels (paper Sec. 3.2);
- when the split is paired (a reference of the same name exists in the other domain's folder,
  as in maps, facades and cityscapes), the paired metrics of `metrics.paired` (L1, PSNR, SSIM and, for
  RGB, the maps protocol's RMSE and pixel accuracies);
- with an Inception model, FID (and KID) of the translations against the other domain's images;
- the failure detectors' scores (`metrics.failures`: copy_l1, diversity, inversion, checkerboard, non_finite).

Keys are `<direction>.<metric>`, e.g. `AtoB.acc@5`, `BtoA.cycle_l1`, `AtoB.fid`.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .checkpoint import FORMAT, CheckpointError
from .config import Config
from .data.image_io import by_pair_key, load_image, pair_key, tensor_to_uint8, to_tensor
from .data.palette import load_palette, snap
from .data.splits import Split, evaluation_split
from .inference.loading import method_from_checkpoint, read_source
from .inference.protocol import FULL, Protocol
from .inference.translate import translate_tensor
from .methods import DIRECTIONS, Method
from .metrics.fid import fid, fid_from_features, inception_features, save_statistics, statistics
from .metrics.kid import kid
from .metrics.failures import MAX_DIVERSITY_IMAGES, FailureStats
from .metrics.paired import HIGHER_IS_BETTER, image_scores, l1, mean_scores
from .weights import load_fid_inception

Scores = dict[str, float]


def _scores_one_way(
    generator: nn.Module, reconstructor: nn.Module | None, source_dir: Path, sources: list[Path], references: dict[str, Path],
    *, channels_in: int, channels_out: int, collect: bool, protocol: Protocol, targets: list[Path] = (),
    palette: np.ndarray | None = None, palette_median: int = 0,
) -> tuple[Scores, list[np.ndarray]]:
    cycle, paired, fakes = [], [], []
    failures = FailureStats()
    for path in targets[:MAX_DIVERSITY_IMAGES]:  # the target domain's colours (colour-inversion detector)
        failures.add_target(np.asarray(load_image(path, channels_out)))
    for path in sources:
        image = protocol.prepare(load_image(path, channels_in))
        x = to_tensor(image)
        with protocol.draws(generator):
            y = translate_tensor(generator, x)  # (C_out, H, W)
        fake = tensor_to_uint8(y)
        if palette is not None:
            fake = snap(fake, palette, median=palette_median)
        failures.add(np.asarray(image), fake, finite=bool(torch.isfinite(y).all()))
        if reconstructor is not None:
            with protocol.draws(reconstructor):
                rec = translate_tensor(reconstructor, y)
            cycle.append(l1(tensor_to_uint8(rec), np.asarray(image)))
        reference = references.get(pair_key(path, source_dir))
        if reference is not None:
            real = protocol.prepare(load_image(reference, channels_out))
            if real.size == image.size:  # a pair of another size is not a pixel-aligned ground truth
                paired.append(image_scores(fake, protocol.reference(real), maps=channels_out == 3))
        if collect:
            fakes.append(_rgb(fake))
    scores = {"cycle_l1": float(np.mean(cycle))} if cycle else {}
    scores.update(failures.scores())
    if paired:
        scores.update(mean_scores(paired))
        scores["paired_images"] = len(paired)
    scores["images"] = len(sources)
    return scores, fakes


def _rgb(image: np.ndarray) -> np.ndarray:
    return image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)


def evaluate_generators(
    g_ab: nn.Module, g_ba: nn.Module | None, test_a: str | Path, test_b: str | Path, **kwargs: Any,
) -> Scores:
    """`evaluate_split` on every image of the folders `test_a` and `test_b`."""
    return evaluate_split(g_ab, g_ba, Split.of_folders("test", test_a, test_b), **kwargs)


def evaluate_split(
    g_ab: nn.Module, g_ba: nn.Module | None, split: Split, *,
    channels_a: int = 3, channels_b: int = 3, max_images: int | None = None,
    feature_model: nn.Module | None = None, kid_subsets: int = 100, protocol: Protocol = FULL,
    palettes: dict[str, np.ndarray] | None = None, palette_median: int = 0,
) -> Scores:
    """Scores of both directions on the images of `split` (the first `max_images` of each domain,
    by name). A direction whose generator is None (a one-way method) is not scored, and has no
    cycle error.

    Args:
        feature_model: pytorch-fid's Inception (`weights.load_fid_inception`) to add FID and KID.
        protocol: the test-time protocol (the generators' modes, and the images' size); the
            generators' modes are restored afterwards.
        palettes: per direction ("AtoB", "BtoA"), (K, 3) uint8 colours the outputs are snapped to
            before scoring (`data.palette`), after a `palette_median` x `palette_median` median filter
            when not 0.
    """
    if channels_a not in (1, 3) or channels_b not in (1, 3):  # docs/guides/bands.md
        raise ValueError(f"evaluating a model reads 8-bit grey or RGB images; this one has {channels_a} and {channels_b} "
                         "channels: translate the test images with `cyclegan translate` and score them with "
                         "`cyclegan evaluate paired FAKE_DIR REAL_DIR`")
    files_a, files_b = (files[:max_images] if max_images else files for files in (split.files_a, split.files_b))
    out: Scores = {}
    for direction, gen, rec, source_dir, sources, ref_dir, all_refs, refs, cin, cout in (
        ("AtoB", g_ab, g_ba, split.dir_a, files_a, split.dir_b, split.files_b, files_b, channels_a, channels_b),
        ("BtoA", g_ba, g_ab, split.dir_b, files_b, split.dir_a, split.files_a, files_a, channels_b, channels_a),
    ):
        if gen is None:
            continue
        references = by_pair_key(all_refs, ref_dir)
        with protocol.modes(gen, rec):
            scores, fakes = _scores_one_way(gen, rec, source_dir, sources, references, channels_in=cin,
                                            channels_out=cout, collect=feature_model is not None, protocol=protocol,
                                            targets=refs, palette=(palettes or {}).get(direction),
                                            palette_median=palette_median)
        if feature_model is not None:
            device = next(feature_model.parameters()).device
            if protocol.size:  # the references as the protocol resizes them
                refs = np.stack([_rgb(protocol.reference(load_image(p, cout))) for p in refs])
            real = inception_features(feature_model, refs, device=device)
            fake = inception_features(feature_model, np.stack(_same_size(fakes)), device=device)
            scores["fid"] = fid_from_features(fake, real)
            k = kid(fake, real, num_subsets=kid_subsets)
            scores["kid"] = k.mean
        out.update({f"{direction}.{k}": v for k, v in scores.items()})
    return out


def _same_size(images: list[np.ndarray]) -> list[np.ndarray]:
    """Stackable images: those of another size than the first are resized to it (the Inception
    network resizes every image to 299x299 anyway)."""
    from PIL import Image

    h, w = images[0].shape[:2]
    return [im if im.shape[:2] == (h, w) else np.asarray(Image.fromarray(im).resize((w, h), Image.BILINEAR))
            for im in images]


def default_metric(scores: Scores) -> str:
    """The score that picks the best checkpoint when none is named: the L1 to the ground truth on a
    paired split (AtoB's, or BtoA's for a one-way B -> A method), else the mean cycle error of both
    directions."""
    for name in ("AtoB.l1", "BtoA.l1"):
        if name in scores:
            return name
    if "AtoB.cycle_l1" not in scores:  # one-way (pix2pix) on a split without pairs
        raise ValueError("no score to pick the best checkpoint by: the split has no pairs (no L1 to a ground truth) "
                         "and the model has no cycle; use a paired split (eval.data)")
    return "cycle_l1"


def metric_value(scores: Scores, name: str) -> float:
    """`scores[name]`, where `cycle_l1` is the mean of both directions' cycle errors."""
    if name == "cycle_l1" and name not in scores:
        return (scores["AtoB.cycle_l1"] + scores["BtoA.cycle_l1"]) / 2
    if name not in scores:
        raise KeyError(f"eval.best_metric {name!r} is not among the scores ({', '.join(sorted(scores))})")
    return scores[name]


def is_better(name: str) -> Callable[[float, float | None], bool]:
    """A comparison `(new, best) -> bool` for the metric `name` (higher or lower is better)."""
    higher = name.split(".")[-1] in HIGHER_IS_BETTER

    def better(new: float, best: float | None) -> bool:
        return best is None or (new > best if higher else new < best)

    return better


def evaluate_model(model: Method, split: Split, **kwargs: Any) -> Scores:
    """`evaluate_split` on a method's translators (those of the directions it learns), restoring
    its modes afterwards."""
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            g_ab, g_ba = (model.translator(d) if d in model.directions else None for d in DIRECTIONS)
            return evaluate_split(g_ab, g_ba, split, **kwargs)
    finally:
        model.train(was_training)


def evaluate_checkpoint(
    source: str | Path, *, data: str | Path | None = None, split: str = "test", device: str | torch.device = "cpu",
    max_images: int | None = None, feature_model: nn.Module | None = None, protocol: str = "full",
    eval_mode: bool = False, palette_colors: int | None = None, palette_median: int = 0,
) -> tuple[Scores, dict[str, object]]:
    """Evaluate the translators of a cyclegan run dir (its latest checkpoint) or checkpoint file, of
    any method, on a split of `data` (default: `eval.data` of its config, else its training
    dataroot): "test" (testA/testB) or "val" (the run's held-out images, else valA/valB), under the
    test-time `protocol` ("full", or "official": resized to the run's crop size, in train mode
    unless `eval_mode`; `inference.protocol`). With `palette_colors` K, each direction's outputs are
    snapped to K colours fitted to its target domain's training images (trainB for AtoB, trainA for
    BtoA; `data.palette`) before scoring, after a median filter of size `palette_median` when not 0.

    Returns the scores and where they come from (`epoch`: epochs completed, `step`, `data`,
    `split`: its name, `images_from`: which images, `protocol`: what it did).

    Raises:
        CheckpointError: the source is not a cyclegan checkpoint (an official `.pth` holds one
            generator: translate with it, then use `cyclegan evaluate paired`).
        DataError: the split is missing.
    """
    ckpt = read_source(source)
    if ckpt.get("format") != FORMAT:
        raise CheckpointError(
            f"{source} holds one official generator, not a cyclegan run; translate the test images with it "
            "and score them with `cyclegan evaluate paired FAKE_DIR REAL_DIR`"
        )
    cfg = Config.from_dict(ckpt["config"])
    if data is not None:  # the folder with the split to score (held-out images stay in the training data)
        cfg = dataclasses.replace(cfg, eval=dataclasses.replace(cfg.eval, data=str(data)))
    root = Path(ckpt["run"]["dataroot"])
    chosen = evaluation_split(split, cfg, root, run_dir_of(source))
    model = method_from_checkpoint(ckpt, device)
    test_protocol = Protocol.named(protocol, crop_size=cfg.data.crop_size, eval_mode=eval_mode)
    palettes = _target_palettes(str(root), palette_colors) if palette_colors else None
    scores = evaluate_model(model, chosen, channels_a=cfg.model.channels_a, channels_b=cfg.model.channels_b,
                            max_images=max_images, feature_model=feature_model, protocol=test_protocol,
                            palettes=palettes, palette_median=palette_median)
    progress = ckpt.get("progress", {})
    info = {"epoch": int(progress.get("epoch", 1)) - 1, "step": int(progress.get("step", 0)),
            "data": str(cfg.eval.data or root), "split": chosen.name, "images_from": chosen.describe(),
            "protocol": test_protocol.describe()}
    if palette_colors:
        median = f" after a {palette_median}x{palette_median} median filter" if palette_median else ""
        info["palette"] = (f"outputs snapped to {palette_colors} colours fitted to the target domain's training "
                           f"images{median}")
    return scores, info


@functools.lru_cache(maxsize=4)
def _target_palettes(root: str, colors: int) -> dict[str, np.ndarray]:
    """Each direction's palette, fitted to its target domain's training images; cached, since
    `evaluate run` scores the final and the selected checkpoint of one run with the same palettes."""
    return {"AtoB": load_palette(Path(root) / "trainB", colors), "BtoA": load_palette(Path(root) / "trainA", colors)}


def selected_checkpoint(run_dir: str | Path) -> Path | None:
    """`run_dir/checkpoints/best.pt` if the run picked it on a validation split; None if it kept
    none, or kept it by test scores (runs written before `eval.split` existed)."""
    best = Path(run_dir) / "checkpoints" / "best.pt"
    if not best.is_file():
        return None
    return best if read_source(best)["config"].get("eval", {}).get("split") == "val" else None


def run_dir_of(source: str | Path) -> Path | None:
    """The run dir of a run dir or of a checkpoint in its `checkpoints/` folder; None otherwise."""
    path = Path(source)
    if path.is_dir():
        return path
    if path.parent.name == "checkpoints":
        return path.parent.parent
    return None


# ---------------------------------------------------------------------------------------------------
# FID and KID between two image sets given as paths (what `cyclegan evaluate fid|kid` reports)


def _existing_sides(a: str | Path, b: str | Path, *, npz: bool) -> tuple[Path, Path]:
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
    side_a, side_b = _existing_sides(a, b, npz=True)
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
    sides = _existing_sides(a, b, npz=False)
    model = load_fid_inception(weights).to(device)
    fa, fb = (inception_features(model, s, batch_size=batch_size, device=device) for s in sides)
    k = kid(fa, fb, num_subsets=subsets, subset_size=subset_size)
    return {"metric": "kid", "a": str(sides[0]), "b": str(sides[1]), "kid_mean": k.mean, "kid_std": k.std,
            "n_a": len(fa), "n_b": len(fb)}
