"""Golden tests: each official architecture, loaded through our key mapping, gives the official output.

Measured here: every network's output equals the official one bit for bit except D_pixel_ndf8
(1.1e-8, 1.6e-7 of its largest output); the tolerance is relative to each output's size, because the
batch-norm generator's outputs are only ~4e-5 (eval mode with the fixture's running statistics, mean 0
and variance 1, does not renormalise the tiny activations of N(0, 0.02) weights).
"""

from __future__ import annotations

import pytest
import torch

from cyclegan.nn import build_discriminator, build_generator, from_official, init_weights, load_official, to_official
from cyclegan.nn.official import official_table

SPECS = {
    "G_resnet_9blocks_ngf8": lambda: build_generator("resnet_9blocks", ngf=8),
    "G_resnet_6blocks_ngf8": lambda: build_generator("resnet_6blocks", ngf=8),
    "G_resnet_9blocks_ngf8_dropout": lambda: build_generator("resnet_9blocks", ngf=8, dropout=True),
    "G_resnet_6blocks_ngf8_batchnorm": lambda: build_generator("resnet_6blocks", ngf=8, norm="batch"),
    "G_unet_128_ngf8": lambda: build_generator("unet_128", ngf=8),
    "G_unet_256_ngf8": lambda: build_generator("unet_256", ngf=8),
    "D_basic_ndf8": lambda: build_discriminator("basic", ndf=8),
    "D_n_layers5_ndf8": lambda: build_discriminator("n_layers", ndf=8, n_layers=5),
    "D_pixel_ndf8": lambda: build_discriminator("pixel", ndf=8),
    "G_resnet_9blocks_ngf8_gray": lambda: build_generator("resnet_9blocks", 1, 1, ngf=8),
}


@pytest.fixture(scope="module")
def official_nets(fixtures_dir):
    return torch.load(fixtures_dir / "official_nets.pt", weights_only=True)


def test_every_fixture_network_is_covered(official_nets):
    assert set(official_nets) == set(SPECS)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_official_output(official_nets, name):
    ref = official_nets[name]
    net = load_official(SPECS[name](), ref["state_dict"]).eval()
    with torch.no_grad():
        y = net(ref["x"])
    assert y.shape == ref["y"].shape
    torch.testing.assert_close(y, ref["y"], atol=1e-5 * ref["y"].abs().max().item(), rtol=0)


BN_NET = "G_resnet_6blocks_ngf8_batchnorm"
BN_EPS, BN_MOMENTUM = 1e-5, 0.1  # torch.nn.BatchNorm2d's defaults, which the official get_norm_layer keeps


def batch_norm_inputs(net: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """Official key prefix -> the input of that batch-norm layer of `net` on `x` (in net's mode)."""
    table, inputs, hooks = official_table(net), {}, []
    for name, m in net.named_modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            hook = lambda m, args, key=table[name]: inputs.__setitem__(key, args[0].detach().clone())  # noqa: E731
            hooks.append(m.register_forward_pre_hook(hook))
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    return inputs


def test_batch_norm_with_running_statistics_gives_the_official_output(official_nets):
    """Non-trivial running statistics, with the official output still the reference.

    Under the fixture's default statistics (mean 0, variance 1) eps, the statistics and the affine
    parameters' roles hardly change the output. In eval mode batch norm is the affine map
    x * w / sqrt(var + eps) + b - mean * w / sqrt(var + eps), so the fixture's network keeps its
    function when each layer gets statistics (mean, var) with the weight w0 * sqrt((var + eps) / (1 + eps))
    and the bias b0 + mean * w0 / sqrt(1 + eps). The statistics are each layer's real input statistics,
    perturbed by a seeded generator, so that every layer really normalises (var about 5e-10 .. 4e-2,
    against eps 1e-5). Measured here: max difference 5e-7 of the largest output. Mistakes give, in the
    same unit: eps 1e-3 instead of 1e-5: 0.95; eps 1e-6: 34; batch statistics in eval mode: 4e3; no
    affine parameters: 3e4 (tanh saturates); running mean and variance exchanged: 1.0. (Under the
    default statistics eps 1e-3 changed the output by 1e-7 and no affine parameters by 1.6e-6, both
    within the former absolute tolerance 1e-5.)
    """
    ref = official_nets[BN_NET]
    plain = load_official(SPECS[BN_NET](), ref["state_dict"]).eval()
    g = torch.Generator().manual_seed(0)
    state = dict(ref["state_dict"])
    for key, x in batch_norm_inputs(plain, ref["x"]).items():
        assert state[f"{key}.running_mean"].eq(0).all() and state[f"{key}.running_var"].eq(1).all()
        x, c = x.double(), x.shape[1]
        var = x.var((0, 2, 3)) * torch.empty(c, dtype=torch.double).uniform_(0.5, 2.0, generator=g)
        mean = x.mean((0, 2, 3)) + torch.randn(c, dtype=torch.double, generator=g) * var.sqrt()
        w0, b0 = state[f"{key}.weight"].double(), state[f"{key}.bias"].double()
        state[f"{key}.running_mean"], state[f"{key}.running_var"] = mean.float(), var.float()
        state[f"{key}.weight"] = (w0 * ((var + BN_EPS) / (1 + BN_EPS)).sqrt()).float()
        state[f"{key}.bias"] = (b0 + mean * w0 / (1 + BN_EPS) ** 0.5).float()
    net = load_official(SPECS[BN_NET](), state).eval()
    with torch.no_grad():
        y = net(ref["x"])
    torch.testing.assert_close(y, ref["y"], atol=1e-4 * ref["y"].abs().max().item(), rtol=0)


def test_batch_norm_training_updates_running_statistics_as_the_official_layer():
    """Train mode (hand-derived from torch.nn.BatchNorm2d's definition, which the official code uses):
    each layer normalises with its batch's mean and biased variance, and moves its running statistics
    by momentum 0.1 towards the batch mean and the *unbiased* batch variance."""
    torch.manual_seed(0)
    net = init_weights(SPECS[BN_NET]())
    g = torch.Generator().manual_seed(1)
    layers = {official_table(net)[n]: m for n, m in net.named_modules() if isinstance(m, torch.nn.BatchNorm2d)}
    before = {}
    for key, m in layers.items():  # non-default starting statistics
        with torch.no_grad():
            m.running_mean.normal_(0, 1e-2, generator=g)
            m.running_var.uniform_(1e-3, 1e-1, generator=g)
        before[key] = (m.running_mean.clone(), m.running_var.clone(), int(m.num_batches_tracked))
    x = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    inputs = batch_norm_inputs(net.train(), x)
    assert set(inputs) == set(layers) and len(layers) == 3 + 2 * 6 + 2
    for key, m in layers.items():
        h = inputs[key].double()
        mean0, var0, n0 = before[key]
        torch.testing.assert_close(m.running_mean.double(), (1 - BN_MOMENTUM) * mean0 + BN_MOMENTUM * h.mean((0, 2, 3)),
                                   atol=1e-7, rtol=1e-5)
        torch.testing.assert_close(m.running_var.double(), (1 - BN_MOMENTUM) * var0 + BN_MOMENTUM * h.var((0, 2, 3)),
                                   atol=1e-7, rtol=1e-5)
        assert int(m.num_batches_tracked) == n0 + 1
        # The layer's own output on its recorded input: batch statistics, biased variance.
        with torch.no_grad():
            out = m(inputs[key])
        mu, var = h.mean((0, 2, 3), keepdim=True), h.var((0, 2, 3), unbiased=False, keepdim=True)
        expected = (h - mu) / (var + BN_EPS).sqrt() * m.weight.double()[:, None, None] + m.bias.double()[:, None, None]
        torch.testing.assert_close(out.double(), expected, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(SPECS))
def test_export_round_trips_to_official_keys(official_nets, name):
    ref = official_nets[name]["state_dict"]
    exported = to_official(load_official(SPECS[name](), ref))
    assert set(exported) == set(ref)
    for key, value in ref.items():
        assert torch.equal(exported[key], value), key


def test_released_file_extras_are_accepted_and_strays_rejected(official_nets):
    sd = dict(official_nets["G_resnet_6blocks_ngf8"]["state_dict"])
    # Released files carry InstanceNorm running stats and sometimes a DataParallel prefix.
    extra = {f"module.{k}": v for k, v in sd.items()}
    extra["module.model.2.running_mean"] = torch.zeros(8)
    extra["module.model.2.running_var"] = torch.ones(8)
    load_official(build_generator("resnet_6blocks", ngf=8), extra)
    with pytest.raises(ValueError, match="shape mismatch"):
        load_official(build_generator("resnet_6blocks", ngf=16), sd)
    with pytest.raises(ValueError, match="shape mismatch"):  # 6-block file into a 9-block network
        from_official(build_generator("resnet_9blocks", ngf=8), sd)
    with pytest.raises(ValueError, match="does not fit"):  # dropout layout differs (conv_block.6)
        from_official(build_generator("resnet_6blocks", ngf=8, dropout=True), sd)
    sd["model.99.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match="unexpected keys"):
        from_official(build_generator("resnet_6blocks", ngf=8), sd)
