"""Benchmark: translation throughput of a full-size generator (images/s), batched, in fp32 and bf16.

Times `cyclegan.inference.translate_tensor` (the path `cyclegan translate` uses: padding, inference
mode, autocast) on random 256x256 images with resnet_9blocks at width 64 (random weights: speed does
not depend on them). Each configuration runs in a fresh process so its peak memory is its own.

    python3 benchmarks/translate_speed.py                      # the standard table
    python3 benchmarks/translate_speed.py --one --batch-size 8 --precision bf16 --json
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from cyclegan.inference import translate_tensor
from cyclegan.nn import build_generator
from cyclegan.device import resolve_device

sys.path.insert(0, str(Path(__file__).parent))
from train_speed import cpu_name  # noqa: E402

MATRIX = [(1, "fp32"), (8, "fp32"), (1, "bf16"), (8, "bf16")]


def run_one(args: argparse.Namespace) -> dict:
    device = resolve_device(args.device)
    torch.manual_seed(0)
    g = build_generator(args.netG, 3, 3, ngf=64).to(device).eval()
    x = torch.rand(args.batch_size, 3, args.size, args.size, device=device) * 2 - 1
    for _ in range(args.warmup):
        translate_tensor(g, x, precision=args.precision)
    times = []
    for _ in range(args.iters):
        t0 = time.perf_counter()
        translate_tensor(g, x, precision=args.precision)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    s = statistics.median(times)
    if device.type == "cuda":
        peak = torch.cuda.max_memory_allocated(device) / 2**20
    else:
        peak = int(re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text()).group(1)) / 1024
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {"size": args.size, "netG": args.netG, "batch_size": args.batch_size, "precision": args.precision,
            "s_per_batch": s, "images_per_s": args.batch_size / s, "peak_memory_mb": peak, "device": name,
            "threads": torch.get_num_threads(), "torch": torch.__version__}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--one", action="store_true", help="run one configuration (else the standard table)")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--netG", default="resnet_9blocks")
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/translate_speed.json"))
    args = ap.parse_args()
    if args.one:
        r = run_one(args)
        print(json.dumps(r) if args.json else f"{r['images_per_s']:.2f} images/s")
        return
    rows = []
    for batch, precision in MATRIX:
        cmd = [sys.executable, __file__, "--one", "--json", "--size", str(args.size), "--netG", args.netG,
               "--batch-size", str(batch), "--precision", precision, "--iters", str(args.iters),
               "--warmup", str(args.warmup), "--device", args.device]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    print(f"\n{rows[0]['device']}, {rows[0]['threads']} threads, torch {rows[0]['torch']}; "
          f"{args.size} px, {args.netG} ngf 64\n")
    print("| batch | precision | images/s | s per batch | peak memory |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['batch_size']} | {r['precision']} | {r['images_per_s']:.2f} | {r['s_per_batch']:.3f} | "
              f"{r['peak_memory_mb']:.0f} MB |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
