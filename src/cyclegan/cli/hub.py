"""`cyclegan pretrained` and `cyclegan datasets`: the official generators and datasets."""

from __future__ import annotations

import argparse

from ..hub.datasets import DATASETS, NOT_DOWNLOADABLE, download_dataset, is_present
from ..names import PRETRAINED
from .options import add_no_progress, add_out

EPILOG_PRETRAINED = """examples:
  cyclegan pretrained list
  cyclegan pretrained download horse2zebra style_monet
  cyclegan translate horse2zebra photos/ --out zebras/     (downloads on first use)
environment:
  CYCLEGAN_CACHE           cache folder (default $XDG_CACHE_HOME/cyclegan, else ~/.cache/cyclegan)
  CYCLEGAN_WEIGHTS_MIRROR  mirror for all weights: an http(s):// or file:// URL, or a local folder, holding NAME.pth
                           (CYCLEGAN_PRETRAINED_URL still works, deprecated)"""

EPILOG_DATASETS = """examples:
  cyclegan datasets list
  cyclegan datasets download horse2zebra --out datasets
  cyclegan datasets prepare-cityscapes gtFine_trainvaltest.zip leftImg8bit_trainvaltest.zip --out datasets/cityscapes
environment:
  CYCLEGAN_CACHE           where the zip is downloaded (default $XDG_CACHE_HOME/cyclegan, else ~/.cache/cyclegan)
  CYCLEGAN_DATASETS_URL    mirror: an http(s):// or file:// URL, or a local folder, holding NAME.zip"""


def add_pretrained(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrained", help="list and download the official pretrained CycleGAN and CUT generators",
        description=f"The {len(PRETRAINED)} generators released with the CycleGAN and CUT papers (resnet_9blocks, "
        "ngf 64, instance norm; CUT's with anti-aliased sampling), downloaded once into a checksummed cache "
        "(CUT's from their one archive, which is cached too).",
        epilog=EPILOG_PRETRAINED, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    ls = actions.add_parser("list", help="name, what it translates, and whether it is cached")
    ls.set_defaults(run=cmd_pretrained_list)
    dl = actions.add_parser("download", help="download generators into the cache and print their paths")
    # Names are checked by the library (one-line error with close matches), not by argparse `choices`.
    dl.add_argument("names", nargs="+", metavar="NAME", help=f"model names: {', '.join(PRETRAINED)}")
    dl.add_argument("--force", action="store_true", help="download again even if cached")
    add_no_progress(dl)
    dl.set_defaults(run=cmd_pretrained_download)


def add_datasets(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "datasets", help="list, download and prepare the official CycleGAN datasets",
        description="Download the datasets used in the paper into ROOT/NAME with trainA, trainB, testA, testB.",
        epilog=EPILOG_DATASETS, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    ls = actions.add_parser("list", help="name, what it holds, and whether it is present under --root")
    ls.add_argument("--root", default="datasets", metavar="DIR",
                    help="folder holding the datasets as DIR/NAME, where `datasets download --out` puts them "
                    "(default ./datasets)")
    ls.set_defaults(run=cmd_datasets_list)
    dl = actions.add_parser("download", help="download and extract a dataset into OUT/NAME")
    dl.add_argument("name", metavar="NAME", help=f"dataset name: {', '.join(DATASETS)} ({', '.join(NOT_DOWNLOADABLE)}: "
                    "see `prepare-cityscapes`)")
    add_out(dl, "folder to extract into, as OUT/NAME (default ./datasets)", default="datasets", aliases=("--root",))
    dl.add_argument("--force", action="store_true", help="download and extract again even if present")
    dl.add_argument("--keep-zip", action="store_true", help="keep the zip in the cache after extracting")
    add_no_progress(dl)
    dl.set_defaults(run=cmd_datasets_download)
    cs = actions.add_parser(
        "prepare-cityscapes", help="build the Cityscapes photo<->label set from the official archives",
        description="Cityscapes may not be redistributed: register at https://www.cityscapes-dataset.com, download "
        "gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip, and give them (or their extracted folders) here. "
        "Writes trainA/trainB/testA/testB (256x256 photos and colour labels) and the pix2pix train/test pairs.",
    )
    cs.add_argument("gtfine", metavar="GTFINE", help="gtFine_trainvaltest.zip or its extracted folder")
    cs.add_argument("leftimg8bit", metavar="LEFTIMG8BIT", help="leftImg8bit_trainvaltest.zip or its extracted folder")
    add_out(cs, "output folder (must not exist or be empty)")
    add_no_progress(cs)
    cs.set_defaults(run=cmd_prepare_cityscapes)


def cmd_pretrained_list(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..weights.pretrained import is_cached  # lazy: keeps --help fast
    width = max(map(len, PRETRAINED))
    for name, description in PRETRAINED.items():
        print(f"{name:<{width}}  {'cached' if is_cached(name) else '-':<6}  {description}")
    return 0


def cmd_pretrained_download(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..weights.pretrained import download_pretrained, get_pretrained  # lazy: keeps --help fast
    for name in args.names:
        get_pretrained(name)  # all names are checked before anything is downloaded
    for name in args.names:
        print(download_pretrained(name, force=args.force, progress=not args.no_progress))
    return 0


def cmd_datasets_list(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    width = max(map(len, [*DATASETS, *NOT_DOWNLOADABLE]))
    for name, info in DATASETS.items():
        print(f"{name:<{width}}  {'present' if is_present(name, args.root) else '-':<7}  {info.description}")
    for name in NOT_DOWNLOADABLE:
        print(f"{name:<{width}}  {'-':<7}  not downloadable: see `cyclegan datasets prepare-cityscapes --help`")
    return 0


def cmd_datasets_download(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    print(download_dataset(args.name, args.out, force=args.force, keep_zip=args.keep_zip, progress=not args.no_progress))
    return 0


def cmd_prepare_cityscapes(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..hub.cityscapes import prepare_cityscapes  # lazy: keeps --help fast (PIL)

    print(prepare_cityscapes(args.gtfine, args.leftimg8bit, args.out, progress=not args.no_progress))
    return 0
