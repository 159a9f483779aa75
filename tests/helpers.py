"""Small builders shared by the tests: tiny datasets (aerial/map and photo/label), tiny configs, the CLI's environment."""

from __future__ import annotations

import contextlib
import functools
import importlib
import json
import os
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

from cyclegan.config import build_config
from cyclegan.demo.city import write_city_dataset

SRC = Path(__file__).resolve().parents[1] / "src"


def cli_environ(env: dict[str, str] | None = None) -> dict[str, str]:
    """`env` (default os.environ) with this checkout's src/ first on PYTHONPATH, so that a subprocess
    `python -m cyclegan` runs this tree, not whichever copy is installed."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SRC), env.get("PYTHONPATH")) if p)
    return env


def optional_module(name: str) -> ModuleType:
    """Import an optional dependency: missing means skip locally but fail in CI (CI=true), where the
    `test` extra installs every optional dependency."""
    if os.environ.get("CI", "").lower() == "true":
        return importlib.import_module(name)
    return pytest.importorskip(name)


TINY = [
    "model.generator=resnet_6blocks", "model.ngf=4", "model.ndf=4",
    "data.load_size=36", "data.crop_size=32", "data.num_workers=0",
    "optim.n_epochs=1", "optim.n_epochs_decay=1",
    "train.log_every=1", "train.sample_every=3", "train.checkpoint_every=1000",
]


# The overrides that make each registered method train on `tiny_dataset` with the TINY settings
# (tests/test_methods.py runs every method with them; a new method adds its line here).
METHOD_TINY: dict[str, list[str]] = {
    "cyclegan": [],
    "pix2pix": ["model.method=pix2pix", "data.mode=aligned", "loss.pool_size=0", "loss.lambda_identity=0"],
    "bigan": ["model.method=bigan", "loss.pool_size=0", "loss.lambda_identity=0"],
    "cut": ["model.method=cut", "loss.pool_size=0", "loss.lambda_identity=0", "model.downsample=antialias",
            "model.upsample=antialias", "method_options.num_patches=16", "method_options.netf_nc=8"],
    "fastcut": ["model.method=fastcut", "loss.pool_size=0", "loss.lambda_identity=0", "model.downsample=antialias",
                "model.upsample=antialias", "method_options.num_patches=16", "method_options.netf_nc=8"],
    "cogan": ["model.method=cogan", "loss.pool_size=0", "loss.lambda_identity=0", "data.load_size=32",
              "data.crop_size=32", "method_options.nz=8", "method_options.search_steps=3"],
}


def tiny_dataset(root: Path, n_train: int = 6, n_test: int = 2, size: int = 32) -> Path:
    return write_city_dataset(root, n_train=n_train, n_test=n_test, size=size, seed=1)


def tiny_config(*extra: str):
    """A tiny config, checked like training checks it (the generic rules and its method's)."""
    from cyclegan.methods import check_config

    cfg = build_config(overrides=[*TINY, *extra])
    check_config(cfg)
    return cfg


def random_vgg_weights(path: Path, name: str = "vgg16", seed: int = 0) -> Path:
    """Write a seeded random state dict in the layout of torchvision's released VGG file (He-initialised
    so that deep activations keep the scale of pretrained ones, plus small stand-in classifier keys,
    which loading must ignore) to `path`."""
    import torch
    from torch import nn

    from cyclegan.nn.features import feature_network

    torch.manual_seed(seed)
    net = feature_network(name).build()
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.uniform_(m.bias, -0.1, 0.1)
    state = dict(net.state_dict())
    state.update({"classifier.0.weight": torch.zeros(4, 8), "classifier.0.bias": torch.zeros(4)})
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


@contextlib.contextmanager
def file_server(root: Path) -> Iterator[tuple[str, list[str]]]:
    """Serve the files of `root` on 127.0.0.1; yields (base URL, the paths requested so far)."""
    requests: list[str] = []

    class Handler(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            requests.append(self.path)
            super().do_GET()

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", requests
    finally:
        httpd.shutdown()
        httpd.server_close()


LABEL_COLOURS = [(0, 0, 255), (255, 0, 0), (0, 255, 0)]  # sky, wall, door
PHOTO_COLOURS = [(150, 180, 230), (140, 90, 60), (40, 40, 40)]
PALETTE = {"name": "toy", "max_distance": 40,
           "classes": [{"name": n, "rgb": list(c)} for n, c in zip(("sky", "wall", "door"), LABEL_COLOURS)]}


def toy_dataset(root: Path, n_train: int = 8, n_test: int = 3, seed: int = 0) -> tuple[Path, Path]:
    """Label maps of a sky band, a wall and a door (plus a black, unmapped border row) and photos
    whose colours follow the classes, with noise; the same file names in A (photos) and B (labels)."""
    rng = np.random.default_rng(seed)
    for split, n in (("train", n_train), ("test", n_test)):
        (root / f"{split}A").mkdir(parents=True)
        (root / f"{split}B").mkdir(parents=True)
        for i in range(n):
            cls = np.ones((32, 32), int)
            cls[: rng.integers(6, 14)] = 0
            x = rng.integers(2, 20)
            cls[rng.integers(18, 26):, x:x + rng.integers(5, 10)] = 2
            label = np.array(LABEL_COLOURS, np.uint8)[cls]
            label[-1] = 0  # unmapped: ignored in the loss and the scores
            photo = np.array(PHOTO_COLOURS, float)[cls] + rng.normal(0, 20, (32, 32, 3))
            Image.fromarray(np.clip(photo, 0, 255).astype(np.uint8)).save(root / f"{split}A" / f"{i}.png")
            Image.fromarray(label).save(root / f"{split}B" / f"{i}.png")
    palette = root / "toy.json"
    palette.write_text(json.dumps(PALETTE))
    return root, palette


def flip_a_byte(path: Path) -> None:
    """Corrupt a file in place: invert the byte in its middle."""
    with open(path, "r+b") as f:
        f.seek(path.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
