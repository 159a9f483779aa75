"""The Hugging Face Hub layout: `export --format hf` / `save_pretrained` writes config.json,
model.safetensors and a model card; a local folder and a pre-populated Hub cache read with
HF_HUB_OFFLINE=1 (huggingface_hub's own code path, in a real subprocess) translate like the run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import torch
from PIL import Image

from cyclegan.deploy import save_pretrained
from cyclegan.inference import load_generator, translate_tensor
from cyclegan.training.loop import train
from cyclegan.weights.hf import HubError, from_pretrained

from helpers import cli_environ, optional_module, tiny_config, tiny_dataset


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("hf")
    data = tiny_dataset(root / "data", n_train=4, n_test=2)
    train(data, root / "run", tiny_config("eval.every_epochs=1", "eval.split=test", "model.upsample=resize"),
          progress=False)
    return root / "run"


def test_a_run_saved_in_the_hub_layout_translates_like_the_run(run, tmp_path):
    folder = save_pretrained(run, tmp_path / "hf", direction="BtoA")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors",
                                                        "model.safetensors.sha256"]
    config = json.loads((folder / "config.json").read_text())
    assert config["arch"]["type"] == "resnet" and config["arch"]["upsample"] == "resize"  # no official layout: fine
    assert (config["method"], config["direction"], config["crop_size"]) == ("cyclegan", "BtoA", 32)
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: cyclegan") and "domain B → domain A" in card
    assert "test split, step 8, test-time protocol full: full resolution, eval mode" in card
    assert "| cycle_l1 |" in card and "Intended use and limits" in card
    x = torch.rand(1, 3, 36, 44) * 2 - 1
    torch.testing.assert_close(translate_tensor(from_pretrained(folder), x), translate_tensor(load_generator(run, "BtoA"), x),
                               rtol=0, atol=0)
    assert from_pretrained(folder).hf_config["direction"] == "BtoA"


def test_export_hf_and_a_prepopulated_hub_cache_offline(run, tmp_path):
    optional_module("huggingface_hub")
    res = subprocess.run([sys.executable, "-m", "cyclegan", "export", str(run), "--format", "hf", "--out",
                          str(tmp_path / "export")], capture_output=True, text=True, env=cli_environ())
    assert res.returncode == 0, res.stderr[-2000:]
    # The Hub cache layout huggingface_hub itself reads: models--ORG--NAME/{refs/main, snapshots/REV/...}
    cache = tmp_path / "hub"
    revision = "0123456789abcdef0123456789abcdef01234567"
    snapshot = cache / "models--someone--maps-tiny" / "snapshots" / revision
    shutil.copytree(tmp_path / "export", snapshot)
    (cache / "models--someone--maps-tiny" / "refs").mkdir()
    (cache / "models--someone--maps-tiny" / "refs" / "main").write_text(revision)
    Image.new("RGB", (40, 36), (30, 140, 60)).save(tmp_path / "in.png")
    env = cli_environ({**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(cache), "HF_HOME": str(tmp_path / "home")})
    res = subprocess.run([sys.executable, "-m", "cyclegan", "translate", "someone/maps-tiny", str(tmp_path / "in.png"),
                          "--out", str(tmp_path / "out")], capture_output=True, text=True, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    assert Image.open(tmp_path / "out" / "in.png").size == (40, 36)
    res = subprocess.run([sys.executable, "-m", "cyclegan", "translate", "someone/not-cached", str(tmp_path / "in.png"),
                          "--out", str(tmp_path / "out2")], capture_output=True, text=True, env=env)
    assert res.returncode == 1 and "is not in the Hugging Face cache" in res.stderr and "Traceback" not in res.stderr


def test_a_damaged_hub_folder_is_a_clear_error(run, tmp_path):
    folder = save_pretrained(run, tmp_path / "hf")
    config = json.loads((folder / "config.json").read_text())
    config["arch"]["ngf"] = 8
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(HubError, match="do not load into the described generator"):
        from_pretrained(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(HubError, match="cannot be read as JSON"):
        from_pretrained(folder)
