"""`cyclegan evaluate fid|kid|paired|segmentation|run`: score translations.

fid / kid: distribution metrics between two image sets (pytorch-fid compatible); paired: outputs
against ground truth of the same names (L1, PSNR, SSIM, maps protocol); segmentation: label images
against ground-truth labels (Cityscapes palette or a palette file); run: a trained run's generators on
its test split (cycle error, and paired metrics / FID where they apply), recorded on its page.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .options import add_dataroot, add_device, add_inception_weights, add_json, add_max_images, positive_int

EPILOG = """examples:
  cyclegan evaluate fid out/fake_B datasets/horse2zebra/testB
  cyclegan evaluate fid out/fake_B zebra_testB.npz --inception-weights pt_inception-2015-12-05-6726825d.pth
  cyclegan evaluate fid datasets/horse2zebra/testB datasets/horse2zebra/testB --save-stats zebra_testB.npz
  cyclegan evaluate kid out/fake_B datasets/horse2zebra/testB --json
  cyclegan evaluate paired out/fake_B datasets/maps/testB
  cyclegan evaluate segmentation out/fake_A datasets/cityscapes/testA
  cyclegan evaluate run runs/maps --max-images 200
  cyclegan evaluate run runs/maps/checkpoints/best.pt datasets/maps --fid"""


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="score translations: FID/KID, paired metrics, segmentation, a run's test split",
        description="Score translations: FID and KID on pytorch-fid's Inception features (numerically "
        "pytorch-fid's FID), paired metrics against ground truth, segmentation scores of label maps, or a "
        "trained run on its test split.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    metrics = p.add_subparsers(dest="metric", metavar="METRIC")
    metrics.required = True
    for name, text in (("fid", "Frechet Inception Distance"), ("kid", "Kernel Inception Distance (mean and std over subsets)")):
        m = metrics.add_parser(name, help=text, description=text)
        m.add_argument("a", metavar="DIR_A", help="image folder" + (" or .npz statistics (pytorch-fid format)" if name == "fid" else ""))
        m.add_argument("b", metavar="DIR_B", help="image folder" + (" or .npz statistics" if name == "fid" else ""))
        add_inception_weights(m)
        m.add_argument("--batch-size", type=positive_int, default=50, metavar="N", help="images per forward pass (default 50)")
        add_device(m)
        add_json(m, instead_of="a line of text")
        if name == "fid":
            m.add_argument("--save-stats", metavar="FILE.npz", help="also save DIR_A's statistics (mu, sigma) for reuse")
        else:
            m.add_argument("--subsets", type=positive_int, default=100, metavar="N", help="random subsets (default 100)")
            m.add_argument("--subset-size", type=positive_int, default=1000, metavar="N",
                           help="images per subset (default 1000, capped by the set sizes)")
        m.set_defaults(run=cmd_fid if name == "fid" else cmd_kid)

    m = metrics.add_parser(
        "paired", help="outputs against ground truth of the same file names: L1, PSNR, SSIM, maps RMSE/accuracy",
        description="Score each image of FAKE_DIR against the image of the same name (any suffix) in REAL_DIR: "
        "L1 (grey levels), PSNR (dB), SSIM, and the maps protocol (256x256 bilinear; RMSE, pixel accuracy at "
        "delta 5 and 10).",
    )
    m.add_argument("fake", metavar="FAKE_DIR", help="translations")
    m.add_argument("real", metavar="REAL_DIR", help="ground truth, same file names (any image suffix)")
    m.add_argument("--grayscale", action="store_true", help="compare as one-channel images (no maps protocol)")
    m.add_argument("--per-image", metavar="FILE.csv", help="also write every image's scores to a CSV file")
    add_max_images(m)
    add_json(m)
    m.set_defaults(run=cmd_paired)

    m = metrics.add_parser(
        "segmentation", help="label images against ground-truth labels: pixel/class accuracy, mean IoU",
        description="Map the colours of FAKE_DIR's label images and REAL_DIR's ground truth to the nearest "
        "palette class, then score per-pixel accuracy, per-class accuracy and mean class IoU (FCN-score metrics).",
    )
    m.add_argument("fake", metavar="FAKE_DIR", help="generated label images")
    m.add_argument("real", metavar="REAL_DIR", help="ground-truth label images, same file names")
    m.add_argument("--palette", metavar="FILE", help="`name R G B` per line, `name*` for void classes "
                   "(default: the 19 Cityscapes classes + void)")
    add_max_images(m)
    add_json(m)
    m.set_defaults(run=cmd_segmentation)

    m = metrics.add_parser(
        "run", help="a run's generators on its test split: cycle error, paired metrics, FID/KID",
        description="Translate the test split (testA/testB) both ways with a run's generators and score it: cycle "
        "reconstruction error always, paired metrics when the split is paired, FID/KID with --fid. The scores "
        "are added to the run's evals.jsonl and index.html.",
    )
    m.add_argument("source", metavar="RUN_DIR_OR_CHECKPOINT", help="a run dir (its latest checkpoint) or a .pt checkpoint")
    add_dataroot(m, default="the run's training data; its testA/ and testB/ are used", alias="--data")
    add_max_images(m)
    m.add_argument("--fid", action="store_true", help="also FID and KID against the other domain's test images")
    add_inception_weights(m)
    add_device(m)
    add_json(m)
    m.set_defaults(run=cmd_run)


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows)


def _value(name: str, v: float) -> str:
    if name in ("images", "paired_images"):
        return str(int(v))
    return f"{100 * v:.2f} %" if name.startswith("acc@") else f"{v:.4f}"


def cmd_paired(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..metrics.paired import paired_metrics  # lazy: keeps --help fast

    result = paired_metrics(args.fake, args.real, channels=1 if args.grayscale else 3, max_images=args.max_images)
    if args.per_image:
        result.write_csv(args.per_image)
    if args.json:
        print(json.dumps({"fake": args.fake, "real": args.real, "images": result.count, **result.means,
                          "unmatched": result.unmatched}))
        return 0
    print(_table([("metric", "mean"), *((k, _value(k, v)) for k, v in result.means.items())]))
    print(f"{result.count} image pairs" + (f"; {len(result.unmatched)} outputs had no reference of the same name"
                                             if result.unmatched else ""))
    return 0


def cmd_segmentation(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..metrics.segmentation import CITYSCAPES, Palette, segmentation_metrics  # lazy: keeps --help fast

    palette = Palette.from_file(args.palette) if args.palette else CITYSCAPES
    scores = segmentation_metrics(args.fake, args.real, palette, max_images=args.max_images)
    if args.json:
        print(json.dumps({"fake": args.fake, "real": args.real, **scores.as_dict()}))
        return 0
    rows = [("metric", "value"), ("per-pixel accuracy", f"{scores.pixel_accuracy:.4f}"),
            ("per-class accuracy", f"{scores.class_accuracy:.4f}"), ("mean class IoU", f"{scores.mean_iou:.4f}")]
    rows += [(f"IoU {name}", "-" if v != v else f"{v:.4f}") for name, v in scores.per_class_iou.items()]
    print(_table(rows))
    print(f"{scores.images} image pairs")
    return 0


def cmd_run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    # lazy: keeps --help fast
    from ..device import resolve_device
    from ..evaluation import evaluate_checkpoint
    from ..training.logs import write_page
    from ..training.periodic_eval import append_eval
    from ..weights import load_fid_inception

    device = resolve_device(args.device)
    feature_model = load_fid_inception(args.inception_weights).to(device) if args.fid else None
    scores, info = evaluate_checkpoint(args.source, data=args.dataroot, device=device, max_images=args.max_images,
                                       feature_model=feature_model)
    source = Path(args.source)
    run_dir = source if source.is_dir() else source.parent.parent if source.parent.name == "checkpoints" else None
    record = {**info, **scores, "source": "cyclegan evaluate run", "checkpoint": str(source)}
    if run_dir is not None and (run_dir / "config.yaml").exists():
        append_eval(run_dir, record)
        write_page(run_dir)
    if args.json:
        print(json.dumps(record))
        return 0
    names = sorted({k.split(".", 1)[1] for k in scores}, key=lambda n: (n in ("images", "paired_images"), n))
    rows = [("metric", "AtoB", "BtoA")]
    rows += [(n, *(_value(n, scores[f"{d}.{n}"]) if f"{d}.{n}" in scores else "-" for d in ("AtoB", "BtoA")))
             for n in names]
    print(_table(rows))
    print(f"test split: {info['data']} · checkpoint after {info['epoch']} epochs, step {info['step']}")
    return 0


def cmd_fid(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..evaluation import fid_between  # lazy: keeps --help fast
    from ..device import resolve_device  # lazy: keeps --help fast

    record = fid_between(args.a, args.b, weights=args.inception_weights, batch_size=args.batch_size,
                         device=resolve_device(args.device), save_stats=args.save_stats)
    print(json.dumps(record) if args.json else f"FID {record['fid']:.4f}")
    return 0


def cmd_kid(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..evaluation import kid_between  # lazy: keeps --help fast
    from ..device import resolve_device  # lazy: keeps --help fast

    r = kid_between(args.a, args.b, weights=args.inception_weights, batch_size=args.batch_size,
                    device=resolve_device(args.device), subsets=args.subsets, subset_size=args.subset_size)
    text = f"KID {r['kid_mean']:.6f} ± {r['kid_std']:.6f}  ({r['n_a']} vs {r['n_b']} images)"
    print(json.dumps(r) if args.json else text)
    return 0
