"""Average neural style transfer (cyclegan.style_transfer): Gram maths by hand, collection statistics,
the optimisation lowering the style loss, outputs at the content images' sizes, and the CLI with its
errors, on tiny images with seeded random VGG-16 weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.cli import main
from cyclegan.style_transfer import (
    CONTENT_LAYER,
    STYLE_LAYERS,
    GramMean,
    StyleStats,
    gram_matrix,
    load_resized,
    style_loss,
    style_statistics,
    stylize,
    transfer_style,
)
from cyclegan.weights import load_feature_extractor

from helpers import random_vgg_weights


def write_png(path: Path, w: int, h: int, seed: int, smooth: bool = False) -> Path:
    rng = np.random.RandomState(seed)
    if smooth:  # a gradient: little texture, unlike the noise "style"
        yy, xx = np.mgrid[0:h, 0:w]
        a = np.stack([255 * xx / max(w - 1, 1), 255 * yy / max(h - 1, 1), np.full((h, w), 128.0)], -1)
    else:
        a = rng.randint(0, 256, (h, w, 3))
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(a.astype(np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return random_vgg_weights(tmp_path_factory.mktemp("vgg") / "vgg16.pth")


@pytest.fixture(scope="module")
def extractor(weights):
    return load_feature_extractor("vgg16", (*STYLE_LAYERS, CONTENT_LAYER), weights=weights)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("images")
    for i, (w, h) in enumerate([(32, 32), (48, 24), (20, 40)]):
        write_png(root / "style" / f"s{i}.png", w, h, seed=i)
    write_png(root / "content" / "c0.png", 40, 24, seed=10, smooth=True)
    write_png(root / "content" / "sub" / "c1.png", 20, 30, seed=11, smooth=True)
    return root


def test_gram_matrix_and_collection_mean_by_hand():
    f = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 1, 2)  # C=2 channels (1,2) and (3,4), H*W=2
    expected = torch.tensor([[1 + 4, 3 + 8], [3 + 8, 9 + 16]]) / (2 * 1 * 2)
    torch.testing.assert_close(gram_matrix(f)[0], expected)
    g = torch.tensor([[1.0], [-1.0]]).reshape(1, 2, 1, 1)  # another size: H*W=1
    expected_g = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]) / 2
    mean = GramMean()
    mean.add(f)
    mean.add(g)
    torch.testing.assert_close(mean.mean(), (expected + expected_g) / 2)
    batched = GramMean()
    batched.add(torch.cat([f, f]))
    torch.testing.assert_close(batched.mean(), expected)
    with pytest.raises(ValueError, match="no feature maps"):
        GramMean().mean()


def test_style_statistics_are_the_mean_of_the_images_grams_and_round_trip(extractor, images, tmp_path):
    stats = style_statistics(images / "style", extractor, network="vgg16", size=32, progress=False)
    assert stats.count == 3 and set(stats.grams) == set(STYLE_LAYERS)
    paths = sorted((images / "style").glob("*.png"))
    with torch.no_grad():
        per_image = [extractor(load_resized(p, 32)) for p in paths]
    assert [tuple(f["relu1_1"].shape[2:]) for f in per_image] == [(32, 32), (16, 32), (32, 16)]
    for layer in STYLE_LAYERS:
        by_hand = torch.stack([gram_matrix(f[layer])[0] for f in per_image]).mean(0)
        torch.testing.assert_close(stats.grams[layer], by_hand, rtol=1e-5, atol=1e-7)
    assert stats.grams["relu5_1"].shape == (512, 512)
    loaded = StyleStats.load(stats.save(tmp_path / "stats.pt"))  # read with weights_only=True
    assert (loaded.network, loaded.size, loaded.count) == ("vgg16", 32, 3)
    assert all(torch.equal(loaded.grams[k], stats.grams[k]) for k in STYLE_LAYERS)
    torch.save({"g_ab": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt is not a style statistics file"):
        StyleStats.load(tmp_path / "other.pt")


@pytest.mark.parametrize("optimizer", ["lbfgs", "adam"])
def test_stylize_lowers_the_style_loss_of_the_content_image(extractor, images, optimizer):
    stats = style_statistics(images / "style", extractor, network="vgg16", size=32, progress=False)
    content = load_resized(images / "content" / "c0.png", 32)
    out = stylize(content, stats, extractor, steps=10, optimizer=optimizer)
    assert out.shape == content.shape and out.min() >= -1 and out.max() <= 1
    with torch.no_grad():
        before = style_loss(extractor(content), stats.grams).item()
        after = style_loss(extractor(out), stats.grams).item()
    assert after < 0.7 * before, (before, after)
    assert stylize(content, stats, extractor, steps=0).equal(content)  # initialised with the content image


def test_transfer_style_writes_each_content_image_at_its_size(extractor, images, tmp_path):
    stats = style_statistics(images / "style", extractor, network="vgg16", size=32, progress=False)
    written = transfer_style([images / "content"], stats, extractor, tmp_path / "out", size=32, steps=2, progress=False)
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in written) == ["c0.png", "sub/c1.png"]
    assert Image.open(tmp_path / "out" / "c0.png").size == (40, 24)
    assert Image.open(tmp_path / "out" / "sub" / "c1.png").size == (20, 30)
    # The output is not the content image: the style changed it.
    assert np.abs(np.asarray(Image.open(written[0]), float) -
                  np.asarray(Image.open(images / "content" / "c0.png"), float)).mean() > 1


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cyclegan", "style-transfer", *map(str, args)], capture_output=True,
                          text=True, timeout=300)


def test_cli_style_transfer_and_its_errors(weights, images, tmp_path, capsys):
    out = tmp_path / "out"
    res = cli("--style", images / "style", "--content", images / "content" / "c0.png", "--out", out,
              "--weights", weights, "--steps", 2, "--size", 32, "--no-progress", "--device", "cpu")
    assert res.returncode == 0, res.stderr[-3000:]
    assert Image.open(out / "c0.png").size == (40, 24) and (out / "style_stats.pt").is_file()
    assert "style statistics of 3 images saved" in res.stdout
    # Reusing the saved statistics: no style folder needed.
    res = cli("--style", out / "style_stats.pt", "--content", images / "content", "--out", tmp_path / "again",
              "--weights", weights, "--steps", 1, "--size", 32, "--no-progress", "--device", "cpu")
    assert res.returncode == 0, res.stderr[-3000:]
    assert Image.open(tmp_path / "again" / "sub" / "c1.png").size == (20, 30)

    (tmp_path / "empty").mkdir()
    errors = {
        "no images found in": ["--style", tmp_path / "empty", "--weights", weights],
        "missing.pth does not exist": ["--style", images / "style", "--weights", tmp_path / "missing.pth"],
        "not a style statistics file": ["--style", weights, "--weights", weights],
        "holds vgg16 statistics; run with --network vgg16": ["--style", out / "style_stats.pt", "--network", "vgg19"],
    }
    for message, args in errors.items():  # in-process: `main` is what the console script runs
        capsys.readouterr()
        status = main(["style-transfer", *map(str, args), "--content", str(images / "content"), "--out",
                       str(tmp_path / "bad"), "--steps", "1", "--no-progress"])
        err = capsys.readouterr().err
        assert status == 1 and message in err, (message, err[-2000:])
        assert len(err.strip().splitlines()) == 1 and err.startswith("cyclegan: error: ")
    assert not (tmp_path / "bad").exists()
