"""Builders shared by the web-app tests: a real tiny run, an official-layout .pth and study folders."""

from __future__ import annotations

import shutil
import struct
import zlib
from pathlib import Path

import torch

from cyclegan.inference import load_generator, translate_paths
from cyclegan.nn import build_generator, to_official
from cyclegan.training import loop

from helpers import tiny_config, tiny_dataset


def tiny_run(root: Path) -> tuple[Path, Path]:
    """(dataset, run dir) of a 3-step training run with ngf 4 on 32 px images (one sample grid)."""
    data = tiny_dataset(root / "data")
    run = root / "run"
    loop.train(data, run, tiny_config(), max_steps=3, device="cpu", progress=False)
    return data, run


def official_pth(path: Path) -> Path:
    """An official-layout generator state dict (resnet_6blocks, ngf 4, random weights)."""
    torch.manual_seed(0)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(to_official(build_generator("resnet_6blocks", ngf=4)), path)
    return path


def study_folders(root: Path, data: Path, run: Path) -> tuple[Path, dict[str, Path]]:
    """Real images (testB) and two methods: the run's translations of testA, and testA itself."""
    real = root / "real"
    shutil.copytree(data / "testB", real)
    translate_paths(load_generator(run, "AtoB"), [data / "testA"], root / "cyclegan", progress=False)
    shutil.copytree(data / "testA", root / "identity")
    return real, {"cyclegan": root / "cyclegan", "identity": root / "identity"}


def write_study(path: Path, real: Path, methods: dict[str, Path], **options) -> Path:
    lines = [f"real: {real}", "methods:", *(f"  {k}: {v}" for k, v in methods.items())]
    lines += [f"{k}: {v}" for k, v in options.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height pixels but whose data is a few bytes (a decompression bomb's shape)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")
