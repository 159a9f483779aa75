"""Export for deployment (`cyclegan.deploy`, `cyclegan export --format onnx|torchscript`): the exported
files reproduce `translate_tensor` at sizes, batches and paddings other than the export example."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch
from torch import nn

from cyclegan import deploy
from cyclegan.deploy import ExportError, MissingDependencyError, PaddedGenerator, export_generator, read_metadata
from cyclegan.inference import load_generator, translate_tensor
from cyclegan.nn import build_generator

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")

# (batch, height, width): odd sides, a second size and batch 2, and a tiny image whose pad is too
# big for reflection (replication). None is the export example (2, 45, 61).
SIZES = [(1, 37, 53), (2, 64, 20), (1, 5, 3)]
GENERATORS = {  # name: (architecture, in channels, out channels, ngf, resampling)
    "resnet": ("resnet_6blocks", 3, 3, 8, {}),
    "unet": ("unet_128", 3, 3, 4, {}),
    "gray": ("resnet_6blocks", 1, 1, 4, {}),
    "cut": ("resnet_6blocks", 3, 3, 4, {"downsample": "antialias", "upsample": "antialias"}),  # blur layers
    "resize_unet": ("unet_128", 3, 3, 4, {"downsample": "antialias", "upsample": "resize"}),
}
FORMATS = ["onnx", "torchscript"]


def images(channels: int, size: tuple[int, int, int], seed: int = 0) -> torch.Tensor:
    batch, height, width = size
    return torch.rand(batch, channels, height, width, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def run_exported(path: Path, x: torch.Tensor) -> np.ndarray:
    if path.suffix == ".onnx":
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return session.run(["output"], {"input": x.numpy()})[0]
    with torch.no_grad():
        return torch.jit.load(str(path))(x).numpy()


def max_abs(a: np.ndarray, b: torch.Tensor) -> float:
    assert a.shape == tuple(b.shape)
    return float(np.abs(a - b.numpy()).max())


def cli(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "cyclegan", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("cyclegan: error:"), result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


class PadProbe(nn.Module):
    """A linear stand-in generator whose border outputs depend on the padded pixels (5x5 zero-padded
    conv), with a large size multiple, so that reflection and replication are both exercised."""

    size_multiple = 16

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(2, 2, 5, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> dict:
    """(generator key, format) -> (generator, exported file), exported on first use."""
    cache: dict = {}
    folder = tmp_path_factory.mktemp("exported")

    def get(key: str, format: str) -> tuple[nn.Module, Path]:
        if (key, format) not in cache:
            if key == "probe":
                net = PadProbe().eval()
            else:
                arch, c_in, c_out, ngf, sampling = GENERATORS[key]
                torch.manual_seed(0)
                net = build_generator(arch, c_in, c_out, ngf=ngf, **sampling).eval()
            path = folder / f"{key}.{'onnx' if format == 'onnx' else 'pt'}"
            cache[key, format] = net, export_generator(net, path, format=format, metadata={"source": key})
        return cache[key, format]

    return get


# ---------------------------------------------------------------------------------------------------
# The wrapper and the exported files


@pytest.mark.parametrize("multiple", [1, 4, 16, 128])
def test_translator_is_translate_tensor_in_pytorch(multiple):
    probe = PadProbe()
    probe.size_multiple = multiple
    translator = PaddedGenerator(probe, size_multiple=multiple)
    for h, w in [(1, 1), (2, 3), (3, 2), (7, 16), (17, 9), (37, 53), (130, 4)]:
        x = images(2, (1, h, w), seed=h * w)
        with torch.no_grad():
            assert torch.equal(translator(x), translate_tensor(probe, x)), (multiple, h, w)


@pytest.mark.parametrize("format", FORMATS)
def test_padding_reflect_and_replicate_survive_export(exported, format):
    probe, path = exported("probe", format)
    for size in [(1, 1, 1), (1, 2, 3), (3, 7, 16), (1, 17, 9), (2, 33, 40)]:
        x = images(2, size)
        assert max_abs(run_exported(path, x), translate_tensor(probe, x)) < 1e-5, size


@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("key", GENERATORS)
def test_exported_generator_matches_pytorch_at_any_size(exported, key, format):
    net, path = exported(key, format)
    c_in = GENERATORS[key][1]
    worst = 0.0
    for size in SIZES:
        x = images(c_in, size)
        worst = max(worst, max_abs(run_exported(path, x), translate_tensor(net, x)))
    print(f"{key} {format}: worst max-abs difference {worst:.2e}")
    assert worst < 1e-4


@pytest.mark.parametrize("format", FORMATS)
def test_metadata_and_onnx_signature(exported, format):
    _, path = exported("gray", format)
    meta = read_metadata(path)
    assert meta["in_channels"] == "1" and meta["out_channels"] == "1"
    assert meta["size_multiple"] == "4" and meta["source"] == "gray" and meta["cyclegan_version"]
    if format == "onnx":
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        (inp,), (out,) = session.get_inputs(), session.get_outputs()
        assert (inp.name, out.name) == ("input", "output")
        assert inp.shape[1] == 1 and all(isinstance(d, str) for d in (inp.shape[0], *inp.shape[2:]))


def test_unet_metadata_reports_its_output_channels(exported):
    _, path = exported("unet", "torchscript")
    assert read_metadata(path)["out_channels"] == "3" and read_metadata(path)["size_multiple"] == "128"


# ---------------------------------------------------------------------------------------------------
# Errors and atomic writes


def test_bad_arguments_raise_value_errors(tmp_path):
    net = PadProbe()
    with pytest.raises(ValueError, match="choose one of: onnx, torchscript"):
        export_generator(net, tmp_path / "m", format="tflite")
    with pytest.raises(ValueError, match="applies only to ONNX"):
        export_generator(net, tmp_path / "m.pt", format="torchscript", opset=18)
    with pytest.raises(ValueError, match="use 18 or newer"):
        export_generator(net, tmp_path / "m.onnx", format="onnx", opset=11)
    with pytest.raises(ValueError, match="is a folder"):
        export_generator(net, tmp_path, format="torchscript")
    (tmp_path / "file").write_text("x")
    with pytest.raises(OSError, match="is a file, not a folder"):
        export_generator(net, tmp_path / "file" / "m.pt", format="torchscript")


def test_missing_onnx_packages_name_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnxscript", None)  # makes `import onnxscript` fail
    with pytest.raises(MissingDependencyError, match=r'pip install "cyclegan\[export\]"') as info:
        export_generator(PadProbe(), tmp_path / "m.onnx", format="onnx")
    assert isinstance(info.value, ImportError) and isinstance(info.value, ValueError)
    assert not (tmp_path / "m.onnx").exists()


def test_failed_check_writes_nothing_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "m.pt"
    path.write_bytes(b"previous")
    monkeypatch.setattr(deploy, "CHECK_ATOL", -1.0)  # every export now fails its check
    with pytest.raises(ExportError, match="not written"):
        export_generator(PadProbe(), path, format="torchscript")
    assert path.read_bytes() == b"previous" and [p.name for p in tmp_path.iterdir()] == ["m.pt"]


def test_caller_generator_is_left_untouched(tmp_path):
    net = PadProbe().train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    export_generator(net, tmp_path / "m.pt", format="torchscript")
    assert net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items())


# ---------------------------------------------------------------------------------------------------
# The command line


@pytest.mark.parametrize("format", FORMATS)
def test_cli_exports_an_official_pth(fixtures_dir, tmp_path, format):
    source = fixtures_dir / "official_G_resnet9_ngf8.pth"
    out = tmp_path / ("model.onnx" if format == "onnx" else "model.pt")
    result = cli("export", source, "--format", format, "--out", out)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(out) and result.stderr == ""
    generator = load_generator(source)
    for size in [(1, 37, 53), (2, 24, 30)]:
        x = images(3, size)
        assert max_abs(run_exported(out, x), translate_tensor(generator, x)) < 1e-4, size
    assert read_metadata(out)["source"] == str(source)


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--format", "tflite", "--out", "{tmp}/m"], ["unknown export format 'tflite'", "official, safetensors, hf, onnx, torchscript"]),
        (["--format", "torchscript", "--out", "{tmp}/file/m.pt"], ["cannot write", "is a file, not a folder"]),
        (["--out", "{tmp}/official", "--direction", "BtoA"], ["--direction and --opset apply to"]),
    ],
)
def test_cli_errors_are_one_line(fixtures_dir, tmp_path, args, fragments):
    (tmp_path / "file").write_text("x")
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    assert_one_line_error(cli("export", fixtures_dir / "official_G_resnet9_ngf8.pth", *args), *fragments)
    assert not (tmp_path / "m").exists()


def test_cli_missing_source_is_one_line(tmp_path):
    result = cli("export", tmp_path / "missing.pth", "--format", "onnx", "--out", tmp_path / "m.onnx")
    assert_one_line_error(result, "missing.pth")
