"""The baselines with their own networks: pix2pix (paired, D steps first) and BiGAN/ALI (one joint
discriminator), plus the paired dataset pix2pix reads."""

from __future__ import annotations

import copy
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.config import ConfigError, DataConfig, build_config
from cyclegan.data import AlignedDataset, DataError
from cyclegan.evaluation import evaluate_checkpoint
from cyclegan.experiments import BASELINES
from cyclegan.inference import load_generator
from cyclegan.losses import gan_loss
from cyclegan.methods import build_method
from cyclegan.pool import ImagePool
from cyclegan.checkpoint import load_checkpoint
from cyclegan.training.loop import train
from cyclegan.training.state import build_optimizers
from cyclegan.training.step import train_step

from helpers import tiny_config, tiny_dataset

PIX2PIX = ["model.method=pix2pix", "loss.lambda_identity=0", "data.mode=aligned", "loss.pool_size=0", "loss.gan_mode=vanilla",
           "model.norm=batch", "model.generator=unet_128", "model.dropout=true", "data.load_size=128",
           "data.crop_size=128"]
BIGAN = ["model.method=bigan", "loss.pool_size=0", "loss.lambda_identity=0"]


def records(run) -> list[dict]:
    return [json.loads(line) for line in (run / "losses.jsonl").read_text().splitlines()]


# --- paired data ---------------------------------------------------------------------------------

def test_aligned_side_by_side_splits_a_left_b_right_with_one_crop_and_flip(tmp_path):
    root = tmp_path / "data" / "train"
    root.mkdir(parents=True)
    ab = np.zeros((40, 80, 3), np.uint8)
    ab[:, :40] = np.arange(40, dtype=np.uint8)[None, :, None] * 5  # A: a horizontal ramp
    ab[:, 40:] = 255 - ab[:, :40]  # B: the mirrored ramp, pixel-aligned with A
    Image.fromarray(ab).save(root / "0.png")
    ds = AlignedDataset.from_root(tmp_path / "data", DataConfig(preprocess="crop", crop_size=32, flip=True))
    seen_flips = set()
    for seed in range(8):
        item = ds[(0, seed)]
        a, b = item["a"], item["b"]
        assert a.shape == b.shape == (3, 32, 32)
        torch.testing.assert_close(a, -b, atol=1e-6, rtol=0)  # same crop and flip for both halves
        seen_flips.add(bool(a[0, 0, 0] > a[0, 0, -1]))
    assert seen_flips == {True, False}


def test_aligned_folders_pair_by_name_and_skip_bad_pairs(tmp_path, caplog):
    for domain, colour in (("trainA", 50), ("trainB", 200)):
        (tmp_path / domain).mkdir()
        for name in ("x", "y", "z"):
            Image.new("RGB", (32, 32), (colour,) * 3).save(tmp_path / domain / f"{name}.png")
    Image.new("RGB", (32, 32)).save(tmp_path / "trainA" / "only_a.png")
    Image.new("RGB", (48, 48)).save(tmp_path / "trainB" / "y.png")  # y: two sizes -> skipped
    ds = AlignedDataset.from_root(tmp_path, DataConfig(preprocess="none", flip=False))
    assert [p[0].stem for p in ds.pairs] == ["x", "y", "z"]
    item = ds[1]
    assert item["a_path"].endswith("z.png") and item["skipped"] == 1
    assert item["a"].mean() < 0 < item["b"].mean()
    assert "two sizes" in caplog.text and "no partner" in caplog.text


def test_aligned_data_missing_gives_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="side by side"):
        AlignedDataset.from_root(tmp_path, DataConfig())


# --- pix2pix -------------------------------------------------------------------------------------

def test_pix2pix_preset_is_the_baseline_of_reproduce():
    preset, variant = build_config(["pix2pix"]), build_config([], BASELINES["pix2pix"])
    assert (preset.model, preset.loss, preset.data) == (variant.model, variant.loss, variant.data)


def test_pix2pix_config_rules():
    no_identity = "loss.lambda_identity=0"
    with pytest.raises(ConfigError, match="data.mode=aligned"):
        tiny_config("model.method=pix2pix", "loss.pool_size=0", no_identity)
    with pytest.raises(ConfigError, match="pool_size=0"):
        tiny_config("model.method=pix2pix", "data.mode=aligned", no_identity)
    with pytest.raises(ConfigError, match="pool_size=0"):
        tiny_config("model.method=bigan", no_identity)


def test_pix2pix_steps_the_discriminator_first_then_the_generator_against_it():
    cfg = tiny_config(*PIX2PIX)
    torch.manual_seed(0)
    model = build_method(cfg)
    assert set(model.networks()) == {"g_ab", "d_b"}
    assert model.d_b.model[0].in_channels == 6  # conditional: judges (a, b) stacked
    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(1, 3, 128, 128, generator=g) * 2 - 1, torch.rand(1, 3, 128, 128, generator=g) * 2 - 1
    manual = copy.deepcopy(model)

    opt_g, opt_d = build_optimizers(model, cfg.optim)
    torch.manual_seed(5)  # dropout draws
    losses, _ = train_step(model, a, b, opt_g, opt_d, ImagePool(0), ImagePool(0))
    assert set(losses) == {"g_gan", "g_l1", "d_fake", "d_real"}

    # The official Pix2PixModel.optimize_parameters, written out.
    m_opt_g, m_opt_d = build_optimizers(manual, cfg.optim)
    torch.manual_seed(5)
    fake = manual.g_ab(a)
    d_fake = gan_loss(manual.d_b(torch.cat([a, fake.detach()], 1)), False, "vanilla")
    d_real = gan_loss(manual.d_b(torch.cat([a, b], 1)), True, "vanilla")
    m_opt_d.zero_grad()
    (0.5 * (d_fake + d_real)).backward()
    m_opt_d.step()
    for p in manual.d_b.parameters():
        p.requires_grad_(False)
    g_gan = gan_loss(manual.d_b(torch.cat([a, fake], 1)), True, "vanilla")
    g_l1 = torch.nn.functional.l1_loss(fake, b) * 100
    m_opt_g.zero_grad()
    (g_gan + g_l1).backward()
    m_opt_g.step()

    assert losses["d_fake"] == pytest.approx(d_fake.item(), rel=1e-6)
    assert losses["g_gan"] == pytest.approx(g_gan.item(), rel=1e-6)  # judged by the updated D
    assert losses["g_l1"] == pytest.approx(g_l1.item(), rel=1e-6)
    for (name, p), q in zip(model.state_dict().items(), manual.state_dict().values()):
        torch.testing.assert_close(p, q, msg=name)


def test_pix2pix_trains_evaluates_and_exports(tmp_path):
    data = tiny_dataset(tmp_path / "data", n_train=3, n_test=2, size=128)
    run = tmp_path / "run"
    train(data, run, tiny_config(*PIX2PIX, "optim.n_epochs=1", "optim.n_epochs_decay=0"), progress=False)
    assert {k for r in records(run) for k in r if k in ("g_gan", "g_l1", "d_fake", "d_real")} == {
        "g_gan", "g_l1", "d_fake", "d_real"}
    ckpt = load_checkpoint(run)
    assert set(ckpt["nets"]) == {"g_ab", "d_b"}
    assert sorted(p.name for p in (run / "generators").iterdir()) == ["latest_net_G.pth", "latest_net_G.pth.sha256"]
    scores, _ = evaluate_checkpoint(run, device="cpu")
    assert {"AtoB.l1", "AtoB.ssim", "AtoB.acc@5"} <= set(scores)
    assert not any(k.startswith("BtoA") for k in scores) and "AtoB.cycle_l1" not in scores
    assert load_generator(run, "AtoB").out_channels == 3
    with pytest.raises(ValueError, match="pix2pix translates AtoB only, not BtoA"):
        load_generator(run, "BtoA")
    # The exported file is an official pix2pix generator: translate with it from the CLI.
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "cyclegan", "translate", str(run / "generators" / "latest_net_G.pth"),
                        str(data / "testA"), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.rglob("*.png")) == ["00000.png", "00001.png"]


# --- BiGAN / ALI ---------------------------------------------------------------------------------

def test_bigan_losses_flip_the_discriminator_labels():
    cfg = tiny_config(*BIGAN)
    torch.manual_seed(0)
    model = build_method(cfg)
    assert set(model.networks()) == {"g_ab", "g_ba", "d_joint"}
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    t = model.translate(a, b)
    g, d = model.generator_losses(a, b, t), model.discriminator_losses(a, b, t.fake_a, t.fake_b)
    forward, backward = model.judge(a, t.fake_b), model.judge(t.fake_a, b)
    assert g["g_ab"].item() == pytest.approx(((forward - 0) ** 2).mean().item(), rel=1e-5)  # wants label "fake"
    assert g["g_ba"].item() == pytest.approx(((backward - 1) ** 2).mean().item(), rel=1e-5)  # wants "real"
    expected_d = 0.5 * (((forward - 1) ** 2).mean() + (backward ** 2).mean())
    assert d["d_joint"].item() == pytest.approx(expected_d.item(), rel=1e-5)


def test_bigan_trains_resumes_and_scores_both_directions(tmp_path):
    data = tiny_dataset(tmp_path / "data")
    run = tmp_path / "run"
    train(data, run, tiny_config(*BIGAN), max_steps=5, progress=False)  # interrupted
    train(None, run, resume=True, progress=False)  # continues to the end: 2 epochs of 6 steps
    logged = records(run)
    assert [r["step"] for r in logged] == list(range(1, 13))
    assert all(np.isfinite(r[k]) for r in logged for k in ("g_ab", "g_ba", "d_joint"))
    ckpt = load_checkpoint(run)
    assert set(ckpt["nets"]) == {"g_ab", "g_ba", "d_joint"} and ckpt["progress"]["step"] == 12
    assert ckpt["nets"]["d_joint"]["model.0.weight"].shape[1] == 6  # judges (a, b) stacked
    scores, _ = evaluate_checkpoint(run, device="cpu")
    assert {"AtoB.cycle_l1", "BtoA.cycle_l1", "AtoB.l1"} <= set(scores)


def test_baselines_refuse_cyclegan_only_terms():
    with pytest.raises(ConfigError, match="lambda_identity=0"):
        tiny_config("model.method=bigan", "loss.pool_size=0")
    with pytest.raises(ConfigError, match="model.method=bigan; use one of: lsgan, vanilla"):
        tiny_config(*BIGAN, "loss.gan_mode=hinge")
    with pytest.raises(ConfigError, match=r"needs both mappings \(a cycle\)"):
        tiny_config(*PIX2PIX, "eval.best_metric=cycle_l1")
