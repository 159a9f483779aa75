"""Test-time protocols (`--protocol official`: as the official test.py, resized to the crop size
and in train mode unless --eval) and one-way methods learning B -> A (`data.direction`), with
`reproduce`'s FCN-score and segmentation columns built on them."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from helpers import (
    METHOD_TINY,
    TINY,
    cli_environ,
    tiny_config,
    tiny_dataset,
    toy_dataset,
)
from PIL import Image

from cyclegan.config import ConfigError
from cyclegan.data.image_io import load_image, tensor_to_uint8, to_tensor
from cyclegan.evaluation import evaluate_checkpoint
from cyclegan.experiments import reproduce
from cyclegan.inference import FULL, Protocol, load_generator, translate_paths
from cyclegan.losses import gan_loss
from cyclegan.methods.pix2pix import Pix2Pix
from cyclegan.metrics.paired import image_scores, mean_scores
from cyclegan.nn import UnetGenerator
from cyclegan.scorer import ScorerConfig, fcn_score, train_scorer
from cyclegan.training.loop import train


def cyclegan(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "cyclegan", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, env=cli_environ())


def batchnorm_dropout_unet(seed=0):
    """pix2pix's generator (batch norm, dropout) with running statistics far from any image's, so
    that train mode and eval mode give clearly different outputs."""
    torch.manual_seed(seed)
    net = UnetGenerator(3, 3, num_downs=6, ngf=4, norm="batch", dropout=True)  # dropout in the 6th level
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-2, 2)
            m.running_var.uniform_(3, 5)
    return net.eval()


def write_photo(path, size, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def test_official_protocol_translates_as_test_py(tmp_path):
    """Resized to crop x crop with PIL's bicubic, train mode (batch norm on the image's own statistics,
    dropout drawn from seed 0), output at that size; the network's modes and running statistics are
    as before afterwards. With eval mode the same resize in eval mode; `full` keeps the size."""
    net = batchnorm_dropout_unet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    src = write_photo(tmp_path / "in" / "p.png", (80, 72))
    official = translate_paths(net, [src], tmp_path / "official", protocol=Protocol.official(64), progress=False)
    out = np.asarray(Image.open(official.written[0]))
    assert out.shape == (64, 64, 3)

    x = to_tensor(load_image(src).resize((64, 64), Image.BICUBIC))[None]
    reference = batchnorm_dropout_unet().train()
    torch.manual_seed(0)
    with torch.no_grad():
        expected = tensor_to_uint8(reference(x)[0])
    np.testing.assert_array_equal(out, expected)
    assert not net.training and all(torch.equal(v, before[k]) for k, v in net.state_dict().items())
    with torch.no_grad():  # a fresh copy: the train-mode pass above moved `reference`'s running statistics
        eval_out = tensor_to_uint8(batchnorm_dropout_unet()(x)[0])
    assert np.abs(eval_out.astype(int) - expected).mean() > 5  # the two modes really differ here

    evaluated = translate_paths(net, [src], tmp_path / "eval", protocol=Protocol.official(64, eval_mode=True),
                                progress=False)
    np.testing.assert_array_equal(np.asarray(Image.open(evaluated.written[0])), eval_out)
    full = translate_paths(net, [src], tmp_path / "full", protocol=FULL, progress=False)
    assert Image.open(full.written[0]).size == (80, 72)
    with pytest.raises(ValueError, match="one image per pass"):
        translate_paths(net, [src], tmp_path / "x", protocol=Protocol.official(64), batch_size=2, progress=False)


def test_official_protocol_repeats_its_dropout_draws_and_restores_the_random_state():
    net = batchnorm_dropout_unet()
    x = torch.rand(1, 3, 64, 64) * 2 - 1
    outs = []
    official = Protocol.official(64)
    for seed in (1, 2):  # whatever the caller's random state, the same draws; the caller's state is kept
        torch.manual_seed(seed)
        with official.modes(net), official.draws(net), torch.no_grad():
            outs.append(net(x))
        assert torch.equal(torch.rand(3), torch.rand(3, generator=torch.Generator().manual_seed(seed)))
    assert torch.equal(outs[0], outs[1])
    with official.modes(net), torch.no_grad():
        torch.manual_seed(5)  # other draws give another output: dropout is really on
        assert not torch.equal(net(x), outs[0])


def test_evaluate_run_and_translate_cli_under_the_official_protocol(tmp_path):
    """A pix2pix run (ResNet with batch norm and dropout): `evaluate` scores the resized pairs in train mode; the
    CLI writes crop-size outputs and refuses options that belong to the other protocol."""
    data = tiny_dataset(tmp_path / "data", n_train=4, n_test=2, size=40)
    run = tmp_path / "run"
    cfg = tiny_config(*METHOD_TINY["pix2pix"], "model.norm=batch", "model.dropout=true",
                      "data.load_size=40", "data.crop_size=32")
    train(data, run, cfg, max_steps=2, progress=False)
    scores, info = evaluate_checkpoint(run, protocol="official")
    assert info["protocol"].startswith("official: resized to 32x32") and "train mode" in info["protocol"]
    net = load_generator(run).train()
    expected = []
    for a, b in zip(sorted((data / "testA").iterdir()), sorted((data / "testB").iterdir())):
        x = to_tensor(load_image(a).resize((32, 32), Image.BICUBIC))[None]
        torch.manual_seed(0)  # each image's draws seeded afresh
        with torch.no_grad():
            fake = tensor_to_uint8(net(x)[0])
        real = tensor_to_uint8(to_tensor(load_image(b).resize((32, 32), Image.BICUBIC)))
        expected.append(image_scores(fake, real))
    assert scores["AtoB.l1"] == pytest.approx(mean_scores(expected)["l1"], rel=1e-6)
    full, info = evaluate_checkpoint(run)
    assert info["protocol"] == "full: full resolution, eval mode" and full["AtoB.l1"] != scores["AtoB.l1"]

    res = cyclegan("translate", run, data / "testA", "--out", tmp_path / "out", "--protocol", "official",
                   "--no-progress")
    assert res.returncode == 0, res.stderr[-2000:]
    assert {Image.open(p).size for p in (tmp_path / "out").iterdir()} == {(32, 32)}
    res = cyclegan("translate", run, data / "testA", "--out", tmp_path / "out2", "--protocol", "official",
                   "--crop-size", "16", "--eval", "--no-progress")
    assert res.returncode == 0 and {Image.open(p).size for p in (tmp_path / "out2").iterdir()} == {(16, 16)}
    res = cyclegan("evaluate", "run", run, "--protocol", "official", "--json")
    assert res.returncode == 0 and json.loads(res.stdout)["AtoB.l1"] == pytest.approx(scores["AtoB.l1"])
    for args, message in ((("--eval",), "--eval applies to --protocol official"),
                          (("--protocol", "official", "--batch-size", "2"), "one image per pass")):
        res = cyclegan("translate", run, data / "testA", "--out", tmp_path / "bad", *args)
        assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr


def test_pix2pix_learns_b_to_a_with_data_direction():
    """data.direction=BtoA: the generator maps B images (3 channels here) to A (1 channel), its L1
    target is a, the discriminator judges (b, a) pairs, and only BtoA translates."""
    cfg = tiny_config(*METHOD_TINY["pix2pix"], "data.direction=BtoA", "model.channels_a=1")
    torch.manual_seed(0)
    model = Pix2Pix.from_config(cfg).eval()
    assert model.directions == ("BtoA",)
    a, b = torch.rand(1, 1, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    out = model.translate(a, b)
    assert out.fake_b is None and torch.equal(out.fake_a, model.g_ab(b)) and out.fake_a.shape == a.shape
    losses = model.generator_losses(a, b, out)
    assert losses["g_l1"].item() == pytest.approx(100 * (out.fake_a - a).abs().mean().item(), rel=1e-6)
    d = model.discriminator_losses(a, b, out.fake_a, None)
    assert d["d_real"].item() == pytest.approx(gan_loss(model.d_b(torch.cat([b, a], 1)), True, cfg.loss.gan_mode).item())
    assert d["d_fake"].item() == pytest.approx(
        gan_loss(model.d_b(torch.cat([b, out.fake_a], 1)), False, cfg.loss.gan_mode).item())
    assert model.translator("BtoA").in_channels == 3 and model.translator("BtoA").out_channels == 1
    with pytest.raises(ValueError, match="translates BtoA only, not AtoB"):
        model.translator("AtoB")
    with pytest.raises(ConfigError, match="data.direction=BtoA chooses what a one-way method"):
        tiny_config("data.direction=BtoA")
    with pytest.raises(ConfigError, match="needs the AtoB mapping"):
        tiny_config(*METHOD_TINY["pix2pix"], "data.direction=BtoA", "eval.best_metric=AtoB.l1")


def test_reproduce_scores_photo_to_labels_and_the_fcn_score_of_labels_to_photo(tmp_path):
    """On photo/label pairs: CycleGAN gets both columns, pix2pix (A -> B) the segmentation ones,
    "pix2pix BtoA" (trained through the common loop, selected on held-out pairs by BtoA.l1) the
    FCN-score ones, which are the scorer's on the translations it wrote; the notes say the
    protocol and the scorer's real-photo row. The official protocol is scored apart."""
    root, palette = toy_dataset(tmp_path / "toy", n_train=6, n_test=2)
    scorer = tmp_path / "scorer.pt"
    train_scorer(root, scorer, palette=palette, config=ScorerConfig(size=32, ngf=4, epochs=1, batch_size=2))
    out = tmp_path / "out"
    small = [*TINY, "model.generator=resnet_6blocks", "eval.every_epochs=1", "eval.holdout=2", "eval.split=val"]
    rows = reproduce("baselines", root, out, budget="paper", overrides=small, progress=False,
                     variants=["CycleGAN", "pix2pix", "pix2pix BtoA"], segmentation=str(palette), fcn_scorer=scorer)
    final = {r["variant"]: r for r in rows if r["checkpoint"] == "final"}
    assert {"AtoB.pixel_accuracy", "BtoA.fcn_pixel_accuracy", "BtoA.fcn_mean_iou_all"} <= set(final["CycleGAN"])
    assert "AtoB.mean_iou_all" in final["pix2pix"] and "BtoA.fcn_pixel_accuracy" not in final["pix2pix"]
    backward = final["pix2pix BtoA"]
    assert "BtoA.fcn_pixel_accuracy" in backward and not any(k.startswith("AtoB.") for k in backward)
    written = out / "pix2pix_btoa" / "test_final" / "BtoA"
    assert sorted(p.name for p in written.iterdir()) == ["0.png", "1.png"]
    assert backward["BtoA.fcn_pixel_accuracy"] == fcn_score(written, root / "testB", scorer).pixel_accuracy
    evals = [json.loads(x) for x in (out / "pix2pix_btoa" / "evals.jsonl").read_text().splitlines()]
    assert {e["metric"] for e in evals} == {"BtoA.l1"} and evals[0]["split"] == "holdout"
    md = (out / "results.md").read_text()
    assert "B→A FCN per-pixel acc." in md and "Test-time protocol: full" in md
    assert "FCN-score of the real test photos (the scorer's own ceiling)" in md

    official = reproduce("baselines", root, out, budget="paper", overrides=small, progress=False,
                         variants=["pix2pix"], segmentation=str(palette), protocol="official")
    cache = json.loads((out / "pix2pix" / "reproduce_scores.json").read_text())
    assert cache["final"]["key"]["protocol"] == "official" and official[0]["AtoB.images"] == 2
    assert json.loads((out / "results.json").read_text())["protocol"] == {"name": "official", "eval_mode": False}
    assert "Test-time protocol: official" in (out / "results.md").read_text()
