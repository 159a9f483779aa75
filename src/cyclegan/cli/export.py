"""`cyclegan export`."""

from __future__ import annotations

import argparse

from ..names import EXPORT_FORMATS
from .options import add_direction, add_out

EPILOG_EXPORT = """examples:
  cyclegan export runs/maps --out official/                      # latest_net_G_A.pth + latest_net_G_B.pth
  cyclegan export runs/maps --format safetensors --out weights/  # the same as .safetensors (no pickle)
  cyclegan export latest_net_G_A.pth --format safetensors --out g.safetensors
  cyclegan export runs/maps --format hf --out maps_sat2map/       # config.json + model.safetensors + README.md
  cyclegan export runs/maps --format onnx --out maps_AtoB.onnx
  cyclegan export latest_net_G_A.pth --format torchscript --out g.pt
onnx and torchscript models take float32 (N, C, H, W) images in [-1, 1] of any size
((pixel / 255 - 0.5) / 0.5) and return the same size in [-1, 1] (pixel = (y + 1) / 2 * 255)."""


def add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export generators: official-layout .pth or .safetensors files, ONNX or TorchScript",
        description="--format official (default) writes latest_net_G_A.pth (A->B) and latest_net_G_B.pth (B->A)\n"
        "into the --out folder, in the pytorch-CycleGAN-and-pix2pix layout for its test.py;\n"
        "--format safetensors writes the same keys as .safetensors files (no pickle); for one generator file,\n"
        "--out names the converted file.\n"
        "--format hf writes one generator (--direction) in the Hugging Face Hub layout into the --out folder:\n"
        "config.json, model.safetensors and a README.md model card (upload it with huggingface_hub).\n"
        "--format onnx or torchscript writes one generator, padding and cropping included, to the --out\n"
        "file, for use outside Python (onnxruntime, TensorRT, LibTorch...).",
        epilog=EPILOG_EXPORT, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", metavar="NAME_OR_PATH",
                   help="a run dir or checkpoint file; for onnx/torchscript also an official generator .pth or a "
                   "pretrained name (anything `cyclegan translate` accepts)")
    # Checked by the library rather than by argparse `choices`, so that a bad value is a one-line error (exit 1).
    p.add_argument("--format", default="official", metavar="{" + ",".join(EXPORT_FORMATS) + "}",
                   help="what to write (default official)")
    add_out(p, "output folder (official) or file (onnx, torchscript)", metavar="PATH")
    add_direction(p, default=None, help="onnx/torchscript/hf: which generator, AtoB (default) or BtoA")
    p.add_argument("--opset", type=int, metavar="N", help="onnx: the ONNX opset (18 or newer; default: the exporter's)")
    p.set_defaults(run=cmd_export)


def cmd_export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..deploy import export  # lazy: keeps --help fast

    for path in export(args.checkpoint, args.out, format=args.format, direction=args.direction, opset=args.opset):
        print(path)
    return 0
