"""Translation on ONNX Runtime, the fast path for CPUs: the generator exported to ONNX
(`deploy.export_generator`: padding and cropping included, any size), run by ONNX Runtime in float32,
or quantized to int8 (static quantization, QDQ format, per-channel int8 weights, uint8 activations
calibrated on real images, as `onnxruntime.quantization.quantize_static` does it).

`ort_generator(generator)` returns a module that `translate_paths` / `translate_tensor` use like the
generator (`cyclegan translate --backend onnx|onnx-int8`). Int8 changes the outputs by about 3 grey
levels on average; `benchmarks/translate_speed.py --paired` measures speed and quality against float32
(docs/guides/speed.md: on a CPU with bf16 units, `--precision bf16 --compile` is faster and closer).
Needs the `export` extra (onnx, onnxscript, onnxruntime).
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .data.image_io import array_to_tensor
from .deploy import INSTALL_HINT, MissingDependencyError, export_generator
from .inference import generator_channels

log = logging.getLogger(__name__)

BACKENDS = ("torch", "onnx", "onnx-int8")


class OrtGenerator(nn.Module):
    """An ONNX Runtime session as a generator: float32 (B, C, H, W) in [-1, 1] in, the same size out
    (the exported model pads to its size multiple itself, so `size_multiple` is 1)."""

    size_multiple = 1

    def __init__(self, session, in_channels: int, out_channels: int, *, int8: bool) -> None:
        super().__init__()
        self.session, self.int8 = session, int8
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.session.run(["output"], {"input": x.detach().to("cpu", torch.float32).contiguous().numpy()})[0]
        return torch.from_numpy(y).to(x.device)


def ort_generator(generator: nn.Module, *, int8: bool = False, calibration: Sequence[np.ndarray] = (),
                  threads: int | None = None) -> OrtGenerator:
    """`generator` on ONNX Runtime (CPU), in float32 or, with `int8`, quantized with activation ranges
    calibrated on `calibration` (uint8 images (H, W[, C]) of the domain it translates; at least one).

    Raises:
        ValueError: int8 without calibration images.
        deploy.MissingDependencyError / ExportError: as `export_generator`.
    """
    try:
        import onnxruntime as ort  # optional dependency (the export extra)
    except ImportError:
        raise MissingDependencyError(f"--backend onnx needs onnxruntime, onnx and onnxscript: {INSTALL_HINT}") from None
    if int8 and not calibration:
        raise ValueError("int8 quantization needs calibration images (a few inputs of the domain it translates)")
    in_ch, out_ch = generator_channels(generator)
    with tempfile.TemporaryDirectory(prefix="cyclegan-ort-") as tmp:
        t0 = time.perf_counter()
        fp32 = export_generator(generator, Path(tmp) / "g.onnx", format="onnx")
        model = fp32
        if int8:
            model = _quantize(fp32, Path(tmp) / "g_int8.onnx", calibration)
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        log.info("ONNX Runtime %s generator ready in %.1f s", "int8" if int8 else "float32", time.perf_counter() - t0)
    return OrtGenerator(session, in_ch, out_ch, int8=int8)


def _quantize(source: Path, target: Path, calibration: Sequence[np.ndarray]) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Images(CalibrationDataReader):
        def __init__(self) -> None:
            self.items = iter([{"input": array_to_tensor(a)[None].numpy()} for a in calibration])

        def get_next(self) -> dict | None:
            return next(self.items, None)

    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(max(level, logging.ERROR))  # the quantizer warns about its own pre-processing advice
    try:
        quantize_static(str(source), str(target), Images(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    finally:
        quiet.setLevel(level)
    return target
