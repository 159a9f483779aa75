"""`cyclegan scorer train`: train the FCN-score's segmentation network on a paired dataset's real photos."""

from __future__ import annotations

import argparse
import json

from .options import add_dataroot, add_device, add_json, add_max_images, add_out, add_palette, positive_int

EPILOG = """examples:
  cyclegan scorer train datasets/facades_128 --out facades_scorer.pt --palette facades
  cyclegan scorer train datasets/cityscapes --out city_scorer.pt --palette cityscapes --photos B --size 256
  cyclegan evaluate fcn-score out/fake_photos datasets/facades_128/testB --scorer facades_scorer.pt"""


def add_scorer(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "scorer", help="train the segmentation network that the FCN-score runs on generated photos",
        description="The FCN-score (paper Sec. 5.1.1) segments generated photos with a network trained on real "
        "photos. The official FCN-8s download is gone; this trains a U-Net scorer instead.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True
    t = actions.add_parser(
        "train", help="train a scorer on trainA/trainB, score it on the real testA/testB, save it",
        description="Train a U-Net with cross-entropy on the real photos of DATAROOT (domain A unless --photos B) "
        "against the label maps of the same file names in the other domain (colours mapped to classes by the "
        "palette; void and unmapped pixels ignored), seeded, with random flips. Its scores on the real test "
        "photos (the FCN-score's ground-truth row) are printed and stored in the scorer file.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_dataroot(t)
    add_out(t, "the scorer file to write (.pt; weights, settings, palette and ground-truth scores)", metavar="FILE")
    add_palette(t, default="facades")
    t.add_argument("--photos", choices=("A", "B"), default="A", help="the domain of DATAROOT that holds the photos "
                   "(default A; the other holds the label maps)")
    t.add_argument("--size", type=positive_int, default=128, help="input side, a multiple of 32 (default 128)")
    t.add_argument("--epochs", type=positive_int, default=30, metavar="N", help="training epochs (default 30)")
    t.add_argument("--batch-size", type=positive_int, default=8, metavar="N", help="images per step (default 8)")
    t.add_argument("--ngf", type=positive_int, default=32, metavar="N", help="U-Net width of the first level (default 32)")
    t.add_argument("--num-downs", type=positive_int, metavar="N",
                   help="U-Net levels, at least 5 (default: as many as --size allows, at most 7)")
    t.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate, decayed linearly to 0 (default 0.002)")
    t.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    add_max_images(t)
    add_device(t)
    add_json(t)
    t.set_defaults(run=cmd_train)


def cmd_train(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    # lazy: keeps --help fast
    from ..device import resolve_device
    from ..scorer import ScorerConfig, train_scorer
    from .evaluate import segmentation_table

    config = ScorerConfig(size=args.size, num_downs=args.num_downs, ngf=args.ngf, epochs=args.epochs,
                          batch_size=args.batch_size, lr=args.lr, seed=args.seed, photos=args.photos)
    scorer = train_scorer(args.dataroot, args.out, palette=args.palette, config=config,
                          device=resolve_device(args.device), max_images=args.max_images)
    assert scorer.real_scores is not None
    if args.json:
        print(json.dumps({"scorer": args.out, "real_scores": scorer.real_scores.as_dict(), "train": scorer.train}))
        return 0
    print(segmentation_table(scorer.real_scores, header="real test photos"))
    print(f"scorer: {args.out} ({scorer.palette.name} palette, {scorer.config.size} px, {len(scorer.classes)} classes); "
          f"trained {scorer.config.epochs} epochs on {scorer.train['images']} photos in {scorer.train['seconds']:.0f} s, "
          f"final loss {scorer.train['losses'][-1]:.4f}")
    return 0
