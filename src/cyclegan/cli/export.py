"""`cyclegan export`."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="write a run's generators as official-layout .pth files",
        description="Write latest_net_G_A.pth (A->B) and latest_net_G_B.pth (B->A) in the official "
        "pytorch-CycleGAN-and-pix2pix layout, for use with its test.py.",
    )
    p.add_argument("checkpoint", help="a run dir or checkpoint file")
    p.add_argument("--out", required=True, help="output folder")
    p.set_defaults(run=cmd_export)


def cmd_export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..training.export import export_official

    for path in export_official(args.checkpoint, Path(args.out)):
        print(path)
    return 0
