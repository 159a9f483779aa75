"""The options that several commands share, each defined once so that it means one thing everywhere.

    --out PATH          where a command writes its result (a folder, or a file where it writes one)
    DATAROOT            a dataset folder (trainA/ trainB/ testA/ testB/), a positional argument
    --max-images N      only the first N images of each domain, in file-name order
    --precision P       the arithmetic of the networks: fp32, bf16 or fp16
    --device D          auto, cpu, cuda or cuda:N
    --resume DIR        a run to continue
    --palette P         a label palette: cityscapes, facades or a palette file

An old spelling stays accepted through `add_alias`: hidden from --help, it warns once on stderr.
Choices come from the library's tables. Nothing here imports torch, numpy or PIL: every command's
parser is built for every `cyclegan ... --help`.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..config import CHOICES, list_presets
from ..names import DIRECTIONS, PALETTES, PROTOCOLS

PRECISIONS = CHOICES["train.precision"]
DEVICE_HELP = "auto (default: CUDA if available), cpu, cuda, cuda:N"
DATAROOT_HELP = "dataset folder with trainA/, trainB/, testA/ and testB/ (`cyclegan datasets download` makes one)"
MAX_IMAGES_HELP = "only the first N images of each domain, in file-name order (default: all)"
PRECISION_HELP = ("fp32 (exact), bf16 (CPU with AVX512-BF16/AMX, or GPU) or fp16 (GPU): faster, outputs within "
                  "a few grey levels")


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None


def positive_int(text: str) -> int:
    """An argparse `type`: an integer of at least 1."""
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def median_size(text: str) -> int:
    """An argparse `type`: the size of the median filter before a palette snap (0, or odd and >= 3)."""
    from ..data.palette import check_median  # lazy: keeps --help fast

    value = _whole_number(text)
    try:
        return check_median(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


class _DeprecatedAlias(argparse.Action):
    """An old spelling of an option: stores into the new option's `dest` and says, on stderr, what to use."""

    def __init__(self, option_strings: list[str], dest: str, *, use: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, **kwargs)
        self.use = use

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        print(f"cyclegan: warning: {option_string} is deprecated; use {self.use}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def add_alias(p: argparse.ArgumentParser, old: str, *, use: str, dest: str, **kwargs: Any) -> None:
    """Keep the option spelling `old` working, hidden from --help; `use` says what replaces it."""
    p.add_argument(old, dest=dest, action=_DeprecatedAlias, use=use, help=argparse.SUPPRESS, **kwargs)


def add_out(p: argparse.ArgumentParser, help: str, *, default: str | None = None, metavar: str = "DIR",
            aliases: tuple[str, ...] = ()) -> None:
    """`--out`: where the command writes its result; required unless it has a default."""
    p.add_argument("--out", required=default is None, default=default, metavar=metavar, help=help)
    for old in aliases:
        add_alias(p, old, use="--out", dest="out", metavar=metavar)


def add_dataroot(p: argparse.ArgumentParser, *, default: str | None = None, alias: str | None = None) -> None:
    """The positional DATAROOT; `default` says what an omitted one means (None: it is required).

    With an `alias` (an old `--data DIR`) the positional is optional to argparse; `require_dataroot`
    then checks that one of the two was given.
    """
    optional = default is not None or alias is not None
    p.add_argument("dataroot", metavar="DATAROOT", nargs="?" if optional else None,
                   default=argparse.SUPPRESS if alias else None,  # SUPPRESS: an empty positional keeps --data's value
                   help=DATAROOT_HELP + (f"; default: {default}" if default else " (required)" if optional else ""))
    if alias:
        add_alias(p, alias, use="DATAROOT (a positional argument)", dest="dataroot", metavar="DIR", default=None)


def require_dataroot(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str:
    if args.dataroot is None:
        parser.error(f"DATAROOT is required: the {DATAROOT_HELP}")
    return args.dataroot


def add_max_images(p: argparse.ArgumentParser, *, aliases: tuple[str, ...] = ()) -> None:
    p.add_argument("--max-images", type=positive_int, metavar="N", help=MAX_IMAGES_HELP)
    for old in aliases:
        add_alias(p, old, use="--max-images", dest="max_images", type=positive_int, metavar="N")


def add_precision(p: argparse.ArgumentParser, *, default: str | None = "fp32", default_help: str | None = None) -> None:
    """`--precision`; `default_help` says what the default None means (e.g. the config's)."""
    p.add_argument("--precision", choices=PRECISIONS, default=default,
                   help=f"{PRECISION_HELP} (default: {default_help or default})")


def add_device(p: argparse.ArgumentParser, *, default: str | None = "auto") -> None:
    """`--device`; None leaves the choice to the run's config (`train.device`, auto by default)."""
    p.add_argument("--device", default=default, help=DEVICE_HELP)


def add_resume(p: argparse.ArgumentParser) -> None:
    """`--resume DIR` (train's; for cli/train.py once it takes its options from here)."""
    p.add_argument("--resume", metavar="DIR", help="continue the run in DIR from its latest checkpoint")


def add_direction(p: argparse.ArgumentParser, *, default: str | None = "AtoB", help: str | None = None) -> None:
    p.add_argument("--direction", choices=DIRECTIONS, default=default,
                   help=help or "which of a run's two generators: AtoB (default) or BtoA")


def add_tile(p: argparse.ArgumentParser, *, default: int | None = None) -> None:
    p.add_argument("--tile", type=int, default=default, metavar="SIZE",
                   help="translate images with a side larger than SIZE in overlapping tiles, in bounded memory "
                   f"(at least 64; default {default or 'none: whole images'})")


def add_protocol(p: argparse.ArgumentParser, *, crop_size: bool = False) -> None:
    """`--protocol` (inference.protocol) with `--eval` and, where no run says it, `--crop-size`."""
    p.add_argument("--protocol", choices=PROTOCOLS, default="full",
                   help="full (default): every image at its own size, networks in eval mode; official: as the "
                   "official test.py, images resized to the run's crop size (bicubic), one per pass, networks in "
                   "train mode unless --eval (dropout on, batch norm on each image's statistics)")
    p.add_argument("--eval", action="store_true", help="with --protocol official: networks in eval mode (test.py's --eval)")
    if crop_size:
        p.add_argument("--crop-size", type=positive_int, metavar="N",
                       help="with --protocol official: the test size (default: the run's data.crop_size; 256 for an "
                       "official .pth)")


def check_protocol(args: argparse.Namespace, parser: argparse.ArgumentParser) -> None:
    """`--eval` and `--crop-size` belong to the official protocol."""
    if args.protocol != "official":
        for flag, value in (("--eval", args.eval), ("--crop-size", getattr(args, "crop_size", None))):
            if value:
                parser.error(f"{flag} applies to --protocol official")


def add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", action="append", default=[], metavar="FILE_OR_PRESET",
                   help=f"YAML config file or preset name; repeatable, later ones win. Presets: {', '.join(list_presets())}")


def add_set(p: argparse.ArgumentParser, *, scope: str = "") -> None:
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help=f"override one config field{scope}, e.g. model.ngf=32; repeatable")


def add_inception_weights(p: argparse.ArgumentParser) -> None:
    p.add_argument("--inception-weights", metavar="FILE",
                   help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth (default: downloaded once into the cache)")


def add_json(p: argparse.ArgumentParser, *, instead_of: str = "a table") -> None:
    p.add_argument("--json", action="store_true", help=f"print JSON instead of {instead_of}")


PALETTE_HELP = (f"label colours and class names: {', '.join(PALETTES)} (built in), or a palette file (.json or .yaml: "
                "name, classes [{name, rgb, void}], max_distance; or `name R G B` lines)")


def add_palette(p: argparse.ArgumentParser, *, default: str = "cityscapes") -> None:
    """`--palette`: a built-in palette name or a palette file (metrics.palette.palette_by_name)."""
    p.add_argument("--palette", default=default, metavar="NAME_OR_FILE", help=f"{PALETTE_HELP} (default: {default})")


def add_no_progress(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-progress", action="store_true", help="no progress bars")

