"""Odd files and hostile files, generated here, fed to the real commands: FIFOs and looping links named
like images (never block or crash), pickle payloads (refused, and nothing suggests loading them
unsafely), empty files, a diverged model given to export, references without outputs, file names that
are not UTF-8, and an image too large for memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.data.image_io import DataError, find_images, load_image
from cyclegan.inference import translate_paths
from cyclegan.nn import ResnetGenerator, to_official
from cyclegan.training.loop import train

from helpers import cli_environ, tiny_config, tiny_dataset


def cyclegan(*args, timeout=120):
    return subprocess.run([sys.executable, "-m", "cyclegan", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=cli_environ())


def write_png(path: Path, size=(32, 32), value=128) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), value, np.uint8)).save(path)
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    data = tiny_dataset(root / "data", n_train=4, n_test=2)
    train(data, root / "run", tiny_config(), max_steps=2, progress=False)
    return root / "run"


@pytest.fixture
def odd_folder(tmp_path):
    """Two good images, a FIFO and a looping link named like images."""
    folder = tmp_path / "odd"
    write_png(folder / "a.png")
    write_png(folder / "b.png")
    os.mkfifo(folder / "fifo.jpg")
    os.symlink(folder / "loop2.png", folder / "loop1.png")
    os.symlink(folder / "loop1.png", folder / "loop2.png")
    return folder


def test_only_regular_files_are_images(odd_folder, caplog):
    assert [p.name for p in find_images(odd_folder)] == ["a.png", "b.png"]
    assert "fifo.jpg: not a regular file" in caplog.text and "loop1.png: not a regular file" in caplog.text
    for name in ("fifo.jpg", "loop1.png"):
        with pytest.raises(DataError, match="is not a regular file"):
            load_image(odd_folder / name)


def test_translate_skips_fifos_and_loops_in_folders_and_refuses_them_by_name(run, odd_folder, tmp_path):
    res = cyclegan("translate", run, odd_folder, "--out", tmp_path / "out", "--no-progress")
    assert res.returncode == 0 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    for name in ("fifo.jpg", "loop1.png"):
        res = cyclegan("translate", run, odd_folder / name, "--out", tmp_path / "o2")
        assert res.returncode == 1 and "is not a regular file" in res.stderr and "Traceback" not in res.stderr


def test_training_and_evaluation_do_not_block_on_a_fifo(tmp_path):
    data = tiny_dataset(tmp_path / "data", n_train=4, n_test=2)
    os.mkfifo(data / "trainA" / "zz_fifo.jpg")
    os.mkfifo(data / "testB" / "zz_fifo.png")
    res = cyclegan("train", data, "--run-dir", tmp_path / "run", "--max-steps", "1", "--no-progress",
                   *[a for o in ("model.ngf=4", "model.ndf=4", "data.load_size=36", "data.crop_size=32",
                                 "data.num_workers=0") for a in ("--set", o)])
    assert res.returncode == 0, res.stderr[-2000:]
    res = cyclegan("evaluate", "paired", data / "testA", data / "testB", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["images"] == 2


@pytest.fixture
def payload(tmp_path):
    """A .pt whose unpickling would create `pwned` (a classic os.system payload)."""
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pth"
    torch.save({"model.1.weight": Evil()}, path)
    return path, marker


@pytest.mark.parametrize("command", [
    ("translate", "{f}", "{img}", "--out", "{tmp}/o"),
    ("evaluate", "run", "{f}"),
    ("export", "{f}", "--out", "{tmp}/e", "--format", "torchscript"),
    ("evaluate", "fcn-score", "{img_dir}", "{img_dir}", "--scorer", "{f}"),
])
def test_a_pickle_payload_is_refused_by_every_loader_without_unsafe_advice(payload, command, tmp_path):
    path, marker = payload
    img = write_png(tmp_path / "imgs" / "1.png")
    args = [a.format(f=path, img=img, tmp=tmp_path, img_dir=img.parent) for a in command]
    res = cyclegan(*args)
    assert res.returncode == 1 and "Traceback" not in res.stderr
    assert "holds Python objects or code" in res.stderr and "refused" in res.stderr
    assert "weights_only=False" not in res.stderr and "weights_only" not in res.stderr.replace("weights_only=True", "")
    assert not marker.exists()


def test_a_run_dir_with_a_pickle_payload_checkpoint_is_refused(run, payload, tmp_path):
    path, marker = payload
    copy = tmp_path / "run"
    (copy / "checkpoints").mkdir(parents=True)
    (copy / "checkpoints" / "latest.pt").write_bytes(path.read_bytes())
    res = cyclegan("train", "--resume", copy)
    assert res.returncode == 1 and "holds Python objects or code" in res.stderr and not marker.exists()


def test_empty_weights_files_are_named_as_empty(tmp_path):
    (tmp_path / "g.pth").write_bytes(b"")
    write_png(tmp_path / "in.png")
    res = cyclegan("translate", tmp_path / "g.pth", tmp_path / "in.png", "--out", tmp_path / "o")
    assert res.returncode == 1 and "is empty (0 bytes)" in res.stderr


def test_exporting_a_diverged_generator_names_the_weights_not_the_exporter(tmp_path):
    net = ResnetGenerator(3, 3, ngf=4, n_blocks=6)
    state = to_official(net)
    state["model.1.weight"][0, 0, 0, 0] = float("nan")
    torch.save(state, tmp_path / "g.pth")
    res = cyclegan("export", tmp_path / "g.pth", "--out", tmp_path / "e", "--format", "torchscript")
    assert res.returncode == 1 and "hold NaN or infinite values" in res.stderr and "diverged" in res.stderr
    assert not list((tmp_path / "e").glob("*")) if (tmp_path / "e").exists() else True


def test_evaluate_paired_warns_about_references_without_outputs(tmp_path):
    for name in ("1", "2", "3"):
        write_png(tmp_path / "real" / f"{name}.png")
    write_png(tmp_path / "fake" / "1.png", value=130)
    res = cyclegan("evaluate", "paired", tmp_path / "fake", tmp_path / "real", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["missing"] == ["2", "3"]
    res = cyclegan("evaluate", "paired", tmp_path / "fake", tmp_path / "real")
    assert "2 references have no output of the same name and are not scored (e.g. 2)" in res.stderr


def test_file_names_that_are_not_utf8_work_in_pages_and_csv(run, tmp_path):
    raw = os.fsencode(tmp_path / "imgs") + b"/caf\xe9.png"
    os.makedirs(os.fsencode(tmp_path / "imgs"), exist_ok=True)
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(raw.decode("utf-8", "surrogateescape"))
    res = cyclegan("translate", run, tmp_path / "imgs", "--out", tmp_path / "out", "--page", "--no-progress")
    assert res.returncode == 0, res.stderr[-2000:]
    page = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    assert "caf\ufffd" in page and "caf%E9.png" in page
    res = cyclegan("evaluate", "paired", tmp_path / "out", tmp_path / "imgs", "--per-image", tmp_path / "s.csv")
    assert res.returncode == 0, res.stderr[-2000:]
    assert b"caf\xe9" in (tmp_path / "s.csv").read_bytes()  # the name's own bytes


def test_an_image_too_large_for_memory_names_its_size_and_suggests_tiles(tmp_path):
    src = write_png(tmp_path / "big.png", size=(48, 40))

    class OutOfMemory(torch.nn.Module):
        size_multiple = 4

        def forward(self, x):
            raise RuntimeError("[enforce fail at alloc_cpu.cpp:117] DefaultCPUAllocator: can't allocate memory: "
                               "you tried to allocate 123456789012 bytes")

    net = OutOfMemory()
    net.in_channels = net.out_channels = 3
    with pytest.raises(DataError, match=r"big.png, 48x40 pixels, needs more memory than is available; translate "
                                        r"in tiles \(--tile 1024, or smaller\)"):
        translate_paths(net, [src], tmp_path / "out", progress=False)


def test_a_permission_error_is_not_called_corruption(tmp_path, monkeypatch):
    src = write_png(tmp_path / "x.png")

    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(src))

    monkeypatch.setattr(Image, "open", denied)
    with pytest.raises(DataError, match="permission denied") as e:
        load_image(src)
    assert "corrupt" not in str(e.value)
