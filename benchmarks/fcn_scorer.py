"""Benchmark: train the FCN-score's scorer on the real facades photos and report its ground-truth row.

Trains `cyclegan.scorer` (pix2pix's U-Net with a class-logit head, 7 levels, width 16, batch norm)
on facades_128's trainA photos against the trainB label maps (the 12 CMP classes of the built-in
`facades` palette, nearest colour within 40; the JPEG blends at class boundaries are ignored), at
128 px, with random flips, then scores the real test photos (testA vs testB): per-pixel accuracy,
per-class accuracy and class IoU, each averaged over present classes and over all 12 classes. An
FCN-score of generated photos is read against this row.

The default budget takes about 2 minutes with 1 thread (about 5.5 s per epoch of 400 photos on the
2-core development VM; 2 threads were much slower there while other jobs shared the cores).

    python3 benchmarks/fcn_scorer.py [--data ../shared/data/facades_128] [--epochs 20] [--ngf 32] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import sys
import time
from pathlib import Path

import torch

from cyclegan.scorer import ScorerConfig, train_scorer

sys.path.insert(0, str(Path(__file__).parent))
from train_speed import cpu_name  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/facades_128")
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--epochs", type=int, default=20)
    ap.add_argument("--ngf", type=int, default=16)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-images", type=int, default=None, help="train on the first N photos only (quick checks)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=None, help="also keep the scorer file here")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/fcn_scorer.json"))
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    torch.set_num_threads(args.threads)

    config = ScorerConfig(size=args.size, ngf=args.ngf, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                          seed=args.seed)
    start = time.perf_counter()
    scorer = train_scorer(args.data, args.out, palette="facades", config=config, max_images=args.max_images)
    total = time.perf_counter() - start
    real = scorer.real_scores
    assert real is not None

    print(f"\nfacades real test photos ({real.images}), scorer trained {args.epochs} epochs on "
          f"{scorer.train['images']} photos at {args.size} px in {scorer.train['seconds']:.0f} s "
          f"({args.threads} threads, {cpu_name()})")
    width = max(len(label) for label, _ in real.rows())
    for label, value in real.rows():
        print(f"  {label:<{width}}  {'-' if value != value else f'{value:.4f}'}")
    settings = {**{k: getattr(scorer.config, k) for k in ("size", "num_downs", "ngf", "norm", "epochs", "batch_size",
                                                           "lr", "seed", "flip")}, "palette": "facades",
                "data": str(args.data), "max_images": args.max_images}
    machine = {"cpu": cpu_name(), "threads": torch.get_num_threads(), "torch": torch.__version__,
               "python": platform.python_version()}
    result = {"settings": settings, "machine": machine, "train_seconds": scorer.train["seconds"],
              "total_seconds": total, "losses": scorer.train["losses"], "real_scores": real.as_dict()}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    print(json.dumps({k: result["real_scores"][k] for k in ("pixel_accuracy", "class_accuracy", "mean_iou",
                                                           "class_accuracy_all", "mean_iou_all")}
                     | {"train_seconds": result["train_seconds"]}))


if __name__ == "__main__":
    main()
