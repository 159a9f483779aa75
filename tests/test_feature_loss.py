"""The paper's "feature loss + GAN" baseline (Sec. 5.1.3): L1 between VGG-16 relu4_2 features of an
image and its translation. The term's value, a training run that logs it, a frozen extractor that is
neither optimised nor checkpointed, resume, and `cyclegan reproduce baselines` on the CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
import torch

from cyclegan.config import ConfigError
from cyclegan.methods.cyclegan import CycleGAN
from cyclegan.experiments import BASELINES, reproduce, slug
from cyclegan.pool import ImagePool
from cyclegan.checkpoint import load_checkpoint
from cyclegan.training.loop import train
from cyclegan.training.state import build_optimizers
from cyclegan.training.step import train_step
from cyclegan.weights import load_feature_extractor

from helpers import TINY, cli_environ, random_vgg_weights, tiny_config, tiny_dataset

VARIANT = "Feature loss + GAN"


@pytest.fixture(scope="module")
def vgg16_file(tmp_path_factory):
    return random_vgg_weights(tmp_path_factory.mktemp("vgg") / "vgg16.pth")


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("feat") / "data", n_test=2)


def test_feature_terms_are_weighted_l1_of_relu4_2_and_appended_last(vgg16_file):
    cfg = tiny_config(*BASELINES[VARIANT], f"loss.feature_weights={vgg16_file}")
    torch.manual_seed(0)
    model = CycleGAN.from_config(cfg)
    a, b = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    t = model.translate(a, b)
    losses = model.generator_losses(a, b, t)
    assert list(losses) == ["g_ab", "g_ba", "cycle_a", "cycle_b", "feat_ab", "feat_ba", "total"]
    phi = load_feature_extractor("vgg16", ("relu4_2",), weights=vgg16_file)
    lam = cfg.loss.lambda_feature
    by_hand = lam * (phi(t.fake_b)["relu4_2"] - phi(a)["relu4_2"]).abs().mean()
    torch.testing.assert_close(losses["feat_ab"], by_hand)
    assert losses["feat_ab"] > 0 and losses["feat_ba"] > 0
    torch.testing.assert_close(losses["total"], sum(v for k, v in losses.items() if k != "total"))
    # The extractor is no part of the model: not a parameter, not in the state dict, not a submodule.
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == sum(p.numel() for net in (model.g_ab, model.g_ba, model.d_a, model.d_b) for p in net.parameters())
    assert all(k.split(".")[0] in ("g_ab", "g_ba", "d_a", "d_b") for k in model.state_dict())
    # Off by default: the existing objective is unchanged and needs no weights.
    plain = CycleGAN.from_config(tiny_config())
    assert "feat_ab" not in plain.generator_losses(a, b, plain.translate(a, b)) and plain._features is None


def test_a_training_step_moves_the_generators_not_the_extractor(vgg16_file):
    cfg = tiny_config(*BASELINES[VARIANT], f"loss.feature_weights={vgg16_file}")
    torch.manual_seed(0)
    model = CycleGAN.from_config(cfg).to("cpu")
    opt_g, opt_d = build_optimizers(model, cfg.optim)
    before_g = [p.clone() for p in model.g_ab.parameters()]
    losses, _ = train_step(model, torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32), opt_g, opt_d,
                           ImagePool(0), ImagePool(0))
    phi = model.feature_extractor(torch.device("cpu"))
    reference = torch.load(vgg16_file, weights_only=True)
    assert all(torch.equal(p, reference[f"features.{k.removeprefix('net.')}"]) for k, p in phi.state_dict().items())
    assert all(p.grad is None for p in phi.parameters())
    assert not any(p is q for group in (opt_g, opt_d) for pg in group.param_groups for p in pg["params"]
                   for q in phi.parameters())
    assert any(not torch.equal(p, q) for p, q in zip(before_g, model.g_ab.parameters()))
    assert {"feat_ab", "feat_ba", "g_ab", "d_b"} <= set(losses) and all(math.isfinite(v) for v in losses.values())


def test_feature_loss_run_trains_checkpoints_without_the_extractor_and_resumes(data, vgg16_file, tmp_path):
    cfg = tiny_config(*BASELINES[VARIANT], f"loss.feature_weights={vgg16_file}")
    run = tmp_path / "run"
    train(data, run, cfg, max_steps=5, progress=False)  # interrupted mid-run
    ckpt = load_checkpoint(run)
    assert set(ckpt["nets"]) == {"g_ab", "g_ba", "d_a", "d_b"}
    assert not any("features" in k or k.startswith("net.") for sd in ckpt["nets"].values() for k in sd)
    train(None, run, resume=True, progress=False)
    assert load_checkpoint(run)["progress"]["step"] == 12
    rows = [json.loads(line) for line in (run / "losses.jsonl").read_text().splitlines()]
    assert all({"feat_ab", "feat_ba"} <= set(r) and math.isfinite(r["feat_ab"]) and r["feat_ab"] > 0 for r in rows)
    assert "cycle_a" in rows[-1] and rows[-1]["cycle_a"] == 0  # no cycle in this baseline


def test_feature_loss_config_is_validated(data, tmp_path):
    with pytest.raises(ConfigError, match="lambda_feature must be >= 0"):
        tiny_config("loss.lambda_feature=-1")
    with pytest.raises(ConfigError, match="unknown feature network 'resnet50'; choose one of: vgg16"):
        tiny_config("loss.lambda_feature=1", "loss.feature_network=resnet50")
    with pytest.raises(ConfigError, match="vgg16 has no layer 'relu4_4'"):
        tiny_config("loss.lambda_feature=1", "loss.feature_layer=relu4_4")
    cfg = tiny_config("loss.lambda_feature=1", "loss.feature_weights=/nonexistent/vgg16.pth")
    model = CycleGAN.from_config(cfg)
    a = torch.zeros(1, 3, 32, 32)
    with pytest.raises(FileNotFoundError, match="/nonexistent/vgg16.pth does not exist"):
        model.generator_losses(a, a, model.translate(a, a))
    with pytest.raises(FileNotFoundError, match="/nonexistent/vgg16.pth does not exist"):
        train(data, tmp_path / "run", cfg, progress=False)  # before the first step
    assert not (tmp_path / "run" / "losses.jsonl").exists()


def test_cli_reproduce_baselines_with_local_feature_weights(data, vgg16_file, tmp_path):
    res = subprocess.run(
        [sys.executable, "-m", "cyclegan", "reproduce", "baselines", str(data), "--out", str(tmp_path),
         "--budget", "paper", "--variants", VARIANT, "--no-progress", "--max-images", "1",
         "--set", f"loss.feature_weights={vgg16_file}", *[a for t in TINY for a in ("--set", t)]],
        capture_output=True, text=True, timeout=300, env=cli_environ())
    assert res.returncode == 0, res.stderr[-3000:]
    assert f"| {VARIANT} |" in res.stdout
    assert "feat_ab" in (tmp_path / slug(VARIANT) / "losses.jsonl").read_text()
    # Where the weights are read from is not part of the run: another path reuses the finished run.
    stamp = (tmp_path / slug(VARIANT) / "checkpoints" / "latest.pt").stat().st_mtime_ns
    copy = tmp_path / "elsewhere.pth"
    copy.write_bytes(vgg16_file.read_bytes())
    rows = reproduce("baselines", data, tmp_path, budget="paper", variants=[VARIANT], max_test=1, progress=False,
                     overrides=[*TINY, f"loss.feature_weights={copy}"])
    assert rows[0]["variant"] == VARIANT
    assert (tmp_path / slug(VARIANT) / "checkpoints" / "latest.pt").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="another config"):
        reproduce("baselines", data, tmp_path, budget="paper", variants=[VARIANT], progress=False,
                  overrides=[*TINY, f"loss.feature_weights={copy}", "loss.feature_layer=relu3_1"])
