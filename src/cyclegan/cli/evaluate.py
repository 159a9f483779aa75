"""`cyclegan evaluate fid|kid|paired|segmentation|fcn-score|run`: score translations.

fid / kid: distribution metrics between two image sets (pytorch-fid compatible); paired: outputs
against ground truth of the same names (L1, PSNR, SSIM, maps protocol); segmentation: label images
against ground-truth labels (a built-in palette or a palette file); fcn-score: generated photos
segmented by a trained scorer (`cyclegan scorer train`) against the input label maps; run: a trained
run's generators on its test split (cycle error, and paired metrics / FID where they apply),
recorded on its page.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from .options import (
    add_dataroot, add_device, add_inception_weights, add_json, add_max_images, add_palette, add_protocol,
    check_protocol, median_size, positive_int,
)

EPILOG = """examples:
  cyclegan evaluate fid out/fake_B datasets/horse2zebra/testB
  cyclegan evaluate fid out/fake_B zebra_testB.npz --inception-weights pt_inception-2015-12-05-6726825d.pth
  cyclegan evaluate fid datasets/horse2zebra/testB datasets/horse2zebra/testB --save-stats zebra_testB.npz
  cyclegan evaluate kid out/fake_B datasets/horse2zebra/testB --json
  cyclegan evaluate paired out/fake_B datasets/maps/testB
  cyclegan evaluate segmentation out/fake_A datasets/cityscapes/testA
  cyclegan evaluate segmentation out/fake_B datasets/facades_128/testB --palette facades
  cyclegan evaluate fcn-score out/fake_A datasets/facades_128/testB --scorer facades_scorer.pt
  cyclegan evaluate run runs/maps --max-images 200
  cyclegan evaluate run runs/facades_pix2pix --protocol official     (as the official test.py: beside published numbers)
  cyclegan evaluate run runs/maps/checkpoints/best.pt datasets/maps --fid"""


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="score translations: paired metrics, segmentation, FCN-score, FID/KID, a run's test split",
        description="Score translations: paired metrics against ground truth (L1, PSNR, SSIM, maps protocol), "
        "segmentation scores of generated label maps, the FCN-score of generated photos (a trained scorer "
        "segments them), FID and KID on pytorch-fid's Inception features (numerically pytorch-fid's FID), or a "
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
        "palette class, then score per-pixel accuracy, per-class accuracy and class IoU (FCN-score metrics; the "
        "class means both over present classes and over all classes). Void ground truth is ignored; pixels "
        "predicted void or off-palette count as wrong.",
    )
    m.add_argument("fake", metavar="FAKE_DIR", help="generated label images")
    m.add_argument("real", metavar="REAL_DIR", help="ground-truth label images, same file names")
    add_palette(m)
    add_max_images(m)
    add_json(m)
    m.set_defaults(run=cmd_segmentation)

    m = metrics.add_parser(
        "fcn-score", help="generated photos segmented by a trained scorer, against the input label maps",
        description="The FCN-score (paper Sec. 5.1.1): resize each photo of FAKE_DIR to the scorer's input size, "
        "predict its classes with the scorer (`cyclegan scorer train`), and score them against the label map of "
        "the same name in LABEL_DIR (resized with nearest neighbour, colours mapped by the scorer's palette): "
        "per-pixel accuracy, per-class accuracy and class IoU, averaged over present classes and over all "
        "classes. The scorer's own scores on the real test photos are shown beside them.",
    )
    m.add_argument("fake", metavar="FAKE_DIR", help="generated photos (e.g. labels -> photo translations)")
    m.add_argument("labels", metavar="LABEL_DIR", help="the label maps they were generated from, same file names")
    m.add_argument("--scorer", required=True, metavar="FILE", help="a scorer file from `cyclegan scorer train`")
    add_max_images(m)
    add_device(m)
    add_json(m)
    m.set_defaults(run=cmd_fcn_score)

    m = metrics.add_parser(
        "run", help="a run's generators on its test split: cycle error, paired metrics, FID/KID",
        description="Translate the test split (testA/testB) both ways with a run's generators and score it: cycle "
        "reconstruction error always, paired metrics when the split is paired, FID/KID with --fid. A run dir is "
        "scored with its final checkpoint and, if it kept one, with the checkpoint selected on its validation "
        "split (checkpoints/best.pt); never with one selected on the test split. The final scores are added to "
        "the run's evals.jsonl and index.html.",
    )
    m.add_argument("source", metavar="RUN_DIR_OR_CHECKPOINT",
                   help="a run dir (its latest checkpoint, and best.pt if kept) or a .pt checkpoint")
    add_dataroot(m, default="the run's training data; its testA/ and testB/ are used", alias="--data")
    m.add_argument("--split", choices=("test", "val"), default="test",
                   help="test (testA/testB, default) or val: the run's validation split (its held-out images with "
                   "eval.holdout, else valA/valB)")
    add_max_images(m)
    m.add_argument("--fid", action="store_true", help="also FID and KID against the other domain's test images")
    m.add_argument("--palette-colors", type=positive_int, metavar="K",
                   help="snap each direction's outputs to K colours fitted to its target domain's training images "
                        "(trainB for AtoB, trainA for BtoA) before scoring, as `translate --palette` does")
    m.add_argument("--palette-median", type=median_size, default=0, metavar="N",
                   help="with --palette-colors: median-filter each channel over N x N pixels before snapping, as "
                        "`translate --palette-median` does (odd N; default 0: none)")
    add_inception_weights(m)
    add_protocol(m)
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
                          "unmatched": result.unmatched, "missing": result.missing}))
        return 0
    print(_table([("metric", "mean"), *((k, _value(k, v)) for k, v in result.means.items())]))
    print(f"{result.count} image pairs" + (f"; {len(result.unmatched)} outputs had no reference of the same name"
                                             if result.unmatched else ""))
    if result.missing:
        print(f"cyclegan: warning: {len(result.missing)} references have no output of the same name and are not "
              f"scored (e.g. {result.missing[0]})", file=sys.stderr)
    return 0


def segmentation_table(*columns: Any, header: str = "value", headers: tuple[str, ...] = ()) -> str:
    """`SegmentationScores` as a table, one column each; the row labels say the averaging."""
    rows = [("metric", *(headers or (header,)))]
    for i, (label, _) in enumerate(columns[0].rows()):
        rows.append((label, *("-" if v != v else f"{v:.4f}" for v in (c.rows()[i][1] for c in columns))))
    return _table(rows)


def cmd_segmentation(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    # lazy: keeps --help fast
    from ..metrics.palette import palette_by_name
    from ..metrics.segmentation import segmentation_metrics

    palette = palette_by_name(args.palette)
    scores = segmentation_metrics(args.fake, args.real, palette, max_images=args.max_images)
    if args.json:
        print(json.dumps({"fake": args.fake, "real": args.real, "palette": palette.name, **scores.as_dict()}))
        return 0
    print(segmentation_table(scores))
    print(f"{scores.images} image pairs · {palette.name} palette")
    return 0


def cmd_fcn_score(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    # lazy: keeps --help fast
    from ..device import resolve_device
    from ..scorer import fcn_score, load_scorer

    scorer = load_scorer(args.scorer)
    scores = fcn_score(args.fake, args.labels, scorer, resolve_device(args.device), max_images=args.max_images)
    real = scorer.real_scores
    if args.json:
        print(json.dumps({"fake": args.fake, "labels": args.labels, "scorer": args.scorer, **scores.as_dict(),
                          "real_scores": real.as_dict() if real else None}))
        return 0
    print(segmentation_table(scores, *([real] if real else []),
                             headers=("these photos", "real test photos")[:2 if real else 1]))
    print(f"{scores.images} image pairs · scorer {args.scorer}: {scorer.palette.name} palette, "
          f"{scorer.config.size} px" + (f"; real test photos: {real.images} images" if real else ""))
    return 0


def cmd_run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    # lazy: keeps --help fast
    from ..device import resolve_device
    from ..evaluation import evaluate_checkpoint, run_dir_of, selected_checkpoint
    from ..training.logs import write_page
    from ..training.periodic_eval import append_eval
    from ..weights import load_fid_inception

    check_protocol(args, parser)
    if args.palette_median and not args.palette_colors:
        parser.error("--palette-median filters before the palette snap; give --palette-colors K too")
    device = resolve_device(args.device)
    feature_model = load_fid_inception(args.inception_weights).to(device) if args.fid else None
    source = Path(args.source)
    kwargs = dict(data=args.dataroot, split=args.split, device=device, max_images=args.max_images,
                  feature_model=feature_model, protocol=args.protocol, eval_mode=args.eval,
                  palette_colors=args.palette_colors, palette_median=args.palette_median)
    scores, info = evaluate_checkpoint(source, **kwargs)
    run_dir = run_dir_of(source)
    record = {**info, **scores, "source": "cyclegan evaluate run", "checkpoint": str(source)}
    best = selected_checkpoint(source) if source.is_dir() else None
    selected = None
    if best is not None:
        best_scores, best_info = evaluate_checkpoint(best, **kwargs)
        selected = {**best_info, **best_scores, "checkpoint": str(best)}
        record["selected"] = selected
    if run_dir is not None and (run_dir / "config.yaml").exists():
        append_eval(run_dir, {k: v for k, v in record.items() if k != "selected"})
        write_page(run_dir)
    if args.json:
        print(json.dumps(record))
        return 0
    columns = [(scores, "")] + ([(best_scores, " (selected)")] if selected else [])
    names = sorted({k.split(".", 1)[1] for s, _ in columns for k in s},
                   key=lambda n: (n in ("images", "paired_images"), n))
    rows = [("metric", *(d + label for _, label in columns for d in ("AtoB", "BtoA")))]
    rows += [(n, *(_value(n, s[f"{d}.{n}"]) if f"{d}.{n}" in s else "-" for s, _ in columns for d in ("AtoB", "BtoA")))
             for n in names]
    print(_table(rows))
    print(f"{info['split']} split: {info['images_from']} · final checkpoint after {info['epoch']} epochs, "
          f"step {info['step']} · protocol {info['protocol']}")
    if "palette" in info:
        print(info["palette"])
    if selected:
        print(f"selected: checkpoints/best.pt, picked on the validation split after {selected['epoch']} epochs, "
              f"step {selected['step']}")
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
