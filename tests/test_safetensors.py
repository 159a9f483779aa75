"""Generators as safetensors: `export --format safetensors` writes a run's generators (official key
layout, no pickle, checksummed), converts one `.pth`, and every loader (`translate`, `load_generator`,
`export`) reads them back to the same outputs; a damaged file is a one-line error."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from cyclegan.atomic import verify_digest
from cyclegan.deploy import export
from cyclegan.inference import load_generator, translate_tensor
from cyclegan.nn import build_generator, to_official
from cyclegan.training.loop import train

from helpers import cli_environ, tiny_config, tiny_dataset


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("st")
    data = tiny_dataset(root / "data", n_train=4, n_test=2)
    train(data, root / "run", tiny_config(), max_steps=2, progress=False)
    return root / "run"


def test_a_run_exports_to_safetensors_that_load_to_the_same_outputs(run, tmp_path):
    files = export(run, tmp_path / "w", format="safetensors")
    assert sorted(f.name for f in files) == ["latest_net_G_A.safetensors", "latest_net_G_B.safetensors"]
    x = torch.rand(1, 3, 40, 36) * 2 - 1
    for f, direction in zip(sorted(files), ("AtoB", "BtoA")):
        assert verify_digest(f) is True
        assert set(load_file(str(f))) == set(torch.load(run / "generators" / f.name.replace(".safetensors", ".pth"),
                                                        weights_only=True))
        torch.testing.assert_close(translate_tensor(load_generator(f), x), translate_tensor(load_generator(run, direction), x),
                                   rtol=0, atol=0)


def test_a_pth_converts_and_translates_through_the_cli(tmp_path):
    torch.manual_seed(0)
    net = build_generator("resnet_6blocks", ngf=4, downsample="antialias", upsample="antialias").eval()
    torch.save(to_official(net), tmp_path / "g.pth")
    res = subprocess.run([sys.executable, "-m", "cyclegan", "export", str(tmp_path / "g.pth"), "--format", "safetensors",
                          "--out", str(tmp_path / "g.safetensors")], capture_output=True, text=True, env=cli_environ())
    assert res.returncode == 0, res.stderr[-2000:]
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(translate_tensor(load_generator(tmp_path / "g.safetensors"), x), translate_tensor(net, x),
                               rtol=0, atol=0)
    (tmp_path / "g.safetensors.sha256").unlink()  # a file from elsewhere has no checksum: still read
    Image.new("RGB", (36, 28), (90, 30, 200)).save(tmp_path / "in.png")
    res = subprocess.run([sys.executable, "-m", "cyclegan", "translate", str(tmp_path / "g.safetensors"),
                          str(tmp_path / "in.png"), "--out", str(tmp_path / "o")], capture_output=True, text=True,
                         env=cli_environ())
    assert res.returncode == 0 and Image.open(tmp_path / "o" / "in.png").size == (36, 28), res.stderr[-2000:]
    (tmp_path / "broken.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{oops}")
    res = subprocess.run([sys.executable, "-m", "cyclegan", "translate", str(tmp_path / "broken.safetensors"),
                          str(tmp_path / "in.png"), "--out", str(tmp_path / "o2")], capture_output=True, text=True,
                         env=cli_environ())
    assert res.returncode == 1 and "cannot read" in res.stderr and "Traceback" not in res.stderr
