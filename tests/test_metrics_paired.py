"""Paired metrics (L1, PSNR, SSIM, the maps protocol) and segmentation metrics against hand-computed
cases and scikit-image's SSIM; `cyclegan evaluate paired|segmentation` on real files."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cyclegan.metrics.paired import PSNR_MAX, l1, maps_scores, paired_metrics, psnr, ssim
from cyclegan.metrics.segmentation import CITYSCAPES, Palette, segmentation_metrics, segmentation_scores


def const(value, size=(32, 32)):
    return np.full((*size, 3), value, dtype=np.uint8)


def patterned_pair():
    """A deterministic textured RGB image and a distorted copy, (40, 48, 3) uint8."""
    i, j, c = np.meshgrid(np.arange(40), np.arange(48), np.arange(3), indexing="ij")
    a = ((i * 37 + j * 91 + c * 53 + (i * j) % 17 * 11) % 256).astype(np.uint8)
    b = np.clip(a.astype(int) + ((i * 7 + j * 13 + c * 29) % 81) - 40, 0, 255).astype(np.uint8)
    return a, b


def test_l1_and_psnr_by_hand():
    assert l1(const(10), const(20)) == 10
    assert psnr(const(10), const(20)) == pytest.approx(10 * math.log10(255**2 / 100))
    assert psnr(const(7), const(7)) == PSNR_MAX
    with pytest.raises(ValueError, match="shape"):
        l1(const(0), const(0, (16, 16)))


def test_ssim_matches_scikit_image():
    # Reference values from scikit-image 0.26 structural_similarity(gaussian_weights=True, sigma=1.5,
    # use_sample_covariance=False, data_range=255[, channel_axis=-1]) on the same arrays.
    a, b = patterned_pair()
    assert ssim(a, b) == pytest.approx(0.9537091524991589, abs=1e-12)
    assert ssim(a[..., 0], 255 - a[..., 1] // 2) == pytest.approx(0.04369662732147903, abs=1e-12)


def test_ssim_of_constant_images_is_the_luminance_term():
    c1 = (0.01 * 255) ** 2
    expected = (2 * 100 * 120 + c1) / (100**2 + 120**2 + c1)  # contrast/structure term is C2 / C2 = 1
    assert ssim(const(100), const(120)) == pytest.approx(expected)
    assert ssim(*patterned_pair()[:1] * 2) == pytest.approx(1.0)


def test_maps_protocol_by_hand():
    real = const((200, 100, 50), (256, 256))
    fake = real.copy()
    fake[:, :128, 1] += 7  # left half: largest channel difference 7
    s = maps_scores(fake, real)
    assert s["rmse"] == pytest.approx(math.sqrt(128 * 256 * 49 / 256**2))
    assert s["acc@5"] == pytest.approx(0.5) and s["acc@10"] == pytest.approx(1.0)
    # a 128 px pair is resized to 256 first: a uniform difference of 3 stays 3 everywhere
    s = maps_scores(const((13, 3, 0), (128, 128)), const((10, 3, 0), (128, 128)))
    assert s == pytest.approx({"rmse": 3.0, "acc@5": 1.0, "acc@10": 1.0})


def test_paired_metrics_match_names_across_suffixes(tmp_path):
    fake, real = tmp_path / "fake", tmp_path / "real"
    (fake / "sub").mkdir(parents=True)
    (real / "sub").mkdir(parents=True)
    Image.fromarray(const(10)).save(fake / "a.png")
    Image.fromarray(const(10)).save(real / "a.bmp")
    Image.fromarray(const(30, (16, 16))).save(fake / "sub" / "b.png")  # another size: resized to the reference
    Image.fromarray(const(20)).save(real / "sub" / "b.png")
    Image.fromarray(const(0)).save(fake / "orphan.png")
    r = paired_metrics(fake, real)
    assert r.count == 2 and r.unmatched == ["orphan"]
    assert r.per_image["a"]["l1"] == 0 and r.per_image["sub/b"]["l1"] == 10
    assert r.means["l1"] == 5 and r.means["psnr"] == pytest.approx((PSNR_MAX + psnr(const(30), const(20))) / 2)
    with pytest.raises(ValueError, match="pairs with one"):
        paired_metrics(fake / "sub", real)


def test_segmentation_scores_by_hand():
    road, car, void = CITYSCAPES.colours[0], CITYSCAPES.colours[13], CITYSCAPES.colours[-1]
    truth = np.zeros((4, 4, 3), np.uint8)
    truth[:, :2], truth[:, 2:], truth[3] = road, car, void  # 6 road, 6 car, 4 void (ignored)
    pred = np.empty_like(truth)
    pred[:] = np.clip(road.astype(int) + 6, 0, 255)  # off-palette colours snap to road
    pred[0, 2:] = car  # 2 of the 6 car pixels right
    pred[3] = car  # predictions on void ground truth do not count
    s = segmentation_scores([pred], [truth])
    assert s.pixel_accuracy == pytest.approx(8 / 12)
    assert s.class_accuracy == pytest.approx((6 / 6 + 2 / 6) / 2)
    # road: 6 right / (6 truth + 10 predicted - 6); car: 2 / (6 + 2 - 2); classes absent from both: NaN
    assert s.per_class_iou["road"] == pytest.approx(6 / 10) and s.per_class_iou["car"] == pytest.approx(2 / 6)
    assert s.mean_iou == pytest.approx((6 / 10 + 2 / 6) / 2)
    assert math.isnan(s.per_class_iou["sky"])


def test_palette_file(tmp_path):
    f = tmp_path / "palette.txt"
    f.write_text("# two classes\nunlabeled* 0 0 0\ntraffic sign 220 220 0\nsky 70 130 180  # blue\n")
    p = Palette.from_file(f)
    assert p.names == ("unlabeled", "traffic sign", "sky") and p.void == ("unlabeled",) and p.scored == [1, 2]
    f.write_text("sky 70 130 300\n")
    with pytest.raises(ValueError, match="line 1"):
        Palette.from_file(f)


def cli(*args):
    return subprocess.run([sys.executable, "-m", "cyclegan", "evaluate", *map(str, args)], capture_output=True, text=True)


def test_cli_paired_and_segmentation(tmp_path):
    fake, real = tmp_path / "fake", tmp_path / "real"
    fake.mkdir()
    real.mkdir()
    a, b = patterned_pair()
    Image.fromarray(a).save(fake / "1.png")
    Image.fromarray(b).save(real / "1.png")
    res = cli("paired", fake, real, "--json", "--per-image", tmp_path / "scores.csv")
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["images"] == 1 and out["ssim"] == pytest.approx(0.9537091524991589)
    assert out["l1"] == pytest.approx(l1(a, b)) and out["acc@5"] == pytest.approx(maps_scores(a, b)["acc@5"])
    assert (tmp_path / "scores.csv").read_text().splitlines()[0] == "name,l1,psnr,ssim,rmse,acc@5,acc@10"
    res = cli("paired", fake, real)
    assert res.returncode == 0 and "acc@10" in res.stdout and "1 image pairs" in res.stdout

    res = cli("segmentation", real, real, "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["pixel_accuracy"] == 1.0

    res = cli("paired", tmp_path / "missing", real)
    assert res.returncode == 1 and "does not exist" in res.stderr and "Traceback" not in res.stderr


def test_segmentation_metrics_on_synthetic_maps(tmp_path):
    """Map tiles scored against themselves with their own palette; a shifted copy scores lower."""
    from cyclegan.demo.city import MAP_PALETTE, write_city_dataset

    root = write_city_dataset(tmp_path / "city", n_train=1, n_test=3, size=48, seed=3)
    palette = Palette(tuple(label.name for label in MAP_PALETTE), np.array(list(MAP_PALETTE.values()), np.uint8))
    same = segmentation_metrics(root / "testB", root / "testB", palette)
    assert same.pixel_accuracy == 1.0 and same.mean_iou == 1.0 and same.images == 3
    shifted = tmp_path / "shifted"
    shifted.mkdir()
    for p in (root / "testB").iterdir():
        if p.suffix == ".png":
            Image.fromarray(np.roll(np.asarray(Image.open(p)), 6, axis=1)).save(shifted / p.name)
    worse = segmentation_metrics(shifted, root / "testB", palette)
    assert worse.pixel_accuracy < 0.95 and worse.mean_iou < same.mean_iou
