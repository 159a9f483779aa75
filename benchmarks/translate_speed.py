"""Benchmark: translation throughput of a full-size generator (images/s), batched, in fp32 and bf16.

Times `cyclegan.inference.translate_tensor` (the path `cyclegan translate` uses: padding, inference
mode, autocast) on random 256x256 images with resnet_9blocks at width 64 (random weights: speed does
not depend on them). Each configuration runs in a fresh process so its peak memory is its own.

    python3 benchmarks/translate_speed.py                      # the standard table
    python3 benchmarks/translate_speed.py --one --batch-size 8 --precision bf16 --json

`--paired` compares the translation backends of `cyclegan translate` (torch eager fp32 — the official
arithmetic —, bf16, torch.compile fp32 and bf16; on the CPU also ONNX Runtime fp32 and int8) in one
process on the same input, taking turns call by call so that a busy or throttled CPU slows them alike. It
prints each mode's s/image, the median of the per-round ratios to torch fp32 (`speedup`) with its
quartiles, and the share of the measured convolution peak (the step's dominant 3x3 convolution in that
precision); the last line of `--json` output is the JSON. With `--run RUN --data DIR` it uses a trained
generator, calibrates int8 on DIR/trainA and reports how far each mode's 8-bit outputs lie from torch
fp32 on DIR/testA (mean and max grey-level difference, PSNR):

    python3 benchmarks/translate_speed.py --paired --rounds 15 [--batch-size 8] [--device cuda]
    python3 benchmarks/translate_speed.py --paired --run runs/facades --data data/facades_128 --size 128
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
from train_speed import conv_peak_gflops, cpu_name, sync  # noqa: E402

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


def paired_modes(g: torch.nn.Module, device: torch.device, calibration: list) -> dict:
    """name -> (module, precision) of every translation mode, torch fp32 (the reference) first."""
    compiled = torch.compile(g)
    compiled.size_multiple = getattr(g, "size_multiple", 4)
    modes = {"torch fp32": (g, "fp32"), "torch bf16": (g, "bf16"), "torch.compile fp32": (compiled, "fp32"),
             "torch.compile bf16": (compiled, "bf16")}
    if device.type == "cpu":
        from cyclegan.runtime import ort_generator

        modes["onnx fp32"] = (ort_generator(g), "fp32")
        modes["onnx int8"] = (ort_generator(g, int8=True, calibration=calibration), "fp32")
    return modes


def images(folder: Path, n: int, size: int) -> list:
    import numpy as np
    from PIL import Image

    return [np.asarray(Image.open(p).convert("RGB").resize((size, size), Image.BICUBIC))
            for p in sorted(folder.iterdir())[:n]]


def to_tensor(a) -> torch.Tensor:
    return torch.from_numpy(a.copy()).permute(2, 0, 1).float().div(127.5).sub(1)[None]


def quality(g, gen, precision: str, test: list) -> dict:
    """How far `gen`'s 8-bit outputs lie from float32 torch's on real images."""
    import numpy as np

    means, maxs, psnrs = [], [], []
    for a in test:
        ref = ((translate_tensor(g, to_tensor(a)).cpu() + 1) * 127.5).round()
        out = ((translate_tensor(gen, to_tensor(a), precision=precision).cpu() + 1) * 127.5).round()
        d = (out - ref).abs()
        means.append(d.mean().item())
        maxs.append(d.max().item())
        psnrs.append(10 * np.log10(255**2 / max(d.pow(2).mean().item(), 1e-9)))
    return {"mean_abs_diff": float(np.mean(means)), "max_abs_diff": float(np.max(maxs)), "psnr_db": float(np.mean(psnrs))}


def run_paired(args: argparse.Namespace) -> dict:
    import numpy as np
    from torch.utils.flop_counter import FlopCounterMode

    device = resolve_device(args.device)
    torch.manual_seed(0)
    if args.run:
        from cyclegan.inference import load_generator

        g = load_generator(args.run, device=device).eval()
        calibration = images(args.data / "trainA", 16, args.size)
        test = images(args.data / "testA", args.quality_images, args.size)
    else:
        g = build_generator(args.netG, 3, 3, ngf=64).to(device).eval()
        rng = np.random.default_rng(0)
        calibration = [rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8) for _ in range(4)]
        test = []
    modes = paired_modes(g, device, calibration)
    x = torch.rand(args.batch_size, 3, args.size, args.size, device=device) * 2 - 1
    counter = FlopCounterMode(display=False)
    with counter:
        translate_tensor(g, x)
    gflop = counter.get_total_flops() / 1e9
    peaks = {p: conv_peak_gflops(args.size, device, p) for p in ("fp32", "bf16")}
    for gen, precision in modes.values():
        for _ in range(args.warmup):
            translate_tensor(gen, x, precision=precision)
    times = {name: [] for name in modes}
    for _ in range(args.rounds):
        for name, (gen, precision) in modes.items():
            t0 = time.perf_counter()
            translate_tensor(gen, x, precision=precision)
            sync(device)
            times[name].append(time.perf_counter() - t0)
    base = times["torch fp32"]
    rows = []
    for name, (gen, precision) in modes.items():
        ratios = sorted(b / t for b, t in zip(base, times[name]))
        s_batch = statistics.median(times[name])
        row = {"mode": name, "s_per_image": s_batch / args.batch_size, "images_per_s": args.batch_size / s_batch,
               "speedup": statistics.median(ratios), "speedup_q1": ratios[len(ratios) // 4],
               "speedup_q3": ratios[(3 * len(ratios)) // 4],
               "of_peak": None if name.startswith("onnx int8") else gflop / s_batch / peaks[precision]}
        if test:
            row.update(quality(g, gen, precision, test))
        rows.append(row)
    what = f"trained generator {args.run}" if args.run else f"{args.netG} ngf 64, random weights"
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {"device": name, "threads": torch.get_num_threads(), "torch": torch.__version__, "size": args.size,
            "batch_size": args.batch_size, "generator": what, "gflop_per_batch": gflop, "rounds": args.rounds,
            "conv_peak_gflops": peaks, "rows": rows}


def print_paired(r: dict) -> None:
    test = "psnr_db" in r["rows"][0]
    print(f"\n{r['device']}, {r['threads']} threads, torch {r['torch']}; {r['size']} px, batch {r['batch_size']}, "
          f"{r['generator']}; median of {r['rounds']} rounds (quartiles)\n")
    print("| mode | s per image | images/s | speedup vs torch fp32 | of conv peak |"
          + (" mean / max diff (grey levels) | PSNR vs fp32 |" if test else ""))
    print("|---|---|---|---|---|" + ("---|---|" if test else ""))
    for row in r["rows"]:
        peak = "—" if row["of_peak"] is None else f"{100 * row['of_peak']:.0f} %"
        extra = f" {row['mean_abs_diff']:.2f} / {row['max_abs_diff']:.0f} | {row['psnr_db']:.1f} dB |" if test else ""
        print(f"| {row['mode']} | {row['s_per_image']:.3f} | {row['images_per_s']:.2f} | **{row['speedup']:.2f}×** "
              f"({row['speedup_q1']:.2f}–{row['speedup_q3']:.2f}) | {peak} |" + extra)


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
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--paired", action="store_true", help="compare the translation modes in one process")
    ap.add_argument("--rounds", type=int, default=15, help="--paired: timed rounds")
    ap.add_argument("--run", type=Path, help="--paired: a trained run (else random weights)")
    ap.add_argument("--data", type=Path, help="--paired --run: dataset with trainA (calibration), testA (quality)")
    ap.add_argument("--quality-images", type=int, default=30)
    args = ap.parse_args()
    if args.paired:
        if args.run and not args.data:
            ap.error("--run needs --data")
        r = run_paired(args)
        if args.json:
            print(json.dumps(r))
            return
        print_paired(r)
        out = args.out or Path(f"benchmarks/results/translate_paired_{args.size}_b{args.batch_size}"
                               f"{'_trained' if args.run else ''}.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(r, indent=2) + "\n")
        print(f"\nwrote {out}")
        return
    args.out = args.out or Path("benchmarks/results/translate_speed.json")
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
