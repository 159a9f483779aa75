"""Statistics of a real-vs-fake perceptual study (the "AMT perceptual study" of CycleGAN Sec. 5.1.1
and pix2pix Sec. 4.2): per method, the share of scored trials in which the generated image was
chosen as the real one, its standard error and a 95 % Wilson score interval. Pure functions.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

Z95 = 1.959963984540054  # two-sided 95 % normal quantile


@dataclass(frozen=True)
class Proportion:
    """`k` successes in `n` trials: the share `p`, its standard error and a Wilson interval."""

    k: int
    n: int
    p: float | None  # None when n == 0
    se: float | None  # sqrt(p (1 - p) / n)
    low: float | None
    high: float | None


def standard_error(k: int, n: int) -> float:
    """sqrt(p (1 - p) / n) with p = k / n (the binomial standard error the papers report as ±)."""
    _check(k, n)
    if n == 0:
        raise ValueError("the standard error of 0 trials is undefined")
    p = k / n
    return math.sqrt(p * (1 - p) / n)


def wilson_interval(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for k successes in n trials (stays inside [0, 1] and is not empty at
    k = 0 or k = n, unlike the normal-approximation interval p ± z se)."""
    _check(k, n)
    if n == 0:
        raise ValueError("the interval of 0 trials is undefined")
    p, z2 = k / n, z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    # Exact ends at k = 0 and k = n (the formula gives them up to rounding).
    return (0.0 if k == 0 else max(0.0, centre - half)), (1.0 if k == n else min(1.0, centre + half))


def proportion(k: int, n: int, z: float = Z95) -> Proportion:
    """`Proportion` of k in n (its fields are None for n = 0)."""
    _check(k, n)
    if n == 0:
        return Proportion(k, n, None, None, None, None)
    low, high = wilson_interval(k, n, z)
    return Proportion(k, n, k / n, standard_error(k, n), low, high)


def fooled_rates(answers: Iterable[tuple[str, bool]], methods: Iterable[str] = ()) -> dict[str, Proportion]:
    """Per method, the share of trials in which the fake was chosen as real.

    Args:
        answers: (method, fake chosen as real) per scored trial.
        methods: methods to report even without answers (in this order, before any others).
    """
    counts: dict[str, list[int]] = {m: [0, 0] for m in methods}
    for method, fooled in answers:
        c = counts.setdefault(method, [0, 0])
        c[0] += bool(fooled)
        c[1] += 1
    return {m: proportion(k, n) for m, (k, n) in counts.items()}


def _check(k: int, n: int) -> None:
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
