"""The FCN-score's scorer on a tiny synthetic paired set (32 px, 3 classes): it trains (the loss
falls), its file round-trips and holds only plain data, `evaluate fcn-score` of the real test photos
gives its stored ground-truth row, and bad inputs end in one line and a non-zero exit."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import torch
from PIL import Image

from cyclegan.scorer import ScorerConfig, fcn_score, load_scorer, train_scorer

from helpers import PALETTE, cli_environ, toy_dataset

TINY = ScorerConfig(size=32, ngf=4, epochs=2, batch_size=2, lr=5e-3)


def cyclegan(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "cyclegan", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=cli_environ())


def test_the_scorer_trains_round_trips_and_scores_the_real_photos_as_stored(tmp_path):
    root, palette = toy_dataset(tmp_path / "toy")
    torch.set_num_threads(1)
    scorer = train_scorer(root, tmp_path / "scorer.pt", palette=palette, config=TINY)
    losses = scorer.train["losses"]
    assert len(losses) == 2 and losses[1] < losses[0]
    assert scorer.config.num_downs == 5 and scorer.classes == ["sky", "wall", "door"]

    raw = torch.load(tmp_path / "scorer.pt", weights_only=True)  # plain data only
    assert raw["format"] == "cyclegan-fcn-scorer" and raw["config"]["size"] == 32 and raw["palette"] == PALETTE
    loaded = load_scorer(tmp_path / "scorer.pt")
    assert loaded.config == scorer.config and loaded.palette.to_dict() == PALETTE
    for k, v in scorer.net.state_dict().items():
        assert torch.equal(v, loaded.net.state_dict()[k]), k
    real = scorer.real_scores
    assert loaded.real_scores.as_dict() == real.as_dict() and real.images == 3 and real.classes == 3
    assert fcn_score(root / "testA", root / "testB", tmp_path / "scorer.pt").as_dict() == real.as_dict()


def test_photos_in_domain_b(tmp_path):
    """--photos B: the same data with the domains swapped trains the same scorer."""
    root, palette = toy_dataset(tmp_path / "toy", n_train=4, n_test=2)
    swapped = tmp_path / "swapped"
    swapped.mkdir()
    for split in ("train", "test"):
        (swapped / f"{split}A").symlink_to(root / f"{split}B")
        (swapped / f"{split}B").symlink_to(root / f"{split}A")
    one = dataclasses.replace(TINY, epochs=1)
    a = train_scorer(root, None, palette=palette, config=one)
    b = train_scorer(swapped, None, palette=palette, config=dataclasses.replace(one, photos="B"))
    assert a.train["losses"] == b.train["losses"] and a.real_scores.as_dict() == b.real_scores.as_dict()


def test_cli_scorer_train_then_fcn_score(tmp_path):
    root, palette = toy_dataset(tmp_path / "toy")
    out = tmp_path / "scorer.pt"
    res = cyclegan("scorer", "train", root, "--out", out, "--palette", palette, "--size", 32, "--ngf", 4,
                   "--epochs", 2, "--batch-size", 2, "--device", "cpu", "--json")
    assert res.returncode == 0, res.stderr
    trained = json.loads(res.stdout)
    assert out.is_file() and trained["real_scores"]["averaging"]["mean_iou_all"] == "mean over all 3 classes"

    res = cyclegan("evaluate", "fcn-score", root / "testA", root / "testB", "--scorer", out, "--device", "cpu", "--json")
    assert res.returncode == 0, res.stderr
    scored = json.loads(res.stdout)
    keys = ("pixel_accuracy", "class_accuracy", "mean_iou", "class_accuracy_all", "mean_iou_all", "per_class_iou")
    assert {k: scored[k] for k in keys} == {k: trained["real_scores"][k] for k in keys}

    res = cyclegan("evaluate", "fcn-score", root / "testA", root / "testB", "--scorer", out, "--device", "cpu")
    assert res.returncode == 0, res.stderr
    for text in ("these photos", "real test photos", "class IoU (mean over present classes)",
                 "class IoU (mean over all 3 classes)", "3 image pairs"):
        assert text in res.stdout, text


def test_bad_inputs_give_one_line_errors(tmp_path):
    root, palette = toy_dataset(tmp_path / "toy", n_train=2, n_test=1)
    not_a_scorer = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, not_a_scorer)
    pickled = tmp_path / "pickled.pt"
    torch.save({"format": "cyclegan-fcn-scorer", "config": dataclasses.asdict(TINY), "x": TINY}, pickled)
    bad_palette = tmp_path / "bad.yaml"
    bad_palette.write_text("classes: [{name: sky, rgb: [0, 0]}]\n")
    other = tmp_path / "other_names"
    other.mkdir()
    Image.new("RGB", (32, 32)).save(other / "x.png")
    cases = [
        (("evaluate", "fcn-score", root / "testA", root / "testB", "--scorer", tmp_path / "missing.pt"), "does not exist"),
        (("evaluate", "fcn-score", root / "testA", root / "testB", "--scorer", not_a_scorer), "not an FCN scorer"),
        (("evaluate", "fcn-score", root / "testA", root / "testB", "--scorer", pickled), "cannot read"),
        (("evaluate", "segmentation", root / "testB", root / "testB", "--palette", bad_palette), r"classes[0] must be"),
        (("evaluate", "segmentation", root / "testB", root / "testB", "--palette", "mapillary"), "neither built in"),
        (("scorer", "train", root, "--out", tmp_path / "s.pt", "--palette", palette, "--size", 40), "multiple of 32"),
        (("scorer", "train", tmp_path / "nowhere", "--out", tmp_path / "s.pt"), "does not exist"),
        (("scorer", "train", root, "--out", tmp_path / "s.pt", "--palette", palette, "--size", 32, "--photos", "B"),
         "no pixel of"),  # the photos taken for label maps
    ]
    for args, message in cases:
        res = cyclegan(*args)
        lines = res.stderr.strip().splitlines()
        assert res.returncode == 1 and len(lines) == 1 and lines[0].startswith("cyclegan: error:"), (args, res.stderr)
        assert message in lines[0], (args, lines[0])
    assert not (tmp_path / "s.pt").exists()
    # a scorer over photos that have no label map of the same name
    scorer = tmp_path / "scorer.pt"
    train_scorer(root, scorer, palette=palette, config=dataclasses.replace(TINY, epochs=1))
    res = cyclegan("evaluate", "fcn-score", other, root / "testB", "--scorer", scorer)
    assert res.returncode == 1 and "pairs with one" in res.stderr and "Traceback" not in res.stderr
