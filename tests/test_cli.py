"""The command line, run as a real subprocess: train/resume, translate, export, demo, errors (help: test_cli_help.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from cyclegan.nn import build_generator, load_official
from cyclegan.checkpoint import load_checkpoint

from helpers import TINY, cli_environ, tiny_dataset


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cyclegan", *map(str, args)], capture_output=True, text=True,
                          timeout=300, cwd=cwd, env=cli_environ())


def sets(*overrides: str) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cyclegan: error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_train_resume_translate_export(tmp_path):
    data = tiny_dataset(tmp_path / "data")
    run = tmp_path / "run"
    result = cli("train", data, "--run-dir", run, *sets(*TINY), "--max-steps", 3, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert load_checkpoint(run)["progress"]["step"] == 3
    assert "\n  generator: resnet_6blocks\n" in (run / "config.yaml").read_text()

    result = cli("train", "--resume", run, "--max-steps", 5, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert load_checkpoint(run)["progress"]["step"] == 5

    # Translate a folder with an odd-sized image in a sub-folder: names and sizes are kept.
    inputs = tmp_path / "inputs"
    (inputs / "sub").mkdir(parents=True)
    Image.new("RGB", (45, 29), (200, 30, 30)).save(inputs / "sub" / "odd.jpg")
    Image.open(data / "testA" / "00000.png").save(inputs / "tile.png")
    out = tmp_path / "out"
    result = cli("translate", run, inputs, "--out", out, "--direction", "BtoA")
    assert result.returncode == 0, result.stderr
    assert Image.open(out / "sub" / "odd.png").size == (45, 29)
    assert Image.open(out / "tile.png").size == (32, 32)

    result = cli("export", run, "--out", tmp_path / "official")
    assert result.returncode == 0, result.stderr
    state = torch.load(tmp_path / "official" / "latest_net_G_A.pth", weights_only=True)
    assert "model.10.conv_block.1.weight" in state  # the official key layout
    load_official(build_generator("resnet_6blocks", ngf=4), state)


def test_demo_runs_end_to_end(tmp_path):
    result = cli("demo", "--out", tmp_path / "demo", "--steps", 2)
    assert result.returncode == 0, result.stderr
    page = (tmp_path / "demo" / "index.html").read_text()
    assert "mean L1 of G(aerial) vs the true map" in page
    assert (tmp_path / "demo" / "results" / "fake_b" / "00000.png").is_file()
    assert "demo results:" in result.stdout


def test_demo_takes_settings_and_keeps_them(tmp_path):
    out = tmp_path / "demo"
    result = cli("demo", "--out", out, "--steps", 2, "--set", "model.upsample=transpose")
    assert result.returncode == 0, result.stderr
    assert load_checkpoint(out / "run")["config"]["model"]["upsample"] == "transpose"
    other = cli("demo", "--out", out, "--steps", 3)  # continuing it with the preset's settings: refused
    assert other.returncode != 0 and "trained with other settings" in other.stderr
    assert "Traceback" not in other.stderr
    assert load_checkpoint(out / "run")["progress"]["step"] == 2  # nothing trained over it


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["train", "{tmp}/missing", "--run-dir", "{tmp}/run"], ["missing", "does not exist"]),
        (["train", "{data}", "--run-dir", "{tmp}/run", "--set", "model.nfg=3"], ["unknown config key 'model.nfg'"]),
        (["train", "{data}", "--run-dir", "{tmp}/run", "--set", "model.norm=group"], ["model.norm", "instance"]),
        (["train", "{data}", "--run-dir", "{tmp}/run", "--set", "model.ngf=wide"], ["model.ngf must be an integer"]),
        (["train", "{data}", "--run-dir", "{tmp}/run", "--config", "nope"], ["neither a file nor a preset"]),
        (["train", "--resume", "{tmp}/norun"], ["no checkpoints/latest.pt"]),
        (["train", "{data}", "--run-dir", "{tmp}/run", "--device", "gpu"], ["unknown device 'gpu'"]),
        (["translate", "{tmp}/garbage.pt", "{data}/testA", "--out", "{tmp}/o"], ["cannot read"]),
    ],
)
def test_errors_are_one_clear_line(tmp_path, args, fragments):
    data = tiny_dataset(tmp_path / "data")
    (tmp_path / "norun").mkdir()
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    result = cli(*(a.format(tmp=tmp_path, data=data) for a in args))
    assert_one_line_error(result, *fragments)
    assert not (tmp_path / "run" / "checkpoints").exists()  # nothing half-made


def test_empty_domain_folder_is_reported(tmp_path):
    data = tiny_dataset(tmp_path / "data")
    for f in (data / "trainB").iterdir():
        f.unlink()
    assert_one_line_error(cli("train", data, "--run-dir", tmp_path / "run"), "trainB")


def test_a_corrupt_image_does_not_stop_training(tmp_path):
    data = tiny_dataset(tmp_path / "data")
    (data / "trainA" / "00001.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    run = tmp_path / "run"
    result = cli("train", data, "--run-dir", run, *sets(*TINY), "--no-progress")
    assert result.returncode == 0, result.stderr
    assert "00001.png" in result.stderr and "skipped" in result.stderr
    ckpt = load_checkpoint(run)
    assert ckpt["progress"]["step"] == 12 and ckpt["progress"]["skipped"] >= 2  # once per epoch


def test_train_precision_option_sets_the_config_and_cannot_change_a_resumed_run(tmp_path, capsys):
    from cyclegan.cli import main

    data, run = tiny_dataset(tmp_path / "data"), tmp_path / "run"
    sets = [a for o in TINY for a in ("--set", o)]
    assert main(["train", str(data), "--run-dir", str(run), *sets, "--precision", "bf16", "--max-steps", "1",
                 "--no-progress"]) == 0
    assert load_checkpoint(run)["config"]["train"]["precision"] == "bf16"
    with pytest.raises(SystemExit):
        main(["train", "--resume", str(run), "--precision", "fp32"])
    assert "cannot change a resumed run" in capsys.readouterr().err
