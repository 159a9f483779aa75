"""cyclegan.metrics against pytorch-fid: the FID Inception network, features, FID, KID, weights.

The golden file ../shared/fixtures/pytorch_fid_random_weights.pt holds pytorch-fid 0.3.0's outputs for
seeded random weights (see its README). Feature errors are measured as max|ours - ref| / max|ref|
over the whole (N, 2048) array.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from cyclegan.metrics import (
    FIDInceptionV3,
    fid,
    fid_from_features,
    frechet_distance,
    inception_features,
    kid,
    load_statistics,
    save_statistics,
    statistics,
)
from cyclegan.metrics.kid import polynomial_kernel
from cyclegan.weights import FID_INCEPTION, WEIGHTS, WeightsError, load_fid_inception
from cyclegan.weights.download import DownloadError

from helpers import file_server

FID_WEIGHTS_FILE = WEIGHTS[FID_INCEPTION].file

FEATURE_TOL = 1e-4  # max|diff| / max|ref| of the (N, 2048) features
FID_TOL = 1e-3  # relative


def _rel(ours: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(ours - ref).max() / np.abs(ref).max())


@pytest.fixture(scope="module")
def golden(fixtures_dir: Path) -> dict:
    return torch.load(fixtures_dir / "pytorch_fid_random_weights.pt", map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def state32(golden: dict) -> dict[str, torch.Tensor]:
    """The fixture's float16 weights upcast to float32 (the features were computed from these values)."""
    return {k: v.float() if v.is_floating_point() else v for k, v in golden["state_dict"].items()}


@pytest.fixture(scope="module")
def net(state32: dict[str, torch.Tensor]) -> FIDInceptionV3:
    return load_fid_inception(state32)


class TinyFeatures(nn.Module):
    """A fast stand-in feature network: (B, 3, H, W) in [0, 1] -> (B, 8)."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(12, 8)
        torch.nn.init.normal_(self.proj.weight, generator=torch.Generator().manual_seed(0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.nn.functional.adaptive_avg_pool2d(x, 2).flatten(1)  # (B, 12)
        return self.proj(pooled)


def _random_images(n: int, seed: int, size: tuple[int, int] = (16, 20)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, *size, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------------
# Golden: pytorch-fid's numbers


def test_state_dict_keys_match_pytorch_fid(state32: dict[str, torch.Tensor]) -> None:
    ours = FIDInceptionV3().state_dict()
    assert list(ours) == list(state32)
    assert all(ours[k].shape == state32[k].shape for k in ours)


def test_features_and_fid_match_pytorch_fid(net: FIDInceptionV3, golden: dict) -> None:
    feats_a = inception_features(net, golden["images_a"], batch_size=12)
    feats_b = inception_features(net, golden["images_b"].numpy(), batch_size=7)
    assert feats_a.dtype == np.float64 and feats_a.shape == (12, 2048)
    ref_a, ref_b = golden["feats_a"].numpy(), golden["feats_b"].numpy()
    assert _rel(feats_a, ref_a) < FEATURE_TOL  # measured 4.3e-7 (oneDNN on), 4.6e-7 (off)
    assert _rel(feats_b, ref_b) < FEATURE_TOL
    assert _rel(statistics(feats_a)[0], golden["mu_a"].numpy()) < FEATURE_TOL
    value = fid_from_features(feats_a, feats_b)
    assert value == pytest.approx(golden["fid"], rel=FID_TOL)  # measured 1.3e-7


def test_frechet_distance_reproduces_pytorch_fid_value(golden: dict) -> None:
    """pytorch-fid's `sqrtm` route on the reference features gives the stored FID.

    A 2048x2048 `sqrtm` takes 12-60 s on a 2-core CPU, so the same computation runs on the features
    rotated into the subspace they span (FID is rotation invariant and the rest of the space
    contributes nothing). On the full matrices it gave the stored value to the last digit.
    """
    fa, fb = golden["feats_a"].numpy(), golden["feats_b"].numpy()
    basis, _ = np.linalg.qr(np.concatenate([fa - fa.mean(0), fb - fb.mean(0), (fa.mean(0) - fb.mean(0))[None]]).T)
    value = frechet_distance(*statistics(fa @ basis), *statistics(fb @ basis))
    assert value == pytest.approx(golden["fid"], rel=1e-6)
    assert fid_from_features(fa, fb) == pytest.approx(value, rel=1e-12)


def test_fid_from_png_folders_matches_pytorch_fid(net: FIDInceptionV3, golden: dict, fixtures_dir: Path) -> None:
    value = fid(fixtures_dir / "fid_images_a", str(fixtures_dir / "fid_images_b"), model=net, batch_size=5)
    assert value == pytest.approx(golden["fid_paths"], rel=FID_TOL)  # measured 1.6e-7


# ---------------------------------------------------------------------------------------------------
# Inputs


def test_mixed_sizes_and_file_lists(net: FIDInceptionV3, tmp_path: Path) -> None:
    paths = []
    for i, size in enumerate([(40, 56), (61, 33)]):
        paths.append(tmp_path / f"{i}.png")
        Image.fromarray(_random_images(1, i, size)[0]).save(paths[-1])
    together = inception_features(net, paths, batch_size=2)  # resized one by one, then batched
    alone = np.concatenate([inception_features(net, [p]) for p in paths])  # the network resizes
    assert _rel(together, alone) < 1e-5


def test_input_errors(tmp_path: Path) -> None:
    tiny = TinyFeatures()
    with pytest.raises(ValueError, match="uint8 of shape"):
        inception_features(tiny, np.zeros((2, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="uint8 of shape"):
        inception_features(tiny, torch.zeros(2, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="no images"):
        inception_features(tiny, tmp_path)
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="cannot read image .*bad.png"):
        inception_features(tiny, tmp_path)
    with pytest.raises(ValueError, match="N >= 2"):
        statistics(np.zeros((1, 4)))


def test_folder_matches_array_and_ignores_other_files(tmp_path: Path) -> None:
    images = _random_images(5, 1)
    for i, img in enumerate(images):
        Image.fromarray(img).save(tmp_path / f"{i:02d}.png")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "sub").mkdir()
    Image.fromarray(images[0]).save(tmp_path / "sub" / "nested.png")  # top level only, as pytorch-fid
    tiny = TinyFeatures()
    from_folder = inception_features(tiny, tmp_path, batch_size=2)
    np.testing.assert_allclose(from_folder, inception_features(tiny, images), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------------------------------------------
# Fréchet distance and statistics files


def test_frechet_distance_closed_forms() -> None:
    # 1-D: (m1 - m2)² + s1 + s2 - 2 sqrt(s1 s2)
    assert frechet_distance(np.array([1.0]), np.array([[4.0]]), np.array([3.0]), np.array([[9.0]])) == pytest.approx(
        4 + 4 + 9 - 12
    )
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 6))
    mu, sigma = statistics(x)
    np.testing.assert_allclose(sigma, np.cov(x.T))
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0, abs=1e-9)
    assert frechet_distance(mu, sigma, mu + 2, sigma) == pytest.approx(6 * 4, rel=1e-9)
    with pytest.raises(ValueError, match="imaginary component"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), -np.eye(2))
    with pytest.raises(ValueError, match="different shapes"):
        frechet_distance(np.zeros(2), np.eye(2), np.zeros(3), np.eye(3))


def test_fid_from_features_agrees_with_full_computation() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(7, 40)), rng.normal(0.5, 2.0, size=(9, 40))  # N_a + N_b < D: the subspace route
    # (sqrtm of the singular 40x40 product carries round-off of ~1e-8 relative)
    assert fid_from_features(a, b) == pytest.approx(frechet_distance(*statistics(a), *statistics(b)), rel=1e-6)
    a, b = rng.normal(size=(30, 5)), rng.normal(1.0, 1.5, size=(25, 5))  # N > D: the full route
    assert fid_from_features(a, b) == frechet_distance(*statistics(a), *statistics(b))


def test_statistics_npz_round_trip_and_fid_against_npz(tmp_path: Path) -> None:
    tiny = TinyFeatures()
    images_a, images_b = _random_images(10, 2), _random_images(12, 3) // 2
    mu, sigma = statistics(inception_features(tiny, images_a))
    path = save_statistics(tmp_path / "stats" / "a.npz", mu, sigma)
    with np.load(path) as f:  # pytorch-fid's format: exactly these two arrays
        assert sorted(f.files) == ["mu", "sigma"]
    mu2, sigma2 = load_statistics(path)
    np.testing.assert_array_equal(mu2, mu)
    np.testing.assert_array_equal(sigma2, sigma)
    direct = fid(images_a, images_b, model=tiny)
    assert fid(path, images_b, model=tiny) == pytest.approx(direct, rel=1e-8)
    assert fid(images_b, str(path), model=tiny) == pytest.approx(direct, rel=1e-8)
    assert fid(path, path) == pytest.approx(0, abs=1e-6)  # no model needed for two statistics files
    with pytest.raises(ValueError, match="needs the feature network.*load_fid_inception"):
        fid(path, images_b)  # metrics/ downloads nothing: images need a model
    assert direct > 1

    np.savez(tmp_path / "wrong.npz", mean=mu)
    with pytest.raises(ValueError, match="no 'mu' and 'sigma'"):
        load_statistics(tmp_path / "wrong.npz")
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(ValueError, match="not a readable .npz"):
        load_statistics(tmp_path / "junk.npz")
    with pytest.raises(FileNotFoundError):
        load_statistics(tmp_path / "missing.npz")


# ---------------------------------------------------------------------------------------------------
# KID


def _kid_brute_force(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD² with k(u, v) = (u·v / d + 1)³, pair by pair."""
    m, d = len(x), x.shape[1]

    def k(u: np.ndarray, v: np.ndarray) -> float:
        return (sum(float(p) * float(q) for p, q in zip(u, v)) / d + 1) ** 3

    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return (xx + yy) / (m * (m - 1)) - 2 * xy / (m * m)


def test_kid_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(6, 4)), rng.normal(0.3, 1.2, size=(6, 4))
    # One subset of all the samples is a permutation, which the estimate does not depend on.
    result = kid(x, y, num_subsets=3, subset_size=100)
    assert result.mean == pytest.approx(_kid_brute_force(x, y), rel=1e-10)
    assert result.std == pytest.approx(0, abs=1e-12)
    np.testing.assert_allclose(polynomial_kernel(x, y), (x @ y.T / 4 + 1) ** 3)


def test_kid_identical_shifted_and_seeded() -> None:
    rng = np.random.default_rng(1)
    a = rng.normal(size=(300, 16))
    b = rng.normal(size=(300, 16))
    same = kid(a, b, subset_size=100)
    shifted = kid(a, b + 1.0, subset_size=100)
    assert abs(same.mean) < 3 * same.std + 1e-3
    assert shifted.mean > 1 and shifted.mean > 10 * shifted.std
    # The same set on both sides: only the diagonal of k(x, y), kept by the unbiased estimator, differs.
    k, m = polynomial_kernel(a, a), len(a)
    expected = 2 * (k.sum() - np.trace(k)) / (m * (m - 1)) - 2 * k.sum() / m**2
    assert kid(a, a, num_subsets=1, subset_size=m).mean == pytest.approx(expected, rel=1e-10)
    assert abs(expected) < 0.01 * shifted.mean
    assert kid(a, b, subset_size=50) == kid(a, b, subset_size=50)  # seeded
    assert kid(a, b, subset_size=50, seed=1) != kid(a, b, subset_size=50, seed=2)
    with pytest.raises(ValueError, match="same D"):
        kid(a, b[:, :3])
    with pytest.raises(ValueError, match="at least 2"):
        kid(a[:1], b)


# ---------------------------------------------------------------------------------------------------
# Weights: download, cache, errors


@pytest.fixture()
def weights_server(tmp_path: Path, state32: dict[str, torch.Tensor]):
    """Serves the fixture weights as float32 under the release file name; yields (base URL, requests)."""
    root = tmp_path / "server"
    root.mkdir()
    torch.save(state32, root / FID_WEIGHTS_FILE)
    (root / "html").mkdir()
    (root / "html" / FID_WEIGHTS_FILE).write_bytes(b"<!DOCTYPE html><html><body>404</body></html>")
    with file_server(root) as served:
        yield served


def test_weights_download_once_into_cache(weights_server, tmp_path: Path, monkeypatch, state32) -> None:
    url, requests = weights_server
    monkeypatch.setenv("CYCLEGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CYCLEGAN_WEIGHTS_MIRROR", url)  # a mirror: the release file name is appended
    model = load_fid_inception(progress=False)
    assert requests == [f"/{FID_WEIGHTS_FILE}"]
    assert (tmp_path / "cache" / "fid" / FID_WEIGHTS_FILE).is_file()
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, state32[key], rtol=0, atol=0)
    load_fid_inception(progress=False)
    assert len(requests) == 1  # cached

    monkeypatch.setenv("CYCLEGAN_WEIGHTS_MIRROR", f"{url}/html")  # a mirror serving an HTML page
    monkeypatch.setenv("CYCLEGAN_CACHE", str(tmp_path / "cache2"))
    with pytest.raises(DownloadError, match="HTML page.*CYCLEGAN_WEIGHTS_MIRROR"):
        load_fid_inception(progress=False)
    assert not (tmp_path / "cache2" / "fid" / FID_WEIGHTS_FILE).exists()


def test_wrong_weights_files(tmp_path: Path, state32: dict[str, torch.Tensor]) -> None:
    torch.save({"model.0.weight": torch.zeros(3)}, tmp_path / "generator.pth")
    with pytest.raises(WeightsError, match=r"generator.pth is not the FID Inception weights: 566 keys missing"):
        load_fid_inception(tmp_path / "generator.pth")
    wrong_shape = dict(state32, **{"fc.weight": torch.zeros(1000, 2048)})
    with pytest.raises(WeightsError, match=r"fc.weight is \(1000, 2048\), expected \(1008, 2048\)"):
        load_fid_inception(wrong_shape)
    (tmp_path / "page.pth").write_text("<html><body>Not Found</body></html>")
    with pytest.raises(WeightsError, match="HTML page"):
        load_fid_inception(tmp_path / "page.pth")
    (tmp_path / "junk.pth").write_bytes(b"\x00junk" * 10)
    with pytest.raises(WeightsError, match="not a readable torch weights file"):
        load_fid_inception(tmp_path / "junk.pth")
    with pytest.raises(FileNotFoundError, match="missing.pth does not exist"):
        load_fid_inception(tmp_path / "missing.pth")
    # Files saved before BatchNorm counted batches (no num_batches_tracked) still load.
    old = {k: v for k, v in state32.items() if not k.endswith("num_batches_tracked")}
    assert isinstance(load_fid_inception({"state_dict": old}), FIDInceptionV3)


def test_cli_evaluate_fid_and_kid_on_the_golden_folders(tmp_path, fixtures_dir):
    """`cyclegan evaluate fid` on pytorch-fid's PNG folders gives pytorch-fid's FID; stats reuse and KID."""
    import json
    import subprocess
    import sys

    golden = torch.load(fixtures_dir / "pytorch_fid_random_weights.pt", weights_only=True)
    weights = tmp_path / "inception.pth"
    torch.save({k: v.float() if v.is_floating_point() else v for k, v in golden["state_dict"].items()}, weights)
    a, b = fixtures_dir / "fid_images_a", fixtures_dir / "fid_images_b"

    def evaluate(*args: str) -> dict:
        result = subprocess.run(
            [sys.executable, "-m", "cyclegan", "evaluate", *args, "--inception-weights", str(weights), "--json",
             "--device", "cpu"], capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)

    out = evaluate("fid", str(a), str(b), "--batch-size", "5", "--save-stats", str(tmp_path / "a.npz"))
    assert out["fid"] == pytest.approx(float(golden["fid_paths"]), rel=1e-3)
    again = evaluate("fid", str(tmp_path / "a.npz"), str(b))  # full-covariance route from the saved stats
    assert again["fid"] == pytest.approx(float(golden["fid_paths"]), rel=1e-3)
    k = evaluate("kid", str(a), str(b), "--subsets", "10")
    assert k["kid_mean"] > 0 and k["n_a"] == len(golden["images_a"])
    bad = subprocess.run([sys.executable, "-m", "cyclegan", "evaluate", "fid", str(tmp_path / "nope"), str(b)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and bad.stderr.count("\n") == 1 and "does not exist" in bad.stderr
