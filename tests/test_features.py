"""Pretrained feature networks (cyclegan.nn.features, loaded by cyclegan.weights): torchvision's VGG
layout and keys, named activations on [-1, 1] inputs, frozen weights, strict loading with clear errors,
and the download into the cache from a 127.0.0.1 server."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from cyclegan.nn.features import FEATURE_NETWORKS, FeatureExtractor
from cyclegan.weights import WEIGHTS, WeightsError, load_feature_extractor, load_feature_network
from cyclegan.weights.download import DownloadError, file_sha256

from helpers import file_server, random_vgg_weights

# torchvision's vgg16 `features`: the indices of its convolutions and their (out, in) channels.
VGG16_CONVS = {0: (64, 3), 2: (64, 64), 5: (128, 64), 7: (128, 128), 10: (256, 128), 12: (256, 256),
               14: (256, 256), 17: (512, 256), 19: (512, 512), 21: (512, 512), 24: (512, 512), 26: (512, 512),
               28: (512, 512)}


@pytest.fixture(scope="module")
def vgg16_file(tmp_path_factory) -> Path:
    return random_vgg_weights(tmp_path_factory.mktemp("vgg") / "vgg16-397923af.pth")


def test_vgg16_has_torchvisions_keys_and_layer_names():
    with torch.device("meta"):
        net = FEATURE_NETWORKS["vgg16"].build()
    expected = {}
    for i, (out_ch, in_ch) in VGG16_CONVS.items():
        expected[f"features.{i}.weight"] = (out_ch, in_ch, 3, 3)
        expected[f"features.{i}.bias"] = (out_ch,)
    assert {k: tuple(v.shape) for k, v in net.state_dict().items()} == expected
    names = FEATURE_NETWORKS["vgg16"].layers
    assert len(names) == len(net.features) == 31
    assert {n: names.index(n) for n in ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu4_2", "relu5_1", "pool5")} == {
        "relu1_1": 1, "relu2_1": 6, "relu3_1": 11, "relu4_1": 18, "relu4_2": 20, "relu5_1": 25, "pool5": 30}
    assert FEATURE_NETWORKS["vgg19"].layers.index("relu4_2") == 22  # torchvision's vgg19 features[22]


def test_extractor_returns_named_activations_of_imagenet_normalised_inputs(vgg16_file):
    ext = load_feature_extractor("vgg16", ("relu1_1", "relu2_1", "relu4_2"), weights=vgg16_file)
    state = torch.load(vgg16_file, weights_only=True)
    x = torch.rand(2, 3, 32, 24) * 2 - 1  # [-1, 1]
    out = ext(x)
    assert list(out) == ["relu1_1", "relu2_1", "relu4_2"]
    assert [tuple(v.shape) for v in out.values()] == [(2, 64, 32, 24), (2, 128, 16, 12), (2, 512, 4, 3)]
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    by_hand = F.relu(F.conv2d(((x + 1) / 2 - mean) / std, state["features.0.weight"], state["features.0.bias"], padding=1))
    torch.testing.assert_close(out["relu1_1"], by_hand, rtol=1e-5, atol=1e-5)
    assert len(ext.net) == 21  # nothing after relu4_2 is kept or run
    # Grayscale is RGB with equal channels.
    gray = x[:, :1]
    torch.testing.assert_close(ext(gray)["relu4_2"], ext(gray.expand(-1, 3, -1, -1))["relu4_2"])


def test_extractor_is_frozen_but_passes_gradients_to_its_input(vgg16_file):
    ext = load_feature_extractor("vgg16", weights=vgg16_file)
    assert not ext.training and not any(p.requires_grad for p in ext.parameters())
    ext.train()
    assert not ext.training
    x = (torch.rand(1, 3, 32, 32) * 2 - 1).requires_grad_()
    ext(x)["relu4_2"].abs().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in ext.parameters())
    assert ext.state_dict().keys() == {f"net.{i}.{w}" for i in VGG16_CONVS if i <= 19 for w in ("weight", "bias")}


@pytest.mark.parametrize("name", list(FEATURE_NETWORKS))
def test_every_registered_network_loads_its_released_layout(name, tmp_path):
    path = random_vgg_weights(tmp_path / "w.pth", name)
    ext = load_feature_extractor(name, ("relu1_1", "relu5_1"), weights=path)
    out = ext(torch.zeros(1, 3, 32, 32))
    assert out["relu5_1"].shape == (1, 512, 2, 2) and torch.isfinite(out["relu5_1"]).all()
    assert WEIGHTS[name].file.startswith(f"{name}-") and WEIGHTS[name].kind == "features"


def test_wrong_files_and_names_are_rejected_clearly(vgg16_file, tmp_path):
    torch.save({"model.0.weight": torch.zeros(3)}, tmp_path / "generator.pth")
    with pytest.raises(WeightsError, match=r"generator.pth is not the vgg16 weights: 26 keys missing "
                                                  r"\(features.0.weight, features.0.bias, features.2.weight\), 1 unexpected"):
        load_feature_network("vgg16", weights=tmp_path / "generator.pth")
    state = torch.load(vgg16_file, weights_only=True)
    with pytest.raises(WeightsError, match=r"features.28.weight is \(512, 256, 3, 3\), expected \(512, 512, 3, 3\)"):
        load_feature_network("vgg16", weights={**state, "features.28.weight": torch.zeros(512, 256, 3, 3)})
    with pytest.raises(WeightsError, match="is not the vgg19 weights: 12 keys missing"):
        load_feature_network("vgg19", weights=vgg16_file)  # VGG-16 is not VGG-19
    (tmp_path / "page.pth").write_text("<html><body>Not Found</body></html>")
    with pytest.raises(WeightsError, match="HTML page"):
        load_feature_network("vgg16", weights=tmp_path / "page.pth")
    (tmp_path / "junk.pth").write_bytes(b"\x00junk" * 10)
    with pytest.raises(WeightsError, match="not a readable torch weights file"):
        load_feature_network("vgg16", weights=tmp_path / "junk.pth")
    with pytest.raises(FileNotFoundError, match="missing.pth does not exist"):
        load_feature_network("vgg16", weights=tmp_path / "missing.pth")
    with pytest.raises(ValueError, match="unknown feature network 'vgg11'; choose one of: vgg16, vgg19"):
        load_feature_extractor("vgg11")
    with pytest.raises(ValueError, match=r"vgg16 has no layer 'relu6_1'.*relu4_2"):
        load_feature_extractor("vgg16", ("relu6_1",), weights=vgg16_file)
    with pytest.raises(ValueError, match="unknown layer"):
        FeatureExtractor(load_feature_network("vgg16", weights=vgg16_file).features, FEATURE_NETWORKS["vgg16"].layers,
                         ("conv9",))


@pytest.fixture
def weights_server(tmp_path: Path, vgg16_file: Path):
    """Serves the random VGG-16 file under the released name; yields (base URL, requested paths)."""
    root = tmp_path / "server"
    root.mkdir()
    (root / WEIGHTS["vgg16"].file).symlink_to(vgg16_file)
    with file_server(root) as served:
        yield served


def test_weights_download_once_into_the_cache_and_are_checked(weights_server, vgg16_file, tmp_path, monkeypatch):
    url, requests = weights_server
    monkeypatch.setenv("CYCLEGAN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("CYCLEGAN_WEIGHTS_MIRROR", url)  # a mirror: the released file name is appended
    cached = tmp_path / "cache" / "features" / "vgg16-397923af.pth"

    # The random file is not the released one: its sha256 does not start with 397923af.
    with pytest.raises(DownloadError, match=r"has sha256 [0-9a-f]{16}\.\.\., expected 397923af\.\.\..*corrupt or "
                                            r"different.*CYCLEGAN_WEIGHTS_MIRROR"):
        load_feature_extractor("vgg16", progress=False)
    assert not cached.exists() and not cached.with_name(cached.name + ".part").exists()

    # Declare the test file's digest as the released one: now it downloads, once.
    monkeypatch.setitem(WEIGHTS, "vgg16", dataclasses.replace(WEIGHTS["vgg16"], sha256=file_sha256(vgg16_file)[:8]))
    requests.clear()
    ext = load_feature_extractor("vgg16", ("relu1_1",), progress=False)
    assert requests == ["/vgg16-397923af.pth"] and cached.is_file()
    torch.testing.assert_close(ext.net[0].weight, torch.load(vgg16_file, weights_only=True)["features.0.weight"],
                               rtol=0, atol=0)
    load_feature_extractor("vgg16", progress=False)
    assert len(requests) == 1  # from the cache

