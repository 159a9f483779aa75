"""The stabilisers (generator EMA, spectral norm, zero-centred gradient penalty with lazy
regularisation, DiffAugment) and the failure detectors: each switch trains a tiny step for CycleGAN and
CUT, EMA resumes exactly and is what translators use, the penalty matches its closed form (also under
bf16 autocast), the augmentations do what they say, and the detectors fire on constructed failures and
stay quiet on a healthy run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from cyclegan.checkpoint import load_checkpoint
from cyclegan.config import DIFFAUGMENT_OPS, ConfigError, LossConfig
from cyclegan.inference import load_generator
from cyclegan.losses import zero_centred_penalty
from cyclegan.metrics.failures import FailureStats, failure_warnings, periodic_energy
from cyclegan.nn import NLayerDiscriminator, with_spectral_norm
from cyclegan.nn.diffaugment import OPS, Strength, augment_inputs, cutout, diff_augment, translation
from cyclegan.training.ada import AdaptiveAugment
from cyclegan.training.loop import train

from helpers import METHOD_TINY, tiny_config, tiny_dataset

SWITCHES = {
    "ema": ["train.ema=0.9"],
    "spectral_norm": ["model.spectral_norm=true"],
    "r1": ["loss.r1_gamma=1"],
    "r1_mix_lazy": ["loss.r1_gamma=10", "loss.r1_on=mix", "loss.r1_every=2"],
    "diffaugment": ["loss.diffaugment=color,translation,cutout"],
    "ada": ["loss.diffaugment=color,translation,cutout", "loss.ada_target=0.6", "loss.ada_interval=2"],
}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("stab") / "data", n_train=4, n_test=2)


def last_losses(run):
    return [json.loads(x) for x in (run / "losses.jsonl").read_text().splitlines()]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["cyclegan", "cut"])
@pytest.mark.parametrize("switch", sorted(SWITCHES))
def test_every_switch_trains(method, switch, data, tmp_path):
    cfg = tiny_config(*METHOD_TINY[method], *SWITCHES[switch])
    train(data, tmp_path / "run", cfg, max_steps=4, progress=False)
    logged = last_losses(tmp_path / "run")
    assert all(np.isfinite(v) for r in logged for k, v in r.items() if isinstance(v, float))
    if switch.startswith("r1"):
        every = 2 if switch == "r1_mix_lazy" else 1
        assert [("d_gp" in r) for r in logged] == [(r["step"] % every == 0) for r in logged]
    ckpt = load_checkpoint(tmp_path / "run")
    if switch == "spectral_norm":
        assert any("parametrizations.weight.original" in k for k in ckpt["nets"]["d_b"])
    assert ("ema" in ckpt) == (switch == "ema")


def test_ema_follows_its_formula_resumes_exactly_and_is_what_translators_use(data, tmp_path):
    cfg = tiny_config("train.ema=0.8", "train.ema_start=2", "train.deterministic=true")
    straight, part = tmp_path / "straight", tmp_path / "part"
    train(data, straight, cfg, max_steps=6, progress=False)
    train(data, part, cfg, max_steps=3, progress=False)
    train(None, part, resume=True, max_steps=6, progress=False)
    a, b = load_checkpoint(straight), load_checkpoint(part)
    for name in a["ema"]:
        for k in a["ema"][name]:
            assert torch.equal(a["ema"][name][k], b["ema"][name][k]), (name, k)
    # The average is not the raw weights, and translators use it unless asked for the raw ones.
    key = "encoder.1.weight"
    assert not torch.equal(a["ema"]["g_ab"][key], a["nets"]["g_ab"][key])
    assert torch.equal(load_generator(straight).state_dict()[key], a["ema"]["g_ab"][key])
    from cyclegan.inference import load_translation

    assert torch.equal(load_translation(straight, ema=False).generator.state_dict()[key], a["nets"]["g_ab"][key])


def test_ema_changes_no_training_step(data, tmp_path):
    """The average only follows: with it, the raw weights and every logged loss are those of the same
    run without it, though samples and periodic evaluations swap the average in and out meanwhile."""
    common = ["train.deterministic=true", "train.sample_every=2", "eval.every_epochs=1", "eval.split=test"]
    train(data, tmp_path / "plain", tiny_config(*common), max_steps=6, progress=False)
    train(data, tmp_path / "ema", tiny_config(*common, "train.ema=0.8"), max_steps=6, progress=False)

    def losses(run):
        return [{k: v for k, v in r.items() if k != "sec_per_step"} for r in last_losses(run)]

    assert losses(tmp_path / "ema") == losses(tmp_path / "plain")
    plain, ema = load_checkpoint(tmp_path / "plain"), load_checkpoint(tmp_path / "ema")
    for name, state in plain["nets"].items():
        for k, v in state.items():
            assert torch.equal(ema["nets"][name][k], v), (name, k)
    assert not torch.equal(ema["ema"]["g_ab"]["encoder.1.weight"], ema["nets"]["g_ab"]["encoder.1.weight"])


def test_ema_update_is_the_moving_average():
    from cyclegan.methods import build_method
    from cyclegan.training.ema import GeneratorEMA

    model = build_method(tiny_config())
    ema = GeneratorEMA(model, 0.75, start_step=1)
    before = {k: v.clone() for k, v in model.g_ab.state_dict().items()}
    with torch.no_grad():
        for p in model.g_ab.parameters():
            p.add_(1.0)
    ema.update(model, 2)
    for k, v in model.g_ab.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(ema.shadow["g_ab"][k], 0.75 * before[k] + 0.25 * v)
    with ema.applied(model):
        assert torch.equal(model.g_ab.state_dict()["encoder.1.weight"], ema.shadow["g_ab"]["encoder.1.weight"])
    assert not torch.equal(model.g_ab.state_dict()["encoder.1.weight"], ema.shadow["g_ab"]["encoder.1.weight"])


def test_spectral_norm_bounds_each_convolution():
    torch.manual_seed(0)
    d = with_spectral_norm(NLayerDiscriminator(3, ndf=8)).train()
    for _ in range(30):  # power iterations converge in train mode
        d(torch.randn(1, 3, 32, 32))
    for m in d.modules():
        if isinstance(m, nn.Conv2d):
            sigma = torch.linalg.matrix_norm(m.weight.detach().reshape(m.weight.shape[0], -1), ord=2)
            assert sigma.item() == pytest.approx(1.0, abs=0.05)


def test_the_penalty_is_the_squared_gradient_norm_also_under_bf16():
    torch.manual_seed(0)
    w = torch.randn(1, 3, 8, 8)

    def linear_d(x):  # D(x) = <w, x>: its gradient is w everywhere
        return (x * w).flatten(1).sum(1)

    real = torch.rand(4, 3, 8, 8)
    assert zero_centred_penalty(linear_d, real).item() == pytest.approx(w.pow(2).sum().item(), rel=1e-5)
    assert zero_centred_penalty(linear_d, real, real.flip(0)).item() == pytest.approx(w.pow(2).sum().item(), rel=1e-5)
    d = NLayerDiscriminator(3, ndf=8, float32=False)
    x = torch.rand(2, 3, 32, 32)
    exact = zero_centred_penalty(d, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = zero_centred_penalty(d, x)
    assert low.dtype == torch.float32 and low.item() == pytest.approx(exact.item(), rel=0.05)
    low.backward()  # the double backward runs through the bf16 discriminator
    grads = {n: p.grad for n, p in d.named_parameters()}
    assert all(g is not None for n, g in grads.items() if n.endswith("weight"))  # (biases may not matter)
    assert all(torch.isfinite(g).all() for g in grads.values() if g is not None)


@pytest.mark.slow
def test_the_penalty_runs_through_a_compiled_discriminator():
    """torch.compile has no double backward: the penalty's pass runs the compiled network eagerly, with
    the same value and parameter gradients as an uncompiled copy (train.compile with loss.r1_gamma)."""
    torch.manual_seed(0)
    eager = NLayerDiscriminator(3, ndf=8)
    compiled = NLayerDiscriminator(3, ndf=8)
    compiled.load_state_dict(eager.state_dict())
    compiled.compile()
    x = torch.rand(2, 3, 32, 32)
    compiled(x).mean().backward()  # the compiled forward is in use for the ordinary losses
    compiled.zero_grad()
    want, got = zero_centred_penalty(eager, x), zero_centred_penalty(compiled, x)
    want.backward()
    got.backward()
    assert got.item() == pytest.approx(want.item(), rel=1e-5)
    for (name, a), b in zip(eager.named_parameters(), compiled.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6, msg=name)


def test_diffaugment_ops():
    torch.manual_seed(0)
    assert set(OPS) == set(DIFFAUGMENT_OPS)
    x = torch.rand(8, 3, 32, 32) * 2 - 1
    shifted = translation(x)
    for i in range(8):  # each image is its own content shifted by whole pixels, zeros coming in
        found = False
        for dy in range(-4, 5):
            for dx in range(-4, 5):
                ref = torch.zeros_like(x[i])
                ys, yd = (slice(0, 32 - dy), slice(dy, 32)) if dy >= 0 else (slice(-dy, 32), slice(0, 32 + dy))
                xs, xd = (slice(0, 32 - dx), slice(dx, 32)) if dx >= 0 else (slice(-dx, 32), slice(0, 32 + dx))
                ref[:, yd, xd] = x[i][:, ys, xs]
                found |= torch.equal(ref, shifted[i])
        assert found
    holes = cutout(torch.ones(64, 1, 32, 32))
    zero = (holes == 0).float().mean(dim=(1, 2, 3))
    assert zero.max().item() <= 0.25 + 1e-6 and zero.mean().item() > 0.1  # a half-side square, partly outside
    y = x.clone().requires_grad_(True)
    diff_augment(y, "color,translation,cutout").sum().backward()
    assert y.grad.abs().sum() > 0  # differentiable
    with pytest.raises(ValueError, match="unknown DiffAugment op 'flip'"):
        diff_augment(x, "color,flip")


def test_diffaugment_reaches_every_discriminator_call():
    seen = []
    d = nn.Identity()
    d.register_forward_hook(lambda m, args, out: seen.append(args[0]))
    augment_inputs([d], "cutout")
    x = torch.ones(16, 1, 32, 32)
    d(x)
    assert (seen[0] == 0).any() and not (x == 0).any()


def test_augmentation_strength_is_the_probability_of_each_op():
    x = torch.ones(400, 1, 16, 16)
    assert torch.equal(diff_augment(x, "color,translation,cutout", p=0.0), x)
    torch.manual_seed(1)
    always = diff_augment(x, "cutout")
    torch.manual_seed(1)
    assert torch.equal(diff_augment(x, "cutout", p=1.0), always)  # p = 1: DiffAugment's own draws
    changed = (diff_augment(x, "cutout", p=0.25) != x).flatten(1).any(1).float().mean().item()
    assert changed == pytest.approx(0.25, abs=0.07)  # 400 images: 4.6 standard deviations
    strength = Strength(0.0)
    d = nn.Identity()
    augment_inputs([d], "cutout", strength)
    assert torch.equal(d(x), x)
    strength.p = 1.0  # the hook reads p at each call
    assert (d(x) == 0).flatten(1).any(1).all()


def constant_d(value):
    return lambda x: torch.full((x.shape[0], 1, 4, 4), value)


def test_ada_moves_p_by_the_sign_statistic():
    real = torch.zeros(2, 3, 8, 8)
    ada = AdaptiveAugment(LossConfig(ada_target=0.6, ada_images=8, ada_interval=4), Strength(1.0))
    assert ada.p == 0.0 and ada.midpoint == 0.5  # starts without augmentation; lsgan's targets are 1 and 0
    for want in (0.5, 1.0, 1.0):  # sure of the reals (r = 1 > 0.6): more augmentation, up to p = 1
        ada.update([(constant_d(0.9), real), (constant_d(0.7), real)], images=4)
        assert ada.p == want and ada.last_r == 1.0
    ada.update([(constant_d(0.9), real), (constant_d(0.1), real)], images=2)  # r = 0 < 0.6: less
    assert ada.p == 0.75 and ada.last_r == 0.0
    ada.adjust(0.6, images=8)  # on target: p stays
    assert ada.p == 0.75
    for _ in range(3):
        ada.update([(constant_d(0.2), real)], images=4)
    assert ada.p == 0.0 and ada.last_r == -1.0
    vanilla = AdaptiveAugment(LossConfig(gan_mode="vanilla", ada_target=0.6), Strength())
    assert vanilla.midpoint == 0.0  # logits
    assert vanilla.sign_statistic([(constant_d(0.2), real)]).item() == 1.0
    restored = AdaptiveAugment(LossConfig(ada_target=0.6), Strength())
    restored.load_state_dict(ada.state_dict())
    assert (restored.p, restored.last_r) == (ada.p, ada.last_r)


def test_ada_trains_logs_p_and_resumes_exactly(data, tmp_path):
    cfg = tiny_config("loss.diffaugment=color,translation,cutout", "loss.gan_mode=vanilla", "loss.ada_target=0.01",
                      "loss.ada_interval=2", "loss.ada_images=10", "train.log_every=1", "train.deterministic=true")
    straight, part = tmp_path / "straight", tmp_path / "part"
    train(data, straight, cfg, max_steps=8, progress=False)
    train(data, part, cfg, max_steps=5, progress=False)
    train(None, part, resume=True, max_steps=8, progress=False)
    a, b = load_checkpoint(straight), load_checkpoint(part)
    assert a["ada"] == b["ada"]
    for name in a["nets"]:
        for k in a["nets"][name]:
            assert torch.equal(a["nets"][name][k], b["nets"][name][k]), (name, k)
    p = [r["ada_p"] for r in last_losses(straight)]
    assert len(p) == 8 and p[0] == 0.0 and max(p) > 0  # this seed's discriminators grow sure of the reals
    steps = np.round(np.diff(p), 6)
    assert set(steps[1::2]) <= {0.0} and set(np.abs(steps[0::2])) <= {0.0, 0.2}  # +-2 images / 10, every 2 steps
    assert p[-1] == pytest.approx(a["ada"]["p"])


def test_every_stabilisers_variant_is_a_valid_config():
    from cyclegan.experiments import STABILISERS, variant_config

    for name in STABILISERS:
        cfg = variant_config("stabilisers", name)
        assert (cfg.loss.ada_target > 0) == name.endswith("adaptive augmentation"), name
        assert bool(cfg.loss.diffaugment) == name.endswith(("augmentation", "all")), name
        assert cfg.model.method == {"CycleGAN": "cyclegan", "CUT": "cut", "FastCUT": "fastcut"}[name.split(" + ")[0]]


def test_regularisers_are_refused_where_they_do_not_apply():
    with pytest.raises(ConfigError, match="loss.r1_gamma and loss.diffaugment need"):
        tiny_config(*METHOD_TINY["pix2pix"], "loss.r1_gamma=1")
    with pytest.raises(ConfigError, match="loss.diffaugment: unknown op 'blur'"):
        tiny_config("loss.diffaugment=color,blur")
    with pytest.raises(ConfigError, match="loss.ada_target adapts how often the loss.diffaugment ops apply"):
        tiny_config("loss.ada_target=0.6")
    with pytest.raises(ConfigError, match=r"loss.ada_target=1.0 is out of range"):
        tiny_config("loss.diffaugment=color", "loss.ada_target=1")


# ---------------------------------------------------------------------------------------------------
# Failure detectors


def stats_of(generator, images, targets) -> dict[str, float]:
    s = FailureStats()
    for t in targets:
        s.add_target(t)
    for x in images:
        s.add(x, generator(x))
    return {f"AtoB.{k}": v for k, v in s.scores().items()}


@pytest.fixture(scope="module")
def maps_like():
    rng = np.random.default_rng(0)
    aerial = [rng.integers(20, 120, (32, 32, 3), dtype=np.uint8) for _ in range(12)]  # dark, varied
    maps = [np.clip(rng.normal(230, 8, (32, 32, 3)), 0, 255).astype(np.uint8) for _ in range(12)]  # bright
    return aerial, maps


def test_detectors_fire_on_constructed_failures(maps_like):
    aerial, maps = maps_like
    identity = failure_warnings(stats_of(lambda x: x.copy(), aerial, maps))
    assert len(identity) == 1 and "copies of the inputs" in identity[0]
    constant = failure_warnings(stats_of(lambda x: maps[0].copy(), aerial, maps))
    assert len(constant) == 1 and "mode collapse" in constant[0]
    inverted = failure_warnings(stats_of(lambda x: (255 - (x // 8 + 220)).astype(np.uint8), aerial, maps))
    assert any("inverted" in w for w in inverted)
    checker = (np.indices((32, 32)).sum(0) % 2 * 40).astype(np.uint8)[..., None]  # 2-pixel checkerboard
    textured = failure_warnings(stats_of(lambda x: (x // 8 + 180 + checker).astype(np.uint8), aerial, maps))
    assert len(textured) == 1 and "checkerboard texture" in textured[0]
    nan = FailureStats()
    nan.add(aerial[0], maps[0], finite=False)
    assert any("NaN" in w for w in failure_warnings({f"AtoB.{k}": v for k, v in nan.scores().items()}))
    won = [{"step": s, "d_a": 0.001, "d_b": 0.4} for s in range(10, 310, 10)]
    assert [w for w in failure_warnings({}, won) if "d_a" in w and "has won" in w]
    assert not failure_warnings({}, [{"step": s, "d_a": 0.001} for s in range(10, 60, 10)])  # not for long


def test_periodic_energy_finds_checkerboards_and_grids():
    rng = np.random.default_rng(0)
    noise = rng.normal(128, 20, (64, 64))
    assert periodic_energy(noise) == pytest.approx(1.0, abs=0.6)  # white noise: 1 on average
    yy, xx = np.indices((64, 64))
    smooth = 128 + 60 * np.sin(xx / 9) * np.cos(yy / 13)
    assert periodic_energy(smooth) < 0.05 and periodic_energy(np.full((64, 64, 3), 7)) == 0.0
    for period in (2, 4):  # a transposed convolution's checkerboard, and the 4-pixel grid of two of them
        grid = smooth + 10 * ((yy % period == 0) & (xx % period == 0))
        assert periodic_energy(grid) > 50 * periodic_energy(smooth)
    assert periodic_energy(smooth + 10 * (xx % 3 == 0)) < 0.05  # other periods do not count


def test_detectors_stay_quiet_on_a_healthy_translation(maps_like):
    aerial, maps = maps_like
    healthy = failure_warnings(stats_of(lambda x: (x // 8 + 215).astype(np.uint8), aerial, maps),
                               [{"step": s, "d_a": 0.2, "d_b": 0.25} for s in range(10, 510, 10)])
    assert healthy == []


def test_an_evaluation_records_warnings_for_its_log_page_and_dashboard(data, tmp_path, caplog):
    """Periodic evaluation of a model whose generators copy their input: the identity warning is logged,
    recorded in evals.jsonl and shown on the run page and in the dashboard's status."""
    from cyclegan.data.splits import Split
    from cyclegan.methods import build_method
    from cyclegan.serve.dashboard import run_status
    from cyclegan.training.logs import write_page
    from cyclegan.training.periodic_eval import PeriodicEvaluation

    cfg = tiny_config("eval.every_epochs=1", "eval.split=test")
    train(data, tmp_path / "run", cfg, max_steps=2, progress=False)
    model = build_method(cfg)

    class Copy(nn.Module):
        size_multiple = 4

        def forward(self, x):
            return x

    model.g_ab, model.g_ba = Copy(), Copy()
    evaluation = PeriodicEvaluation(cfg.eval, Split.of_folders("test", data / "testA", data / "testB"),
                                    tmp_path / "run", channels_a=3, channels_b=3, device="cpu")
    evaluation(model, epoch=1, step=2, best=None)
    record = json.loads((tmp_path / "run" / "evals.jsonl").read_text().splitlines()[-1])
    assert any("copies of the inputs" in w for w in record["warnings"]) and record["AtoB.copy_l1"] < 0.5  # tensor2im truncation
    assert "copies of the inputs" in caplog.text
    write_page(tmp_path / "run")
    page = (tmp_path / "run" / "index.html").read_text()
    assert "Warnings (latest evaluation)" in page and "identity mapping" in page
    assert any("identity mapping" in w for w in run_status(tmp_path / "run")["warnings"])
