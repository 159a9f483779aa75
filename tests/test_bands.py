"""16-bit and multi-band images end to end: reading, transforms, writing, datasets, metrics, CLI."""

from __future__ import annotations

import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.cli import main
from cyclegan.config import ConfigError, DataConfig, build_config, validate
from cyclegan.data import UnalignedDataset
from cyclegan.data.bands import output_suffix, probe, read_bands
from cyclegan.data.image_io import (
    DataError, array_to_tensor, load_image, load_pixels, save_image, tensor_to_samples, tensor_to_uint8, to_tensor,
)
from cyclegan.data.transforms import Preprocess, apply_pil, eval_params
from cyclegan.lazy import MissingDependencyError
from cyclegan.metrics.paired import PSNR_MAX, paired_metrics

from helpers import cli_environ, optional_module

tifffile = optional_module("tifffile")

IDENTITY = DataConfig(preprocess="none", flip=False)  # no resize (sides are multiples of 4), crop or flip


def bands(h: int = 20, w: int = 24, c: int = 4, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 65536, (h, w, c), dtype=np.uint16)


def write_tiff(path: Path, a: np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(path, a, photometric="minisblack", **kwargs)
    return path


def test_sixteen_bit_png_round_trips_and_keeps_every_code(tmp_path):
    g = np.arange(20 * 24, dtype=np.uint16).reshape(20, 24) * 137  # many codes, neighbours 137 apart
    g[0, :2] = (40000, 40001)  # one code apart: 1/65535
    Image.fromarray(g).save(tmp_path / "g.png")
    assert probe(tmp_path / "g.png").dtype == "uint16"
    a = load_pixels(tmp_path / "g.png", 1)
    assert a.dtype == np.uint16 and a.shape == (20, 24, 1) and np.array_equal(a[..., 0], g)
    x = Preprocess(IDENTITY, grayscale=True).eval(a)  # (1, H, W) in [-1, 1]
    assert x.shape == (1, 20, 24) and x[0, 0, 0] < x[0, 0, 1]  # 16-bit precision survives the tensor
    out = save_image(tensor_to_samples(x, "uint16"), tmp_path / "out.png")
    with Image.open(out) as im:
        assert im.mode.startswith("I;16")
        back = np.asarray(im)
    assert np.abs(back.astype(int) - g).max() <= 1 and np.array_equal(back, g)


@pytest.mark.parametrize("layout", ["contig", "planar", "pages"])
def test_four_band_tiff_layouts_read_and_round_trip(tmp_path, layout):
    b = bands()
    if layout == "contig":
        write_tiff(tmp_path / "b.tif", b, planarconfig="contig")
    elif layout == "planar":
        write_tiff(tmp_path / "b.tif", np.moveaxis(b, -1, 0), planarconfig="separate")
    else:  # one band per page
        write_tiff(tmp_path / "b.tif", np.moveaxis(b, -1, 0))
    assert probe(tmp_path / "b.tif").channels == 4
    a = load_pixels(tmp_path / "b.tif", 4)
    assert a.dtype == np.uint16 and np.array_equal(a, b)
    x = Preprocess(IDENTITY).eval(a)
    assert x.shape == (4, 20, 24) and x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1
    out = save_image(tensor_to_samples(x, "uint16"), tmp_path / "out" / "b.tif")
    back = tifffile.imread(out)
    assert back.dtype == np.uint16 and back.shape == (20, 24, 4)
    assert np.abs(back.astype(int) - b).max() <= 1 and np.array_equal(read_bands(out), b)


def test_resize_and_crop_keep_sixteen_bit_precision(tmp_path):
    # A ramp inside one 8-bit step (257 codes): 8-bit processing would leave at most two values.
    ramp = (30000 + np.linspace(0, 250, 40)[None, :, None] * np.ones((40, 1, 4))).astype(np.uint16)
    x = Preprocess(DataConfig(load_size=36, crop_size=32))(ramp, random.Random(0))
    assert x.shape == (4, 32, 32)
    codes = np.unique(tensor_to_samples(x, "uint16"))
    assert len(codes) > 20 and 29990 <= codes.min() and codes.max() <= 30260


def test_float_tiffs_in_unit_range_are_read_others_refused(tmp_path):
    f = np.random.default_rng(1).random((16, 16, 2), dtype=np.float32)
    write_tiff(tmp_path / "f.tif", f, planarconfig="contig")
    assert np.array_equal(load_pixels(tmp_path / "f.tif", 2), f)
    write_tiff(tmp_path / "big.tif", f * 300, planarconfig="contig")
    with pytest.raises(DataError, match=r"outside \[0, 1\]"):
        load_pixels(tmp_path / "big.tif", 2)


def test_output_format_rules():
    assert output_suffix(np.zeros((4, 4, 3), np.uint8), ".jpg") == ".jpg"
    assert output_suffix(np.zeros((4, 4), np.uint16), ".png") == ".png"
    assert output_suffix(np.zeros((4, 4, 3), np.uint16), ".png") == ".tif"
    assert output_suffix(np.zeros((4, 4, 4), np.uint8), ".png") == ".tif"
    assert output_suffix(np.zeros((4, 4), np.uint16), ".jpg") == ".tif"


def test_channel_mismatch_fails_before_training_naming_file_bands_and_setting(tmp_path):
    for d in ("A", "B"):
        write_tiff(tmp_path / d / "0.tif", bands(), planarconfig="contig")
    with pytest.raises(DataError, match=r"0\.tif has 4 bands \(uint16\), but model\.channels_a is 3: set "
                                        r"model\.channels_a to 4"):
        UnalignedDataset(tmp_path / "A", tmp_path / "B", DataConfig(load_size=20, crop_size=16))
    ds = UnalignedDataset(tmp_path / "A", tmp_path / "B", DataConfig(load_size=20, crop_size=16),
                          channels_a=4, channels_b=4)
    item = ds[0]
    assert item["a"].shape == (4, 16, 16) and item["b"].shape == (4, 16, 16)


def test_eight_bit_default_path_is_unchanged(tmp_path):
    rgb = np.random.default_rng(2).integers(0, 256, (30, 40, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    Image.fromarray(rgb).save(tmp_path / "a.tif")
    Image.fromarray(np.dstack([rgb, rgb[..., :1]])).save(tmp_path / "rgba.png")
    cfg = DataConfig(load_size=36, crop_size=32)
    for name in ("a.png", "a.tif", "rgba.png"):
        img = load_pixels(tmp_path / name, 3)
        assert isinstance(img, Image.Image) and img.mode == "RGB"  # load_image's PIL path, not the band path
        ref = load_image(tmp_path / name, 3)
        params = eval_params(cfg, ref.size)
        assert torch.equal(Preprocess(cfg).eval(img), to_tensor(apply_pil(ref, cfg, params)))
    # 8-bit outputs keep the official truncation (tensor2im) and PNG.
    x = array_to_tensor(rgb)
    assert np.array_equal(tensor_to_samples(x, "uint8"), tensor_to_uint8(x))
    assert not np.array_equal(tensor_to_uint8(x), rgb)  # truncation, unlike the 16-bit rounding
    assert output_suffix(tensor_to_samples(x, "uint8"), ".png") == ".png"


def test_missing_tifffile_gives_one_message_naming_the_extra(tmp_path, monkeypatch, capsys):
    write_tiff(tmp_path / "b.tif", bands(), planarconfig="contig")
    for d in ("trainA", "trainB"):
        write_tiff(tmp_path / "data" / d / "0.tif", bands(), planarconfig="contig")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "rgb.tif")
    monkeypatch.setitem(sys.modules, "tifffile", None)  # import tifffile now fails
    with pytest.raises(MissingDependencyError, match=r'pip install "cyclegan\[tiff\]"'):
        load_pixels(tmp_path / "b.tif", 4)
    assert load_pixels(tmp_path / "rgb.tif", 3).size == (8, 8)  # 8-bit TIFF: PIL, as before
    (tmp_path / "bad.tif").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r'cannot read .*bad\.tif.*pip install "cyclegan\[tiff\]"'):
        load_pixels(tmp_path / "bad.tif", 3)  # a DataError: the dataset skips it, as any unreadable file
    assert main(["train", str(tmp_path / "data"), "--run-dir", str(tmp_path / "run"), "--set", "model.channels_a=4",
                 "--set", "model.channels_b=4", "--max-steps", "1", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("cyclegan: error:") and 'pip install "cyclegan[tiff]"' in err and err.count("\n") == 0


def test_config_accepts_band_counts_and_refuses_what_cannot_work():
    validate(build_config(overrides=["model.channels_a=4", "model.channels_b=4"]))
    with pytest.raises(ConfigError, match="up to 16"):
        validate(build_config(overrides=["model.channels_a=17"]))
    with pytest.raises(ConfigError, match="eval.every_epochs=0"):
        validate(build_config(overrides=["model.channels_a=4", "eval.every_epochs=1"]))


def test_paired_metrics_on_sixteen_bit_bands_and_fid_refuses_them(tmp_path):
    b = bands(c=4)
    write_tiff(tmp_path / "real" / "0.tif", b, planarconfig="contig")
    write_tiff(tmp_path / "same" / "0.tif", b, planarconfig="contig")
    write_tiff(tmp_path / "off" / "0.tif", (b.astype(int) - 257).clip(0, None).astype(np.uint16),
               planarconfig="contig")
    same = paired_metrics(tmp_path / "same", tmp_path / "real")
    assert same.means["l1"] == 0 and same.means["psnr"] == PSNR_MAX and "rmse" not in same.means
    off = paired_metrics(tmp_path / "off", tmp_path / "real")
    assert 0.9 < off.means["l1"] <= 1.0  # 257 codes = one 8-bit grey level (less where clipped at 0)
    from cyclegan.metrics.fid import _read_rgb

    with pytest.raises(ValueError, match="FID and KID compare 8-bit"):
        _read_rgb(tmp_path / "real" / "0.tif")


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cyclegan", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=cli_environ())


def test_train_and_translate_four_band_sixteen_bit_tiffs_via_cli(tmp_path, capsys):
    for d in ("trainA", "trainB"):
        for i in range(2):
            write_tiff(tmp_path / "data" / d / f"{i}.tif", bands(36, 40, seed=i), planarconfig="contig")
    tiny = ["model.generator=resnet_6blocks", "model.ngf=4", "model.ndf=4", "data.load_size=36",
            "data.crop_size=32", "data.num_workers=0", "train.sample_every=1", "train.checkpoint_every=1000"]
    sets = [a for o in tiny for a in ("--set", o)]
    run = tmp_path / "run"
    # In-process (the command line's own error handling, without a second interpreter start).
    assert main(["train", str(tmp_path / "data"), "--run-dir", str(run), *sets, "--max-steps", "1",
                 "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("cyclegan: error:") and "has 4 bands (uint16), but model.channels_a is 3" in err
    assert err.count("\n") == 0 and not (run / "checkpoints").exists(), err  # one line, before any step
    res = cli("train", tmp_path / "data", "--run-dir", run, *sets, "--set", "model.channels_a=4", "--set",
              "model.channels_b=4", "--max-steps", 1, "--no-progress")
    assert res.returncode == 0, res.stderr
    res = cli("translate", run, tmp_path / "data" / "trainA" / "0.tif", "--out", tmp_path / "out", "--no-progress")
    assert res.returncode == 0, res.stderr
    out = tifffile.imread(tmp_path / "out" / "0.tif")
    assert out.dtype == np.uint16 and out.shape == (36, 40, 4)


def test_serve_refuses_multi_band_models_with_a_clear_message(monkeypatch):
    from cyclegan.nn import with_channels
    from cyclegan.serve.sources import Loaded, ModelCache, Source

    cache = ModelCache()
    net = with_channels(torch.nn.Conv2d(4, 4, 1), 4, 4)
    monkeypatch.setattr(cache, "get", lambda source: Loaded({"AtoB": net}, {}))
    with pytest.raises(ValueError, match="translates 4-band images; the web app takes grey or RGB"):
        cache.channels(Source("r", "run r", "run", "r"), "AtoB")


def test_paired_datasets_of_four_band_tiffs_share_crops(tmp_path):
    from cyclegan.data import AlignedDataset

    b = bands(24, 24)
    write_tiff(tmp_path / "trainA" / "0.tif", b, planarconfig="contig")
    write_tiff(tmp_path / "trainB" / "0.tif", b, planarconfig="contig")
    ds = AlignedDataset.from_root(tmp_path, DataConfig(load_size=24, crop_size=16), channels_a=4, channels_b=4)
    item = ds[0]
    assert item["a"].shape == (4, 16, 16) and torch.equal(item["a"], item["b"])  # same crop and flip
    with pytest.raises(DataError, match="model.channels_b is 3"):
        AlignedDataset.from_root(tmp_path, DataConfig(load_size=24, crop_size=16), channels_a=4)


@pytest.mark.parametrize("tile", [None, 16])
def test_translate_keeps_bit_depth_and_bands_through_an_identity_generator(tmp_path, tile):
    from cyclegan.inference import translate_paths
    from cyclegan.nn import with_channels

    def identity(c: int) -> torch.nn.Module:
        conv = torch.nn.Conv2d(c, c, 1)
        with torch.no_grad():
            conv.weight.copy_(torch.eye(c)[:, :, None, None])
            conv.bias.zero_()
        return with_channels(conv, c, c)

    g = (np.arange(40 * 36, dtype=np.uint16).reshape(36, 40) * 45)
    Image.fromarray(g).save(tmp_path / "g.png")
    report = translate_paths(identity(1), [tmp_path / "g.png"], tmp_path / "out1", tile=tile, progress=False)
    assert [p.name for p in report.written] == ["g.png"]
    with Image.open(report.written[0]) as im:
        assert im.mode.startswith("I;16") and np.array_equal(np.asarray(im), g)
    b = bands(36, 40)
    write_tiff(tmp_path / "b.tif", b, planarconfig="contig")
    report = translate_paths(identity(4), [tmp_path / "b.tif"], tmp_path / "out4", image_format="jpg", tile=tile,
                             progress=False)
    assert [p.name for p in report.written] == ["b.tif"]  # jpg cannot hold 4 bands of 16 bits
    assert np.array_equal(tifffile.imread(report.written[0]), b)


def test_evaluating_a_multi_band_model_points_to_evaluate_paired(tmp_path):
    from cyclegan.data.splits import Split
    from cyclegan.evaluation import evaluate_split

    for d in ("A", "B"):
        write_tiff(tmp_path / d / "0.tif", bands(), planarconfig="contig")
    net = torch.nn.Conv2d(4, 4, 1)
    with pytest.raises(ValueError, match="evaluate paired FAKE_DIR REAL_DIR"):
        evaluate_split(net, net, Split.of_folders("test", tmp_path / "A", tmp_path / "B"), channels_a=4,
                       channels_b=4)
