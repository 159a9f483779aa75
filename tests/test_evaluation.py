"""Evaluating runs: `evaluate_generators`, periodic evaluation with the best checkpoint, and
`cyclegan evaluate run` (table, JSON, evals.jsonl and the run page)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from cyclegan.config import ConfigError
from cyclegan.data.image_io import DataError, find_images, load_image
from cyclegan.evaluation import evaluate_checkpoint, evaluate_generators, is_better
from cyclegan.inference import load_generator_pair, translate_paths
from cyclegan.metrics import fid, inception_features
from cyclegan.metrics.paired import paired_metrics
from cyclegan.checkpoint import load_checkpoint
from cyclegan.training.loop import train
from cyclegan.weights import load_fid_inception

from helpers import tiny_config, tiny_dataset


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run trained 2 epochs with evaluation after each on 2 pairs held out of 8; returns (data,
    run dir)."""
    root = tmp_path_factory.mktemp("eval")
    data = tiny_dataset(root / "data", n_train=8, n_test=3)
    run = root / "run"
    train(data, run, tiny_config(*EVAL, "train.deterministic=true"), progress=False)
    return data, run


EVAL = ("eval.every_epochs=1", "eval.holdout=2")


def test_scores_agree_with_translating_and_scoring_files(trained, tmp_path):
    data, run = trained
    g_ab, g_ba = load_generator_pair(run, "AtoB")
    scores = evaluate_generators(g_ab, g_ba, data / "testA", data / "testB")
    translate_paths(g_ab, [data / "testA"], tmp_path / "fake_B", progress=False)
    on_files = paired_metrics(tmp_path / "fake_B", data / "testB")
    for name, value in on_files.means.items():
        assert scores[f"AtoB.{name}"] == pytest.approx(value, rel=1e-9), name
    assert scores["AtoB.images"] == scores["AtoB.paired_images"] == 3
    # cycle error by hand for the first B image
    x = load_image(find_images(data / "testB")[0])
    from cyclegan.data.image_io import tensor_to_uint8, to_tensor
    from cyclegan.inference import translate_tensor

    rec = tensor_to_uint8(translate_tensor(g_ab, translate_tensor(g_ba, to_tensor(x))))
    one = np.abs(rec.astype(float) - np.asarray(x, float)).mean()
    first_only = evaluate_generators(g_ab, g_ba, data / "testA", data / "testB", max_images=1)
    assert first_only["BtoA.cycle_l1"] == pytest.approx(one)
    assert first_only["BtoA.images"] == 1


def test_periodic_evaluation_logs_and_keeps_the_best_checkpoint(trained):
    data, run = trained
    evals = [json.loads(line) for line in (run / "evals.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in evals] == [1, 2] and [e["step"] for e in evals] == [6, 12]
    assert all(e["metric"] == "AtoB.l1" and e["value"] == e["AtoB.l1"] for e in evals)  # paired split: auto = L1
    assert evals[0]["best"] is True and evals[1]["best"] == (evals[1]["value"] < evals[0]["value"])
    best = max(e["epoch"] for e in evals if e["best"])
    ckpt = load_checkpoint(run / "checkpoints" / "best.pt")
    assert ckpt["progress"]["step"] == 6 * best and ckpt["progress"]["best_epoch"] == best
    assert ckpt["progress"]["best_score"] == min(e["value"] for e in evals)
    assert load_checkpoint(run)["progress"]["best_epoch"] == best
    page = (run / "index.html").read_text()
    assert "<h2>Evaluation</h2>" in page and "AtoB.acc@5" in page and "BtoA.cycle_l1" in page
    assert "<th>split</th>" in page and "<td>holdout</td>" in page


def test_resumed_run_evaluates_and_picks_the_best_as_the_uninterrupted_one(trained, tmp_path):
    data, run = trained
    cfg = tiny_config(*EVAL, "train.deterministic=true")
    resumed = tmp_path / "resumed"
    train(data, resumed, cfg, max_steps=9, progress=False)  # stops mid-epoch 2, after epoch 1's evaluation
    with (resumed / "evals.jsonl").open("a") as f:
        f.write('{"step": 10, "epoch": 2, "AtoB.l1": 0.0, "best": true}\n{"step": 1')  # past the checkpoint; cut
    train(None, resumed, resume=True, progress=False)
    ours, theirs = ((r / "evals.jsonl").read_text().splitlines() for r in (resumed, run))
    strip = lambda lines: [{k: v for k, v in json.loads(x).items() if k != "seconds"} for x in lines]  # noqa: E731
    assert strip(ours) == strip(theirs)
    assert load_checkpoint(resumed / "checkpoints" / "best.pt")["progress"]["step"] == \
        load_checkpoint(run / "checkpoints" / "best.pt")["progress"]["step"]


def test_evaluation_does_not_change_training(trained, tmp_path):
    data, run = trained
    plain = tmp_path / "plain"
    train(data, plain, tiny_config("eval.holdout=2", "train.deterministic=true"), progress=False)
    a, b = load_checkpoint(run)["nets"], load_checkpoint(plain)["nets"]
    assert all(torch.equal(a[n][k], b[n][k]) for n in a for k in a[n])
    assert not (plain / "evals.jsonl").exists() and not (plain / "checkpoints" / "best.pt").exists()


def test_best_metric_direction_and_validation():
    assert is_better("AtoB.acc@5")(0.5, 0.4) and not is_better("AtoB.acc@5")(0.3, 0.4)
    assert is_better("AtoB.l1")(3.0, 4.0) and is_better("cycle_l1")(1.0, None)
    with pytest.raises(ConfigError, match="best_metric"):
        tiny_config("eval.best_metric=AtoB.accuracy")
    with pytest.raises(ConfigError, match="eval.fid=true"):
        tiny_config("eval.best_metric=BtoA.fid")
    tiny_config("eval.best_metric=BtoA.acc@10")


def test_missing_test_split_fails_before_anything_is_written(tmp_path):
    data = tiny_dataset(tmp_path / "data", n_test=0)
    for folder in ("testA", "testB"):
        for f in (data / folder).iterdir():
            f.unlink()
        (data / folder).rmdir()
    with pytest.raises(DataError, match="testA or testB"):
        train(data, tmp_path / "run", tiny_config("eval.every_epochs=1", "eval.split=test"), progress=False)
    assert not (tmp_path / "run").exists()


def cli(*args):
    return subprocess.run([sys.executable, "-m", "cyclegan", "evaluate", *map(str, args)], capture_output=True,
                          text=True)


def test_cli_evaluate_run(trained, tmp_path):
    data, run = trained
    lines = len((run / "evals.jsonl").read_text().splitlines())
    res = cli("run", run, "--json", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    record = json.loads(res.stdout)
    assert record["epoch"] == 2 and record["step"] == 12 and record["source"] == "cyclegan evaluate run"
    expected, _ = evaluate_checkpoint(run)
    assert record["AtoB.ssim"] == pytest.approx(expected["AtoB.ssim"])
    logged = (run / "evals.jsonl").read_text().splitlines()
    assert len(logged) == lines + 1 and json.loads(logged[-1])["AtoB.l1"] == pytest.approx(expected["AtoB.l1"])

    res = cli("run", run / "checkpoints" / "best.pt", "--max-images", "2")
    assert res.returncode == 0, res.stderr
    assert "cycle_l1" in res.stdout and "acc@5" in res.stdout and "AtoB" in res.stdout

    res = cli("run", run / "generators" / "latest_net_G_A.pth")
    assert res.returncode == 1 and "evaluate paired" in res.stderr


def test_fid_in_evaluation_equals_fid_of_the_written_translations(trained, tmp_path, fixtures_dir):
    data, run = trained
    golden = torch.load(fixtures_dir / "pytorch_fid_random_weights.pt", map_location="cpu", weights_only=True)
    weights = tmp_path / "pt_inception.pth"
    torch.save({k: v.float() if v.is_floating_point() else v for k, v in golden["state_dict"].items()}, weights)
    res = cli("run", run, "--fid", "--inception-weights", weights, "--json", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    record = json.loads(res.stdout)
    g_ab, _ = load_generator_pair(run, "AtoB", reverse=False)
    translate_paths(g_ab, [data / "testA"], tmp_path / "fake_B", progress=False)
    model = load_fid_inception(weights)
    assert record["AtoB.fid"] == pytest.approx(fid(tmp_path / "fake_B", data / "testB", model=model), rel=1e-6)
    assert np.isfinite(record["BtoA.kid"])
    assert inception_features(model, tmp_path / "fake_B").shape == (3, 2048)
