"""Golden tests: each official architecture, loaded through our key mapping, gives the official output."""

from __future__ import annotations

import pytest
import torch

from cyclegan.nn import build_discriminator, build_generator, from_official, load_official, to_official

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
    torch.testing.assert_close(y, ref["y"], atol=1e-5, rtol=0)


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
