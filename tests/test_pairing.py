"""Pairing by name across the conventions of the official scripts (`12_A` / `12_B`, `12_fake_B`),
and the maps protocol's resize against OpenCV's own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torch import nn

from cyclegan.data.image_io import DataError, files_by_pair_key, pair_key, paired_files
from cyclegan.metrics.paired import paired_metrics, resize_linear

from helpers import optional_module, tiny_dataset


def write(folder: Path, names: list[str], value: int = 100, size: int = 32) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for n in names:
        Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(folder / n)


@pytest.mark.parametrize("name, key", [
    ("12.jpg", "12"), ("12_A.jpg", "12"), ("12_B.png", "12"), ("12_fake_B.png", "12"), ("12_real_A.png", "12"),
    ("12_fake.png", "12"), ("12_real.png", "12"), ("12_rec_A.png", "12_rec"), ("sub/7_B.jpg", "sub/7"),
    ("A.png", "A"), ("_B.png", "_B"), ("photo_AB.png", "photo_AB"), ("12_a.png", "12_a"),
])
def test_pair_key_strips_the_official_suffixes(name, key):
    assert pair_key(Path("/d") / name, Path("/d")) == key


def test_n_a_pairs_with_n_b_and_outputs_with_references(tmp_path):
    write(tmp_path / "testA", ["1_A.jpg", "2_A.jpg", "10_A.jpg"])
    write(tmp_path / "testB", ["1_B.jpg", "2_B.jpg", "3_B.jpg"])
    pairs = paired_files(tmp_path / "testA", tmp_path / "testB")
    assert [(a.name, b.name) for a, b in pairs] == [("1_A.jpg", "1_B.jpg"), ("2_A.jpg", "2_B.jpg")]
    write(tmp_path / "out", ["1_fake_B.png", "2_fake_B.png"], value=110)
    r = paired_metrics(tmp_path / "out", tmp_path / "testB")
    assert r.count == 2 and r.means["l1"] == pytest.approx(10)


def test_no_pair_names_an_example_of_each_folder(tmp_path):
    write(tmp_path / "a", ["x1.png", "x2.png"])
    write(tmp_path / "b", ["y1.png"])
    with pytest.raises(DataError, match=r"e\.g\. x1\.png vs y1\.png"):
        paired_files(tmp_path / "a", tmp_path / "b")


def test_two_files_of_one_key_in_a_folder_are_an_error(tmp_path):
    write(tmp_path / "images", ["1_real_A.png", "1_fake_B.png"])  # the official test.py's results folder
    with pytest.raises(DataError, match="1_fake_B.png and 1_real_A.png .* both pair as '1'|1_real_A.png and 1_fake_B"):
        files_by_pair_key(tmp_path / "images")


def test_evaluate_run_scores_pairs_named_n_a_n_b(tmp_path):
    """`evaluate run` on a split written as prepare-cityscapes writes it: paired scores are there."""
    from cyclegan.evaluation import evaluate_generators

    data = tiny_dataset(tmp_path / "data")
    for side in "AB":
        for p in sorted((data / f"test{side}").iterdir()):
            p.rename(p.with_name(f"{p.stem}_{side}{p.suffix}"))
    scores = evaluate_generators(nn.Identity(), nn.Identity(), data / "testA", data / "testB")
    assert scores["AtoB.paired_images"] == 2 and "AtoB.l1" in scores and "BtoA.acc@5" in scores


def test_reproduce_segmentation_fails_before_training_without_pairs(tmp_path):
    data = tiny_dataset(tmp_path / "data")
    for p in sorted((data / "testB").iterdir()):
        p.rename(p.with_name(f"other_{p.name}"))
    res = subprocess.run([sys.executable, "-m", "cyclegan", "reproduce", "ablation", str(data), "--out",
                          str(tmp_path / "out"), "--variants", "CycleGAN", "--segmentation", "cityscapes"],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 1 and "Traceback" not in res.stderr, res.stderr
    assert "pairs with one" in res.stderr and "e.g." in res.stderr
    assert not (tmp_path / "out" / "cyclegan").exists()  # nothing trained


# OpenCV is a test-only dependency: the protocol's resize is reimplemented, and checked here.
cv2 = optional_module("cv2")


@pytest.mark.parametrize("shape", [(128, 128, 3), (600, 600, 3), (37, 53, 3), (512, 512, 3), (1, 1, 3),
                                   (256, 256, 3), (257, 1000, 3), (90, 70)])
def test_maps_resize_is_opencvs_inter_linear(shape):
    img = np.random.default_rng(sum(shape)).integers(0, 256, shape, dtype=np.uint8)
    expected = cv2.resize(img, (256, 256), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(resize_linear(img, 256), expected)


def test_maps_resize_differs_from_pils_antialiasing_bilinear():
    img = np.random.default_rng(0).integers(0, 256, (600, 600, 3), dtype=np.uint8)
    pil = np.asarray(Image.fromarray(img).resize((256, 256), Image.BILINEAR))
    assert np.abs(pil.astype(int) - resize_linear(img, 256)).mean() > 5  # noise shrunk without antialiasing
