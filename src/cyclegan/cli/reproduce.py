"""`cyclegan reproduce ablation|baselines`: train the paper's variants, evaluate, print the table."""

from __future__ import annotations

import argparse
import json

EPILOG = """examples:
  cyclegan reproduce ablation --data ../shared/data/maps_128 --out runs/ablation          # small budget
  cyclegan reproduce ablation --data datasets/cityscapes --out runs/ablation_city --budget paper \\
      --config cityscapes --segmentation cityscapes
  cyclegan reproduce baselines --data datasets/maps --out runs/baselines --variants SimGAN CycleGAN"""


def add_reproduce(sub: argparse._SubParsersAction) -> None:
    from ..experiments import BUDGETS, EXPERIMENTS

    p = sub.add_parser(
        "reproduce", help="the paper's loss ablation and baselines: train, evaluate, print the table",
        description="Train every variant of an experiment (same networks and training, one loss term changed), "
        "evaluate each on the test split, and print a markdown table. Re-running continues interrupted runs "
        "and reuses finished ones.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("experiment", choices=list(EXPERIMENTS), help="ablation (Tables 4-5) or baselines")
    p.add_argument("--data", required=True, metavar="DIR", help="dataset with trainA/trainB/testA/testB")
    p.add_argument("--out", required=True, metavar="DIR", help="one run dir per variant, plus results.md/.json")
    p.add_argument("--budget", choices=list(BUDGETS), default="small",
                   help="small: width 32, 64 px crops, 1 + 1 epochs (CPU-sized); paper: the config as given")
    p.add_argument("--config", action="append", default=[], metavar="FILE_OR_PRESET", help="YAML config or preset")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                   help="override one config field for every variant; repeatable")
    p.add_argument("--variants", nargs="+", metavar="NAME", help="only these variants (names as in the table)")
    p.add_argument("--max-test", type=int, metavar="N", help="evaluate on the first N test images per domain")
    p.add_argument("--segmentation", metavar="PALETTE",
                   help="also score A->B as label maps: 'cityscapes' or a palette file (photo -> labels)")
    p.add_argument("--device", help="auto, cpu, cuda, cuda:N")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead of the table")
    p.set_defaults(run=cmd_reproduce)


def cmd_reproduce(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..experiments import markdown_table, reproduce

    rows = reproduce(
        args.experiment, args.data, args.out, budget=args.budget, configs=args.config, overrides=args.overrides,
        variants=args.variants, max_test=args.max_test, segmentation=args.segmentation, device=args.device,
        progress=not args.no_progress,
    )
    print(json.dumps(rows) if args.json else markdown_table(rows))
    return 0
