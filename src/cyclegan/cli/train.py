"""`cyclegan train` and `cyclegan demo`."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from .options import add_config, add_dataroot, add_device, add_out, add_precision, add_resume, add_set

EPILOG_TRAIN = """examples:
  cyclegan train datasets/maps --run-dir runs/maps --config maps_128
  cyclegan train datasets/horse2zebra --run-dir runs/h2z --set model.ngf=32 --set optim.n_epochs=50
  cyclegan train datasets/maps --run-dir runs/cogan --config cogan
  cyclegan train --resume runs/maps --max-steps 20000
presets: {presets}"""


def add_train(sub: argparse._SubParsersAction) -> None:
    from ..config import list_presets  # lazy: keeps --help fast

    p = sub.add_parser(
        "train", help="train a CycleGAN (or any model.method) on DATAROOT/trainA + trainB, or resume a run",
        description="Train a CycleGAN, or another method (--set model.method=NAME, or its preset: --config pix2pix, "
        "--config cogan). A new run needs DATAROOT and --run-dir; --resume DIR continues a run exactly.",
        epilog=EPILOG_TRAIN.format(presets=", ".join(list_presets())),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataroot(p, default="on --resume, the run's recorded one")
    p.add_argument("--run-dir", help="folder for config, logs, samples, checkpoints and index.html")
    add_config(p)
    add_set(p)
    add_precision(p, default=None, default_help="the config's train.precision, fp32")
    add_resume(p)
    p.add_argument("--max-steps", type=int, metavar="N", help="stop once the run's total step count reaches N (also across resumes)")
    add_device(p, default=None)
    p.add_argument("--no-progress", action="store_true", help="no progress bar (logs only)")
    p.set_defaults(run=cmd_train)


def add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="train a small CycleGAN on built-in synthetic maps and write a results page",
        description="Needs no data and no network: draws a synthetic aerial-photo <-> map dataset, trains on it "
        "unpaired for a few minutes, translates held-out tiles and writes DIR/index.html.",
    )
    add_out(p, "output folder (default ./cyclegan-demo)", default="cyclegan-demo")
    p.add_argument("--steps", type=int, help="training steps (default: the demo preset's schedule)")
    add_set(p, scope=" of the demo preset")
    add_device(p)
    p.set_defaults(run=cmd_demo)


def cmd_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    # lazy: keeps --help fast
    from ..config import build_config
    from ..training.loop import train

    if args.resume:
        if args.config or args.overrides or args.precision:
            parser.error("--config/--set/--precision cannot change a resumed run (its config is in the checkpoint)")
        run_dir = Path(args.resume)
        if args.run_dir and Path(args.run_dir) != run_dir:
            parser.error("--resume DIR already names the run dir; drop --run-dir")
        train(args.dataroot, run_dir, resume=True, max_steps=args.max_steps, device=args.device, progress=not args.no_progress)
    else:
        if not args.dataroot or not args.run_dir:
            parser.error("a new run needs DATAROOT and --run-dir (or use --resume DIR)")
        precision = [f"train.precision={args.precision}"] if args.precision else []
        cfg = build_config(args.config, [*precision, *args.overrides])
        run_dir = Path(args.run_dir)
        train(args.dataroot, run_dir, cfg, max_steps=args.max_steps, device=args.device, progress=not args.no_progress)
    if os.environ.get("RANK", "0") == "0":  # under torchrun, rank 0 speaks for the job
        print(f"run: {run_dir}  (open {run_dir / 'index.html'})")
    return 0


def cmd_demo(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..demo import run_demo  # lazy: keeps --help fast

    page = run_demo(Path(args.out), steps=args.steps, device=args.device, overrides=args.overrides)
    print(f"demo results: {page}")
    return 0
