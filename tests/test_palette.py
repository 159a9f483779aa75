"""Palette snapping (`data.palette`): fitting the target domain's colours, the exact nearest-colour
snap, the median filter before it, and `translate --palette` / `evaluate run --palette-colors` end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cyclegan.data.image_io import DataError
from cyclegan.data.palette import fit_palette, load_palette, snap

from helpers import TINY, cli_environ, tiny_dataset

FLAT = [(242, 240, 234), (177, 207, 253), (204, 220, 173)]  # map background, water, park


def noisy_tiles(folder, n=4, noise=6, seed=0):
    """Images of three flat colours (horizontal bands) with ±noise levels of texture."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = np.zeros((48, 48, 3), np.int64)
        for k, colour in enumerate(FLAT):
            img[16 * k: 16 * (k + 1)] = colour
        img = np.clip(img + rng.integers(-noise, noise + 1, img.shape), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(folder / f"{i}.png")
    return folder


def test_fit_palette_recovers_the_flat_colours(tmp_path):
    palette = load_palette(noisy_tiles(tmp_path / "maps"), colors=3)
    assert palette.shape == (3, 3) and palette.dtype == np.uint8
    for colour in FLAT:
        assert np.abs(palette.astype(int) - colour).max(axis=1).min() <= 2, (colour, palette)
    assert np.array_equal(palette, load_palette(tmp_path / "maps", colors=3))  # deterministic


def test_snap_is_the_exact_nearest_colour():
    rng = np.random.default_rng(1)
    palette = rng.integers(0, 256, (6, 3)).astype(np.uint8)
    image = rng.integers(0, 256, (37, 53, 3)).astype(np.uint8)
    snapped = snap(image, palette, chunk=100)  # several chunks, one partial
    distance = ((image[:, :, None].astype(int) - palette[None, None].astype(int)) ** 2).sum(axis=3)
    assert np.array_equal(snapped, palette[distance.argmin(axis=2)])
    # a texture of ±6 levels on flat colours comes back flat
    flat = np.repeat(np.asarray(FLAT, np.uint8), 10, axis=0).reshape(3, 10, 3)
    noisy = np.clip(flat.astype(int) + rng.integers(-6, 7, flat.shape), 0, 255).astype(np.uint8)
    assert np.array_equal(snap(noisy, np.asarray(FLAT, np.uint8)), flat)


def median_by_hand(image, size):
    """Each channel's median over size x size windows, edges mirrored (scipy's 'reflect' is numpy's 'symmetric')."""
    r = size // 2
    padded = np.pad(image, ((r, r), (r, r), (0, 0)), mode="symmetric")
    windows = np.lib.stride_tricks.sliding_window_view(padded, (size, size), axis=(0, 1))
    return np.median(windows.reshape(*image.shape, -1), axis=-1).astype(np.uint8)


def test_median_before_the_snap_removes_specks_and_keeps_edges():
    background, water = (np.asarray(c, np.uint8) for c in FLAT[:2])
    palette = np.asarray(FLAT, np.uint8)
    image = np.broadcast_to(background, (24, 24, 3)).copy()
    image[12:] = water  # a straight edge between two flat areas
    image[5, 7] = water  # an isolated speck of the wrong colour, and one at the border
    image[0, 0] = FLAT[2]
    assert np.array_equal(snap(image, palette)[5, 7], water)  # the snap alone keeps a speck
    clean = snap(image, palette, median=3)
    expected = np.broadcast_to(background, (24, 24, 3)).copy()
    expected[12:] = water
    assert np.array_equal(clean, expected)
    rng = np.random.default_rng(2)
    noisy = rng.integers(0, 256, (29, 31, 3)).astype(np.uint8)
    for size in (3, 5):  # on any image: the per-channel median, then the exact nearest colour
        assert np.array_equal(snap(noisy, palette, median=size), snap(median_by_hand(noisy, size), palette))
    for size in (1, 2, 4, -3):
        with pytest.raises(ValueError, match="odd size of at least 3"):
            snap(image, palette, median=size)


def test_palette_errors_name_the_problem(tmp_path):
    with pytest.raises(DataError, match="1 to 256 colours"):
        fit_palette([tmp_path / "x.png"], colors=0)
    with pytest.raises(DataError, match="does not exist"):
        load_palette(tmp_path / "missing")
    with pytest.raises(DataError, match="RGB"):
        snap(np.zeros((4, 4), np.uint8), np.zeros((2, 3), np.uint8))


def cli(*args):
    return subprocess.run([sys.executable, "-m", "cyclegan", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=cli_environ())


def test_translate_and_evaluate_with_a_palette(tmp_path):
    data = tiny_dataset(tmp_path / "data")
    run = tmp_path / "run"
    sets = [a for o in TINY for a in ("--set", o)]
    res = cli("train", data, "--run-dir", run, *sets, "--max-steps", 2, "--no-progress")
    assert res.returncode == 0, res.stderr
    out = tmp_path / "out"
    res = cli("translate", run, data / "testA", "--out", out, "--palette", data / "trainB", "--palette-colors", 3,
              "--no-progress")
    assert res.returncode == 0, res.stderr
    palette = load_palette(data / "trainB", 3)
    for path in out.iterdir():
        colours = np.unique(np.asarray(Image.open(path)).reshape(-1, 3), axis=0)
        assert all((palette == c).all(axis=1).any() for c in colours), (colours, palette)

    res = cli("evaluate", "run", run, "--json", "--palette-colors", 3, "--device", "cpu")
    assert res.returncode == 0, res.stderr
    snapped = json.loads(res.stdout)
    res = cli("evaluate", "run", run, "--json", "--device", "cpu")
    raw = json.loads(res.stdout)
    assert "palette" in snapped and "palette" not in raw
    # the scores are those of the snapped files: scoring what translate --palette wrote gives the same L1
    res = cli("evaluate", "paired", out, data / "testB", "--json")
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["l1"] == pytest.approx(snapped["AtoB.l1"], rel=1e-9)
    assert snapped["AtoB.l1"] != pytest.approx(raw["AtoB.l1"], rel=1e-6)

    # --palette-median: the same snap after a median filter, for translate and evaluate run alike
    res = cli("translate", run, data / "testA", "--out", tmp_path / "plain", "--no-progress")
    assert res.returncode == 0, res.stderr
    res = cli("translate", run, data / "testA", "--out", tmp_path / "median", "--palette", data / "trainB",
              "--palette-colors", 3, "--palette-median", 3, "--no-progress")
    assert res.returncode == 0, res.stderr
    for path in (tmp_path / "plain").iterdir():
        expected = snap(np.asarray(Image.open(path)), palette, median=3)
        assert np.array_equal(np.asarray(Image.open(tmp_path / "median" / path.name)), expected), path.name
    res = cli("evaluate", "run", run, "--json", "--palette-colors", 3, "--palette-median", 3, "--device", "cpu")
    assert res.returncode == 0, res.stderr
    median = json.loads(res.stdout)
    assert "3x3 median filter" in median["palette"]
    res = cli("evaluate", "paired", tmp_path / "median", data / "testB", "--json")
    assert json.loads(res.stdout)["l1"] == pytest.approx(median["AtoB.l1"], rel=1e-9)

    res = cli("translate", run, data / "testA", "--out", tmp_path / "o2", "--palette", tmp_path / "nowhere")
    assert res.returncode != 0 and "does not exist" in res.stderr and "Traceback" not in res.stderr
    for args in (("translate", run, data / "testA", "--out", tmp_path / "o3"), ("evaluate", "run", run)):
        res = cli(*args, "--palette-median", 5)
        assert res.returncode == 2 and "--palette-median filters before the palette snap" in res.stderr, res.stderr
    res = cli("translate", run, data / "testA", "--out", tmp_path / "o4", "--palette", data / "trainB",
              "--palette-median", 4)
    assert res.returncode == 2 and "odd size of at least 3" in res.stderr
