"""Image-set quality metrics: FID and KID on pytorch-fid's Inception features.

    model = cyclegan.weights.load_fid_inception()         # pytorch-fid's weights, downloaded once
    fid("results/fake_B", "datasets/horse2zebra/testB", model=model)
    fa = inception_features(model, "results/fake_B")
    fb = inception_features(model, "datasets/horse2zebra/testB")
    kid(fa, fb).mean

FID follows Heusel et al. 2017 and matches the `pytorch-fid` package (0.3.0) numerically; KID follows
Bińkowski et al. 2018 with torch-fidelity's defaults. The network's weights come from
`cyclegan.weights` (metrics/ downloads nothing).
"""

from .fid import (
    fid,
    fid_from_features,
    frechet_distance,
    inception_features,
    load_statistics,
    save_statistics,
    statistics,
)
from .inception import FIDInceptionV3
from .kid import KID, kid

__all__ = [
    "KID",
    "FIDInceptionV3",
    "fid",
    "fid_from_features",
    "frechet_distance",
    "inception_features",
    "kid",
    "load_statistics",
    "save_statistics",
    "statistics",
]
