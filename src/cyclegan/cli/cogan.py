"""`cyclegan cogan train|translate`: the CoGAN baseline (`cyclegan.baselines`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """examples:
  cyclegan cogan train datasets/maps --run-dir runs/cogan --set size=64 --set epochs=20
  cyclegan cogan train --resume --run-dir runs/cogan
  cyclegan cogan translate runs/cogan datasets/maps/testA out/ --direction AtoB --search-steps 100
config keys (--set KEY=VALUE): {keys}"""


def add_cogan(sub: argparse._SubParsersAction) -> None:
    import dataclasses

    from ..baselines.cogan import CoGANConfig

    p = sub.add_parser(
        "cogan", help="the CoGAN baseline: train coupled GANs, translate by latent search",
        description="CoGAN (Liu & Tuzel 2016) as the CycleGAN paper's baseline: two GANs with shared layers learn "
        "both domains from one latent code; an image is translated by searching the code that renders it in "
        "its domain, then rendering that code in the other domain (slow: many optimisation steps per image).",
        epilog=EPILOG.format(keys=", ".join(f.name for f in dataclasses.fields(CoGANConfig))),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = p.add_subparsers(dest="cogan_command", metavar="COMMAND")
    commands.required = True

    t = commands.add_parser("train", help="train on DATAROOT/trainA + trainB, or resume a run")
    t.add_argument("dataroot", nargs="?", help="dataset folder with trainA/ and trainB/ (on --resume: optional)")
    t.add_argument("--run-dir", required=True, help="folder for cogan.yaml and checkpoints/")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override one config field, e.g. size=32; repeatable")
    t.add_argument("--resume", action="store_true", help="continue the run in --run-dir from its latest checkpoint")
    t.add_argument("--max-steps", type=int, metavar="N", help="stop once the run's total step count reaches N")
    t.add_argument("--device", help="auto (default), cpu, cuda, cuda:N")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(run=cmd_train)

    r = commands.add_parser("translate", help="translate images by latent search with a trained CoGAN")
    r.add_argument("run_dir", metavar="RUN_DIR", help="a CoGAN run dir or checkpoint file")
    r.add_argument("inputs", metavar="INPUT", help="an image file or a folder of images (scanned recursively)")
    r.add_argument("out", metavar="OUT_DIR", help="output folder (same names, PNG)")
    r.add_argument("--direction", choices=["AtoB", "BtoA"], default="AtoB", help="default AtoB")
    r.add_argument("--search-steps", type=int, metavar="N", help="Adam steps per image (default: the run's search_steps)")
    r.add_argument("--restarts", type=int, metavar="N", help="random starting points per image (default: the run's)")
    r.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.set_defaults(run=cmd_translate)


def cmd_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..baselines.cogan import CoGANConfig
    from ..baselines.cogan_train import train_cogan

    if args.resume and args.overrides:
        parser.error("--set cannot change a resumed run (its config is in the checkpoint)")
    if not args.resume and not args.dataroot:
        parser.error("a new run needs DATAROOT (or use --resume)")
    cfg = None if args.resume else CoGANConfig.from_overrides(args.overrides)
    p = train_cogan(args.dataroot, args.run_dir, cfg, resume=args.resume, max_steps=args.max_steps,
                    device=args.device, progress=not args.no_progress)
    print(f"run: {args.run_dir}  (step {p['step']}, epoch {p['epoch']})")
    return 0


def cmd_translate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..baselines.cogan_train import load_translators
    from ..inference import translate_paths
    from ..training.state import resolve_device

    for name in ("search_steps", "restarts"):
        value = getattr(args, name)
        if value is not None and value < (0 if name == "search_steps" else 1):
            parser.error(f"--{name.replace('_', '-')} must be at least {0 if name == 'search_steps' else 1}, got {value}")
    t_ab, t_ba = load_translators(args.run_dir, resolve_device(args.device), steps=args.search_steps,
                                  restarts=args.restarts)
    result = translate_paths(t_ab if args.direction == "AtoB" else t_ba, [args.inputs], Path(args.out),
                             progress=not args.no_progress)
    print(f"wrote {len(result.written)} files to {args.out}")
    if result.failed:
        print(f"cyclegan: error: {len(result.failed)} inputs could not be read (see the warnings above)", file=sys.stderr)
        return 1
    return 0
