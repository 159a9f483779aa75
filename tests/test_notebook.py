"""docs/notebooks/quickstart.ipynb, executed end to end with nbclient as a user would run it, on tiny
settings: its parameters cell is overridden papermill-style (an injected cell after the cell tagged
"parameters"), and everything it downloads (the dataset zip, the pretrained generator, the FID
Inception weights) comes from a real HTTP server on 127.0.0.1 through CYCLEGAN_DATASETS_URL and
CYCLEGAN_WEIGHTS_MIRROR, so the notebook's own download code runs. The files served are tiny stand-ins
in the released layouts: a 32 px town dataset zipped as horse2zebra.zip, a seeded ngf-4 resnet_9blocks
in the official key layout as horse2zebra.pth, and seeded random Inception weights."""

from __future__ import annotations

import json
import math
import os
import re
import sys
import zipfile
from pathlib import Path

import torch
from PIL import Image
from torch import nn

from cyclegan.metrics.inception import FIDInceptionV3
from cyclegan.nn.generators import ResnetGenerator
from cyclegan.nn.official import to_official
from cyclegan.weights import FID_INCEPTION, WEIGHTS

from helpers import SRC, file_server, optional_module, tiny_dataset

NOTEBOOK = Path(__file__).resolve().parents[1] / "docs" / "notebooks" / "quickstart.ipynb"
KERNEL = "cyclegan-notebook-test"

# The injected parameters: tiny and CPU-only (overriding every name of the parameters cell).
TINY = {
    "DATASET": "horse2zebra",
    "PRETRAINED": "horse2zebra",
    "WORK": "quickstart",
    "SIZE": 32,
    "NGF": 8,
    "STEPS": 4,
    "EVAL_IMAGES": 2,
    "FID": True,
    "DEVICE": "cpu",
    "SETTINGS": ["model.generator=resnet_6blocks", "data.num_workers=0", "optim.n_epochs=1",
                 "optim.n_epochs_decay=1"],
}


def serve_release_files(root: Path, work: Path) -> None:
    """Tiny stand-ins for the files the notebook downloads, under their released names in `root`."""
    root.mkdir()
    town = tiny_dataset(work / "town", n_train=6, n_test=2, size=32)
    with zipfile.ZipFile(root / "horse2zebra.zip", "w") as zf:
        for folder in ("trainA", "trainB", "testA", "testB"):
            for image in sorted((town / folder).glob("*.png")):
                zf.write(image, f"horse2zebra/{folder}/{image.name}")
    torch.manual_seed(0)
    generator = ResnetGenerator(3, 3, ngf=4, n_blocks=9, norm="instance")  # the released architecture, narrow
    torch.save(to_official(generator), root / "horse2zebra.pth")
    inception = FIDInceptionV3()
    for m in inception.modules():  # He-initialised, so that random features keep their scale (FID > 0)
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
    torch.save(inception.state_dict(), root / WEIGHTS[FID_INCEPTION].file)


def kernelspec(folder: Path) -> None:
    """A kernelspec running ipykernel in this interpreter, so the notebook sees the test's Python and
    packages whatever kernels the machine has (a fresh CI machine may have none registered)."""
    spec = folder / "kernels" / KERNEL
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "cyclegan test", "language": "python",
    }))


def cell(nb, cell_id: str):
    return next(c for c in nb.cells if c.get("id") == cell_id)


def text_output(c) -> str:
    return "".join(o.get("text", "") for o in c.outputs if o.output_type == "stream" and o.name == "stdout")


def images_shown(c) -> int:
    return sum("image/png" in o.get("data", {}) for o in c.outputs if o.output_type == "display_data")


def test_committed_notebook_is_clean_and_has_the_colab_badge():
    nbformat = optional_module("nbformat")
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    for c in nb.cells:
        if c.cell_type == "code":
            assert c.outputs == [] and c.execution_count is None, f"cell {c.id}: clear the outputs before committing"
    assert re.search(r"\(https://colab\.research\.google\.com/github/[^/]+/cyclegan/blob/main/"
                     r"docs/notebooks/quickstart\.ipynb\)", nb.cells[0].source)
    parameters = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(parameters) == 1
    names = set(re.findall(r"^([A-Z_]+) = ", parameters[0].source, re.M))
    assert names == set(TINY), "the test's TINY must override every parameter"


def test_quickstart_notebook_runs_end_to_end(tmp_path, monkeypatch):
    """Every cell runs without an error (nbclient raises CellExecutionError otherwise), through the
    real downloads, and leaves the translated image, the trained checkpoint and finite scores."""
    nbformat = optional_module("nbformat")
    nbclient = optional_module("nbclient")
    optional_module("ipykernel")

    server_root, home = tmp_path / "server", tmp_path / "home"
    serve_release_files(server_root, tmp_path)
    kernelspec(tmp_path / "jupyter")
    for name in ("CYCLEGAN_PRETRAINED_URL", "CYCLEGAN_FEATURE_WEIGHTS_URL", "CYCLEGAN_FID_WEIGHTS_URL"):
        monkeypatch.delenv(name, raising=False)
    # The kernel inherits this environment: this checkout's src/ first, a cache and Jupyter/IPython
    # state in tmp_path, one thread (the machine is shared).
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(p for p in (str(SRC), os.environ.get("PYTHONPATH")) if p))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter" / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    monkeypatch.setenv("CYCLEGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")

    nb = nbformat.read(NOTEBOOK, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    injected = nbformat.v4.new_code_cell("\n".join(f"{k} = {v!r}" for k, v in TINY.items()))
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(at + 1, injected)

    home.mkdir()
    with file_server(server_root) as (url, requests):
        monkeypatch.setenv("CYCLEGAN_WEIGHTS_MIRROR", url)
        monkeypatch.setenv("CYCLEGAN_DATASETS_URL", url)
        client = nbclient.NotebookClient(nb, kernel_name=KERNEL, timeout=300, resources={"metadata": {"path": str(home)}})
        client.execute()

    assert sorted(requests) == sorted(["/horse2zebra.zip", "/horse2zebra.pth", f"/{WEIGHTS[FID_INCEPTION].file}"])
    work = home / TINY["WORK"]
    assert sorted(p.name for p in (work / "datasets" / "horse2zebra").iterdir()) == ["testA", "testB", "trainA", "trainB"]
    assert "cyclegan 0." in text_output(cell(nb, "setup"))

    # 1. the pretrained generator's translation, written and shown
    (translated,) = (work / "pretrained").glob("*.png")
    assert Image.open(translated).size == (32, 32) and translated.name in text_output(cell(nb, "pretrained"))
    assert images_shown(cell(nb, "pretrained")) == 1

    # 2. the trained run: its checkpoint, the losses of every step, a sample grid shown
    assert (work / "run" / "checkpoints" / "latest.pt").is_file()
    assert "step 4;" in text_output(cell(nb, "train"))
    logged = [json.loads(line)["step"] for line in (work / "run" / "losses.jsonl").read_text().splitlines()]
    assert logged == [1, 2, 3, 4]
    assert images_shown(cell(nb, "samples")) == 1

    # 3. finite scores printed for both directions, FID and KID included
    table = text_output(cell(nb, "evaluate"))
    assert re.search(r"^metric\s+AtoB\s+BtoA$", table, re.M), table
    rows = {m: (float(a), float(b)) for m, a, b in re.findall(r"^(\S+)\s+(\S+)\s+(\S+)$", table, re.M)
            if m != "metric"}
    for metric in ("cycle_l1", "fid", "kid"):
        assert all(math.isfinite(v) for v in rows[metric]), table
    assert all(v > 0 for v in rows["cycle_l1"] + rows["fid"]), table
    assert images_shown(cell(nb, "translate-trained")) == 2
    assert len(list((work / "trained").rglob("*.png"))) == 4  # 2 test images per domain
