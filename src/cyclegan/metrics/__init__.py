"""Image-set quality metrics: FID and KID on pytorch-fid's Inception features.

    model = load_fid_inception()                          # pytorch-fid's weights, downloaded once
    fid("results/fake_B", "datasets/horse2zebra/testB", model=model)
    fa = inception_features(model, "results/fake_B")
    fb = inception_features(model, "datasets/horse2zebra/testB")
    kid(fa, fb).mean

FID follows Heusel et al. 2017 and matches the `pytorch-fid` package (0.3.0) numerically; KID follows
Bińkowski et al. 2018 with torch-fidelity's defaults.
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
from .inception import FIDInceptionV3, FIDWeightsError, fid_weights_path, load_fid_inception
from .kid import KID, kid
from .sets import fid_between, kid_between

__all__ = [
    "KID",
    "FIDInceptionV3",
    "FIDWeightsError",
    "fid",
    "fid_between",
    "fid_from_features",
    "fid_weights_path",
    "frechet_distance",
    "inception_features",
    "kid",
    "kid_between",
    "load_fid_inception",
    "load_statistics",
    "save_statistics",
    "statistics",
]
