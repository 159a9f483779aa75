"""Failure detectors: the ways unpaired translation fails that users keep reporting, measured on an
evaluation's images and turned into plain-language warnings (logged, recorded in `evals.jsonl`,
shown on the run page and the dashboard).

Scores per direction (from `FailureStats`, collected while a split is translated):
- `copy_l1`: mean |G(x) - x| in grey levels (inputs and outputs of the same channels): near 0 means
  the generator returns its input (identity mapping);
- `diversity`: the mean distance between the outputs of different inputs relative to that between
  images of the target domain (32x32 thumbnails, up to 64 images; the inputs' when there is no target
  image): near 0 means every input maps to nearly one image (mode collapse);
- `inversion`: how much closer the inverted output colours (255 - G(x)) are to the target domain's
  mean colour than the outputs themselves, counted only when the inverted colours are within
  `INVERTED_DISTANCE` grey levels of it (0: not inverted; near 1: the colours came out inverted);
- `checkerboard`: the outputs' `periodic_energy` (their share of energy at periods of 2 and 4 pixels,
  where stride-2 transposed convolutions leave their pattern) relative to the target domain's images:
  near 1 for outputs as smooth as real images, far above it for a checkerboard texture;
- `non_finite`: outputs holding NaN or infinite values.
A discriminator that has won is read from the loss log: its losses stay near 0 for the last
`WON_STEPS` logged steps.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

THUMB = 32
MAX_DIVERSITY_IMAGES = 64
COPY_L1 = 2.0  # grey levels
DIVERSITY = 0.2
INVERSION = 0.6
INVERTED_DISTANCE = 25.0  # grey levels: inverted outputs this close to the target colour
CHECKERBOARD = 4.0  # times the target images' periodic energy
WON_LOSS = 0.02
WON_STEPS = 200


def thumbnail(image: np.ndarray) -> np.ndarray:
    """A uint8 image as a float32 THUMB x THUMB RGB thumbnail."""
    rgb = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
    return np.asarray(Image.fromarray(rgb).resize((THUMB, THUMB), Image.BILINEAR), np.float32)


def periodic_energy(image: np.ndarray) -> float:
    """How much of an image's energy (grey levels, mean removed) lies at the 15 frequencies of periods 2
    and 4 pixels along each axis (k = 0, H/4, H/2, 3H/4 by the same along W, without (0, 0)), in units
    of a white-noise image's share: about 1 for noise, below it for photos and maps (their energy is
    at low frequencies), far above it for a checkerboard or a 4-pixel grid (Odena, Dumoulin, Olah,
    "Deconvolution and Checkerboard Artifacts", Distill 2016). 0 for a flat image."""
    grey = np.asarray(image, np.float64)
    grey = grey.mean(axis=2) if grey.ndim == 3 else grey
    grey = grey - grey.mean()
    power = np.abs(np.fft.fft2(grey)) ** 2
    total = power.sum()
    if total <= 1e-12 * grey.size:
        return 0.0
    h, w = grey.shape
    rows = sorted({round(k * h / 4) % h for k in range(4)})
    cols = sorted({round(k * w / 4) % w for k in range(4)})
    chosen = [(r, c) for r in rows for c in cols if (r, c) != (0, 0)]
    share = sum(power[r, c] for r, c in chosen) / total
    return float(share / (len(chosen) / (h * w)))


@dataclass
class FailureStats:
    """What an evaluation of one direction collects per image."""

    copy: list[float] = field(default_factory=list)
    inputs: list[np.ndarray] = field(default_factory=list)
    outputs: list[np.ndarray] = field(default_factory=list)
    output_colours: list[np.ndarray] = field(default_factory=list)
    target_colours: list[np.ndarray] = field(default_factory=list)
    targets: list[np.ndarray] = field(default_factory=list)
    output_periodic: list[float] = field(default_factory=list)
    target_periodic: list[float] = field(default_factory=list)
    non_finite: int = 0

    def add(self, source: np.ndarray, fake: np.ndarray, *, finite: bool = True) -> None:
        if source.shape == fake.shape:
            self.copy.append(float(np.abs(fake.astype(np.float64) - source).mean()))
        if len(self.outputs) < MAX_DIVERSITY_IMAGES:
            self.inputs.append(thumbnail(source))
            self.outputs.append(thumbnail(fake))
        self.output_colours.append(_mean_colour(fake))
        if finite:
            self.output_periodic.append(periodic_energy(fake))
        self.non_finite += not finite

    def add_target(self, image: np.ndarray) -> None:
        """An image of the target domain (for the diversity and colour-inversion scores)."""
        self.target_colours.append(_mean_colour(image))
        self.target_periodic.append(periodic_energy(image))
        if len(self.targets) < MAX_DIVERSITY_IMAGES:
            self.targets.append(thumbnail(image))

    def scores(self) -> dict[str, float]:
        out: dict[str, float] = {"non_finite": float(self.non_finite)}
        if self.copy:
            out["copy_l1"] = float(np.mean(self.copy))
        if len(self.outputs) >= 2:
            reference = _mean_pairwise_l1(self.targets if len(self.targets) >= 2 else self.inputs)
            if reference > 0:
                out["diversity"] = _mean_pairwise_l1(self.outputs) / reference
        if self.output_colours and self.target_colours:
            output, target = np.mean(self.output_colours, axis=0), np.mean(self.target_colours, axis=0)
            direct, inverted = np.abs(output - target).mean(), np.abs(255.0 - output - target).mean()
            close = inverted < INVERTED_DISTANCE and direct > 1e-9
            out["inversion"] = float(max(0.0, 1.0 - inverted / direct)) if close else 0.0
        if self.output_periodic and self.target_periodic and np.mean(self.target_periodic) > 0:
            out["checkerboard"] = float(np.mean(self.output_periodic) / np.mean(self.target_periodic))
        return out


def _mean_colour(image: np.ndarray) -> np.ndarray:
    a = image.astype(np.float64)
    return a.reshape(-1, a.shape[2]).mean(0) if a.ndim == 3 else np.array([a.mean()] * 3)


def _mean_pairwise_l1(images: Sequence[np.ndarray]) -> float:
    x = np.stack(images).reshape(len(images), -1)
    total, count = 0.0, 0
    for i in range(len(x) - 1):
        total += float(np.abs(x[i + 1:] - x[i]).mean(axis=1).sum())
        count += len(x) - 1 - i
    return total / max(count, 1)


def failure_warnings(scores: Mapping[str, float], losses: Sequence[Mapping[str, float]] = ()) -> list[str]:
    """Plain-language warnings for the failures an evaluation's scores (`<direction>.<score>`) and the
    loss log (`losses.jsonl` records) show; [] for a healthy run."""
    warnings = []
    arrow = {"AtoB": "A → B", "BtoA": "B → A"}
    for d, name in arrow.items():
        s = {k.split(".", 1)[1]: v for k, v in scores.items() if k.startswith(f"{d}.")}
        if s.get("non_finite", 0) > 0:
            warnings.append(f"{name}: {int(s['non_finite'])} outputs hold NaN or infinite values")
        if s.get("copy_l1", np.inf) < COPY_L1:
            warnings.append(f"{name}: the outputs are copies of the inputs (mean difference {s['copy_l1']:.2f} grey "
                            "levels): identity mapping. Lower loss.lambda_identity, or train longer")
        if s.get("diversity", np.inf) < DIVERSITY:
            warnings.append(f"{name}: different inputs give nearly the same output (diversity {s['diversity']:.2f} "
                            "of the inputs'): mode collapse. Try model.spectral_norm, loss.r1_gamma or a lower lr")
        if s.get("inversion", 0.0) > INVERSION:
            warnings.append(f"{name}: the output colours look inverted (inverted colours match the target domain "
                            f"{s['inversion']:.0%} better)")
        if s.get("checkerboard", 0.0) > CHECKERBOARD:
            warnings.append(f"{name}: the outputs hold a checkerboard texture ({s['checkerboard']:.1f}x the target "
                            "images' energy at periods of 2 and 4 pixels). Try model.upsample=resize (or antialias), "
                            "or train longer")
    if losses:
        last = losses[-1].get("step", 0)
        recent = [r for r in losses if r.get("step", 0) > last - WON_STEPS]
        d_keys = sorted({k for r in recent for k in r if k.startswith("d_") and k != "d_gp"})
        span = recent[-1].get("step", 0) - recent[0].get("step", 0) if recent else 0
        for k in d_keys:
            values = [r[k] for r in recent if isinstance(r.get(k), (int, float))]
            if values and span >= WON_STEPS // 2 and max(values) < WON_LOSS:
                warnings.append(f"the discriminator loss {k} stayed below {WON_LOSS} for the last {span} steps: it has "
                                "won, and its generator learns little. Try DiffAugment (loss.diffaugment), "
                                "model.spectral_norm or loss.r1_gamma")
    return warnings
