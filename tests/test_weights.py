"""cyclegan.weights: the table of released files, the one mirror variable (and its deprecated aliases),
the verified cache and the strict load, against a real HTTP server on 127.0.0.1 and local folders.

The served files are fakes with the released layouts (a tiny-width generator, float16 VGG-16 and FID
Inception weights): the generators and the FID Inception have no published checksum (trust on first
use), so any file that loads as the network is accepted; VGG-16 has one, so the fake is accepted only
where a test declares its digest as the released one.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
import tarfile
import warnings
from pathlib import Path

import pytest
import torch

from cyclegan.inference import load_generator
from cyclegan.weights.pretrained import PRETRAINED, download_pretrained
from cyclegan.metrics.inception import FIDInceptionV3
from cyclegan.nn.features import FEATURE_NETWORKS
from cyclegan.nn.generators import ResnetGenerator
from cyclegan.nn.official import to_official
from cyclegan.weights import (
    ENV_MIRROR,
    FID_INCEPTION,
    KINDS,
    WEIGHTS,
    DownloadError,
    WeightsError,
    get_weights,
    is_cached,
    load_feature_network,
    load_fid_inception,
    load_weights,
    weights_file,
    weights_path,
    weights_url,
)
from cyclegan.weights.download import file_sha256

from helpers import file_server, flip_a_byte

# scripts/download_cyclegan_model.sh of pytorch-CycleGAN-and-pix2pix
OFFICIAL_GENERATORS = (
    "apple2orange", "orange2apple", "summer2winter_yosemite", "winter2summer_yosemite", "horse2zebra",
    "zebra2horse", "monet2photo", "style_monet", "style_cezanne", "style_ukiyoe", "style_vangogh", "sat2map",
    "map2sat", "cityscapes_photo2label", "cityscapes_label2photo", "facades_photo2label", "facades_label2photo",
    "iphone2dslr_flower",
)
CUT_GENERATORS = ("horse2zebra_cut", "horse2zebra_fastcut", "cat2dog_cut", "cat2dog_fastcut", "cityscapes_cut",
                  "cityscapes_fastcut")  # CUT's pretrained_models.tar
ONE_OF_EACH_KIND = ("horse2zebra", "vgg16", FID_INCEPTION)
ALIASES = {"horse2zebra": "CYCLEGAN_PRETRAINED_URL", "vgg16": "CYCLEGAN_FEATURE_WEIGHTS_URL",
           FID_INCEPTION: "CYCLEGAN_FID_WEIGHTS_URL"}
RELEASED_VGG16 = WEIGHTS["vgg16"]


def fake_state(name: str) -> dict[str, torch.Tensor]:
    """Seeded random weights in the layout of the released file of `name` (official generator keys,
    torchvision's VGG keys with classifier keys, pytorch-fid's keys without BatchNorm counters)."""
    gen = torch.Generator().manual_seed(0)
    if WEIGHTS[name].member is not None:  # CUT's layout, blur filters included
        return to_official(ResnetGenerator(3, 3, ngf=2, n_blocks=9, downsample="antialias", upsample="antialias"))
    if WEIGHTS[name].kind == "pretrained":
        return to_official(ResnetGenerator(3, 3, ngf=2, n_blocks=9))
    with torch.device("meta"):
        reference = WEIGHTS[name].network({}).state_dict()
    state = {k: torch.randn(v.shape, generator=gen).half() for k, v in reference.items() if v.is_floating_point()}
    if name.startswith("vgg"):
        state["classifier.0.weight"] = torch.zeros(4, 8)  # unused by the features: the filter drops it
    return state


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Path:
    """A folder holding one fake file of each kind under its released file name."""
    root = tmp_path_factory.mktemp("served")
    for name in ONE_OF_EACH_KIND:
        torch.save(fake_state(name), root / WEIGHTS[name].file)
    return root


@pytest.fixture
def env(tmp_path, monkeypatch, served) -> Path:
    """A cache under tmp_path, no mirror variable set, and the fake VGG-16 declared as the released
    file (its full digest: `test_a_fixed_checksum_refuses_another_file` restores the real prefix)."""
    for var in (ENV_MIRROR, *(kind.alias for kind in KINDS.values())):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CYCLEGAN_CACHE", str(tmp_path / "cache"))
    digest = file_sha256(served / RELEASED_VGG16.file)
    monkeypatch.setitem(WEIGHTS, "vgg16", dataclasses.replace(RELEASED_VGG16, sha256=digest))
    return tmp_path / "cache"


# ---------------------------------------------------------------------------------------------------
# The table


def test_the_table_holds_every_released_file_with_its_url_name_and_checksum():
    assert tuple(n for n, w in WEIGHTS.items() if w.kind == "pretrained") == OFFICIAL_GENERATORS + CUT_GENERATORS
    assert tuple(PRETRAINED) == OFFICIAL_GENERATORS + CUT_GENERATORS  # hub.pretrained's names are the table's
    for name in OFFICIAL_GENERATORS:
        w = WEIGHTS[name]
        assert (w.url, w.file, w.sha256, w.strict, w.member) == (
            f"http://efrosgans.eecs.berkeley.edu/cyclegan/pretrained_models/{name}.pth", f"{name}.pth", None, True, None)
        assert w.description
    for name in CUT_GENERATORS:
        w = WEIGHTS[name]
        assert (w.url, w.file, w.sha256, w.member) == (
            "http://efrosgans.eecs.berkeley.edu/CUT/pretrained_models.tar", f"{name}.pth", None,
            f"checkpoints/{name}_pretrained/latest_net_G.pth")
    assert (RELEASED_VGG16.url, RELEASED_VGG16.file, RELEASED_VGG16.sha256) == (
        "https://download.pytorch.org/models/vgg16-397923af.pth", "vgg16-397923af.pth", "397923af")
    vgg19 = WEIGHTS["vgg19"]
    assert (vgg19.url, vgg19.file, vgg19.sha256) == (
        "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth", "vgg19-dcbb9e9d.pth", "dcbb9e9d")
    fid = WEIGHTS[FID_INCEPTION]
    assert (fid.url, fid.file, fid.sha256, fid.kind) == (
        "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth",
        "pt_inception-2015-12-05-6726825d.pth", None, "fid")
    assert set(WEIGHTS) == {*OFFICIAL_GENERATORS, *CUT_GENERATORS, *FEATURE_NETWORKS, FID_INCEPTION}
    assert {w.kind for w in WEIGHTS.values()} == set(KINDS) == {"pretrained", "features", "fid"}
    for w in WEIGHTS.values():
        assert w.url.rsplit("/", 1)[-1] == w.file or w.member is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        fid.sha256 = "0" * 64
    with pytest.raises(ValueError, match="unknown weights 'vgg61'; did you mean .*vgg16.*choose one of: apple2orange"):
        get_weights("vgg61")


@pytest.mark.parametrize("name", list(WEIGHTS))
def test_every_entry_filters_a_released_layout_onto_its_network(name):
    """Every entry: the released architecture builds and the key filter maps the released keys onto it."""
    w = WEIGHTS[name]
    with torch.device("meta"):
        if w.kind == "pretrained":  # the released generators: resnet_9blocks, ngf 64, instance norm (CUT: anti-aliased)
            cut = w.member is not None
            released = to_official(ResnetGenerator(3, 3, ngf=64, n_blocks=9, downsample="antialias" if cut else "conv",
                                                   upsample="antialias" if cut else "transpose"))
        else:
            released = {k: v for k, v in w.network({}).state_dict().items() if not k.endswith("num_batches_tracked")}
            released["classifier.6.weight"] = torch.empty(1000, 4096) if w.kind == "features" else None
            released = {k: v for k, v in released.items() if v is not None}
        net = w.network(released)
        state = w.filter(released, net)
    expected = net.state_dict()
    assert set(state) == set(expected)
    assert all(tuple(state[k].shape) == tuple(v.shape) for k, v in expected.items())
    if w.kind == "pretrained":
        assert net.state_dict()["encoder.1.weight"].shape == (64, 3, 7, 7) and net.n_blocks == 9


# ---------------------------------------------------------------------------------------------------
# Download, cache, mirror


def test_cut_generators_come_from_the_release_archive_or_a_mirror(env, tmp_path, monkeypatch):
    """The official server packs CUT's generators in one tar: the archive is downloaded once (and
    cached), the member is extracted and verified, and the other members need no second request. A
    mirror holds the file itself. An archive without the member is refused and not kept."""
    release = tmp_path / "release"
    for name in ("horse2zebra_cut", "cityscapes_fastcut"):
        member = release / WEIGHTS[name].member
        member.parent.mkdir(parents=True)
        torch.save(fake_state(name), member)
    (tmp_path / "server").mkdir()
    with tarfile.open(tmp_path / "server" / "pretrained_models.tar", "w") as tar:
        tar.add(release / "checkpoints", arcname="checkpoints")
    with file_server(tmp_path / "server") as (url, requests):
        for name in CUT_GENERATORS:  # the official URL, but on 127.0.0.1
            monkeypatch.setitem(WEIGHTS, name, dataclasses.replace(WEIGHTS[name], url=f"{url}/pretrained_models.tar"))
        path = download_pretrained("horse2zebra_cut", progress=False)
        assert path == env / "pretrained" / "horse2zebra_cut.pth" and is_cached("horse2zebra_cut")
        assert path.read_bytes() == (release / WEIGHTS["horse2zebra_cut"].member).read_bytes()
        assert (env / "pretrained" / "pretrained_models.tar").is_file()
        assert download_pretrained("cityscapes_fastcut", progress=False).is_file()
        assert requests == ["/pretrained_models.tar"]  # one archive for both
        net = load_generator(path)
        assert (net.downsample, net.upsample) == ("antialias", "antialias")
        with pytest.raises(DownloadError, match="does not hold the file checkpoints/cat2dog_cut_pretrained"):
            download_pretrained("cat2dog_cut", progress=False)
        assert not is_cached("cat2dog_cut") and not (env / "pretrained" / "pretrained_models.tar").exists()
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    torch.save(fake_state("cat2dog_cut"), mirror / "cat2dog_cut.pth")
    monkeypatch.setenv(ENV_MIRROR, str(mirror))
    assert download_pretrained("cat2dog_cut", progress=False).read_bytes() == (mirror / "cat2dog_cut.pth").read_bytes()


@pytest.mark.parametrize("name", ONE_OF_EACH_KIND)
def test_each_kind_downloads_through_the_mirror_once(name, env, served, monkeypatch):
    w = WEIGHTS[name]
    with file_server(served) as (url, requests):
        monkeypatch.setenv(ENV_MIRROR, url)
        assert weights_url(name) == f"{url}/{w.file}"
        assert not is_cached(name)
        path = weights_file(name, progress=False)
        assert path == weights_path(name) == env / KINDS[w.kind].folder / w.file  # the sub-folders of before
        assert path.read_bytes() == (served / w.file).read_bytes()
        sidecar = path.with_name(w.file + ".sha256")
        assert sidecar.read_text() == f"{file_sha256(path)}  {w.file}\n" and is_cached(name)
        assert requests == [f"/{w.file}"]
        assert weights_file(name, progress=False) == path
        assert requests == [f"/{w.file}"]  # the second time from the cache: no request


def test_a_fixed_checksum_refuses_another_file(env, served, monkeypatch):
    monkeypatch.setitem(WEIGHTS, "vgg16", RELEASED_VGG16)  # the real prefix, which the fake does not have
    with file_server(served) as (url, requests):
        monkeypatch.setenv(ENV_MIRROR, url)
        with pytest.raises(DownloadError, match=rf"{url}/vgg16-397923af.pth has sha256 [0-9a-f]{{16}}\.\.\., expected "
                                                rf"397923af\.\.\..*corrupt or different.*{ENV_MIRROR}={url}") as e:
            weights_file("vgg16", progress=False)
        assert "\n" not in str(e.value)
    path = weights_path("vgg16")
    assert not path.parent.exists() or not any(path.parent.iterdir())  # no file, .part or sidecar


@pytest.mark.parametrize(("name", "impostor", "message"), [
    ("horse2zebra", "vgg16", "is not an official CycleGAN generator: it has no model.1 and model.26"),
    (FID_INCEPTION, "horse2zebra", "is not the FID Inception weights: 566 keys missing"),
])
def test_trust_on_first_use_still_refuses_a_file_that_is_not_the_network(name, impostor, message, env, served,
                                                                          tmp_path, monkeypatch):
    root = tmp_path / "mirror"
    root.mkdir()
    shutil.copyfile(served / WEIGHTS[impostor].file, root / WEIGHTS[name].file)
    (root / "html").mkdir()
    (root / "html" / WEIGHTS[name].file).write_text("<!DOCTYPE html><html><body>502 Bad Gateway</body></html>")
    with file_server(root) as (url, _):
        monkeypatch.setenv(ENV_MIRROR, url)
        with pytest.raises(DownloadError, match=f"{message}.*{ENV_MIRROR}"):
            weights_file(name, progress=False)
        monkeypatch.setenv(ENV_MIRROR, f"{url}/html")
        with pytest.raises(DownloadError, match=f"is an HTML page.*{ENV_MIRROR}"):
            weights_file(name, progress=False)
    assert not weights_path(name).exists() and not is_cached(name)


@pytest.mark.parametrize("as_uri", [False, True])
def test_a_local_folder_or_file_url_is_a_mirror(as_uri, env, served, monkeypatch):
    monkeypatch.setenv(ENV_MIRROR, served.as_uri() if as_uri else str(served))
    for name in ("horse2zebra", FID_INCEPTION):
        path = weights_file(name, progress=False)
        assert path.read_bytes() == (served / WEIGHTS[name].file).read_bytes() and is_cached(name)


@pytest.mark.parametrize("name", ONE_OF_EACH_KIND)
def test_the_deprecated_variables_still_work_and_warn(name, env, served, monkeypatch):
    alias, file = ALIASES[name], WEIGHTS[name].file
    with file_server(served) as (url, requests):
        monkeypatch.setenv(alias, url)  # the mirror form: the released file name is appended
        with pytest.warns(DeprecationWarning, match=f"{alias} is deprecated; set {ENV_MIRROR}"):
            path = weights_file(name, progress=False)
        assert requests == [f"/{file}"] and path.read_bytes() == (served / file).read_bytes()
        if KINDS[WEIGHTS[name].kind].alias_may_be_file:  # these two also took the file's own URL
            monkeypatch.setenv(alias, f"{url}/{file}")
            with pytest.warns(DeprecationWarning):
                weights_file(name, progress=False, force=True)
            assert requests == [f"/{file}"] * 2
        # The new variable wins, without a warning.
        monkeypatch.setenv(ENV_MIRROR, f"{url}/elsewhere")
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert weights_url(name) == f"{url}/elsewhere/{file}"
        # An error names the deprecated variable in use and the new one.
        monkeypatch.delenv(ENV_MIRROR)
        monkeypatch.setenv(alias, f"{url}/missing")
        with pytest.warns(DeprecationWarning), pytest.raises(DownloadError, match=rf"HTTP 404.*{alias}=.*{ENV_MIRROR}"):
            weights_file(name, progress=False, force=True)


def test_errors_name_the_mirror_variable(env, tmp_path, monkeypatch):
    assert weights_url("vgg19") == "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"  # nothing set
    (tmp_path / "empty").mkdir()
    with file_server(tmp_path / "empty") as (url, _):
        monkeypatch.setenv(ENV_MIRROR, url)
        with pytest.raises(DownloadError, match=rf"{url}/horse2zebra.pth: HTTP 404.*check {ENV_MIRROR}={url}"):
            download_pretrained("horse2zebra", progress=False)
    monkeypatch.setenv(ENV_MIRROR, str(tmp_path / "empty"))
    with pytest.raises(DownloadError, match=f"does not exist.*{ENV_MIRROR}"):
        weights_file(FID_INCEPTION, progress=False)


@pytest.mark.parametrize("name", ["horse2zebra", "vgg16"])
def test_a_corrupted_cache_file_is_detected_and_downloaded_again(name, env, served, monkeypatch, caplog):
    with file_server(served) as (url, requests):
        monkeypatch.setenv(ENV_MIRROR, url)
        path = weights_file(name, progress=False)
        flip_a_byte(path)
        with caplog.at_level(logging.WARNING, logger="cyclegan.weights"):
            assert weights_file(name, progress=False) == path
        assert "corrupt" in caplog.text and len(requests) == 2
        assert path.read_bytes() == (served / WEIGHTS[name].file).read_bytes()


def test_a_cache_from_before_checksums_is_verified_once_and_kept(env, served, monkeypatch, caplog):
    """The old feature and FID code cached files without a sidecar: they are checked, then recorded."""
    monkeypatch.setenv(ENV_MIRROR, "http://127.0.0.1:9/unreachable")  # any request would fail
    for name in ("vgg16", FID_INCEPTION):
        path = weights_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(served / WEIGHTS[name].file, path)
        assert weights_file(name, progress=False) == path and is_cached(name)
    # A file that fails the checks is downloaded again.
    path = weights_path("horse2zebra")
    path.parent.mkdir(parents=True)
    path.write_text("<html>login</html>")
    with file_server(served) as (url, requests):
        monkeypatch.setenv(ENV_MIRROR, url)
        with caplog.at_level(logging.WARNING, logger="cyclegan.weights"):
            weights_file("horse2zebra", progress=False)
    assert requests == ["/horse2zebra.pth"] and "HTML page" in caplog.text


# ---------------------------------------------------------------------------------------------------
# Strict loading


def test_load_weights_applies_the_key_filter_and_checks_every_shape(env, served, monkeypatch):
    monkeypatch.setenv(ENV_MIRROR, str(served))
    vgg = load_feature_network("vgg16", progress=False)  # classifier keys dropped
    state = torch.load(served / WEIGHTS["vgg16"].file, weights_only=True)
    assert set(vgg.state_dict()) == {k for k in state if k.startswith("features.")}
    torch.testing.assert_close(vgg.features[28].weight, state["features.28.weight"].float(), rtol=0, atol=0)
    assert not vgg.training and not any(p.requires_grad for p in vgg.parameters())

    inception = load_fid_inception(progress=False)  # BatchNorm counters added
    state = torch.load(served / WEIGHTS[FID_INCEPTION].file, weights_only=True)
    torch.testing.assert_close(inception.Mixed_7c.branch_pool.conv.weight,
                               state["Mixed_7c.branch_pool.conv.weight"].float(), rtol=0, atol=0)
    assert isinstance(inception, FIDInceptionV3) and not inception.training

    generator = load_weights("horse2zebra", ResnetGenerator(3, 3, ngf=2, n_blocks=9), progress=False)
    reference = ResnetGenerator(3, 3, ngf=2, n_blocks=9)
    reference.load_state_dict(dict(zip(reference.state_dict(), torch.load(
        served / "horse2zebra.pth", weights_only=True).values())))  # to_official keeps our key order
    for key, value in reference.state_dict().items():
        torch.testing.assert_close(generator.state_dict()[key], value, rtol=0, atol=0)

    path = weights_path("horse2zebra")
    with pytest.raises(WeightsError, match=rf"{path} is not an official CycleGAN generator: shape mismatch for "
                                           r"model.1.weight.*build the network horse2zebra.pth is for"):
        load_weights("horse2zebra", ResnetGenerator(3, 3, ngf=4, n_blocks=9))
    with pytest.raises(WeightsError, match=r"the given state dict is not the vgg19 weights: 12 keys missing"):
        load_weights("vgg19", FEATURE_NETWORKS["vgg19"].build(), weights=fake_state("vgg16"))
