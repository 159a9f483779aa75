"""`cyclegan style-transfer`: average neural style transfer, the paper's collection-style baseline."""

from __future__ import annotations

import argparse

from ..names import FEATURE_NETWORKS, STYLE_OPTIMIZERS
from .options import add_device, add_no_progress, add_out

EPILOG = """examples:
  cyclegan style-transfer --style datasets/monet2photo/trainA --content photos/ --out out/monet
      (the collection's mean Gram matrices are saved to out/monet/style_stats.pt; VGG-16 downloaded once)
  cyclegan style-transfer --style out/monet/style_stats.pt --content more_photos/ --out out/monet2 \\
      --weights vgg16-397923af.pth --steps 300 --size 512"""


def add_style_transfer(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "style-transfer", help="neural style transfer with the mean Gram matrices of a style collection (baseline)",
        description="Gatys et al. 2016 with the style of a whole collection: the mean Gram matrices of VGG "
        "relu1_1 ... relu5_1 over the style images, content loss at relu4_2; each output image is optimised "
        "from its content image and written at the content image's size (paper Sec. 5.2).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--style", required=True, metavar="DIR_OR_STATS",
                   help="folder of style images (scanned recursively), or a statistics file saved by an earlier run")
    p.add_argument("--content", required=True, nargs="+", metavar="DIR_OR_IMAGE", help="content images and/or folders")
    add_out(p, "output folder (PNG, names and sub-folders kept)")
    p.add_argument("--save-stats", metavar="FILE",
                   help="where to save the style statistics computed from a folder (default OUT/style_stats.pt)")
    p.add_argument("--network", choices=FEATURE_NETWORKS, default="vgg16",
                   help="feature network (default vgg16; Gatys et al. used vgg19)")
    p.add_argument("--weights", metavar="PATH",
                   help="the network's weights file (torchvision's vgg16-397923af.pth); default: download once into the cache")
    p.add_argument("--steps", type=int, default=200, metavar="N", help="optimisation steps per image (default 200)")
    p.add_argument("--size", type=int, default=256, metavar="N",
                   help="longer side of the style and content images while optimising (default 256)")
    p.add_argument("--content-weight", type=float, default=1.0, metavar="W", help="default 1")
    p.add_argument("--style-weight", type=float, default=1e6, metavar="W", help="default 1e6")
    p.add_argument("--optimizer", choices=STYLE_OPTIMIZERS, default="lbfgs", help="default lbfgs (as Gatys et al.)")
    p.add_argument("--lr", type=float, metavar="LR", help="step size (default 1 for lbfgs, 0.02 for adam)")
    add_device(p)
    add_no_progress(p)
    p.set_defaults(run=cmd_style_transfer)


def cmd_style_transfer(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..style_transfer import transfer_collection_style  # lazy: keeps --help fast
    from ..device import resolve_device  # lazy: keeps --help fast

    result = transfer_collection_style(
        args.style, args.content, args.out, network=args.network, weights=args.weights, save_stats=args.save_stats,
        size=args.size, steps=args.steps, content_weight=args.content_weight, style_weight=args.style_weight,
        optimizer=args.optimizer, lr=args.lr, device=resolve_device(args.device), progress=not args.no_progress,
    )
    if result.stats_saved:
        print(f"style statistics of {result.stats.count} images saved to {result.stats_saved}")
    print(f"{len(result.written)} images written to {args.out}")
    return 0
