"""Inference: loading generators (checkpoints and official files), any-size translation, folders."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.config import Config
from cyclegan.methods.cyclegan import CycleGAN
from cyclegan.inference import (
    generator_channels,
    load_generator,
    official_generator,
    translate_paths,
    translate_tensor,
)
from cyclegan.nn import to_official
from cyclegan.atomic import atomic_save
from cyclegan.checkpoint import FORMAT, VERSION, CheckpointError

FIXTURES = Path(__file__).resolve().parents[2] / "shared" / "fixtures"


def fixture(name: str) -> Path:
    """A golden fixture file; missing fixtures fail in CI (CI=true) and skip elsewhere."""
    path = FIXTURES / name
    if not path.exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"golden fixture {path} is missing")
        pytest.skip(f"golden fixture {path} is not available")
    return path


def make_checkpoint(tmp_path: Path, **model) -> Path:
    """A tiny random-weight checkpoint (ngf 4) in the layout of `cyclegan.checkpoint`."""
    torch.manual_seed(0)
    cfg = Config.from_dict({"model": {"ngf": 4, "ndf": 4, **model}})
    net = CycleGAN.from_config(cfg)
    ckpt = {
        "format": FORMAT,
        "version": VERSION,
        "config": cfg.to_dict(),
        "nets": {k: getattr(net, k).state_dict() for k in ("g_ab", "g_ba", "d_a", "d_b")},
    }
    return atomic_save(ckpt, tmp_path / "run" / "checkpoints" / "latest.pt")


def noise_image(path: Path, w: int, h: int, mode: str = "RGB", seed: int = 0) -> Path:
    rs = np.random.RandomState(seed)
    shape = (h, w, 3) if mode == "RGB" else (h, w)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rs.randint(0, 256, shape, dtype=np.uint8)).save(path)
    return path


def read(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def test_official_fixture_output_matches_official_test(tmp_path):
    """Bit for bit, as README claims. Measured (AMD EPYC, torch 2.13.0, 1 or 2 threads, PyTorch's
    default oneDNN kernels): 0 of 18,432 values differ. The official `tensor2im` truncates, and 29 values
    lie within 1e-3 of a level, so kernel rounding can move a value by one: PyTorch's native kernels
    (3.4e-6 away from oneDNN's output) change 1 value by one level."""
    gen = load_generator(fixture("official_G_resnet9_ngf8.pth"))
    written, failed = translate_paths(gen, [fixture("translate_input.png")], tmp_path, progress=False)
    assert failed == [] and written == [tmp_path / "translate_input.png"]
    ours = read(written[0]).astype(int)
    expected = read(fixture("translate_expected.png")).astype(int)
    assert ours.shape == expected.shape == (64, 96, 3)
    assert np.array_equal(ours, expected), f"{int((ours != expected).sum())} values differ, by up to {np.abs(ours - expected).max()}"


def test_official_generators_are_recognised():
    nets = torch.load(fixture("official_nets.pt"), weights_only=True)
    for name, entry in nets.items():
        if not name.startswith("G_"):
            continue
        gen = official_generator(entry["state_dict"]).eval()
        with torch.no_grad():
            y = gen(entry["x"])
        torch.testing.assert_close(y, entry["y"], atol=1e-5 * entry["y"].abs().max().item(), rtol=0, msg=name)
        channels = 1 if name.endswith("_gray") else 3
        assert generator_channels(gen) == (channels, channels)


def test_official_file_round_trip_and_module_prefix(tmp_path):
    path = make_checkpoint(tmp_path, generator="resnet_6blocks", norm="batch", dropout=True)
    ours = load_generator(path)
    official = {f"module.{k}": v for k, v in to_official(ours).items()}
    torch.save(official, tmp_path / "latest_net_G_A.pth")
    gen = load_generator(tmp_path / "latest_net_G_A.pth")
    assert gen.n_blocks == 6 and not gen.training
    assert isinstance(gen.blocks[0].body[4], torch.nn.Dropout)
    assert isinstance(gen.encoder[2], torch.nn.BatchNorm2d)
    x = torch.rand(1, 3, 16, 16) * 2 - 1
    torch.testing.assert_close(translate_tensor(gen, x), translate_tensor(ours, x), atol=0, rtol=0)


@pytest.mark.parametrize("size", [(37, 53), (8, 8), (20, 130), (3, 5), (1, 1)])
def test_any_size_keeps_the_input_size(tmp_path, size):
    gen = load_generator(make_checkpoint(tmp_path, generator="resnet_6blocks"))
    y = translate_tensor(gen, torch.rand(1, 3, *size) * 2 - 1)
    assert y.shape == (1, 3, *size)
    assert torch.isfinite(y).all() and y.abs().max() <= 1


def test_no_padding_when_the_size_fits(tmp_path):
    gen = load_generator(make_checkpoint(tmp_path, generator="resnet_6blocks"))
    x = torch.rand(1, 3, 12, 16) * 2 - 1
    with torch.no_grad():
        direct = gen(x)
    torch.testing.assert_close(translate_tensor(gen, x), direct, atol=0, rtol=0)
    assert translate_tensor(gen, x[0]).shape == (3, 12, 16)  # (C, H, W) in, (C, H, W) out


def test_unet_needs_multiples_of_128_and_works_on_50x70(tmp_path):
    gen = load_generator(make_checkpoint(tmp_path, generator="unet_128"))
    assert gen.size_multiple == 128
    assert translate_tensor(gen, torch.rand(1, 3, 50, 70) * 2 - 1).shape == (1, 3, 50, 70)


def test_run_dir_direction_and_grayscale(tmp_path):
    path = make_checkpoint(tmp_path, channels_a=1, channels_b=3)
    run_dir = path.parents[1]
    g_ab, g_ba = load_generator(run_dir, "AtoB"), load_generator(run_dir, direction="BtoA")
    assert generator_channels(g_ab) == (1, 3) and generator_channels(g_ba) == (3, 1)
    noise_image(tmp_path / "in" / "rgb.jpg", 24, 20)  # an RGB file fed to a grayscale-input model
    (written,), failed = translate_paths(g_ba, [tmp_path / "in" / "rgb.jpg"], tmp_path / "out", progress=False)
    assert failed == [] and written.name == "rgb.png"
    assert read(written).shape == (20, 24)  # one channel out
    (written,), _ = translate_paths(g_ab, [tmp_path / "in" / "rgb.jpg"], tmp_path / "out2", progress=False)
    assert read(written).shape == (20, 24, 3)


def test_folder_recursion_keeps_names_and_corrupt_files_are_reported(tmp_path, caplog):
    gen = load_generator(make_checkpoint(tmp_path, generator="resnet_6blocks"))
    src = tmp_path / "photos"
    noise_image(src / "a.jpg", 30, 20)
    noise_image(src / "sub" / "deeper" / "b.png", 17, 9, mode="L", seed=1)
    (src / "sub" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    single = noise_image(tmp_path / "single.bmp", 12, 40, seed=2)
    out = tmp_path / "out"
    with caplog.at_level(logging.WARNING, logger="cyclegan.inference"):
        written, failed = translate_paths(gen, [src, single], out, progress=False)
    assert written == [out / "a.png", out / "sub" / "deeper" / "b.png", out / "single.png"]
    assert [p for p, _ in failed] == [src / "sub" / "broken.png"]
    assert "broken.png" in caplog.text
    assert read(out / "a.png").shape == (20, 30, 3)
    assert read(out / "sub" / "deeper" / "b.png").shape == (9, 17, 3)
    assert read(out / "single.png").shape == (40, 12, 3)
    assert not (out / "sub" / "broken.png").exists()


def test_refuses_to_overwrite_inputs_or_merge_outputs(tmp_path):
    gen = load_generator(make_checkpoint(tmp_path, generator="resnet_6blocks"))
    noise_image(tmp_path / "in" / "a.png", 8, 8)
    with pytest.raises(ValueError, match="overwrite the input"):
        translate_paths(gen, [tmp_path / "in"], tmp_path / "in", progress=False)
    noise_image(tmp_path / "in" / "a.jpg", 8, 8)
    with pytest.raises(ValueError, match="both be written"):
        translate_paths(gen, [tmp_path / "in"], tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="does not exist"):
        translate_paths(gen, [tmp_path / "missing.png"], tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_clear_errors(tmp_path):
    ckpt = make_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="direction"):
        load_generator(ckpt, direction="a2b")
    with pytest.raises(CheckpointError, match="does not exist"):
        load_generator(tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_generator(tmp_path / "junk.pth")
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(CheckpointError, match="neither"):
        load_generator(tmp_path / "list.pth")
    d_state = {"model.0.weight": torch.zeros(8, 3, 4, 4), "model.0.bias": torch.zeros(8)}  # a discriminator
    torch.save(d_state, tmp_path / "latest_net_D_A.pth")
    with pytest.raises(ValueError, match="not an official generator"):
        load_generator(tmp_path / "latest_net_D_A.pth")
    with pytest.raises(CheckpointError, match="run dir"):
        load_generator(tmp_path)  # a folder without checkpoints/latest.pt
