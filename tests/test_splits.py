"""Validation splits: held-out images (drawn from the seed, paired, recorded, never trained on),
valA/valB folders, the test split as monitoring only, and `evaluate run` reporting the final and the
validation-selected checkpoints."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from cyclegan.checkpoint import load_checkpoint
from cyclegan.data.aligned import AlignedDataset
from cyclegan.data.image_io import DataError, find_images
from cyclegan.data.splits import HOLDOUT_FILE, choose_holdout, evaluation_split, holdout_of
from cyclegan.data.unaligned import UnalignedDataset
from cyclegan.evaluation import evaluate_checkpoint
from cyclegan.training.loop import train

from helpers import tiny_config, tiny_dataset


@pytest.fixture
def data(tmp_path):
    return tiny_dataset(tmp_path / "data", n_train=8, n_test=2)


def test_holdout_draws_pairs_from_the_seed(data):
    a = choose_holdout(data, 3, seed=0)
    assert a == choose_holdout(data, 3, seed=0) and a.name == "holdout"
    assert a.names_a == a.names_b and len(a.names_a) == 3 and a.paired  # the same names: pairs
    draws = {choose_holdout(data, 3, seed=s).names_a for s in range(6)}
    assert len(draws) > 1  # the seed chooses
    with pytest.raises(DataError, match="every image"):
        choose_holdout(data, 8, seed=0)


def test_holdout_of_unpaired_folders_draws_each_domain(data):
    for i, p in enumerate(find_images(data / "trainB")):
        p.rename(p.with_name(f"other_{i}.png"))
    split = choose_holdout(data, 3, seed=0)
    assert not split.paired and len(split.names_a) == len(split.names_b) == 3
    assert all(n.startswith("other_") for n in split.names_b)


def test_held_out_images_are_never_trained_on(data):
    cfg = tiny_config("eval.holdout=3")
    split = holdout_of(cfg, data, None)
    unaligned = UnalignedDataset.from_root(data, cfg.data, holdout=split)
    assert len(unaligned.paths_a) == len(unaligned.paths_b) == 5
    assert not set(unaligned.paths_a) & set(split.files_a) and not set(unaligned.paths_b) & set(split.files_b)
    aligned = AlignedDataset.from_root(data, cfg.data, holdout=split)
    assert len(aligned) == 5 and not {p for pair in aligned.pairs for p in pair} & {*split.files_a, *split.files_b}


def test_a_run_records_its_holdout_and_resume_keeps_it(data, tmp_path):
    cfg = tiny_config("eval.every_epochs=1", "eval.holdout=2", "train.seed=3")
    run = tmp_path / "run"
    train(data, run, cfg, max_steps=2, progress=False)
    record = json.loads((run / HOLDOUT_FILE).read_text())
    drawn = choose_holdout(data, 2, seed=3)
    assert record["a"] == list(drawn.names_a) and record["b"] == list(drawn.names_b) and record["seed"] == 3
    # New training images would change a fresh draw; the resumed run keeps the recorded images.
    rng = np.random.default_rng(0)
    for i in range(4):
        for side in "AB":
            Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(data / f"train{side}" / f"new_{i}.png")
    assert choose_holdout(data, 2, seed=3).names_a != drawn.names_a
    train(None, run, resume=True, progress=False)
    assert json.loads((run / HOLDOUT_FILE).read_text()) == record
    evals = [json.loads(line) for line in (run / "evals.jsonl").read_text().splitlines()]
    assert {e["split"] for e in evals} == {"holdout"} and all(e["AtoB.images"] == 2 for e in evals)
    assert holdout_of(cfg, data, run).names_a == drawn.names_a
    # `evaluate run --split val` scores the same images as the run's last evaluation.
    scores, info = evaluate_checkpoint(run, split="val")
    last = evals[-1]
    assert info["split"] == "holdout" and scores["AtoB.l1"] == pytest.approx(last["AtoB.l1"], rel=1e-9)


def test_a_run_without_a_validation_split_fails_before_training(data, tmp_path):
    with pytest.raises(DataError, match="eval.holdout=N"):
        train(data, tmp_path / "run", tiny_config("eval.every_epochs=1"), progress=False)
    assert not (tmp_path / "run").exists()


def test_paired_best_metric_needs_pairs_in_the_validation_split(data, tmp_path):
    for i, p in enumerate(find_images(data / "trainB")):
        p.rename(p.with_name(f"other_{i}.png"))
    with pytest.raises(DataError, match="no pair"):
        train(data, tmp_path / "run", tiny_config("eval.every_epochs=1", "eval.holdout=2",
                                                  "eval.best_metric=AtoB.l1"), progress=False)
    assert not (tmp_path / "run").exists()
    # by the cycle error (auto on unpaired data) it trains and keeps best.pt
    train(data, tmp_path / "run", tiny_config("eval.every_epochs=1", "eval.holdout=2"), max_steps=6, progress=False)
    evals = [json.loads(line) for line in (tmp_path / "run" / "evals.jsonl").read_text().splitlines()]
    assert evals[0]["metric"] == "cycle_l1" and (tmp_path / "run" / "checkpoints" / "best.pt").is_file()


def test_val_folders_are_the_validation_split(data, tmp_path):
    for side in "AB":
        shutil.copytree(data / f"test{side}", data / f"val{side}")
        find_images(data / f"val{side}")[0].unlink()  # one fewer than test: tells them apart
    cfg = tiny_config("eval.every_epochs=1")
    assert evaluation_split("val", cfg, data).dir_a == data / "valA"
    train(data, tmp_path / "run", cfg, max_steps=8, progress=False)  # one epoch of 8 images
    evals = [json.loads(line) for line in (tmp_path / "run" / "evals.jsonl").read_text().splitlines()]
    assert evals[0]["split"] == "val" and evals[0]["AtoB.images"] == 1 and evals[0]["best"] is True


def test_the_test_split_is_logged_but_never_selects(data, tmp_path):
    run = tmp_path / "run"
    train(data, run, tiny_config("eval.every_epochs=1", "eval.split=test"), progress=False)
    evals = [json.loads(line) for line in (run / "evals.jsonl").read_text().splitlines()]
    assert len(evals) == 2 and {e["split"] for e in evals} == {"test"} and not any(e["best"] for e in evals)
    assert not (run / "checkpoints" / "best.pt").exists()
    assert load_checkpoint(run)["progress"]["best_epoch"] == 0


def cli(*args):
    return subprocess.run([sys.executable, "-m", "cyclegan", "evaluate", *map(str, args)], capture_output=True,
                          text=True)


def test_evaluate_run_reports_the_final_and_the_validation_selected_checkpoint(data, tmp_path):
    run = tmp_path / "run"
    train(data, run, tiny_config("eval.every_epochs=1", "eval.holdout=2", "optim.n_epochs=2"), progress=False)
    res = cli("run", run, "--json", "--device", "cpu")
    assert res.returncode == 0, res.stderr
    record = json.loads(res.stdout)
    best = load_checkpoint(run / "checkpoints" / "best.pt")["progress"]
    assert record["split"] == "test" and record["epoch"] == 3
    selected = record["selected"]
    assert selected["epoch"] == best["best_epoch"] and selected["split"] == "test"
    expected, _ = evaluate_checkpoint(run / "checkpoints" / "best.pt")
    assert selected["AtoB.l1"] == pytest.approx(expected["AtoB.l1"], rel=1e-9)
    text = cli("run", run, "--device", "cpu")
    assert text.returncode == 0 and "AtoB (selected)" in text.stdout and "picked on the validation split" in text.stdout
    # the scores of the validation split itself
    val = json.loads(cli("run", run, "--split", "val", "--json").stdout)
    assert val["split"] == "holdout" and val["AtoB.images"] == 2
