"""Command-line interface: parse, call the library, report errors in one line. No logic of its own."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from . import __version__

logger = logging.getLogger("cyclegan")

EPILOG_TRAIN = """examples:
  cyclegan train datasets/maps --run-dir runs/maps --config maps_128
  cyclegan train datasets/horse2zebra --run-dir runs/h2z --set model.ngf=32 --set optim.n_epochs=50
  cyclegan train --resume runs/maps --max-steps 20000
presets: {presets}"""


def _add_train(sub: argparse._SubParsersAction) -> None:
    from .config import list_presets

    p = sub.add_parser(
        "train", help="train a CycleGAN on DATAROOT/trainA + trainB, or resume a run",
        description="Train a CycleGAN. A new run needs DATAROOT and --run-dir; --resume DIR continues a run exactly.",
        epilog=EPILOG_TRAIN.format(presets=", ".join(list_presets())),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dataroot", nargs="?", help="dataset folder with trainA/ and trainB/ (on --resume: optional, overrides the recorded one)")
    p.add_argument("--run-dir", help="folder for config, logs, samples, checkpoints and index.html")
    p.add_argument("--config", action="append", default=[], metavar="FILE_OR_PRESET", help="YAML config file or preset name; repeatable, later ones win")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides", help="override one config field, e.g. model.ngf=32; repeatable")
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its latest checkpoint")
    p.add_argument("--max-steps", type=int, metavar="N", help="stop once the run's total step count reaches N (also across resumes)")
    p.add_argument("--device", help="auto (default: CUDA if available), cpu, cuda, cuda:N")
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")


def _add_translate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "translate", help="translate images or folders with a trained generator",
        description="Translate images at full resolution (any size and aspect ratio). File names are kept; outputs are PNG.",
    )
    p.add_argument("checkpoint", help="a run dir, a checkpoint file, or an official generator .pth")
    p.add_argument("inputs", nargs="+", help="image files and/or folders (scanned recursively)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--direction", choices=["AtoB", "BtoA"], default="AtoB", help="which generator to use (default AtoB)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="train a small CycleGAN on built-in synthetic maps and write a results page",
        description="Needs no data and no network: draws a synthetic aerial-photo <-> map dataset, trains on it "
        "unpaired for a few minutes, translates held-out tiles and writes DIR/index.html.",
    )
    p.add_argument("--out", default="cyclegan-demo", help="output folder (default ./cyclegan-demo)")
    p.add_argument("--steps", type=int, help="training steps (default: the demo preset's schedule)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export", help="write a run's generators as official-layout .pth files",
        description="Write latest_net_G_A.pth (A->B) and latest_net_G_B.pth (B->A) in the official "
        "pytorch-CycleGAN-and-pix2pix layout, for use with its test.py.",
    )
    p.add_argument("checkpoint", help="a run dir or checkpoint file")
    p.add_argument("--out", required=True, help="output folder")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cyclegan", description="Unpaired image-to-image translation with CycleGAN.")
    parser.add_argument("--version", action="version", version=f"cyclegan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_train(sub)
    _add_translate(sub)
    _add_demo(sub)
    _add_export(sub)
    return parser


def cmd_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .config import build_config
    from .training.loop import train

    if args.resume:
        if args.config or args.overrides:
            parser.error("--config/--set cannot change a resumed run (its config is in the checkpoint)")
        run_dir = Path(args.resume)
        if args.run_dir and Path(args.run_dir) != run_dir:
            parser.error("--resume DIR already names the run dir; drop --run-dir")
        train(args.dataroot, run_dir, resume=True, max_steps=args.max_steps, device=args.device, progress=not args.no_progress)
    else:
        if not args.dataroot or not args.run_dir:
            parser.error("a new run needs DATAROOT and --run-dir (or use --resume DIR)")
        cfg = build_config(args.config, args.overrides)
        run_dir = Path(args.run_dir)
        train(args.dataroot, run_dir, cfg, max_steps=args.max_steps, device=args.device, progress=not args.no_progress)
    print(f"run: {run_dir}  (open {run_dir / 'index.html'})")
    return 0


def cmd_translate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .inference import load_generator, translate_paths
    from .training.loop import resolve_device

    device = resolve_device(args.device)
    generator = load_generator(args.checkpoint, args.direction, device=device)
    written, failed = translate_paths(generator, args.inputs, args.out)
    print(f"wrote {len(written)} images to {args.out}")
    if failed:
        print(f"cyclegan: error: {len(failed)} inputs could not be read (see the warnings above)", file=sys.stderr)
        return 1
    return 0


def cmd_demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .demo import run_demo

    page = run_demo(Path(args.out), steps=args.steps, device=args.device)
    print(f"demo results: {page}")
    return 0


def cmd_export(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .training.export import export_official

    for path in export_official(args.checkpoint, Path(args.out)):
        print(path)
    return 0


COMMANDS = {"train": cmd_train, "translate": cmd_translate, "demo": cmd_demo, "export": cmd_export}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S",
    )
    from .config import ConfigError
    from .data.image_io import DataError
    from .training.checkpoint import CheckpointError

    try:
        return COMMANDS[args.command](args, parser)
    except KeyboardInterrupt:
        print("cyclegan: interrupted", file=sys.stderr)
        return 130
    except (ConfigError, DataError, CheckpointError, OSError, ValueError) as e:
        if args.verbose:
            raise
        print(f"cyclegan: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
