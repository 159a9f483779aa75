"""Translation on ONNX Runtime (`--backend onnx`, `onnx-int8`): the float32 session reproduces the
generator, the int8 one stays within a few grey levels on real images (calibrated on them), and both
work through `translate` on folders of any sizes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import cli_environ, optional_module, tiny_config, tiny_dataset

optional_module("onnxruntime")

from cyclegan.inference import load_generator, translate_tensor  # noqa: E402
from cyclegan.runtime import ort_generator  # noqa: E402
from cyclegan.training.loop import train  # noqa: E402


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("rt")
    data = tiny_dataset(root / "data", n_train=6, n_test=4, size=48)
    train(data, root / "run", tiny_config("model.ngf=8", "data.load_size=52", "data.crop_size=48"), progress=False)
    return root / "run", data


def images(folder):
    return [np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.iterdir())]


def test_float32_session_reproduces_the_generator(run):
    run_dir, data = run
    g = load_generator(run_dir)
    ort = ort_generator(g)
    for a in images(data / "testA"):
        x = torch.from_numpy(a).permute(2, 0, 1).float().div(127.5).sub(1)[None, :, 5:, 3:]  # odd sizes
        torch.testing.assert_close(translate_tensor(ort, x), translate_tensor(g, x), rtol=0, atol=1e-4)


def test_int8_stays_within_a_few_grey_levels(run):
    run_dir, data = run
    g = load_generator(run_dir)
    test = images(data / "testA")
    ort = ort_generator(g, int8=True, calibration=images(data / "trainA"))
    for a in test:
        x = torch.from_numpy(a).permute(2, 0, 1).float().div(127.5).sub(1)[None]
        diff = (translate_tensor(ort, x) - translate_tensor(g, x)).abs() * 127.5  # in grey levels
        # A trained full-width model (facades, 128 px) moves by 2.9 grey levels on average, 34 at most
        # (README, Speed); this tiny one, less smooth, by a little more.
        assert diff.mean().item() < 5 and diff.max().item() < 50
    with pytest.raises(ValueError, match="needs calibration images"):
        ort_generator(g, int8=True)


@pytest.mark.parametrize("backend", ["onnx", "onnx-int8"])
def test_translate_cli_backends(run, tmp_path, backend):
    run_dir, data = run
    res = subprocess.run([sys.executable, "-m", "cyclegan", "translate", str(run_dir), str(data / "testA"), "--out",
                          str(tmp_path / "out"), "--backend", backend, "--calibration", "2", "--no-progress"],
                         capture_output=True, text=True, env=cli_environ())
    assert res.returncode == 0, res.stderr[-2000:]
    torch_out = tmp_path / "torch"
    subprocess.run([sys.executable, "-m", "cyclegan", "translate", str(run_dir), str(data / "testA"), "--out",
                    str(torch_out), "--no-progress"], capture_output=True, text=True, env=cli_environ(), check=True)
    for a, b in zip(images(tmp_path / "out"), images(torch_out)):
        diff = np.abs(a.astype(int) - b)
        assert diff.max() <= (1 if backend == "onnx" else 50) and diff.mean() < (0.01 if backend == "onnx" else 5)
    res = subprocess.run([sys.executable, "-m", "cyclegan", "translate", str(run_dir), str(data / "testA"), "--out",
                          str(tmp_path / "x"), "--backend", backend, "--tile", "64"], capture_output=True, text=True,
                         env=cli_environ())
    assert res.returncode == 2 and "drop --compile, --tile" in res.stderr


def test_compiled_translation_matches_eager(run, tmp_path):
    """--compile gives the eager outputs, whole and in tiles (whose shared instance-norm statistics are
    patched into the norms' forward: the compiled graph must see them)."""
    run_dir, data = run
    big = tmp_path / "big"
    big.mkdir()
    Image.fromarray(images(data / "testA")[0]).resize((150, 110)).save(big / "big.png")
    for inputs, extra in ((data / "testA", []), (big, ["--tile", "64", "--tile-overlap", "16"])):
        outs = []
        for flags in (["--compile"], []):
            out = tmp_path / f"out{len(extra)}{len(flags)}"
            res = subprocess.run([sys.executable, "-m", "cyclegan", "translate", str(run_dir), str(inputs),
                                  "--out", str(out), "--no-progress", *flags, *extra], capture_output=True, text=True,
                                 env=cli_environ())
            assert res.returncode == 0, res.stderr[-2000:]
            outs.append(images(out))
        for a, b in zip(*outs):
            assert np.abs(a.astype(int) - b).max() <= 1
