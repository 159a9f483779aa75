"""Export a generator for deployment outside Python: ONNX (onnxruntime, TensorRT, OpenVINO, ...) or
TorchScript (LibTorch, C++).

The exported model is a `PaddedGenerator`: it does what `cyclegan.inference.translate_tensor` does, so it
takes images of any batch size, height and width and returns outputs of exactly the input's size.

    input   float32 (N, C_in, H, W) in [-1, 1]:  x = (pixel / 255 - 0.5) / 0.5
    output  float32 (N, C_out, H, W) in [-1, 1]: pixel = (y + 1) / 2 * 255, clipped to [0, 255], then
            cast to uint8 (truncation, as the official `tensor2im` and `cyclegan translate`)

C is 3 for RGB and 1 for grayscale (see the `in_channels` / `out_channels` metadata). The graph
pads the input to the generator's size multiple (reflection, split evenly, or replication where the
pad is too big for reflection), runs the generator and crops back. The padding is written as
index arithmetic on tensors, without Python branches on the size, so that both exporters keep every
size symbolic: the dynamo ONNX exporter (`torch.onnx.export(dynamo=True)`), and TorchScript (the
generator traced, since it has no size-dependent logic, inside a scripted `PaddedGenerator`).

Every export is checked before it is written: the exported model is run on an input whose size and
batch differ from the example it was exported with and compared with `translate_tensor`.
Files are written atomically; ONNX files carry `metadata_props`, TorchScript files a `cyclegan.json`
extra file (see `read_metadata`). `export` is what `cyclegan export` runs: these two formats, or both
generators of a run in the official layout.
"""

from __future__ import annotations

import contextlib
import importlib
import copy
import io
import json
import logging
import os
import warnings
import zipfile
from collections.abc import Callable, Iterator, Mapping
from typing import Any
from pathlib import Path

import numpy as np
import torch
from torch import nn

from . import __version__, lazy
from .checkpoint import FORMAT as CHECKPOINT_FORMAT
from .inference import (
    MIN_SIDE, generator_channels, load_generator, load_translation, official_generator, padded_side, read_source,
    translate_tensor,
)
from .weights import hf
from .nn import to_official
from .atomic import atomic_write, save_safetensors, save_verified
from .names import EXPORT_FORMATS
from .inference.official_export import export_official

INSTALL_HINT = 'pip install "cyclegan[export]"'
EXTRA_FILE = "cyclegan.json"  # the TorchScript extra file that holds the metadata
MIN_OPSET = 18  # the dynamo ONNX exporter's lowest opset
EXAMPLE_SIZE = (2, 45, 61)  # (batch, height, width) traced at export; odd, so no size is special-cased
CHECK_SIZE = (1, 37, 53)  # (batch, height, width) the exported model is checked on: not the example
CHECK_ATOL = 1e-3  # largest max-abs difference from PyTorch accepted by the check (typical: 1e-6)


class ExportError(ValueError):
    """A generator that could not be exported, or an export that did not reproduce PyTorch."""


class MissingDependencyError(ExportError, lazy.MissingDependencyError):
    """An optional package that the export needs is not installed."""


# ---------------------------------------------------------------------------------------------------
# The exported module


def _pad_index(n: int, padded: int, before: int) -> torch.Tensor:
    """Source index of each of `padded` positions when a side of `n` gets `before` pixels in front.

    Reflection (no edge repeat) where every pad is smaller than `n`, else replication: the same
    choice as `cyclegan.inference.translate._pad_dim`, made with tensor ops so that exporters keep it dynamic.
    """
    i = torch.arange(padded) - before  # (padded,) positions relative to the image, -before..n+after-1
    reflect = (n - 1) - ((n - 1) - i.abs()).abs()  # mirror at 0 and at n - 1; valid on [1-n, 2n-2]
    replicate = i.clamp(0, n - 1)
    reflect_ok = ((i >= 1 - n) & (i <= 2 * n - 2)).all()  # i.e. max(before, after) < n
    return torch.where(reflect_ok, reflect, replicate)


class PaddedGenerator(nn.Module):
    """A generator that takes (N, C, H, W) images of any size: pad to its size multiple, run, crop back.

    Matches `translate_tensor` exactly in PyTorch; written so that `torch.export`/`torch.onnx.export`
    and `torch.jit.script` keep N, H and W dynamic.
    """

    def __init__(self, generator: nn.Module, *, size_multiple: int = 1) -> None:
        super().__init__()
        self.generator = generator
        self.size_multiple = size_multiple
        self.min_blocks = -(-MIN_SIDE // size_multiple)  # padded sides are >= MIN_SIDE

    def _padded_side(self, n: int) -> int:
        """`cyclegan.inference.padded_side`, with a max that stays symbolic under torch.export."""
        blocks = (n + self.size_multiple - 1) // self.size_multiple
        if torch.jit.is_scripting():
            blocks = max(blocks, self.min_blocks)
        else:
            blocks = torch.sym_max(blocks, self.min_blocks)
        return blocks * self.size_multiple

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2], x.shape[-1]
        ph, pw = self._padded_side(h), self._padded_side(w)
        top, left = (ph - h) // 2, (pw - w) // 2
        x = x.index_select(2, _pad_index(h, ph, top)).index_select(3, _pad_index(w, pw, left))  # (N, C, ph, pw)
        y = self.generator(x)
        # Cropping by index rather than slicing: a slice makes torch.export guard on its bounds.
        return y.index_select(2, torch.arange(h) + top).index_select(3, torch.arange(w) + left)


# ---------------------------------------------------------------------------------------------------
# Export


def export_generator(
    generator: nn.Module,
    path: str | Path,
    *,
    format: str,
    opset: int | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Path:
    """Export `generator` wrapped in a `PaddedGenerator` to an ONNX or TorchScript file.

    The generator is copied to the CPU in eval mode (the caller's module is not changed); its
    `size_multiple` attribute (default 1) sets the padding. The export is checked against
    `translate_tensor` on a size it was not exported with before the file is (atomically) written.

    Args:
        format: "onnx" or "torchscript" (see `FORMATS`).
        opset: ONNX opset version (>= 18; default: the exporter's). ONNX only.
        metadata: extra entries for the file's metadata, e.g. {"source": "runs/maps", "direction": "AtoB"}.

    Returns:
        The written path.

    Raises:
        ValueError: an unknown format, an opset for TorchScript or below 18, `path` is a folder, or the
            weights are not finite (a diverged model).
        MissingDependencyError: onnx, onnxscript or onnxruntime is not installed (ONNX only).
        ExportError: the exporter failed, or the exported model does not reproduce PyTorch.
        OSError: the file cannot be written.
    """
    if format not in FORMATS:
        raise ValueError(f"unknown export format {format!r}; choose one of: {', '.join(FORMATS)}")
    if opset is not None and format != "onnx":
        raise ValueError(f"an opset applies only to ONNX export, not {format}; drop it")
    if opset is not None and opset < MIN_OPSET:
        raise ValueError(f"ONNX opset {opset} is too old for the exporter; use {MIN_OPSET} or newer")
    path = Path(path)
    _check_writable(path, SUFFIXES[format])
    export, run = FORMATS[format]
    if format == "onnx":
        _require("onnx", "onnxscript", "onnxruntime")

    bad = next((name for name, t in generator.state_dict().items()
                if t.is_floating_point() and not torch.isfinite(t).all()), None)
    if bad is not None:
        raise ValueError(f"the generator's weights hold NaN or infinite values ({bad}): the model diverged, and "
                         "nothing was exported; export a checkpoint from before the divergence")
    net = copy.deepcopy(generator).float().cpu().eval()
    multiple = int(getattr(generator, "size_multiple", 1))
    in_ch = generator_channels(generator)[0]
    x = _random_images(in_ch, CHECK_SIZE, seed=1)
    expected = translate_tensor(net, x).numpy()  # (batch, out_ch, height, width)
    meta = {
        "cyclegan_version": __version__,
        "generator": type(generator).__name__,
        "in_channels": str(in_ch),
        "out_channels": str(expected.shape[1]),  # from a forward pass: a U-Net's last conv is not its output
        "size_multiple": str(multiple),
        "input": "float32 (N, in_channels, H, W) in [-1, 1]: (pixel / 255 - 0.5) / 0.5; any N, H, W",
        "output": "float32 (N, out_channels, H, W) in [-1, 1]: pixel = (y + 1) / 2 * 255",
        "source": "",
        **{str(k): str(v) for k, v in (metadata or {}).items()},
    }
    with torch.no_grad():
        data = export(net, multiple, _random_images(in_ch, EXAMPLE_SIZE, seed=0), opset, meta)

    try:
        diff = float(np.abs(run(data, x) - expected).max())
    except Exception as e:  # e.g. an opset that onnxruntime does not implement yet
        raise ExportError(f"the exported {format} model failed its check run: {_first_line(e)}") from e
    if not diff <= CHECK_ATOL:  # also catches NaN
        raise ExportError(
            f"the exported {format} model differs from PyTorch by {diff:.2g} (max abs) on a "
            f"{tuple(x.shape)} input, so it was not written; please report this with the generator's config"
        )
    try:
        with atomic_write(path) as f:
            f.write(data)
    except OSError as e:
        raise OSError(f"cannot write {path}: {e.strerror or e}; choose a writable location") from None
    return path


def _export_onnx(
    net: nn.Module, multiple: int, example: torch.Tensor, opset: int | None, meta: dict[str, str]
) -> bytes:
    import onnx  # optional dependency (the export extra)

    dim = torch.export.Dim
    dims = {0: dim("batch", min=1), 2: dim("height", min=1), 3: dim("width", min=1)}  # of x: (N, C, H, W)
    try:
        with _quiet("torch.onnx", "onnxscript", "onnx_ir"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                PaddedGenerator(net, size_multiple=multiple).eval(), (example,), dynamo=True, verbose=False,
                input_names=["input"], output_names=["output"], dynamic_shapes=(dims,), opset_version=opset,
            )
    except Exception as e:
        raise ExportError(f"ONNX export failed: {_first_line(e)}") from e
    proto = program.model_proto
    got = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is not None and got != opset:
        raise ExportError(f"the exporter could not produce opset {opset} (it gave {got}); try another opset")
    onnx.helper.set_model_props(proto, meta)
    proto.doc_string = "CycleGAN generator exported by cyclegan: input and output as in metadata_props"
    return proto.SerializeToString()


def _run_onnx(data: bytes, x: torch.Tensor) -> np.ndarray:
    import onnxruntime as ort  # optional dependency (the export extra)

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return session.run(["output"], {"input": x.numpy()})[0]


def _export_torchscript(
    net: nn.Module, multiple: int, example: torch.Tensor, opset: int | None, meta: dict[str, str]
) -> bytes:
    b, c, h, w = example.shape
    padded = torch.zeros(b, c, padded_side(h, multiple), padded_side(w, multiple))  # what the generator sees
    try:
        with warnings.catch_warnings():
            # torch.jit is deprecated upstream; the trace warns about InstanceNorm's channel check,
            # which depends on the (fixed) channel count only.
            warnings.simplefilter("ignore")
            traced = torch.jit.trace(net, padded, check_trace=False)
            scripted = torch.jit.script(PaddedGenerator(traced, size_multiple=multiple).eval())
            buffer = io.BytesIO()
            torch.jit.save(scripted, buffer, _extra_files={EXTRA_FILE: json.dumps(meta, indent=1)})
    except Exception as e:
        raise ExportError(f"TorchScript export failed: {_first_line(e)}") from e
    return buffer.getvalue()


def _run_torchscript(data: bytes, x: torch.Tensor) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    with torch.no_grad():
        return module(x).numpy()


ExportFn = Callable[[nn.Module, int, torch.Tensor, int | None, dict[str, str]], bytes]
RunFn = Callable[[bytes, torch.Tensor], np.ndarray]
FORMATS: dict[str, tuple[ExportFn, RunFn]] = {
    "onnx": (_export_onnx, _run_onnx),
    "torchscript": (_export_torchscript, _run_torchscript),
}
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}


def export(source: str | Path, out: str | Path, *, format: str = "official", direction: str | None = None,
           opset: int | None = None) -> list[Path]:
    """Export what `cyclegan export` exports: `official` (`.pth`) and `safetensors` write every generator
    of a run or checkpoint into the folder `out` in the official layout
    (`inference.official_export.export_official`), or convert one generator file to the file `out`; `onnx` and
    `torchscript` write the `direction` generator (default AtoB) of anything `load_generator` reads
    to the file `out` (`export_generator`). Returns the written paths.

    Raises:
        ValueError: an unknown format, or `direction` / `opset` given for the official layout.
    """
    if format not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {format!r}; choose one of: {', '.join(EXPORT_FORMATS)}")
    if format in ("official", "safetensors"):
        suffix = ".safetensors" if format == "safetensors" else ".pth"
        if direction or opset is not None:
            raise ValueError(f"--direction and --opset apply to --format onnx/torchscript; {format} writes every "
                             "generator")
        obj = read_source(source)
        if obj.get("format") == CHECKPOINT_FORMAT:  # a run: its generators, official names, in the folder `out`
            return export_official(source, Path(out), suffix=suffix)
        generator = official_generator(obj)  # one generator file: converted to the file `out`
        out = Path(out)
        if out.suffix != suffix:
            raise ValueError(f"give the output file name, ending in {suffix} (one generator file is converted)")
        return [save_safetensors(to_official(generator), out) if suffix == ".safetensors" else
                save_verified(to_official(generator), out)]
    if format == "hf":
        if opset is not None:
            raise ValueError("--opset applies to --format onnx only")
        return [save_pretrained(source, out, direction=direction)]
    direction = direction or "AtoB"
    generator = load_generator(source, direction)
    metadata = {"source": str(source), "direction": direction}
    return [export_generator(generator, out, format=format, opset=opset, metadata=metadata)]


def save_pretrained(source: str | Path, folder: str | Path, *, direction: str | None = None,
                    ema: bool = True) -> Path:
    """One generator of `source` (a run dir, checkpoint, generator file or pretrained name; its
    `direction`, default AtoB or the one a one-way run learned) in the Hugging Face Hub layout
    (`weights.hf`): config.json, model.safetensors and a README.md model card with the run's training
    config and its latest evaluation's scores (and their test-time protocol). Returns the folder."""
    loaded = load_translation(source, direction, "cpu", reverse=False, ema=ema)
    cfg = loaded.config
    direction = loaded.direction
    metrics: dict[str, Any] = {}
    run_dir = Path(source) if Path(source).is_dir() else None
    evals = run_dir / "evals.jsonl" if run_dir is not None else None
    if evals is not None and evals.is_file():
        last = json.loads(evals.read_text().splitlines()[-1])
        metrics = {"split": last.get("split", "test"), "step": last.get("step"),
                   "protocol": last.get("protocol", "full: full resolution, eval mode"),
                   "scores": {k.split(".", 1)[1]: v for k, v in last.items()
                              if k.startswith(f"{direction}.") and isinstance(v, (int, float))}}
    return hf.save_pretrained(
        loaded.generator, folder, method=cfg.model.method if cfg is not None else "cyclegan", direction=direction,
        crop_size=loaded.crop_size, training=cfg.to_dict() if cfg is not None else None, metrics=metrics,
        dataset=(cfg.data.name if cfg is not None else None),
    )


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata an exported file carries: ONNX `metadata_props` or the TorchScript extra file.

    Raises:
        FileNotFoundError: there is no such file.
        ExportError: the file is neither an ONNX model nor a TorchScript archive.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"exported model {path} does not exist")
    if zipfile.is_zipfile(path):  # TorchScript archives are zip files
        extra = {EXTRA_FILE: ""}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.load(path, map_location="cpu", _extra_files=extra)
        return json.loads(extra[EXTRA_FILE]) if extra[EXTRA_FILE] else {}
    _require("onnx")
    import onnx  # optional dependency (the export extra)

    try:
        model = onnx.load(path, load_external_data=False)
    except Exception as e:
        raise ExportError(f"{path} is neither an ONNX model nor a TorchScript file: {_first_line(e)}") from None
    return {p.key: p.value for p in model.metadata_props}


def _check_writable(path: Path, suffix: str) -> None:
    """Fail before a slow export rather than after it."""
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file name such as {path / ('model' + suffix)}")
    folder = path.parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # the first existing ancestor: the missing ones will be created
    if not folder.is_dir():
        raise OSError(f"cannot write {path}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK):
        raise OSError(f"cannot write {path}: {folder} is not writable; choose another location")


@contextlib.contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Silence the exporters' INFO chatter (the CLI logs at INFO) and their warnings about skipped
    optional operators (e.g. "torchvision is not installed"); errors still raise."""
    saved = [(log, log.level) for log in map(logging.getLogger, loggers)]
    for log, _ in saved:
        log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for log, level in saved:
            log.setLevel(level)


def _require(*modules: str) -> None:
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError:
            raise MissingDependencyError(
                f"the {name} package is missing; ONNX export needs onnx, onnxscript and onnxruntime: {INSTALL_HINT}"
            ) from None


def _random_images(channels: int, size: tuple[int, int, int], *, seed: int) -> torch.Tensor:
    batch, height, width = size
    return torch.rand(batch, channels, height, width, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
