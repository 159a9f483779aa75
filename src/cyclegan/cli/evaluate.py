"""`cyclegan evaluate fid|kid`: distribution metrics between two image sets (pytorch-fid compatible)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

EPILOG = """examples:
  cyclegan evaluate fid out/fake_B datasets/horse2zebra/testB
  cyclegan evaluate fid out/fake_B zebra_testB.npz --inception-weights pt_inception-2015-12-05-6726825d.pth
  cyclegan evaluate fid datasets/horse2zebra/testB datasets/horse2zebra/testB --save-stats zebra_testB.npz
  cyclegan evaluate kid out/fake_B datasets/horse2zebra/testB --json"""


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate", help="score translations: FID and KID between image sets",
        description="Distribution metrics on pytorch-fid's Inception features (numerically pytorch-fid's FID).",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    metrics = p.add_subparsers(dest="metric", metavar="METRIC")
    metrics.required = True
    for name, text in (("fid", "Frechet Inception Distance"), ("kid", "Kernel Inception Distance (mean and std over subsets)")):
        m = metrics.add_parser(name, help=text, description=text)
        m.add_argument("a", metavar="DIR_A", help="image folder" + (" or .npz statistics (pytorch-fid format)" if name == "fid" else ""))
        m.add_argument("b", metavar="DIR_B", help="image folder" + (" or .npz statistics" if name == "fid" else ""))
        m.add_argument("--inception-weights", metavar="FILE", help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth (default: downloaded once into the cache)")
        m.add_argument("--batch-size", type=int, default=50, metavar="N", help="images per forward pass (default 50)")
        m.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")
        m.add_argument("--json", action="store_true", help="print one JSON object instead of a line of text")
        if name == "fid":
            m.add_argument("--save-stats", metavar="FILE.npz", help="also save DIR_A's statistics (mu, sigma) for reuse")
        else:
            m.add_argument("--subsets", type=int, default=100, metavar="N", help="random subsets (default 100)")
            m.add_argument("--subset-size", type=int, default=1000, metavar="N", help="images per subset (default 1000, capped by the set sizes)")
        m.set_defaults(run=cmd_evaluate)


def cmd_evaluate(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from ..metrics import fid, inception_features, kid, load_fid_inception, save_statistics, statistics
    from ..training.loop import resolve_device

    device = resolve_device(args.device)
    sides = [Path(args.a), Path(args.b)]
    for side in sides:
        if not side.exists():
            raise FileNotFoundError(f"{side} does not exist; give an image folder" + (" or an .npz" if args.metric == "fid" else ""))
    npz = [s.suffix == ".npz" for s in sides]
    model = None if all(npz) else load_fid_inception(args.inception_weights).to(device)
    result: dict[str, object] = {"metric": args.metric, "a": str(sides[0]), "b": str(sides[1])}
    if args.metric == "fid":
        if args.save_stats:
            if npz[0]:
                parser.error("--save-stats needs DIR_A to be an image folder")
            features = inception_features(model, sides[0], batch_size=args.batch_size, device=device)
            result["saved_stats"] = str(save_statistics(args.save_stats, *statistics(features)))
            result["n_a"] = len(features)
        result["fid"] = fid(sides[0], sides[1], model=model, batch_size=args.batch_size, device=device)
        text = f"FID {result['fid']:.4f}"
    else:
        fa, fb = (inception_features(model, s, batch_size=args.batch_size, device=device) for s in sides)
        k = kid(fa, fb, num_subsets=args.subsets, subset_size=args.subset_size)
        result.update({"kid_mean": k.mean, "kid_std": k.std, "n_a": len(fa), "n_b": len(fb)})
        text = f"KID {k.mean:.6f} ± {k.std:.6f}  ({len(fa)} vs {len(fb)} images)"
    print(json.dumps(result) if args.json else text)
    return 0
