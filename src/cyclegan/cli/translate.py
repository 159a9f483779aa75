"""`cyclegan translate`."""

from __future__ import annotations

import argparse
import sys


def add_translate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "translate", help="translate images or folders with a trained generator",
        description="Translate images at full resolution (any size and aspect ratio). File names are kept; outputs are PNG.",
    )
    p.add_argument("checkpoint", help="a run dir, a checkpoint file, or an official generator .pth")
    p.add_argument("inputs", nargs="+", help="image files and/or folders (scanned recursively)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], default="AtoB", help="which generator to use (default AtoB)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.set_defaults(run=cmd_translate)


def cmd_translate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..inference import load_generator, translate_paths
    from ..training.loop import resolve_device

    device = resolve_device(args.device)
    generator = load_generator(args.checkpoint, args.direction, device=device)
    written, failed = translate_paths(generator, args.inputs, args.out)
    print(f"wrote {len(written)} images to {args.out}")
    if failed:
        print(f"cyclegan: error: {len(failed)} inputs could not be read (see the warnings above)", file=sys.stderr)
        return 1
    return 0
