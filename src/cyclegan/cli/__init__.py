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

from collections.abc import Callable

from .. import __version__
from ..config import ConfigError
from ..data.files import DataError
from .evaluate import add_evaluate
from .export import add_export
from .hub import add_datasets, add_pretrained
from .reproduce import add_reproduce
from .serve import add_serve
from .style_transfer import add_style_transfer
from .train import add_demo, add_train
from .translate import add_translate

logger = logging.getLogger("cyclegan")


class DeferredParser:
    """A command whose parser is built when it is used: `cyclegan cogan ...` builds it, `cyclegan --help`
    and the other commands do not. For `cli/cogan.py`, which imports torch while it registers (until
    `cogan` becomes `cyclegan train --set model.method=cogan`)."""

    def __init__(self, prog: str, add: Callable[[argparse._SubParsersAction], None]) -> None:
        self.prog, self._add, self._parser = prog, add, None

    def build(self) -> argparse.ArgumentParser:
        if self._parser is None:
            holder = argparse.ArgumentParser(prog=self.prog.rsplit(" ", 1)[0])
            sub = holder.add_subparsers()
            self._add(sub)
            (self._parser,) = sub.choices.values()
        return self._parser

    def parse_known_args(self, args: list[str] | None = None, namespace: argparse.Namespace | None = None):
        return self.build().parse_known_args(args, namespace)  # what argparse asks of a sub-parser


def _add_cogan(sub: argparse._SubParsersAction) -> None:
    def add(holder: argparse._SubParsersAction) -> None:
        from .cogan import add_cogan  # lazy: keeps --help fast (cli/cogan.py imports torch)

        add_cogan(holder)

    name = "cogan"
    placeholder = sub.add_parser(name, help="the CoGAN baseline: train coupled GANs, translate by latent search")
    sub.choices[name] = DeferredParser(placeholder.prog, add)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cyclegan", description="Unpaired image-to-image translation with CycleGAN.")
    parser.add_argument("--version", action="version", version=f"cyclegan {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in (add_train, add_translate, add_demo, add_export, add_evaluate, add_reproduce, add_style_transfer,
                _add_cogan, add_serve, add_pretrained, add_datasets):
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
    from ..training.checkpoint import CheckpointError  # lazy: keeps --help fast

    try:
        return args.run(args, parser)
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
