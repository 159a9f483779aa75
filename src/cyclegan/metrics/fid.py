"""Fréchet Inception Distance (Heusel et al. 2017), numerically as the `pytorch-fid` package (0.3.0).

FID fits a Gaussian to the 2048-d pool3 Inception features of each image set and measures
    d² = |mu_a - mu_b|² + Tr(sigma_a + sigma_b - 2 (sigma_a sigma_b)^½).
Images are read as pytorch-fid's `ImagePathDataset` reads them (`Image.open(p).convert("RGB")`, then
uint8 / 255 as float32), fed through `FIDInceptionV3` (bilinear resize to 299x299, 2x - 1), the
features kept as float64; `statistics` is pytorch-fid's mean and `np.cov(rowvar=False)`, and
`frechet_distance` its `calculate_frechet_distance` (scipy's `sqrtm`, the eps retry, the
imaginary-part check). Statistics files are pytorch-fid's `.npz` (keys `mu`, `sigma`), so either
tool reads the other's. `fid_from_features` gives the same value in the subspace the features span,
which is much faster when there are fewer images than feature dimensions.

    model = cyclegan.weights.load_fid_inception()        # downloads pytorch-fid's weights once
    fid("results/fake_B", "datasets/horse2zebra/testB", model=model)
    mu, sigma = statistics(inception_features(model, "datasets/horse2zebra/testB"))
    save_statistics("zebra_test.npz", mu, sigma)         # later: fid("results/fake_B", "zebra_test.npz")

Folders are scanned like pytorch-fid (top level only) but with `cyclegan.data.find_images`: the
extension match ignores case, hidden files are skipped, and `.pgm` is not read.
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from scipy import linalg

from ..data.bands import is_tiff, probe
from .inception import resize_input

log = logging.getLogger(__name__)

PathLike = str | os.PathLike
# A folder, a list of image files, or uint8 images (N, H, W, 3) as a numpy array or tensor.
ImageSource = PathLike | Sequence[PathLike] | np.ndarray | torch.Tensor


# ---------------------------------------------------------------------------------------------------
# Features


def inception_features(
    model: torch.nn.Module,
    images: ImageSource,
    *,
    batch_size: int = 50,
    device: torch.device | str | None = None,
) -> np.ndarray:
    """The (N, 2048) float64 pool3 features of `images`, in their order (a folder: sorted by name).

    Args:
        model: the FID network (`cyclegan.weights.load_fid_inception`); it is put in eval mode. Any module mapping
            (B, 3, H, W) images in [0, 1] to (B, D) features works.
        images: a folder, a list of image files, or uint8 images (N, H, W, 3) (numpy or torch).
        batch_size: images per forward pass; images of different sizes in one batch are resized to
            299x299 one by one first (the same values: the network's own resize is then the identity).
        device: where to run; default the device of the model's parameters (the model is not moved).

    Raises:
        ValueError: no images, a wrong array shape or dtype, or an unreadable image file.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if device is None:
        device = next(model.parameters(), torch.empty(0)).device
    model.eval()
    chunks = []
    with torch.no_grad():
        for batch in _batches(images, batch_size):
            feats = model(batch.to(device))
            if feats.ndim == 4:  # (B, D, h, w) from a truncated network: average as pytorch-fid does
                feats = F.adaptive_avg_pool2d(feats, (1, 1)).flatten(1)
            chunks.append(feats.float().cpu().numpy().astype(np.float64))
    return np.concatenate(chunks, axis=0)


def _batches(images: ImageSource, batch_size: int) -> Iterator[torch.Tensor]:
    """(B, 3, H, W) float32 batches in [0, 1], exactly as torchvision's ToTensor makes them."""
    if isinstance(images, (np.ndarray, torch.Tensor)):
        array = torch.as_tensor(images)
        if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != torch.uint8:
            raise ValueError(
                f"images must be uint8 of shape (N, H, W, 3), got {array.dtype} {tuple(array.shape)}; "
                "convert float images with cyclegan.data.tensor_to_uint8"
            )
        if len(array) == 0:
            raise ValueError("no images given (an array with N = 0)")
        for start in range(0, len(array), batch_size):
            yield _to_float(array[start : start + batch_size])
        return
    files = _image_files(images)
    for start in range(0, len(files), batch_size):
        batch = [_to_float(torch.from_numpy(_read_rgb(p))[None]) for p in files[start : start + batch_size]]
        if len({tuple(x.shape[-2:]) for x in batch}) > 1:
            batch = [resize_input(x) for x in batch]
        yield torch.cat(batch)


def _to_float(uint8_nhwc: torch.Tensor) -> torch.Tensor:
    return uint8_nhwc.permute(0, 3, 1, 2).contiguous().to(torch.float32).div(255)  # (B, 3, H, W)


def _image_files(images: PathLike | Sequence[PathLike]) -> list[Path]:
    if isinstance(images, (str, os.PathLike)):
        from ..data.image_io import find_images  # raises DataError (a ValueError) for an empty folder

        return find_images(images, recursive=False)
    files = [Path(p) for p in images]
    if not files:
        raise ValueError("no images given (an empty list of files)")
    return files


def _read_rgb(path: Path) -> np.ndarray:
    """(H, W, 3) uint8, as pytorch-fid reads a file: `Image.open(path).convert("RGB")`, no EXIF rotation.

    16-bit, float and multi-band TIFF files are refused: the Inception network takes 8-bit RGB.
    """
    fmt = probe(path)
    if not fmt.eight_bit or is_tiff(path) and fmt.channels not in (1, 3):
        raise ValueError(f"{path} is a {fmt.channels}-band {fmt.dtype} image; FID and KID compare 8-bit RGB (or grey) "
                         "images, as the Inception network was trained on: use the paired metrics for 16-bit and "
                         "multi-band images, or convert them to 8 bits")
    try:
        with Image.open(path) as img:
            return np.array(img.convert("RGB"), dtype=np.uint8)  # a writable copy, as ToTensor makes
    except OSError as e:  # missing, unreadable or not an image (PIL's UnidentifiedImageError is an OSError)
        raise ValueError(f"cannot read image {path}: {e}") from None


# ---------------------------------------------------------------------------------------------------
# Statistics and the distance


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean (D,) and covariance (D, D) of (N, D) features, as pytorch-fid: `np.cov(rowvar=False)`."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(f"statistics need features of shape (N >= 2, D), got {features.shape}")
    return np.mean(features, axis=0), np.cov(features, rowvar=False)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """The Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), as pytorch-fid computes it.

    If `sqrtm(sigma1 @ sigma2)` is not finite, `eps` is added to both diagonals and it is retried; a
    small imaginary part from round-off is dropped.

    Raises:
        ValueError: the shapes differ, or the square root has a large imaginary part on its diagonal.
    """
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape:
        raise ValueError(f"the two means have different shapes: {mu1.shape} and {mu2.shape}")
    if sigma1.shape != sigma2.shape:
        raise ValueError(f"the two covariances have different shapes: {sigma1.shape} and {sigma2.shape}")
    diff = mu1 - mu2
    with warnings.catch_warnings():
        # Fewer images than dimensions make the product singular; pytorch-fid silences this (disp=False).
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        covmean = linalg.sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(covmean).all():
        log.warning("FID: singular covariance product; adding %g to the diagonals", eps)
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):  # round-off may leave a small imaginary component
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            imag = np.max(np.abs(covmean.imag))
            raise ValueError(f"FID: the covariance square root has an imaginary component {imag:g}")
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def save_statistics(path: PathLike, mu: np.ndarray, sigma: np.ndarray) -> Path:
    """Write pytorch-fid's statistics file (`np.savez_compressed`, keys `mu` and `sigma`); returns its path."""
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"statistics files end in .npz (pytorch-fid's format), got {path}")
    mu, sigma = np.asarray(mu), np.asarray(sigma)
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise ValueError(f"mu must be (D,) and sigma (D, D), got {mu.shape} and {sigma.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, mu=mu, sigma=sigma)
    return path


def load_statistics(path: PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read `mu`, `sigma` from a pytorch-fid `.npz` (ours, pytorch-fid's `--save-stats`, or TTUR's).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not an `.npz` with `mu` (D,) and `sigma` (D, D).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FID statistics file {path} does not exist; check the path")
    try:
        with np.load(path, allow_pickle=False) as f:
            mu, sigma = f["mu"][:], f["sigma"][:]
    except KeyError:
        raise ValueError(f"{path} has no 'mu' and 'sigma' arrays: not a pytorch-fid statistics file") from None
    except (OSError, ValueError) as e:
        raise ValueError(f"{path} is not a readable .npz statistics file ({e})") from None
    if mu.ndim != 1 or sigma.shape != (len(mu), len(mu)):
        raise ValueError(f"{path}: mu must be (D,) and sigma (D, D), got {mu.shape} and {sigma.shape}")
    return mu, sigma


# ---------------------------------------------------------------------------------------------------
# End to end


def fid_from_features(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID between two (N, D) feature sets: `frechet_distance(*statistics(a), *statistics(b))`, faster.

    With fewer images than dimensions (N_a + N_b < D, e.g. any CycleGAN test set against 2048-d pool3
    features) both covariances and the mean difference live in a subspace of dimension at most
    N_a + N_b - 1. FID is invariant under rotations and the rest of the space contributes nothing,
    so the same pytorch-fid computation is run on the features projected onto an orthonormal basis
    of that subspace: the same value (to ~1e-7 relative here, the round-off of a singular `sqrtm`),
    in milliseconds rather than the minute a 2048x2048 `sqrtm` takes on a small CPU.
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"FID needs two (N, D) feature arrays with the same D, got {a.shape} and {b.shape}")
    if len(a) + len(b) + 1 < a.shape[1]:
        mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
        spanning = np.concatenate([a - mu_a, b - mu_b, (mu_a - mu_b)[None]])  # (N_a + N_b + 1, D)
        basis, _ = np.linalg.qr(spanning.T)  # (D, N_a + N_b + 1), orthonormal columns
        a, b = a @ basis, b @ basis
    return frechet_distance(*statistics(a), *statistics(b))


def fid(
    a: ImageSource,
    b: ImageSource,
    *,
    model: torch.nn.Module | None = None,
    batch_size: int = 50,
    device: torch.device | str | None = None,
) -> float:
    """FID between two image sets, each a folder, an `.npz` statistics file, a file list or uint8 images.

    Two image sets go through `fid_from_features`; a statistics file on either side through
    `frechet_distance` on the full (D, D) covariances, exactly as pytorch-fid.

    Args:
        model: the feature network (`cyclegan.weights.load_fid_inception()` for pytorch-fid's);
            needed unless both sides are `.npz` files.
        batch_size: images per forward pass.
        device: where to run; default the model's device.

    Raises:
        ValueError: a side holds images and no model is given.
    """
    sides: list[tuple[np.ndarray, np.ndarray] | np.ndarray] = []
    for source in (a, b):
        if _is_npz(source):
            sides.append(load_statistics(source))
            continue
        if model is None:
            raise ValueError("FID of images needs the feature network: "
                             "pass model=cyclegan.weights.load_fid_inception()")
        sides.append(inception_features(model, source, batch_size=batch_size, device=device))
    if all(isinstance(side, np.ndarray) for side in sides):
        return fid_from_features(*sides)
    (mu1, sigma1), (mu2, sigma2) = (statistics(s) if isinstance(s, np.ndarray) else s for s in sides)
    return frechet_distance(mu1, sigma1, mu2, sigma2)


def _is_npz(source: ImageSource) -> bool:
    return isinstance(source, (str, os.PathLike)) and str(source).endswith(".npz")
