"""Anti-aliased and resize-convolution resampling (`nn.sampling`): the layers' shapes and filters, the
checkerboard property they exist for, the layouts with and without a reference layout, and a
generator file in CUT's layout through `translate`."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.inference import load_generator, official_generator, translate_tensor
from cyclegan.nn import NLayerDiscriminator, ResnetGenerator, UnetGenerator, has_official_layout, init_weights, to_official
from cyclegan.nn.sampling import BlurDownsample, BlurUpsample

from helpers import cli_environ


def test_blur_layers_halve_and_double_and_keep_a_constant():
    x = torch.full((1, 2, 9, 12), 0.5)
    down, up = BlurDownsample(2)(x), BlurUpsample(2)(x)
    assert down.shape == (1, 2, 5, 6) and up.shape == (1, 2, 18, 24)
    torch.testing.assert_close(down, torch.full_like(down, 0.5))  # reflect padding: no border effect
    torch.testing.assert_close(up, torch.full_like(up, 0.5))  # replicate padding: none either
    assert BlurDownsample(1).filt.sum().item() == pytest.approx(1) and BlurUpsample(1).filt.sum().item() == pytest.approx(4)


def period2_energy(y: torch.Tensor) -> float:
    """How much a map's values depend on the parity of their position (a checkerboard): the spread of
    the four parity classes' means, relative to the map's scale."""
    y = y[..., 2:-2, 2:-2]
    means = torch.stack([y[..., i::2, j::2].mean() for i in (0, 1) for j in (0, 1)])
    return (means.std() / y.abs().mean()).item()


@pytest.mark.parametrize("upsample, checkerboard", [("transpose", True), ("antialias", False), ("resize", False)])
def test_upsampling_of_a_flat_input_paints_a_checkerboard_only_with_transposed_convs(upsample, checkerboard):
    """The artefact of Odena et al. 2016: a stride-2 transposed conv (random weights) turns a flat
    feature map into a pattern of period 2; blur and resize upsampling followed by a conv keep it flat."""
    torch.manual_seed(0)
    net = init_weights(ResnetGenerator(3, 3, ngf=8, n_blocks=1, upsample=upsample), "normal", 0.02)
    first_up = net.decoder[: 1 if upsample == "transpose" else 2]  # the first upsampling and its conv, before the norm
    with torch.no_grad():
        energy = period2_energy(first_up(torch.ones(1, 32, 8, 8)))
    assert (energy > 0.05) if checkerboard else (energy < 1e-4), energy


@pytest.mark.parametrize("make", [
    lambda s: ResnetGenerator(3, 1, ngf=4, n_blocks=2, downsample=s[0], upsample=s[1]),
    lambda s: UnetGenerator(3, 1, num_downs=5, ngf=4, downsample=s[0], upsample=s[1]),
])
@pytest.mark.parametrize("sampling", [("conv", "transpose"), ("antialias", "antialias"), ("antialias", "resize"),
                                      ("conv", "antialias")])
def test_generators_keep_the_size_with_every_sampling(make, sampling):
    net = make(sampling).eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, 64, 96) * 2 - 1).shape == (2, 1, 64, 96)
    assert translate_tensor(net, torch.rand(3, 50, 70) * 2 - 1).shape == (1, 50, 70)  # padded and cropped back


def test_which_layouts_have_a_reference_layout():
    assert has_official_layout(ResnetGenerator(ngf=4, downsample="antialias", upsample="antialias"))  # CUT's
    assert has_official_layout(ResnetGenerator(ngf=4, downsample="conv", upsample="antialias"))
    assert not has_official_layout(ResnetGenerator(ngf=4, upsample="resize"))
    assert not has_official_layout(UnetGenerator(num_downs=5, ngf=4, downsample="antialias"))
    assert has_official_layout(NLayerDiscriminator(ndf=4, downsample="antialias"))
    with pytest.raises(ValueError, match="unknown upsample 'bilinear'; choose one of: transpose, antialias, resize"):
        ResnetGenerator(upsample="bilinear")


def test_a_generator_file_in_cuts_layout_translates(tmp_path):
    """CUT's `latest_net_G.pth` (blur filters as buffers): the architecture is read from the keys,
    the weights load strictly, and `translate` gives the generator's own output."""
    torch.manual_seed(0)
    net = init_weights(ResnetGenerator(3, 3, ngf=8, n_blocks=9, downsample="antialias", upsample="antialias"),
                       "xavier", 0.02).eval()
    state = to_official(net)
    assert {"model.7.filt", "model.11.filt", "model.21.filt", "model.25.filt", "model.30.weight"} <= set(state)
    torch.save(state, tmp_path / "latest_net_G.pth")
    loaded = load_generator(tmp_path / "latest_net_G.pth")
    assert (loaded.downsample, loaded.upsample, loaded.n_blocks) == ("antialias", "antialias", 9)
    x = torch.rand(1, 3, 40, 56) * 2 - 1
    torch.testing.assert_close(translate_tensor(loaded, x), translate_tensor(net, x), rtol=0, atol=0)
    with pytest.raises(ValueError, match="shape mismatch|does not fit"):
        bad = dict(state)
        bad["model.7.filt"] = torch.zeros(16, 1, 4, 4)
        official_generator(bad)

    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(tmp_path / "in.png")
    res = subprocess.run([sys.executable, "-m", "cyclegan", "translate", str(tmp_path / "latest_net_G.pth"),
                          str(tmp_path / "in.png"), "--out", str(tmp_path / "out"), "--no-progress"],
                         capture_output=True, text=True, env=cli_environ())
    assert res.returncode == 0, res.stderr[-2000:]
    assert Image.open(tmp_path / "out" / "in.png").size == (56, 40)
