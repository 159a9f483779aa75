"""The paper's experiments: every ablation variant and baseline trains and translates on tiny data,
`reproduce` resumes and reuses runs, and the application presets load and name their datasets."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import pytest
import torch

from cyclegan.config import ConfigError, build_config, list_presets
from cyclegan.methods.cyclegan import CycleGAN
from cyclegan.evaluation import evaluate_checkpoint
from cyclegan.experiments import ABLATION, BASELINES, markdown_table, reproduce, slug, variant_config
from cyclegan.hub.datasets import DATASETS
from cyclegan.pool import ImagePool
from cyclegan.checkpoint import load_checkpoint
from cyclegan.training.loop import train
from cyclegan.training.state import build_optimizers
from cyclegan.training.step import train_step

from helpers import TINY, cli_environ, tiny_config, tiny_dataset


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("exp") / "data", n_test=2)


def logged_keys(run_dir) -> set[str]:
    return set(json.loads((run_dir / "losses.jsonl").read_text().splitlines()[-1]))


def test_every_ablation_variant_trains_evaluates_and_is_tabulated(data, tmp_path):
    rows = reproduce("ablation", data, tmp_path, budget="paper", overrides=TINY, progress=False)
    assert [r["variant"] for r in rows] == list(ABLATION)
    for r in rows:
        assert r["AtoB.paired_images"] == 2 and 0 <= r["AtoB.acc@5"] <= 1 and r["BtoA.cycle_l1"] >= 0
    keys = {name: logged_keys(tmp_path / slug(name)) for name in ABLATION}
    assert not keys["Cycle alone"] & {"g_ab", "g_ba", "d_a", "d_b"}  # no adversary at all
    assert {"g_ab", "d_b", "cycle_a", "cycle_b"} <= keys["GAN alone"] and "idt_ab" not in keys["GAN alone"]
    assert {"idt_ab", "idt_ba"} <= keys["CycleGAN + identity"] and "idt_ab" not in keys["CycleGAN"]
    last = {name: json.loads((tmp_path / slug(name) / "losses.jsonl").read_text().splitlines()[-1]) for name in ABLATION}
    assert last["GAN alone"]["cycle_a"] == last["GAN alone"]["cycle_b"] == 0
    assert last["GAN + forward cycle"]["cycle_b"] == 0 < last["GAN + forward cycle"]["cycle_a"]
    assert last["GAN + backward cycle"]["cycle_a"] == 0 < last["GAN + backward cycle"]["cycle_b"]
    table = (tmp_path / "results.md").read_text()
    assert table.startswith("| variant | A→B RMSE") and all(f"| {name} |" in table for name in ABLATION)
    assert json.loads((tmp_path / "results.json").read_text())["rows"] == rows

    # Running again reuses the finished runs and their scores: nothing is retrained.
    stamps = {name: (tmp_path / slug(name) / "checkpoints" / "latest.pt").stat().st_mtime_ns for name in ABLATION}
    assert reproduce("ablation", data, tmp_path, budget="paper", overrides=TINY, progress=False) == rows
    assert stamps == {n: (tmp_path / slug(n) / "checkpoints" / "latest.pt").stat().st_mtime_ns for n in ABLATION}


def test_baselines_and_an_interrupted_variant_resumes(data, tmp_path):
    simgan = tmp_path / "simgan"
    cfg = build_config([], [*TINY, *BASELINES["SimGAN"]])
    train(data, simgan, cfg, max_steps=5, progress=False)  # interrupted mid-run
    rows = reproduce("baselines", data, tmp_path, budget="paper", overrides=TINY, variants=["SimGAN"], progress=False)
    assert load_checkpoint(simgan)["progress"]["step"] == 12 and rows[0]["variant"] == "SimGAN"
    assert {"self_ab", "self_ba", "g_ab"} <= logged_keys(simgan) and "cycle_a" in logged_keys(simgan)
    with pytest.raises(ValueError, match="another config"):
        reproduce("baselines", data, tmp_path, budget="paper", overrides=[*TINY, "model.ngf=8"], variants=["SimGAN"])
    with pytest.raises(ValueError, match="unknown variant"):
        reproduce("ablation", data, tmp_path, variants=["Cycle only"])


def test_joint_and_paired_baselines_are_tabulated(data, tmp_path):
    rows = reproduce("baselines", data, tmp_path, budget="paper", overrides=TINY, variants=["BiGAN/ALI", "pix2pix"],
                     progress=False)
    bigan, pix2pix = rows
    assert {"AtoB.l1", "BtoA.cycle_l1"} <= set(bigan) and "AtoB.l1" in pix2pix and "BtoA.cycle_l1" not in pix2pix
    assert {"g_gan", "g_l1", "d_real"} <= logged_keys(tmp_path / "pix2pix")
    line = next(x for x in (tmp_path / "results.md").read_text().splitlines() if x.startswith("| pix2pix |"))
    assert line.endswith("| — | — |")  # no cycle errors for a one-way model
    # The small budget trains pix2pix's U-Net on whole 128 px images (it cannot take 64 px crops).
    small = variant_config("baselines", "pix2pix", "small")
    assert (small.model.generator, small.data.crop_size, small.model.norm) == ("unet_128", 128, "batch")
    assert small.model.ngf == 32 and small.optim.n_epochs == 1  # the rest of the small budget applies
    assert variant_config("baselines", "pix2pix", "small", overrides=["model.ngf=4"]).model.ngf == 4


def test_cycle_alone_leaves_the_discriminators_untouched():
    cfg = tiny_config("loss.lambda_gan=0")
    torch.manual_seed(0)
    model = CycleGAN.from_config(cfg)
    before = [p.clone() for p in model.d_a.parameters()]
    opt_g, opt_d = build_optimizers(model, cfg.optim)
    losses, _ = train_step(model, torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), opt_g, opt_d,
                           ImagePool(0), ImagePool(0))
    assert set(losses) == {"cycle_a", "cycle_b", "idt_ab", "idt_ba"}
    assert all(torch.equal(a, b) for a, b in zip(before, model.d_a.parameters()))


def test_loss_weights_are_validated():
    with pytest.raises(ConfigError, match="lambda_gan must be >= 0"):
        tiny_config("loss.lambda_gan=-1")
    with pytest.raises(ConfigError, match="channels_a == model.channels_b"):
        tiny_config("loss.lambda_self_reg=10", "model.channels_b=1")


APPLICATIONS = ["maps", "cityscapes", "facades", "horse2zebra", "apple2orange", "summer2winter_yosemite",
                "monet2photo", "style_monet", "style_cezanne", "style_ukiyoe", "style_vangogh", "iphone2dslr_flower"]


@pytest.mark.parametrize("preset", APPLICATIONS)
def test_application_presets_load_and_name_their_dataset(preset):
    assert preset in list_presets()
    cfg = build_config([preset])
    assert cfg.data.name in DATASETS or cfg.data.name == "cityscapes"
    if preset == "cityscapes":  # the paper's 128 px setting (Appendix 7.2)
        assert (cfg.model.generator, cfg.data.crop_size) == ("resnet_6blocks", 128)
    else:
        assert (cfg.model.generator, cfg.data.load_size, cfg.data.crop_size) == ("resnet_9blocks", 286, 256)
    assert (cfg.loss.lambda_a, cfg.loss.lambda_identity, cfg.loss.pool_size, cfg.optim.n_epochs) == (10, 0.5, 50, 100)


def test_cli_reproduce(data, tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "cyclegan", "reproduce", "ablation", str(data), "--out", str(tmp_path),
         "--budget", "paper", "--variants", "GAN alone", "CycleGAN", "--no-progress", "--max-images", "1",
         *[a for t in TINY for a in ("--set", t)]], capture_output=True, text=True, env=cli_environ())
    assert res.returncode == 0, res.stderr[-3000:]
    assert "| GAN alone |" in res.stdout and "| CycleGAN |" in res.stdout and "A→B acc δ=5" in res.stdout
    assert markdown_table(json.loads((tmp_path / "results.json").read_text())["rows"]) in res.stdout


def test_seeds_are_trained_apart_and_reported_as_mean_and_spread(tmp_path):
    data = tiny_dataset(tmp_path / "data", n_train=8, n_test=2)
    out = tmp_path / "out"
    select = ["eval.every_epochs=1", "eval.holdout=2"]
    rows = reproduce("ablation", data, out, budget="paper", overrides=[*TINY, *select], variants=["CycleGAN"],
                     seeds=[0, 1], progress=False)
    runs = [out / "cyclegan-seed0", out / "cyclegan-seed1"]
    assert [load_checkpoint(r)["config"]["train"]["seed"] for r in runs] == [0, 1]
    final, selected = rows
    assert (final["checkpoint"], final["n"], final["seeds"]) == ("final", 2, [0, 1])
    scores = [evaluate_checkpoint(r)[0]["AtoB.l1"] for r in runs]
    assert scores[0] != scores[1]  # the seeds trained different models
    assert final["AtoB.l1"] == pytest.approx(statistics.fmean(scores))
    assert final["AtoB.l1.std"] == pytest.approx(statistics.stdev(scores))
    best = [load_checkpoint(r / "checkpoints" / "best.pt")["progress"]["best_epoch"] for r in runs]
    assert selected["checkpoint"] == "selected" and selected["epochs"] == best
    picked = [evaluate_checkpoint(r / "checkpoints" / "best.pt")[0]["AtoB.l1"] for r in runs]
    assert selected["AtoB.l1"] == pytest.approx(statistics.fmean(picked))
    table = (out / "results.md").read_text()
    assert " ± " in table and "selected on the validation split" in table and "seeds 0, 1 (n = 2" in table
    record = json.loads((out / "results.json").read_text())
    assert record["seeds"] == [0, 1] and [r["seed"] for r in record["runs"]] == [0, 1]
    # Re-running reuses both runs and their cached scores.
    stamps = [(r / "checkpoints" / "latest.pt").stat().st_mtime_ns for r in runs]
    assert reproduce("ablation", data, out, budget="paper", overrides=[*TINY, *select], variants=["CycleGAN"],
                     seeds=[0, 1], progress=False) == rows
    assert stamps == [(r / "checkpoints" / "latest.pt").stat().st_mtime_ns for r in runs]
    with pytest.raises(ValueError, match="different seeds"):
        reproduce("ablation", data, out, budget="paper", overrides=TINY, seeds=[1, 1])


def test_the_small_budget_selects_on_held_out_images():
    cfg = variant_config("ablation", "CycleGAN", "small")
    assert (cfg.eval.every_epochs, cfg.eval.split, cfg.eval.holdout) == (1, "val", 50)
    assert variant_config("baselines", "CoGAN", "small").eval.every_epochs == 0  # latent search: too slow


@pytest.mark.parametrize("preset", ["cut", "fastcut", "cut_horse2zebra", "cut_cat2dog", "cut_cityscapes"])
def test_cut_presets_hold_the_reference_settings(preset):
    from cyclegan.methods import build_method, check_config

    cfg = build_config([preset])
    check_config(cfg)
    fast = preset == "fastcut"
    assert (cfg.model.method, cfg.model.generator, cfg.model.downsample, cfg.model.upsample) == (
        "fastcut" if fast else "cut", "resnet_9blocks", "antialias", "antialias")
    assert (cfg.model.init_type, cfg.model.init_gain, cfg.loss.pool_size, cfg.loss.gan_mode) == ("xavier", 0.02, 0, "lsgan")
    assert (cfg.optim.n_epochs, cfg.optim.n_epochs_decay) == ((150, 50) if fast else (200, 200))
    opts = build_method(cfg).opts
    assert (opts.lambda_nce, opts.nce_idt, opts.flip_equivariance) == ((10.0, False, True) if fast else (1.0, True, False))
    assert (opts.nce_layers, opts.num_patches, opts.netf_nc, opts.nce_t) == ("0,4,8,12,16", 256, 256, 0.07)
    assert cfg.data.direction == ("BtoA" if preset == "cut_cityscapes" else "AtoB")
