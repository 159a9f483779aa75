"""`cyclegan style-transfer`: average neural style transfer, the paper's collection-style baseline."""

from __future__ import annotations

import argparse
from pathlib import Path

EPILOG = """examples:
  cyclegan style-transfer --style datasets/monet2photo/trainA --content photos/ --out out/monet
      (the collection's mean Gram matrices are saved to out/monet/style_stats.pt; VGG-16 downloaded once)
  cyclegan style-transfer --style out/monet/style_stats.pt --content more_photos/ --out out/monet2 \\
      --weights vgg16-397923af.pth --steps 300 --size 512"""


def add_style_transfer(sub: argparse._SubParsersAction) -> None:
    from ..nn.features import FEATURE_NETWORKS
    from ..style_transfer import OPTIMIZERS

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
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (PNG, names and sub-folders kept)")
    p.add_argument("--save-stats", metavar="FILE",
                   help="where to save the style statistics computed from a folder (default OUT/style_stats.pt)")
    p.add_argument("--network", choices=list(FEATURE_NETWORKS), default="vgg16",
                   help="feature network (default vgg16; Gatys et al. used vgg19)")
    p.add_argument("--weights", metavar="PATH",
                   help="the network's weights file (torchvision's vgg16-397923af.pth); default: download once into the cache")
    p.add_argument("--steps", type=int, default=200, metavar="N", help="optimisation steps per image (default 200)")
    p.add_argument("--size", type=int, default=256, metavar="N",
                   help="longer side of the style and content images while optimising (default 256)")
    p.add_argument("--content-weight", type=float, default=1.0, metavar="W", help="default 1")
    p.add_argument("--style-weight", type=float, default=1e6, metavar="W", help="default 1e6")
    p.add_argument("--optimizer", choices=list(OPTIMIZERS), default="lbfgs", help="default lbfgs (as Gatys et al.)")
    p.add_argument("--lr", type=float, metavar="LR", help="step size (default 1 for lbfgs, 0.02 for adam)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(run=cmd_style_transfer)


def cmd_style_transfer(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..data.image_io import find_images
    from ..inference.folders import plan
    from ..style_transfer import CONTENT_LAYER, STYLE_LAYERS, StyleStats, style_statistics, transfer_style
    from ..training.state import resolve_device
    from ..weights import load_feature_extractor

    if args.steps < 0:
        parser.error(f"--steps must be >= 0, got {args.steps}")
    if args.size < 16:
        parser.error(f"--size must be at least 16 pixels, got {args.size}")
    style, out = Path(args.style), Path(args.out)
    # Inputs are checked before the network is loaded (or downloaded).
    stats = None if style.is_dir() else StyleStats.load(style)
    style_images = find_images(style) if stats is None else None
    if stats is not None and stats.network != args.network:
        raise ValueError(f"{style} holds {stats.network} statistics; run with --network {stats.network}")
    plan(args.content, out)
    device = resolve_device(args.device)
    extractor = load_feature_extractor(args.network, (*STYLE_LAYERS, CONTENT_LAYER), weights=args.weights,
                                       progress=not args.no_progress).to(device)
    if stats is None:
        stats = style_statistics(style_images, extractor, network=args.network, size=args.size, device=device,
                                 progress=not args.no_progress)
        saved = stats.save(args.save_stats or out / "style_stats.pt")
        print(f"style statistics of {stats.count} images saved to {saved}")
    written = transfer_style(
        args.content, stats, extractor, out, size=args.size, steps=args.steps, content_weight=args.content_weight,
        style_weight=args.style_weight, optimizer=args.optimizer, lr=args.lr, device=device,
        progress=not args.no_progress,
    )
    print(f"{len(written)} images written to {out}")
    return 0
