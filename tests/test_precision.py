"""Speed modes keep the training semantics: merged generator passes compute the same losses and
gradients, bf16 autocast trains, fp16 refuses the CPU, and translation in bf16 stays close."""

from __future__ import annotations

import json

import pytest
import torch

from cyclegan.config import ConfigError
from cyclegan.methods.cyclegan import CycleGAN
from cyclegan.inference import translate_tensor
from cyclegan.pool import ImagePool
from cyclegan.precision import autocast, discriminators_in_float32
from cyclegan.checkpoint import load_checkpoint
from cyclegan.training.loop import train
from cyclegan.methods import check_config
from cyclegan.training.state import build_optimizers, build_training_state
from cyclegan.training.step import train_step

from helpers import tiny_config, tiny_dataset


def tiny_model(*extra: str) -> tuple[CycleGAN, object]:
    cfg = tiny_config(*extra)
    torch.manual_seed(0)
    return CycleGAN.from_config(cfg), cfg


def one_step(model: CycleGAN, cfg, a, b, **kwargs):
    opt_g, opt_d = build_optimizers(model, cfg.optim)
    losses, _ = train_step(model, a, b, opt_g, opt_d, ImagePool(50, seed=1), ImagePool(50, seed=2), **kwargs)
    return losses


def test_merged_passes_give_the_same_losses_and_updates():
    model, cfg = tiny_model()
    merged, _ = tiny_model("train.merge_passes=true")  # the same seed: the same weights
    fresh = [tiny_model()[0], tiny_model("train.merge_passes=true")[0]]
    g = torch.Generator().manual_seed(3)
    a, b = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1, torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    plain_losses = one_step(model, cfg, a, b)
    merged_losses = one_step(merged, cfg, a, b)
    assert plain_losses.keys() == merged_losses.keys()
    for k in plain_losses:
        assert merged_losses[k] == pytest.approx(plain_losses[k], rel=1e-5, abs=1e-6), k

    # Gradients of the generator loss: equal up to float rounding. (Weights after an Adam step are
    # not comparable for the conv biases before instance norm: their true gradient is 0, and Adam
    # scales rounding noise of either sign up to a full learning-rate step.)
    grads = []
    for m in fresh:
        m.zero_grad()
        t = m.translate(a, b)
        m.generator_losses(a, b, t)["total"].backward()
        grads.append({n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    scale = max(g.abs().max().item() for g in grads[0].values())  # biases before instance norm: ~0 +- noise
    for name, g0 in grads[0].items():
        torch.testing.assert_close(grads[1][name], g0, rtol=1e-4, atol=1e-5 * scale, msg=name)


def test_merged_passes_fall_back_when_domains_differ():
    model, _ = tiny_model("model.channels_b=1", "loss.lambda_identity=0")
    a, b = torch.rand(1, 3, 32, 32), torch.rand(1, 1, 32, 32)
    t = model.translate_merged(a, b)
    assert t.idt_a is None and t.fake_b.shape == (1, 1, 32, 32)


def test_merged_passes_refuse_batch_norm():
    with pytest.raises(ConfigError, match="merge_passes"):
        check_config(tiny_config("train.merge_passes=true", "model.norm=batch"))


def test_bf16_training_trains(tmp_path):
    data = tiny_dataset(tmp_path / "data")
    run = tmp_path / "run"
    train(data, run, tiny_config("train.precision=bf16", "train.merge_passes=true"), progress=False)
    records = [json.loads(line) for line in (run / "losses.jsonl").read_text().splitlines()]
    assert len(records) == 12 and all(torch.isfinite(torch.tensor(v)) for r in records for v in r.values())
    ckpt = load_checkpoint(run)
    assert all(t.dtype == torch.float32 for t in ckpt["nets"]["g_ab"].values())  # master weights stay fp32
    assert all(t.dtype == torch.float32 for t in ckpt["pools"]["b"]["images"])
    model, _ = tiny_model()
    model.g_ab.load_state_dict(ckpt["nets"]["g_ab"])
    y = translate_tensor(model.g_ab.eval(), torch.rand(1, 3, 32, 32) * 2 - 1, precision="bf16")
    assert y.dtype == torch.float32 and y.abs().max() <= 1 and y.std() > 0.01


def test_bf16_translation_is_close_to_fp32():
    model, _ = tiny_model("model.ngf=8")
    g = model.g_ab.eval()
    x = torch.rand(2, 3, 48, 40, generator=torch.Generator().manual_seed(0)) * 2 - 1
    fp32, bf16 = translate_tensor(g, x), translate_tensor(g, x, precision="bf16")
    grey_levels = (fp32 - bf16).abs() * 127.5
    assert grey_levels.mean() < 2 and 0 < grey_levels.max() < 16


def test_fp16_needs_cuda(tmp_path):
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        autocast("cpu", "fp16")
    with pytest.raises(ValueError, match="CUDA"):
        train(tiny_dataset(tmp_path / "data"), tmp_path / "run", tiny_config("train.precision=fp16"), progress=False)
    with pytest.raises(ConfigError, match="train.precision"):
        tiny_config("train.precision=fp8")


def test_mixed_precision_keeps_the_discriminators_and_the_output_layer_in_float32(tmp_path):
    model, cfg = tiny_model()
    a = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        reference = model.d_b(a)
        with autocast("cpu", "bf16"):
            assert model.g_ab(a).dtype == torch.float32  # the output conv runs in float32
            assert model.d_b(a).dtype == torch.bfloat16  # a discriminator on its own: autocast applies
            exact, _ = tiny_model("train.precision=bf16")  # built with float32 discriminators
            exact.load_state_dict(model.state_dict())
            torch.testing.assert_close(exact.d_b(a), reference)  # float32, the same numbers
    assert discriminators_in_float32(tiny_config("train.precision=bf16").train)
    assert not discriminators_in_float32(tiny_config("train.precision=bf16",
                                                     "train.low_precision_discriminators=true").train)
    assert not discriminators_in_float32(tiny_config().train)
    data = tiny_dataset(tmp_path / "data")
    train(data, tmp_path / "run", tiny_config("train.precision=bf16"), max_steps=1, progress=False)
    for method in ("pix2pix", "bigan"):  # every method passes the choice to its discriminators
        extra = ["loss.pool_size=0", "loss.lambda_identity=0"] + (["data.mode=aligned"] if method == "pix2pix" else [])
        for low, expect in (("false", True), ("true", False)):
            state = build_training_state(tiny_config(f"model.method={method}", *extra, "train.precision=bf16",
                                                     f"train.low_precision_discriminators={low}"),
                                         tmp_path / "r", data, torch.device("cpu"))
            assert all(d.float32 is expect for d in state.model.discriminators)
