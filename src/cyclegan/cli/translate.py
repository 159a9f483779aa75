"""`cyclegan translate`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..data.files import IMAGE_FORMATS
from ..names import PRETRAINED
from .options import (
    add_device, add_direction, add_no_progress, add_out, add_precision, add_protocol, add_tile, check_protocol,
    median_size, positive_int,
)

EPILOG = """examples:
  cyclegan translate horse2zebra photos/ --out zebras/          (official pretrained model, downloaded once)
  cyclegan translate runs/maps testA/ --out out/ --page         (index.html with real / fake / reconstruction)
  cyclegan translate latest_net_G_A.pth big.jpg --out out/ --tile 512
  cyclegan translate runs/maps archive/ --out out/ --format jpg --batch-size 8 --workers 4 --skip-existing
  cyclegan translate runs/facades_pix2pix testA/ --out results/ --protocol official   (as the official test.py)"""


def add_translate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "translate", help="translate images, folders or videos with a trained or pretrained generator",
        description="Translate images at full resolution (any size and aspect ratio), keeping file names and "
        "sub-folders. Video files (.mp4, .mov, ...) are translated frame by frame.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("checkpoint", metavar="NAME_OR_PATH",
                   help="a run dir, a checkpoint file, an official generator .pth, or a pretrained model name "
                   f"(downloaded once): {', '.join(PRETRAINED)}")
    p.add_argument("inputs", metavar="INPUT", nargs="+",
                   help="image or video files and/or image folders (scanned recursively)")
    add_out(p, "output folder (same names and sub-folders)")
    add_direction(p, default=None, help="which of a run's two generators: AtoB (default) or BtoA; a one-way run's "
                  "default is the direction it learned")
    p.add_argument("--format", default="png", choices=list(IMAGE_FORMATS),
                   help="output image format (default png, lossless); 16-bit and multi-band outputs that it cannot "
                   "hold are written as .tif (docs/guides/bands.md)")
    p.add_argument("--quality", type=int, metavar="Q", help="jpg/webp quality 1-100 (default 95)")
    add_tile(p)
    p.add_argument("--tile-overlap", type=int, metavar="PX", help="overlap of neighbouring tiles (default max(128, SIZE/4))")
    p.add_argument("--tile-stats-pixels", type=int, metavar="N",
                   help="instance-norm statistics are exact for images up to N pixels and estimated on a copy "
                   "downscaled to N above (default 1048576; more is closer to a whole-image pass, needs more memory)")
    p.add_argument("--batch-size", type=positive_int, default=1, metavar="N",
                   help="images per forward pass, of the same size (default 1)")
    p.add_argument("--workers", type=int, default=0, metavar="N", help="image-decoding worker processes (default 0)")
    p.add_argument("--skip-existing", action="store_true", help="leave outputs that already exist (resume a big run)")
    p.add_argument("--page", action="store_true", help="also write OUT/index.html with real / fake (/ reconstruction) per image")
    p.add_argument("--backend", choices=("torch", "onnx", "onnx-int8"), default="torch",
                   help="torch (default); onnx: the generator exported to ONNX and run by ONNX Runtime (float32, "
                   "faster on CPUs); onnx-int8: the same, quantized to int8 with activations calibrated on the first "
                   "--calibration inputs (fastest on CPUs; outputs differ by a few grey levels). Needs the export extra")
    p.add_argument("--calibration", type=positive_int, default=16, metavar="N",
                   help="onnx-int8: how many of the inputs calibrate the quantization (default 16)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the generator (pays off for many images of one size; compile time first)")
    add_protocol(p, crop_size=True)
    p.add_argument("--palette", metavar="DIR_OR_IMAGE",
                   help="snap every output pixel to the nearest of --palette-colors colours fitted to these "
                        "target-domain images (for outputs drawn in a few flat colours: maps, label maps)")
    p.add_argument("--palette-colors", type=positive_int, default=8, metavar="K", help="palette size (default 8)")
    p.add_argument("--palette-median", type=median_size, default=0, metavar="N",
                   help="with --palette: median-filter each channel over N x N pixels first (odd N; removes isolated "
                        "off-colour pixels; 5 helps maps; default 0: none)")
    p.add_argument("--raw-weights", action="store_true",
                   help="a run trained with train.ema: its raw generator weights instead of their moving average")
    add_device(p)
    add_precision(p)
    add_no_progress(p)
    p.set_defaults(run=cmd_translate)


def backend_generator(args: argparse.Namespace, parser: argparse.ArgumentParser, generator, device):
    """The generator to translate with: as loaded, compiled, or on ONNX Runtime (float32 / int8)."""
    if args.backend == "torch":
        if args.compile:
            import torch  # lazy: keeps --help fast

            compiled = torch.compile(generator)
            for name in ("size_multiple", "in_channels", "out_channels"):  # what translators read
                if hasattr(generator, name):
                    setattr(compiled, name, getattr(generator, name))
            return compiled
        return generator
    if args.compile or args.tile or args.protocol != "full" or args.precision != "fp32" or device.type != "cpu":
        parser.error(f"--backend {args.backend} runs on the CPU in its own precision, whole images, protocol full: "
                     "drop --compile, --tile, --protocol, --precision and --device")
    import numpy as np  # lazy: keeps --help fast

    from ..data.image_io import find_images, is_image_file, load_image
    from ..inference.loading import generator_channels
    from ..runtime import ort_generator

    calibration = []
    if args.backend == "onnx-int8":
        channels = generator_channels(generator)[0]
        files = [f for item in args.inputs for f in (find_images(item) if Path(item).is_dir() else [Path(item)])
                 if is_image_file(f)]
        for f in files[: args.calibration]:
            calibration.append(np.asarray(load_image(f, channels)))
    return ort_generator(generator, int8=args.backend == "onnx-int8", calibration=calibration)


def cmd_translate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..inference import Protocol, load_translation, translate_paths  # lazy: keeps --help fast
    from ..device import resolve_device  # lazy: keeps --help fast

    check_protocol(args, parser)
    if args.protocol == "official" and args.batch_size > 1 and not args.eval:
        parser.error("--protocol official translates one image per pass, as test.py (batch norm in train mode "
                     "would normalise a batch together); drop --batch-size, or add --eval")
    if args.quality is not None and not 1 <= args.quality <= 100:
        parser.error(f"--quality must be between 1 and 100, got {args.quality}")
    if args.tile is not None and args.tile < 64:
        parser.error(f"--tile must be at least 64 pixels, got {args.tile}")
    device = resolve_device(args.device)
    # A run or checkpoint holds both generators (reconstruction column on --page); an official .pth one.
    loaded = load_translation(args.checkpoint, args.direction, device, reverse=args.page, ema=not args.raw_weights)
    protocol = Protocol.named(args.protocol, crop_size=args.crop_size or loaded.crop_size, eval_mode=args.eval)
    generator = backend_generator(args, parser, loaded.generator, device)
    palette = None
    if args.palette_median and not args.palette:
        parser.error("--palette-median filters before the palette snap; give --palette DIR too")
    if args.palette:
        from ..data.palette import load_palette  # lazy: keeps --help fast
        from ..inference.loading import generator_channels

        if generator_channels(loaded.generator)[1] != 3:
            parser.error("--palette snaps RGB outputs; this generator writes one-channel images")
        palette = load_palette(args.palette, args.palette_colors)
    result = translate_paths(
        generator, args.inputs, args.out, image_format=args.format, quality=args.quality,
        batch_size=args.batch_size, num_workers=args.workers, tile=args.tile, tile_overlap=args.tile_overlap,
        tile_stats_pixels=args.tile_stats_pixels,
        skip_existing=args.skip_existing, reconstructor=loaded.reverse, page=args.page, precision=args.precision,
        protocol=protocol, palette=palette, palette_median=args.palette_median, progress=not args.no_progress,
    )
    skipped = f" ({len(result.skipped)} already there, skipped)" if result.skipped else ""
    print(f"wrote {len(result.written)} files to {args.out}{skipped}")
    if result.page:
        print(f"results page: {result.page}")
    if result.failed:
        print(f"cyclegan: error: {len(result.failed)} inputs could not be read (see the warnings above)", file=sys.stderr)
        return 1
    return 0

