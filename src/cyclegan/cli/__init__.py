"""Command-line interface: parse, call the library, report errors in one line. No logic of its own.

One module per command group; each has `add_<command>(sub)`, which registers the sub-parser and
its `run(args, parser) -> exit status`. The options that several commands share are in `options`.
Building the parser imports no torch, numpy or PIL (the commands import the library when they run),
so `cyclegan ... --help` is fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import NoReturn

from .. import __version__
from ..config import ConfigError
from ..data.files import DataError
from ..lazy import MissingDependencyError
from .evaluate import add_evaluate
from .export import add_export
from .hub import add_datasets, add_pretrained
from .reproduce import add_reproduce
from .scorer import add_scorer
from .serve import add_serve
from .style_transfer import add_style_transfer
from .train import add_demo, add_train
from .translate import add_translate

logger = logging.getLogger("cyclegan")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cyclegan", description="Unpaired image-to-image translation with CycleGAN.")
    parser.add_argument("--version", action="version", version=f"cyclegan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in (add_train, add_translate, add_demo, add_export, add_evaluate, add_scorer, add_reproduce,
                add_style_transfer, add_serve, add_pretrained, add_datasets):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    rank = os.environ.get("RANK") if "WORLD_SIZE" in os.environ else None  # set by torchrun
    level = logging.DEBUG if args.verbose else logging.INFO
    logging.basicConfig(
        level=level if rank in (None, "0") else max(level, logging.WARNING),  # one voice for INFO: rank 0
        format=f"%(asctime)s %(levelname)s {'' if rank is None else f'[rank {rank}] '}%(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    from ..checkpoint import CheckpointError  # lazy: keeps --help fast
    from ..training.safety import RunLocked, TrainingDiverged

    try:
        return args.run(args, parser)
    except KeyboardInterrupt as e:  # Ctrl-C, or a stop signal after which training saved (TrainingStopped)
        signum = getattr(e, "signum", 2)
        print(f"cyclegan: {'interrupted' if signum == 2 else f'stopped by signal {e}'}", file=sys.stderr)
        return 128 + signum
    except (ConfigError, DataError, CheckpointError, OSError, ValueError, TrainingDiverged, RunLocked,
            MissingDependencyError) as e:
        if args.verbose:
            raise
        print(f"cyclegan: error: {e}", file=sys.stderr)
        return 1


def run() -> NoReturn:
    """The `cyclegan` command (and `python -m cyclegan`): `main`'s status as the exit status."""
    code = main()
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # a torchrun worker
        # Its files are written and closed; skip the interpreter's finalisation, during which gloo's
        # worker threads may still release a finished collective's tensors and abort the process
        # ("terminate called without an active exception", pytorch/pytorch#179291).
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
