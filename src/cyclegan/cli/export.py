"""`cyclegan export`."""

from __future__ import annotations

import argparse
from pathlib import Path

EXPORT_FORMATS = ("official", "onnx", "torchscript")

EPILOG_EXPORT = """examples:
  cyclegan export runs/maps --out official/                      # latest_net_G_A.pth + latest_net_G_B.pth
  cyclegan export runs/maps --format onnx --out maps_AtoB.onnx
  cyclegan export latest_net_G_A.pth --format torchscript --out g.pt
onnx and torchscript models take float32 (N, C, H, W) images in [-1, 1] of any size
((pixel / 255 - 0.5) / 0.5) and return the same size in [-1, 1] (pixel = (y + 1) / 2 * 255)."""


def add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="export generators: official-layout .pth files, ONNX or TorchScript",
        description="--format official (default) writes latest_net_G_A.pth (A->B) and latest_net_G_B.pth (B->A)\n"
        "into the --out folder, in the pytorch-CycleGAN-and-pix2pix layout for its test.py.\n"
        "--format onnx or torchscript writes one generator, padding and cropping included, to the --out\n"
        "file, for use outside Python (onnxruntime, TensorRT, LibTorch...).",
        epilog=EPILOG_EXPORT, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", help="a run dir or checkpoint file; for onnx/torchscript also an official "
                   "generator .pth (anything `cyclegan translate` accepts)")
    p.add_argument("--format", default="official", metavar="{" + ",".join(EXPORT_FORMATS) + "}",
                   help="what to write (default official)")
    p.add_argument("--out", required=True, help="output folder (official) or file (onnx, torchscript)")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], help="onnx/torchscript: which generator (default AtoB)")
    p.add_argument("--opset", type=int, metavar="N", help="onnx: the ONNX opset (18 or newer; default: the exporter's)")
    p.set_defaults(run=cmd_export)


def cmd_export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    # Checked here rather than by argparse `choices` so that a bad value is a one-line error (exit 1).
    if args.format not in EXPORT_FORMATS:
        raise ValueError(f"unknown export format {args.format!r}; choose one of: {', '.join(EXPORT_FORMATS)}")
    if args.format == "official":
        from ..inference.official_export import export_official

        if args.direction or args.opset is not None:
            raise ValueError("--direction and --opset apply to --format onnx/torchscript; official writes both "
                             "generators")
        for path in export_official(args.checkpoint, Path(args.out)):
            print(path)
        return 0

    from ..deploy import export_generator
    from ..inference import load_generator

    direction = args.direction or "AtoB"
    generator = load_generator(args.checkpoint, direction)
    source = {"source": str(args.checkpoint), "direction": direction}
    print(export_generator(generator, args.out, format=args.format, opset=args.opset, metadata=source))
    return 0
