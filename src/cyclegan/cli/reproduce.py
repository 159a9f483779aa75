"""`cyclegan reproduce ablation|baselines`: train the paper's variants, evaluate, print the table."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..experiments import BUDGETS, EXPERIMENTS, reproduce
from .options import (
    add_config, add_dataroot, add_device, add_json, add_max_images, add_no_progress, add_out, add_precision,
    add_protocol, add_set, check_protocol, require_dataroot,
)

EPILOG = """examples:
  cyclegan reproduce ablation datasets/maps_128 --out runs/ablation          # small budget
  cyclegan reproduce ablation datasets/cityscapes --out runs/ablation_city --budget paper \\
      --config cityscapes --segmentation cityscapes
  cyclegan reproduce baselines datasets/maps --out runs/baselines --variants SimGAN CycleGAN
  cyclegan scorer train datasets/facades_128 --out facades_scorer.pt --palette facades
  cyclegan reproduce baselines datasets/facades_128 --out runs/facades --variants CycleGAN pix2pix "pix2pix BtoA" \\
      --seeds 0 1 2 --segmentation facades --fcn-score facades_scorer.pt
variants:
{variants}"""


def add_reproduce(sub: argparse._SubParsersAction) -> None:
    variants = "\n".join(f"  {name}: {', '.join(table)}" for name, table in EXPERIMENTS.items())
    p = sub.add_parser(
        "reproduce", help="the paper's loss ablation and baselines, and the stabilisers: train, evaluate, print the table",
        description="Train every variant of an experiment (same networks and training, one loss term changed), "
        "evaluate each on the test split (its final checkpoint and, where the run kept one, the checkpoint "
        "selected on its validation split), and print markdown tables. Re-running continues interrupted runs "
        "and reuses finished ones.",
        epilog=EPILOG.format(variants=variants), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("experiment", choices=list(EXPERIMENTS),
                   help="ablation (Tables 4-5), baselines, or stabilisers (EMA, SN, GP, DiffAugment)")
    add_dataroot(p, alias="--data")
    add_out(p, "one run dir per variant, plus results.md/.json")
    p.add_argument("--budget", choices=list(BUDGETS), default="small",
                   help="small: width 32, 64 px crops, 1 + 1 epochs, best.pt picked on 50 images per domain held out "
                   "of training (CPU-sized); paper: the config as given")
    add_config(p)
    add_set(p, scope=" for every variant")
    add_precision(p, default=None, default_help="the config's train.precision, fp32 unless set")
    p.add_argument("--variants", nargs="+", metavar="NAME", help="only these variants (names as listed below)")
    p.add_argument("--seeds", nargs="+", type=int, metavar="K",
                   help="train each variant once per seed (OUT/<variant>-seed<K>) and report mean ± std; default: "
                   "one run with the config's train.seed in OUT/<variant>")
    add_max_images(p, aliases=("--max-test",))
    p.add_argument("--segmentation", metavar="PALETTE",
                   help="also score A->B as label maps: 'cityscapes', 'facades' or a palette file (photo -> labels)")
    p.add_argument("--fcn-score", metavar="SCORER",
                   help="also the FCN-score of labels -> photo (B->A when the scorer's photos are domain A): a file "
                   "from `cyclegan scorer train` segments the translations, scored against the input label maps")
    add_protocol(p)
    add_device(p, default=None)
    add_no_progress(p)
    add_json(p, instead_of="the table")
    p.set_defaults(run=cmd_reproduce)


def cmd_reproduce(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    data = require_dataroot(args, parser)
    check_protocol(args, parser)
    precision = [f"train.precision={args.precision}"] if args.precision else []
    rows = reproduce(
        args.experiment, data, args.out, budget=args.budget, configs=args.config,
        overrides=[*precision, *args.overrides], variants=args.variants, max_test=args.max_images,
        segmentation=args.segmentation, fcn_scorer=args.fcn_score, seeds=args.seeds, protocol=args.protocol,
        eval_mode=args.eval, device=args.device, progress=not args.no_progress,
    )
    print(json.dumps(rows) if args.json else (Path(args.out) / "results.md").read_text().rstrip())
    return 0
