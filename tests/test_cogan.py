"""The CoGAN baseline (baselines.cogan*): weight sharing, training and exact resume, latent search,
the translator as a generator, evaluation and `reproduce`, the `cyclegan cogan` command line."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch
from PIL import Image

from cyclegan.baselines.cogan import (
    CoGANConfig, CoupledGenerator, build_cogan, discriminator_losses, generator_losses,
)
from cyclegan.baselines.cogan_search import CoGANTranslator, latent_search
from cyclegan.baselines.cogan_train import FORMAT, load_cogan, load_translators, train_cogan
from cyclegan.cli import main
from cyclegan.config import ConfigError
from cyclegan.evaluation import evaluate_checkpoint
from cyclegan.experiments import BASELINES, reproduce
from cyclegan.inference import translate_tensor
from cyclegan.training.checkpoint import CheckpointError

from helpers import TINY, tiny_dataset

TINY_COGAN = CoGANConfig(size=32, nz=8, ngf=8, ndf=8, batch_size=2, epochs=1, epochs_decay=1, search_steps=30,
                         log_every=1, deterministic=True)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("cogan") / "data")  # 6 train, 2 test images of 32 px per domain


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cogan") / "run"
    result = train_cogan(data, run_dir, TINY_COGAN, progress=False)
    return run_dir, result


def calibrated(cfg: CoGANConfig) -> CoupledGenerator:
    """A fresh generator whose batch-norm running statistics are those of its own outputs (as after
    training), so that it renders varied images in eval mode."""
    gen, _ = build_cogan(cfg)
    for m in gen.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average
    with torch.no_grad():
        gen(torch.randn(64, cfg.nz, generator=torch.Generator().manual_seed(1)))
    return gen.eval()


def grads(module: torch.nn.Module) -> list[torch.Tensor | None]:
    return [p.grad for p in module.parameters()]


def test_shared_layers_are_one_set_of_weights_trained_by_both_domains():
    gen, disc = build_cogan(TINY_COGAN)
    shared_g, shared_d = set(map(id, gen.shared.parameters())), set(map(id, disc.shared.parameters()))
    assert shared_g and shared_d
    # Every parameter exists once: the heads / stems hold no copy of a shared layer.
    assert len({id(p) for p in gen.parameters()}) == len(list(gen.parameters()))
    assert not shared_g & set(map(id, [*gen.head_a.parameters(), *gen.head_b.parameters()]))
    assert not shared_d & set(map(id, [*disc.stem_a.parameters(), *disc.stem_b.parameters()]))

    z = torch.randn(4, TINY_COGAN.nz)
    for domain in ("a", "b"):  # each domain's loss alone reaches the shared layers, and only its own head
        gen.zero_grad(set_to_none=True)
        gen.render(z, domain).square().mean().backward()
        assert all(g is not None and g.abs().sum() > 0 for g in grads(gen.shared))
        other = gen.head_b if domain == "a" else gen.head_a
        assert all(g is None for g in grads(other))
        disc.zero_grad(set_to_none=True)
        disc(torch.rand(4, 3, 32, 32) * 2 - 1, domain).square().mean().backward()
        assert all(g is not None and g.abs().sum() > 0 for g in grads(disc.shared))
        assert all(g is None for g in grads(disc.stem_b if domain == "a" else disc.stem_a))

    # Changing a shared weight changes both domains' images; a head's weight only its own domain's.
    gen.eval()
    with torch.no_grad():
        a0, b0 = gen(z)
        gen.shared[0].weight.add_(0.05)
        a1, b1 = gen(z)
        gen.head_a[-2].weight.add_(0.05)
        a2, b2 = gen(z)
    assert not torch.equal(a0, a1) and not torch.equal(b0, b1)
    assert not torch.equal(a1, a2) and torch.equal(b1, b2)


@pytest.mark.parametrize("size", [16, 32, 64, 128, 256])
def test_sizes_and_losses(size):
    cfg = CoGANConfig(size=size, nz=4, ngf=2, ndf=2, channels_b=1, private_layers=2)
    gen, disc = build_cogan(cfg)
    fake_a, fake_b = gen(torch.randn(2, 4))
    assert fake_a.shape == (2, 3, size, size) and fake_b.shape == (2, 1, size, size)
    assert fake_a.abs().max() <= 1
    assert disc(fake_a, "a").shape == (2,) and disc(fake_b, "b").shape == (2,)
    for mode in ("vanilla", "lsgan", "hinge"):
        d = discriminator_losses(disc, fake_a, fake_b, fake_a, fake_b, mode)
        g = generator_losses(disc, fake_a, fake_b, mode)
        assert set(d) == {"d_a", "d_b"} and set(g) == {"g_a", "g_b"}
        assert all(torch.isfinite(v) for v in (*d.values(), *g.values()))


def test_tiny_run_trains_and_writes_a_safe_checkpoint(run, data):
    run_dir, result = run
    assert result["step"] == 2 * 3  # 2 epochs of 6 images in batches of 2
    assert result["epoch"] == 3 and set(result["losses"]) == {"d_a", "d_b", "g_a", "g_b"}
    assert all(torch.isfinite(torch.tensor(v)) for v in result["losses"].values())
    ckpt = torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)
    assert ckpt["format"] == FORMAT == "cyclegan-cogan"
    assert CoGANConfig.from_dict(ckpt["config"]) == TINY_COGAN
    assert ckpt["progress"]["step"] == 6 and ckpt["run"]["dataroot"] == str(data.resolve())
    assert "size: 32" in (run_dir / "cogan.yaml").read_text()
    # The discriminators learned something: the trained weights differ from the initial ones.
    gen0, _ = build_cogan(TINY_COGAN)
    assert not torch.equal(gen0.shared[0].weight, ckpt["nets"]["generator"]["shared.0.weight"])


def test_resume_continues_to_the_same_weights_as_an_uninterrupted_run(run, data, tmp_path):
    full, _ = run
    part = tmp_path / "part"
    assert train_cogan(data, part, TINY_COGAN, max_steps=2, progress=False)["step"] == 2
    assert train_cogan(data, part, resume=True, max_steps=4, progress=False)["step"] == 4  # mid-epoch 2
    result = train_cogan(None, part, resume=True, progress=False)  # the dataroot is the recorded one
    assert result["step"] == 6 and result["epoch"] == 3
    a, b = load_cogan(full), load_cogan(part)
    assert a["progress"] == b["progress"]
    for net in ("generator", "discriminator"):
        for key, value in a["nets"][net].items():
            assert torch.equal(value, b["nets"][net][key]), f"{net}.{key} differs after resume"
    # A finished run resumed does nothing; a new run over it or another config is refused.
    stamp = (part / "checkpoints" / "latest.pt").stat().st_mtime_ns
    assert train_cogan(None, part, resume=True, progress=False)["step"] == 6
    assert (part / "checkpoints" / "latest.pt").stat().st_mtime_ns == stamp
    with pytest.raises(FileExistsError, match="already holds a run"):
        train_cogan(data, part, TINY_COGAN, progress=False)
    with pytest.raises(ConfigError, match="another config"):
        train_cogan(data, part, CoGANConfig(size=32), resume=True, progress=False)


def test_latent_search_finds_a_code_that_renders_the_image():
    gen = calibrated(TINY_COGAN)
    with torch.no_grad():
        target = gen.render(torch.randn(3, TINY_COGAN.nz, generator=torch.Generator().manual_seed(7)), "a")
    before = [p.detach().clone() for p in gen.state_dict().values()]
    _, random_err = latent_search(gen, target, "a", steps=0)  # the random starting points
    z, err = latent_search(gen, target, "a", steps=150)
    assert (err < 0.2 * random_err).all(), (err, random_err)
    with torch.no_grad():  # the returned error is that of the returned code
        assert torch.allclose((gen.render(z, "a") - target).abs().flatten(1).mean(1), err, atol=1e-5)
    # More starting points never fit worse (the first one is the single-start search).
    _, err4 = latent_search(gen, target, "a", steps=150, restarts=4)
    assert (err4 <= err + 1e-4).all()
    # The generator is left as it was: weights, statistics, mode, no gradients.
    assert all(torch.equal(x, y) for x, y in zip(before, gen.state_dict().values()))
    assert not gen.training and all(p.grad is None for p in gen.parameters())


def test_translator_works_as_a_generator_at_any_size(run):
    t_ab, t_ba = load_translators(run[0], steps=5)
    assert (t_ab.in_channels, t_ab.out_channels, t_ab.size_multiple) == (3, 3, 1) and t_ba.direction == "BtoA"
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = translate_tensor(t_ab, x)  # under inference_mode: the search still gets its gradients
    assert y.shape == x.shape and y.abs().max() <= 1
    assert torch.equal(y, translate_tensor(t_ab, x))  # the same starting points: repeatable
    odd = translate_tensor(t_ba, torch.rand(3, 45, 29) * 2 - 1)  # resized to 32 x 32 and back
    assert odd.shape == (3, 45, 29)
    gray = calibrated(CoGANConfig(size=16, nz=4, ngf=4, channels_b=1))
    assert CoGANTranslator(gray, "AtoB", steps=2)(torch.zeros(1, 3, 20, 20)).shape == (1, 1, 20, 20)
    with pytest.raises(ValueError, match=r"expected \(B, 1, H, W\) images for BtoA"):
        CoGANTranslator(gray, "BtoA", steps=2)(torch.zeros(1, 3, 16, 16))


def test_evaluate_and_reproduce_score_a_cogan_run(data, tmp_path):
    assert callable(BASELINES["CoGAN"])
    palette = tmp_path / "palette.txt"
    palette.write_text("road 255 255 255\nwater 170 211 223\nother* 0 0 0\n")
    rows = reproduce("baselines", data, tmp_path / "out", budget="paper", variants=["CoGAN"],
                     overrides=[*TINY, "train.deterministic=true"], segmentation=str(palette), progress=False)
    run_dir = tmp_path / "out" / "cogan"
    assert load_cogan(run_dir)["progress"]["step"] == 12  # TINY: 1 + 1 epochs of 6 images, batch 1
    (row,) = rows
    assert row["variant"] == "CoGAN" and row["AtoB.paired_images"] == 2 and row["BtoA.images"] == 2
    assert row["AtoB.cycle_l1"] >= 0 and row["BtoA.cycle_l1"] >= 0 and 0 <= row["AtoB.acc@5"] <= 1
    assert 0 <= row["AtoB.pixel_accuracy"] <= 1 and (run_dir / "test_AtoB" / "00000.png").is_file()
    scores, info = evaluate_checkpoint(run_dir, max_images=1)
    assert info["step"] == 12 and scores["AtoB.images"] == 1 and "BtoA.l1" in scores
    # Running again reuses the finished run and its scores.
    stamp = (run_dir / "checkpoints" / "latest.pt").stat().st_mtime_ns
    assert reproduce("baselines", data, tmp_path / "out", budget="paper", variants=["CoGAN"],
                     overrides=[*TINY, "train.deterministic=true"], segmentation=str(palette), progress=False) == rows
    assert (run_dir / "checkpoints" / "latest.pt").stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match="CoGAN baseline: size must be a power of two"):
        reproduce("baselines", data, tmp_path / "odd", budget="paper", variants=["CoGAN"],
                  overrides=[*TINY, "data.crop_size=24"], progress=False)


@pytest.mark.parametrize("kwargs, message", [
    ({"size": 48}, "size must be a power of two from 16 to 512"),
    ({"size": 32, "private_layers": 4}, "private_layers must be from 1 to 3 at size 32"),
    ({"gan_mode": "wgangp"}, "gan_mode='wgangp' is not valid; choose one of: vanilla, lsgan, hinge"),
    ({"channels_a": 2}, "channels_a / channels_b must be 1"),
    ({"epochs": 0}, "epochs + epochs_decay must be at least 1"),
])
def test_bad_configs_are_refused_with_a_clear_message(kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        CoGANConfig(**kwargs)
    with pytest.raises(ConfigError, match="unknown config key 'sise'; valid keys here: batch_size"):
        CoGANConfig.from_overrides(["sise=32"])


def test_other_checkpoints_are_refused(run, tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"format": "cyclegan-checkpoint"}, other)
    with pytest.raises(CheckpointError, match="not a CoGAN checkpoint"):
        load_cogan(other)
    with pytest.raises(CheckpointError, match="no checkpoints/latest.pt"):
        load_translators(tmp_path)
    with pytest.raises(ValueError, match=r"expected \(B, 3, 32, 32\) images of domain a"):
        latent_search(load_translators(run[0])[0].generator, torch.zeros(1, 3, 16, 16), "a")


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cyclegan", *map(str, args)], capture_output=True, text=True,
                          timeout=120, check=False)


def test_cli_trains_resumes_and_translates_as_a_subprocess(data, tmp_path):
    run_dir, out = tmp_path / "run", tmp_path / "out"
    sets = [a for kv in ("size=32", "nz=8", "ngf=4", "ndf=4", "batch_size=3", "search_steps=3")
            for a in ("--set", kv)]
    result = cli("cogan", "train", data, "--run-dir", run_dir, *sets, "--max-steps", 1, "--no-progress")
    assert result.returncode == 0, result.stderr
    result = cli("cogan", "train", "--resume", "--run-dir", run_dir, "--max-steps", 3, "--no-progress")
    assert result.returncode == 0 and "step 3, epoch 2" in result.stdout, result.stderr
    result = cli("cogan", "translate", run_dir, data / "testB", out, "--direction", "BtoA", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert Image.open(out / "00000.png").size == (32, 32) and (out / "00001.png").is_file()


def test_cli_errors_are_one_line(data, tmp_path, capsys):
    assert main(["cogan", "train", str(data), "--run-dir", str(tmp_path / "bad"), "--set", "size=100"]) == 1
    assert capsys.readouterr().err == (
        "cyclegan: error: size must be a power of two from 16 to 512 (16, 32, 64, 128, 256, 512), got 100\n")
    assert main(["cogan", "translate", str(data), str(data / "testA"), str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cyclegan: error:") and "has no checkpoints/latest.pt" in err and err.count("\n") == 1
    with pytest.raises(SystemExit):
        main(["cogan", "train", "--resume", "--run-dir", str(tmp_path), "--set", "size=32"])
    assert "--set cannot change a resumed run" in capsys.readouterr().err
