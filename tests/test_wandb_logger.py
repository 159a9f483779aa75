"""`train.loggers`: Weights & Biases beside TensorBoard. A real tiny training through the CLI logs to
a real offline W&B run (WANDB_MODE=offline), read back from its `.wandb` file; `--resume` continues
the same W&B run with the steps continuing; unknown or missing loggers are one clear error."""

from __future__ import annotations

import json
import math
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from cyclegan.config import LOGGERS, Config, ConfigError, build_config
from helpers import TINY, cli_environ, optional_module, tiny_config, tiny_dataset

LOSSES = ("g_ab", "g_ba", "cycle_a", "cycle_b", "idt_ab", "idt_ba", "d_a", "d_b")


def wandb_env(tmp_path: Path) -> dict[str, str]:
    """The CLI's environment with W&B offline and every W&B folder inside tmp_path."""
    env = cli_environ()
    for name in ("WANDB_PROJECT", "WANDB_ENTITY", "WANDB_NAME", "WANDB_RUN_ID", "WANDB_RESUME"):
        env.pop(name, None)
    env["WANDB_MODE"] = "offline"
    env["WANDB_SILENT"] = "true"
    for name in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR", "WANDB_ARTIFACT_DIR"):
        (tmp_path / name.lower()).mkdir(exist_ok=True)
        env[name] = str(tmp_path / name.lower())
    return env


def cli(*args: object, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cyclegan", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env)


def wandb_records(path: Path) -> list:
    """The protobuf records of a `.wandb` file (W&B's LevelDB-style log: a 7-byte header, then 32 KiB
    blocks of chunks, each `crc32c (4) | length (2) | type (1) | data`, a record split over chunks of
    type first (2), middle (3), last (4); full (1) holds one whole)."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B transaction log"
    pos, block, pending, records = 7, 32768, b"", []
    while pos + 7 <= len(data):
        if block - pos % block < 7:  # a block's tail too short for a chunk header is padding
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0:
            break
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            records.append(record)
    return records


def history(records: list) -> list[dict]:
    """The logged rows, nested keys (an image's fields) as dicts."""
    rows = []
    for r in records:
        if r.WhichOneof("record_type") != "history":
            continue
        row: dict = {}
        for item in r.history.item:
            path = [item.key] if item.key else list(item.nested_key)
            node = row
            for part in path[:-1]:
                node = node.setdefault(part, {})
            node[path[-1]] = json.loads(item.value_json)
        rows.append(row)
    return rows


def run_record(records: list):
    runs = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert runs, "no run record"
    return runs[0]


def offline_runs(wandb_dir: Path) -> list[Path]:
    return sorted((wandb_dir / "wandb").glob("offline-run-*"))


def test_wandb_logs_losses_images_evaluations_and_resumes_the_same_run(tmp_path):
    optional_module("wandb")
    env = wandb_env(tmp_path)
    data, run = tiny_dataset(tmp_path / "data"), tmp_path / "run"
    overrides = [*TINY, "train.sample_every=2", "data.max_dataset_size=3", "eval.every_epochs=1", "eval.split=test",
                 "train.export_official=false", "train.loggers=[tensorboard,wandb]",
                 "train.wandb_project=cg-test", "train.wandb_name=tiny"]
    sets = [a for o in overrides for a in ("--set", o)]

    first = cli("train", data, "--run-dir", run, *sets, "--max-steps", 2, "--no-progress", env=env)
    assert first.returncode == 0, first.stderr
    run_id = json.loads((run / "wandb.json").read_text())["id"]
    [offline] = offline_runs(tmp_path / "wandb_dir")
    records = wandb_records(offline / f"run-{run_id}.wandb")
    meta = run_record(records)
    assert (meta.run_id, meta.project, meta.display_name) == (run_id, "cg-test", "tiny")
    config = {u.key: json.loads(u.value_json) for u in meta.config.update}
    assert config["train"]["loggers"] == ["tensorboard", "wandb"]  # the resolved config
    assert config["model"]["ngf"] == 4
    rows = history(records)
    assert [r["_step"] for r in rows] == [1, 2]
    for row in rows:  # train.log_every=1: every step's losses and learning rate
        values = [row[f"train/{k}"] for k in LOSSES] + [row["train/lr"]]
        assert all(isinstance(v, float) and math.isfinite(v) for v in values), row
    assert row["train/lr"] == pytest.approx(2e-4)
    image = rows[1]["samples"]  # train.sample_every=2: the sample grid of step 2
    assert image["_type"] == "image-file" and "samples" not in rows[0]
    with Image.open(offline / "files" / image["path"]) as grid:
        assert grid.size == (3 * 32, 2 * 32) == (image["width"], image["height"])  # real|fake|rec over 2 rows
    assert (run / "tensorboard").is_dir()  # the other logger still logs

    second = cli("train", "--resume", run, "--max-steps", 4, "--no-progress", env=env)
    assert second.returncode == 0, second.stderr
    assert json.loads((run / "wandb.json").read_text())["id"] == run_id
    resumed = [p for p in offline_runs(tmp_path / "wandb_dir") if p != offline]
    assert len(resumed) == 1 and resumed[0].name.endswith(run_id)
    records = wandb_records(resumed[0] / f"run-{run_id}.wandb")
    assert run_record(records).run_id == run_id  # the same W&B run, continued
    rows = history(records)
    assert [r["_step"] for r in rows] == [3, 4]  # continuing from the checkpoint's step 2
    assert all(math.isfinite(r["train/g_ab"]) for r in rows)
    scores = {k: v for k, v in rows[0].items() if k.startswith("eval/")}  # epoch 1 (3 images) ends at step 3
    assert "eval/AtoB.cycle_l1" in scores and all(math.isfinite(v) for v in scores.values()), rows[0]
    assert not any(k.startswith("eval/") for k in rows[1])


def test_an_unknown_logger_is_one_clear_error(tmp_path):
    data, run = tiny_dataset(tmp_path / "data"), tmp_path / "run"
    sets = [a for o in [*TINY, "train.loggers=[tensorboard,mlflow]"] for a in ("--set", o)]
    result = cli("train", data, "--run-dir", run, *sets, "--no-progress", env=cli_environ())
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cyclegan: error:"), result.stderr
    assert "'mlflow'" in lines[0] and "tensorboard, wandb" in lines[0]
    assert not run.exists()


def test_without_wandb_the_error_names_the_extra_before_training(tmp_path, monkeypatch, capsys):
    from cyclegan.cli import main
    from cyclegan.lazy import MissingDependencyError
    from cyclegan.training.loop import train

    monkeypatch.setitem(sys.modules, "wandb", None)  # as if not installed
    data, run = tiny_dataset(tmp_path / "data"), tmp_path / "run"
    with pytest.raises(MissingDependencyError, match=r'pip install "cyclegan\[wandb\]"'):
        train(data, run, tiny_config("train.loggers=[wandb]"), max_steps=1, progress=False)
    assert not run.exists()  # nothing written
    sets = [a for o in [*TINY, "train.loggers=[wandb]"] for a in ("--set", o)]
    assert main(["train", str(data), "--run-dir", str(run), *sets, "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ['cyclegan: error: train.loggers=[...,wandb] needs the wandb package: pip install "cyclegan[wandb]"']
    assert not run.exists()


def test_loggers_config_default_syntax_and_registry():
    from cyclegan.training.loggers import LOGGERS as REGISTRY

    assert tuple(REGISTRY) == LOGGERS  # config's list of choices is the registry's
    assert Config().train.loggers == ("tensorboard",)  # today's behaviour: TensorBoard when installed
    assert Config().to_dict()["train"]["loggers"] == ["tensorboard"]  # plain YAML
    for text, expected in [("[tensorboard, wandb]", ("tensorboard", "wandb")), ("wandb", ("wandb",)),
                           ("tensorboard,wandb", ("tensorboard", "wandb")), ("[]", ())]:
        cfg = build_config(overrides=[f"train.loggers={text}"])
        assert cfg.train.loggers == expected
        assert Config.from_dict(cfg.to_dict()) == cfg  # saved and loaded (checkpoint, config.yaml)
    for text, message in [("[wandb, wandb]", "twice"), ("3", "list of names"), ("[tensorbord]", "tensorboard, wandb")]:
        with pytest.raises(ConfigError, match=message):
            build_config(overrides=[f"train.loggers={text}"])
