"""The CoGAN baseline (methods.cogan, nn.cogan): weight sharing, training and exact resume in the
common loop, latent search, the translator as a generator, evaluation and `reproduce`, the command
line (`cyclegan train --config cogan`), and checkpoints of the former CoGAN trainer."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch
from PIL import Image

from cyclegan.cli import main
from cyclegan.config import ConfigError
from cyclegan.evaluation import evaluate_checkpoint
from cyclegan.experiments import BASELINES, reproduce
from cyclegan.inference import load_generator, translate_tensor
from cyclegan.methods import build_method
from cyclegan.nn.cogan import CoupledGenerator, LatentSearchTranslator, build_cogan, latent_search
from cyclegan.checkpoint import load_checkpoint
from cyclegan.training.loop import train

from helpers import TINY, tiny_config, tiny_dataset

COGAN = ["model.method=cogan", "loss.pool_size=0", "loss.lambda_identity=0", "loss.gan_mode=vanilla",
         "data.load_size=32", "data.crop_size=32", "data.batch_size=2", "model.ngf=8", "model.ndf=8",
         "method_options.nz=8", "method_options.search_steps=30", "train.deterministic=true"]
NETS = dict(size=32, nz=8, ngf=8, ndf=8, private_layers=1, channels_a=3, channels_b=3, seed=0)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("cogan") / "data")  # 6 train, 2 test images of 32 px per domain


@pytest.fixture(scope="module")
def run(data, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cogan") / "run"
    progress = train(data, run_dir, tiny_config(*COGAN), progress=False)
    return run_dir, progress


def calibrated(**kwargs) -> CoupledGenerator:
    """A fresh generator whose batch-norm running statistics are those of its own outputs (as after
    training), so that it renders varied images in eval mode."""
    gen, _ = build_cogan(**{**NETS, **kwargs})
    for m in gen.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # cumulative average
    with torch.no_grad():
        gen(torch.randn(64, gen.nz, generator=torch.Generator().manual_seed(1)))
    return gen.eval()


def grads(module: torch.nn.Module) -> list[torch.Tensor | None]:
    return [p.grad for p in module.parameters()]


def test_shared_layers_are_one_set_of_weights_trained_by_both_domains():
    gen, disc = build_cogan(**NETS)
    shared_g, shared_d = set(map(id, gen.shared.parameters())), set(map(id, disc.shared.parameters()))
    assert shared_g and shared_d
    # Every parameter exists once: the heads / stems hold no copy of a shared layer.
    assert len({id(p) for p in gen.parameters()}) == len(list(gen.parameters()))
    assert not shared_g & set(map(id, [*gen.head_a.parameters(), *gen.head_b.parameters()]))
    assert not shared_d & set(map(id, [*disc.stem_a.parameters(), *disc.stem_b.parameters()]))

    z = torch.randn(4, NETS["nz"])
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
    for mode in ("vanilla", "lsgan", "hinge"):
        cfg = tiny_config(*COGAN, f"data.crop_size={size}", f"data.load_size={size}", "model.channels_b=1",
                          "method_options.private_layers=2", "method_options.nz=4", "model.ngf=2", "model.ndf=2",
                          f"loss.gan_mode={mode}")
        model = build_method(cfg)
        a, b = torch.zeros(2, 3, size, size), torch.zeros(2, 1, size, size)
        out = model.translate(a, b)
        assert out.fake_a.shape == (2, 3, size, size) and out.fake_b.shape == (2, 1, size, size)
        assert out.fake_a.abs().max() <= 1 and out.rec_a is None
        d = model.discriminator_losses(a, b, out.fake_a, out.fake_b)
        g = model.generator_losses(a, b, out)
        assert set(d) == {"d_a", "d_b", "total"} and set(g) == {"g_a", "g_b", "total"}
        assert all(torch.isfinite(v) for v in (*d.values(), *g.values()))


def test_tiny_run_trains_and_writes_a_safe_checkpoint(run, data):
    run_dir, progress = run
    assert progress.step == 2 * 3 and progress.epoch == 3  # 2 epochs of 6 images in batches of 2
    ckpt = torch.load(run_dir / "checkpoints" / "latest.pt", weights_only=True)
    assert ckpt["format"] == "cyclegan-checkpoint" and ckpt["config"]["model"]["method"] == "cogan"
    assert ckpt["config"]["method_options"]["nz"] == 8 and set(ckpt["method"]) == {"noise"}
    assert ckpt["progress"]["step"] == 6 and ckpt["run"]["dataroot"] == str(data.resolve())
    losses = [line for line in (run_dir / "losses.jsonl").read_text().splitlines()]
    assert all(k in losses[-1] for k in ('"d_a"', '"d_b"', '"g_a"', '"g_b"'))
    gen0, _ = build_cogan(**NETS)
    assert not torch.equal(gen0.shared[0].weight, ckpt["nets"]["generator"]["shared.0.weight"])
    assert not (run_dir / "generators").exists()  # CoGAN has no official file layout to export


def test_resume_continues_to_the_same_weights_as_an_uninterrupted_run(run, data, tmp_path):
    full, _ = run
    part = tmp_path / "part"
    assert train(data, part, tiny_config(*COGAN), max_steps=2, progress=False).step == 2
    assert train(None, part, resume=True, max_steps=4, progress=False).step == 4  # mid-epoch 2
    assert train(None, part, resume=True, progress=False).step == 6
    a, b = load_checkpoint(full), load_checkpoint(part)
    assert a["progress"] == b["progress"] and torch.equal(a["method"]["noise"], b["method"]["noise"])
    for net in ("generator", "discriminator"):
        for key, value in a["nets"][net].items():
            assert torch.equal(value, b["nets"][net][key]), f"{net}.{key} differs after resume"


def test_latent_search_finds_a_code_that_renders_the_image():
    gen = calibrated()
    with torch.no_grad():
        target = gen.render(torch.randn(3, 8, generator=torch.Generator().manual_seed(7)), "a")
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
    t_ab, t_ba = load_generator(run[0], "AtoB"), load_generator(run[0], "BtoA")
    assert isinstance(t_ab, LatentSearchTranslator) and t_ab.steps == 30
    assert (t_ab.in_channels, t_ab.out_channels, t_ab.size_multiple) == (3, 3, 1) and t_ba.direction == "BtoA"
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    y = translate_tensor(t_ab, x)  # under inference_mode: the search still gets its gradients
    assert y.shape == x.shape and y.abs().max() <= 1
    assert torch.equal(y, translate_tensor(t_ab, x))  # the same starting points: repeatable
    odd = translate_tensor(t_ba, torch.rand(3, 45, 29) * 2 - 1)  # resized to 32 x 32 and back
    assert odd.shape == (3, 45, 29)
    gray = calibrated(size=16, nz=4, ngf=4, channels_b=1)
    assert LatentSearchTranslator(gray, "AtoB", steps=2)(torch.zeros(1, 3, 20, 20)).shape == (1, 1, 20, 20)
    with pytest.raises(ValueError, match=r"expected \(B, 1, H, W\) images for BtoA"):
        LatentSearchTranslator(gray, "BtoA", steps=2)(torch.zeros(1, 3, 16, 16))
    with pytest.raises(ValueError, match=r"expected \(B, 3, 32, 32\) images of domain a"):
        latent_search(t_ab.generator, torch.zeros(1, 3, 16, 16), "a")


def test_evaluate_and_reproduce_score_a_cogan_run(data, tmp_path):
    assert "model.method=cogan" in BASELINES["CoGAN"]
    palette = tmp_path / "palette.txt"
    palette.write_text("road 255 255 255\nwater 170 211 223\nother* 0 0 0\n")
    overrides = [*TINY, "train.deterministic=true", "data.crop_size=32", "data.load_size=32",
                 "method_options.search_steps=20"]
    rows = reproduce("baselines", data, tmp_path / "out", budget="paper", variants=["CoGAN"], overrides=overrides,
                     segmentation=str(palette), progress=False)
    run_dir = tmp_path / "out" / "cogan"
    assert load_checkpoint(run_dir)["progress"]["step"] == 12  # TINY: 1 + 1 epochs of 6 images, batch 1
    (row,) = rows
    assert row["variant"] == "CoGAN" and row["AtoB.paired_images"] == 2 and row["BtoA.images"] == 2
    assert row["AtoB.cycle_l1"] >= 0 and row["BtoA.cycle_l1"] >= 0 and 0 <= row["AtoB.acc@5"] <= 1
    assert 0 <= row["AtoB.pixel_accuracy"] <= 1 and (run_dir / "test_final" / "AtoB" / "00000.png").is_file()
    scores, info = evaluate_checkpoint(run_dir, max_images=1)
    assert info["step"] == 12 and scores["AtoB.images"] == 1 and "BtoA.l1" in scores
    # Running again reuses the finished run and its scores.
    stamp = (run_dir / "checkpoints" / "latest.pt").stat().st_mtime_ns
    assert reproduce("baselines", data, tmp_path / "out", budget="paper", variants=["CoGAN"], overrides=overrides,
                     segmentation=str(palette), progress=False) == rows
    assert (run_dir / "checkpoints" / "latest.pt").stat().st_mtime_ns == stamp
    with pytest.raises(ConfigError, match="a power of two from 16 to 512, got 24"):
        reproduce("baselines", data, tmp_path / "odd", budget="paper", variants=["CoGAN"],
                  overrides=[*TINY, "data.crop_size=24", "data.load_size=24"], progress=False)


@pytest.mark.parametrize("extra, message", [
    (["data.crop_size=48", "data.load_size=48"], "a power of two from 16 to 512, got 48"),
    (["data.load_size=36"], "data.load_size=32 (= data.crop_size)"),
    (["method_options.private_layers=4"], "method_options.private_layers must be from 1 to 3 at size 32"),
    (["loss.gan_mode=wgangp"], "loss.gan_mode=wgangp is not available for model.method=cogan; use one of: vanilla"),
    (["loss.pool_size=50"], "set loss.pool_size=0"),
    (["method_options.nz=0"], "method_options.nz must be at least 1"),
    (["method_options.sise=3"], "unknown config key 'method_options.sise'; valid keys here: nz"),
])
def test_bad_configs_are_refused_with_a_clear_message(extra, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        tiny_config(*COGAN, *extra)


def cli(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cyclegan", *map(str, args)], capture_output=True, text=True,
                          timeout=120, check=False)


def test_cli_trains_resumes_and_translates_as_a_subprocess(data, tmp_path):
    run_dir, out = tmp_path / "run", tmp_path / "out"
    sets = [a for kv in ("data.crop_size=32", "data.load_size=32", "method_options.nz=8", "model.ngf=4",
                         "model.ndf=4", "data.batch_size=3", "method_options.search_steps=3", "data.num_workers=0")
            for a in ("--set", kv)]
    result = cli("train", data, "--run-dir", run_dir, "--config", "cogan", *sets, "--max-steps", 1, "--no-progress")
    assert result.returncode == 0, result.stderr
    result = cli("train", "--resume", run_dir, "--max-steps", 3, "--no-progress")
    assert result.returncode == 0, result.stderr
    assert load_checkpoint(run_dir)["progress"]["step"] == 3
    result = cli("translate", run_dir, data / "testB", "--out", out, "--direction", "BtoA", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert Image.open(out / "00000.png").size == (32, 32) and (out / "00001.png").is_file()


def test_cli_errors_are_one_line(data, tmp_path, capsys):
    assert main(["train", str(data), "--run-dir", str(tmp_path / "bad"), "--config", "cogan",
                 "--set", "data.crop_size=100", "--set", "data.load_size=100"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cyclegan: error: model.method=cogan renders squares") and err.count("\n") == 1
    assert not (tmp_path / "bad").exists()  # refused before anything was written
