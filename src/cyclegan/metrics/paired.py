"""Paired metrics: translations scored against their ground truth (same file names in two folders).

Per image, on uint8 pixels (0-255):
- `l1`: mean absolute difference, in grey levels;
- `psnr`: 10 log10(255² / MSE) in dB (identical images count as `PSNR_MAX`);
- `ssim`: Wang et al. 2004 with their constants: 11x11 Gaussian window of sigma 1.5, K1 0.01,
  K2 0.03, population (co)variances, averaged over the window-valid region and the channels
  (scikit-image's `structural_similarity(gaussian_weights=True, sigma=1.5,
  use_sample_covariance=False, data_range=255, channel_axis=-1)`, checked against it);
- the maps protocol of the literature (GcGAN, Fu et al. CVPR 2019, `evaluation/evaluate_maps.py`;
  used for the CycleGAN aerial->map numbers): both images resized to 256x256 with OpenCV's INTER_LINEAR
  (reimplemented bit for bit: `resize_linear`; PIL's bilinear antialiases when it shrinks, so on the
  600 px official maps it gives other numbers),
  `rmse` = sqrt(sum over pixels and channels of diff² / 256²), and `acc@δ` = the share of pixels whose
  largest absolute channel difference is below δ (δ = 5 as that script; δ = 10 as well).

Scores are averaged over images (the protocol's RMSE is a mean of per-image RMSEs).

16-bit, float and multi-band pairs (`data.bands`) are scored on their samples scaled to [0, 255]
floats (uint16 / 65535 * 255), so the scores keep their 8-bit units and meaning; the maps protocol
(8-bit RGB by definition) is left out for them.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter

from ..atomic import atomic_write_text
from ..data.bands import is_tiff, probe, read_bands, to_unit
from ..data.image_io import DataError, files_by_pair_key, image_name, load_image, pair_key, pair_up

PSNR_MAX = 100.0  # dB reported for identical images (MSE 0), so means and JSON stay finite
MAPS_SIZE = 256
MAPS_DELTAS = (5, 10)
SSIM_SIGMA, SSIM_TRUNCATE = 1.5, 3.5  # a Gaussian window of radius int(3.5 * 1.5 + 0.5) = 5, i.e. 11x11
SSIM_K1, SSIM_K2 = 0.01, 0.03
_COEF_SCALE = 2048  # OpenCV's INTER_RESIZE_COEF_SCALE: resize weights in 11-bit fixed point


def _float(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image, dtype=np.float64)
    return image[..., None] if image.ndim == 2 else image  # (H, W, C)


def _check(fake: np.ndarray, real: np.ndarray) -> None:
    if np.shape(fake) != np.shape(real):
        raise ValueError(f"images differ in shape: {np.shape(fake)} vs {np.shape(real)}")


def l1(fake: np.ndarray, real: np.ndarray) -> float:
    """Mean absolute difference of two uint8 images, in grey levels."""
    _check(fake, real)
    return float(np.abs(_float(fake) - _float(real)).mean())


def psnr(fake: np.ndarray, real: np.ndarray) -> float:
    """Peak signal-to-noise ratio of two uint8 images, in dB (PSNR_MAX when identical)."""
    _check(fake, real)
    mse = float(((_float(fake) - _float(real)) ** 2).mean())
    return PSNR_MAX if mse == 0 else min(PSNR_MAX, 10 * math.log10(255.0**2 / mse))


def ssim(fake: np.ndarray, real: np.ndarray) -> float:
    """Structural similarity (Wang et al. 2004) of two uint8 images, averaged over channels."""
    _check(fake, real)
    x, y = _float(fake), _float(real)
    radius = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    if min(x.shape[:2]) < 2 * radius + 1:
        raise ValueError(f"SSIM needs images of at least {2 * radius + 1}x{2 * radius + 1} pixels, got {x.shape[:2]}")
    c1, c2 = (SSIM_K1 * 255) ** 2, (SSIM_K2 * 255) ** 2
    scores = []
    for ch in range(x.shape[2]):
        a, b = x[..., ch], y[..., ch]

        def blur(z: np.ndarray) -> np.ndarray:
            return gaussian_filter(z, SSIM_SIGMA, truncate=SSIM_TRUNCATE, mode="reflect")

        mu_a, mu_b = blur(a), blur(b)
        var_a = blur(a * a) - mu_a**2
        var_b = blur(b * b) - mu_b**2
        cov = blur(a * b) - mu_a * mu_b
        s = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
        scores.append(s[radius:-radius, radius:-radius].mean())  # only where the window fits
    return float(np.mean(scores))


def _linear_taps(src: int, dst: int, *, clamp_weights: bool) -> tuple[np.ndarray, ...]:
    """Source indices and 11-bit fixed-point weights of OpenCV's INTER_LINEAR, computed as it does:
    float32 positions (d + 0.5) * src / dst - 0.5; along x a position outside the image takes the
    edge pixel with weight 1, along y only the row index is clamped (both taps may be one row)."""
    pos = ((np.arange(dst) + 0.5) * (1.0 / (dst / src)) - 0.5).astype(np.float32)
    i0 = np.floor(pos).astype(np.int64)
    frac = (pos - i0.astype(np.float32)).astype(np.float32)
    if clamp_weights:
        frac[(i0 < 0) | (i0 >= src - 1)] = 0
    w0 = np.rint((np.float32(1) - frac) * np.float32(_COEF_SCALE)).astype(np.int64)
    return np.clip(i0, 0, src - 1), np.clip(i0 + 1, 0, src - 1), w0, _COEF_SCALE - w0


def resize_linear(image: np.ndarray, size: int) -> np.ndarray:
    """`cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)` of a uint8 (H, W, C) image,
    bit for bit (tests check it against OpenCV): the horizontal pass in exact integers, the
    vertical one in the 16-bit arithmetic of OpenCV's SIMD path. Unlike PIL's bilinear filter it
    does not antialias when it shrinks."""
    h, w = image.shape[:2]
    x0, x1, a0, a1 = _linear_taps(w, size, clamp_weights=True)
    y0, y1, b0, b1 = _linear_taps(h, size, clamp_weights=False)
    im = np.asarray(image, dtype=np.int64).reshape(h, w, -1)
    rows = np.clip((im[:, x0] * a0[:, None] + im[:, x1] * a1[:, None]) >> 4, -32768, 32767)
    out = ((rows[y0] * b0[:, None, None]) >> 16) + ((rows[y1] * b1[:, None, None]) >> 16)
    return np.clip((out + 2) >> 2, 0, 255).astype(np.uint8).reshape(size, size, *image.shape[2:])


def maps_scores(fake: np.ndarray, real: np.ndarray, deltas: Sequence[int] = MAPS_DELTAS) -> dict[str, float]:
    """The maps protocol for one image pair: `rmse` and `acc@δ` (a share in [0, 1]) after resizing
    both uint8 RGB images to 256x256 as the cited script does (OpenCV's INTER_LINEAR: `resize_linear`)."""
    diff = resize_linear(fake, MAPS_SIZE).astype(np.float64) - resize_linear(real, MAPS_SIZE)
    if diff.ndim == 2:
        diff = diff[..., None]
    out = {"rmse": math.sqrt(float((diff**2).sum()) / MAPS_SIZE**2)}
    largest = np.abs(diff).max(axis=2)
    for delta in deltas:
        out[f"acc@{delta}"] = float((largest < delta).mean())
    return out


def image_scores(fake: np.ndarray, real: np.ndarray, *, maps: bool = True) -> dict[str, float]:
    """Every paired score of one (fake, real) pair of uint8 images of the same size."""
    out = {"l1": l1(fake, real), "psnr": psnr(fake, real), "ssim": ssim(fake, real)}
    if maps:
        out.update(maps_scores(fake, real))
    return out


# Larger is better for these; smaller for the rest (l1, rmse, and the distances elsewhere).
HIGHER_IS_BETTER = ("psnr", "ssim", *(f"acc@{d}" for d in MAPS_DELTAS))
# The scores of `image_scores`: they need a ground-truth pair.
PAIRED_METRICS = ("l1", "psnr", "ssim", "rmse", *(f"acc@{d}" for d in MAPS_DELTAS))


@dataclass
class PairedResult:
    """Mean scores over the matched pairs, the per-image scores, and what could not be matched."""

    means: dict[str, float]
    per_image: dict[str, dict[str, float]] = field(repr=False)
    unmatched: list[str] = field(default_factory=list)  # fake files without a reference of the same name
    missing: list[str] = field(default_factory=list)  # references without a fake of the same name (not scored)

    @property
    def count(self) -> int:
        return len(self.per_image)

    def write_csv(self, path: str | Path) -> Path:
        """Every image's scores, one row per name (header: name and the metrics), written atomically."""
        keys, text = list(self.means), io.StringIO()
        writer = csv.writer(text)
        writer.writerow(["name", *keys])
        for name, scores in self.per_image.items():
            writer.writerow([name, *(scores[k] for k in keys)])
        return atomic_write_text(path, text.getvalue())


def matched_files(
    fake_dir: str | Path, real_dir: str | Path, *, max_images: int | None = None
) -> tuple[list[tuple[Path, Path]], list[str]]:
    """(fake, real) file pairs matched by `pair_key` (`12_fake_B.png` pairs with `12_B.jpg`), sorted,
    and the names of the fake files that have no reference.

    Raises:
        DataError: a folder is missing or holds no image, a folder holds two files of one key, or
            no file pairs.
    """
    fakes, reals = files_by_pair_key(fake_dir), files_by_pair_key(real_dir)
    pairs = pair_up(fakes, reals, fake_dir, real_dir, max_count=max_images)
    unmatched = [] if max_images else sorted(image_name(f, Path(fake_dir)) for k, f in fakes.items() if k not in reals)
    return pairs, unmatched


def paired_metrics(
    fake_dir: str | Path, real_dir: str | Path, *, maps: bool = True, channels: int = 3,
    max_images: int | None = None,
) -> PairedResult:
    """Score each image of `fake_dir` against the image of `real_dir` it pairs with (`pair_key`).

    A fake image of another size than its reference is resized to the reference's size (bilinear)
    for L1/PSNR/SSIM (8-bit pairs only: 16-bit and multi-band pairs must match, see the module
    docstring); the maps protocol resizes both to 256x256 anyway. `maps=False` skips the maps
    protocol (it is always skipped for grayscale, `channels=1`).

    Raises:
        DataError: a folder is missing or empty, an image cannot be read, or no file pairs.
    """
    pairs, unmatched = matched_files(fake_dir, real_dir, max_images=max_images)
    missing = []
    if not max_images:
        scored = {pair_key(real, Path(real_dir)) for _, real in pairs}
        missing = sorted(image_name(r, Path(real_dir)) for k, r in files_by_pair_key(real_dir).items() if k not in scored)
    per_image = {}
    for fake, real in pairs:
        samples = _high_depth_pair(fake, real)
        if samples is not None:
            per_image[image_name(real, Path(real_dir))] = image_scores(*samples, maps=False)
            continue
        real_img = load_image(real, channels)
        fake_img = load_image(fake, channels)
        if fake_img.size != real_img.size:
            fake_img = fake_img.resize(real_img.size, Image.BILINEAR)
        name = image_name(real, Path(real_dir))
        per_image[name] = image_scores(np.asarray(fake_img), np.asarray(real_img), maps=maps and channels == 3)
    return PairedResult(mean_scores(per_image.values()), per_image, unmatched=unmatched, missing=missing)


def _high_depth_pair(fake: Path, real: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """Both images as (H, W, C) floats in [0, 255] when either is 16-bit, float or a TIFF of other than
    1 or 3 bands; None for the 8-bit pairs that `load_image` reads."""
    formats = [(probe(p), p) for p in (fake, real)]
    if all(f.eight_bit and (f.channels in (1, 3) or not is_tiff(p)) for f, p in formats):
        return None
    a, b = (to_unit(read_bands(p)).astype(np.float64) * 255.0 for p in (fake, real))
    if a.shape != b.shape:
        raise DataError(f"{fake} (shape {a.shape}) and {real} (shape {b.shape}) differ: 16-bit and multi-band "
                        "pairs are scored at one size and band count")
    return a, b


def mean_scores(scores: Iterable[Mapping[str, float]]) -> dict[str, float]:
    """The mean of each score over a set of per-image score dicts."""
    scores = list(scores)
    return {k: float(np.mean([s[k] for s in scores])) for k in scores[0]} if scores else {}
