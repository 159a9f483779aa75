"""Benchmark: translate a 4000 x 3000 photo with a full-size resnet_9blocks (ngf 64) in tiles.

Each configuration runs `cyclegan translate` in a fresh process and reports wall time and the
process's peak resident memory (VmHWM). Random weights: speed and memory do not depend on them.

    python3 benchmarks/tiled_translate.py [--tiles 512 1024] [--size 4000x3000] [--json out.json]
    python3 benchmarks/tiled_translate.py --modes "" "--precision bf16" "--precision bf16 --compile"

`--modes` runs each tile size once per set of extra `cyclegan translate` flags (default: none, float32).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cyclegan.nn import build_generator, to_official

CHILD = (
    "import re, sys; from cyclegan.cli import main; rc = main(sys.argv[1:]); "
    "print('VMHWM_KB', re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1)); sys.exit(rc)"
)


def photo_like(h: int, w: int) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([(np.sin(xx / 170) + np.cos(yy / 230)) * 60 + 128, xx * 255 / w, yy * 255 / h], -1)
    return np.clip(img + np.random.RandomState(0).normal(0, 6, img.shape), 0, 255).astype(np.uint8)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiles", type=int, nargs="+", default=[512])
    ap.add_argument("--size", default="4000x3000")
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--modes", nargs="+", default=[""], help="extra translate flags per run, e.g. '--precision bf16'")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/tiled_translate.json"))
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        torch.save(to_official(build_generator("resnet_9blocks", 3, 3, ngf=args.ngf)), tmp / "G.pth")
        Image.fromarray(photo_like(h, w)).save(tmp / "photo.jpg", quality=95)
        for tile, mode in [(t, m) for m in args.modes for t in args.tiles]:
            cmd = [sys.executable, "-c", CHILD, "translate", str(tmp / "G.pth"), str(tmp / "photo.jpg"),
                   "--out", str(tmp / f"out{tile}"), "--tile", str(tile), "--no-progress", "--device", "cpu",
                   *mode.split()]
            t0 = time.perf_counter()
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            seconds = time.perf_counter() - t0
            peak_mb = int(re.search(r"VMHWM_KB (\d+)", res.stdout).group(1)) / 1024
            rows.append({"size": args.size, "ngf": args.ngf, "tile": tile, "mode": mode or "fp32",
                         "seconds": round(seconds, 1), "peak_rss_mb": round(peak_mb)})
            print(f"{args.size}  resnet_9blocks ngf {args.ngf}  tile {tile:5d}  {mode or 'fp32':28s} {seconds:7.1f} s  "
                  f"peak RSS {peak_mb:6.0f} MB", flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    meta = {"machine": platform.processor() or platform.machine(), "cpus": torch.get_num_threads(),
            "torch": torch.__version__}
    args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
