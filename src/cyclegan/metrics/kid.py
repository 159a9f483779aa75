"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs"), as torch-fidelity computes it.

KID is the unbiased estimate of the squared maximum mean discrepancy between two sets of Inception
features under the cubic polynomial kernel k(x, y) = (x·y / d + 1)³, averaged over random subsets:

    MMD²_u = [Σ_{i≠j} k(x_i, x_j) + Σ_{i≠j} k(y_i, y_j)] / (m (m - 1)) - 2 Σ_{i,j} k(x_i, y_j) / m²

Defaults follow torch-fidelity (and clean-fid): 100 subsets of size min(1000, n_a, n_b), subsets drawn
without replacement by `np.random.RandomState(seed)`, seed 2020; the result is the mean and the
(population) standard deviation over the subsets. Unlike FID it is unbiased, so it is usable on a
few hundred images, and identical feature sets give about 0. Features come from
`cyclegan.metrics.inception_features` (pytorch-fid's network; Heusel et al. 2017).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class KID(NamedTuple):
    """The KID estimate over the subsets: `mean` is the metric, `std` its spread across subsets."""

    mean: float
    std: float


def polynomial_kernel(x: np.ndarray, y: np.ndarray, *, degree: int = 3, coef0: float = 1.0) -> np.ndarray:
    """(n, m) kernel matrix (x·y / d + coef0) ** degree between (n, d) and (m, d) features."""
    return (x @ y.T / x.shape[1] + coef0) ** degree


def mmd2_unbiased(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
    """The unbiased MMD² from the three (m, m) kernel matrices (diagonals of k_xx, k_yy left out)."""
    m = k_xx.shape[0]
    within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
    return float(within - 2 * k_xy.sum() / (m * m))


def kid(
    features_a: np.ndarray,
    features_b: np.ndarray,
    *,
    num_subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    seed: int = 2020,
) -> KID:
    """KID between two (N, D) feature sets: mean and std of the unbiased MMD² over random subsets.

    Args:
        num_subsets: how many random subsets to average over.
        subset_size: images per subset; capped at the size of the smaller set.
        degree: the polynomial kernel's degree.
        seed: seeds the subset draws, so the result is reproducible.

    Raises:
        ValueError: the feature dimensions differ, or a set has fewer than 2 rows.
    """
    a = np.asarray(features_a, dtype=np.float64)
    b = np.asarray(features_b, dtype=np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ValueError(f"KID needs two (N, D) feature arrays with the same D, got {a.shape} and {b.shape}")
    m = min(subset_size, len(a), len(b))
    if m < 2:
        raise ValueError(f"KID needs at least 2 samples in each set (and subset_size >= 2), got {len(a)} and {len(b)}")
    if num_subsets < 1:
        raise ValueError(f"num_subsets must be at least 1, got {num_subsets}")
    rng = np.random.RandomState(seed)
    mmds = np.empty(num_subsets)
    for i in range(num_subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        mmds[i] = mmd2_unbiased(
            polynomial_kernel(x, x, degree=degree),
            polynomial_kernel(x, y, degree=degree),
            polynomial_kernel(y, y, degree=degree),
        )
    return KID(float(np.mean(mmds)), float(np.std(mmds)))
