"""Benchmark: training speed of one optimisation step (CycleGAN: both generators and discriminators,
identity loss on, the paper's defaults; `--method cut|fastcut`: the reference CUT / FastCUT step of
their presets) and how close it runs to the machine's limit.

One configuration per process (peak memory is the process's own):

    python3 benchmarks/train_speed.py --size 128 --netG resnet_6blocks --precision bf16 --iters 10 --json
    python3 benchmarks/train_speed.py --size 256 --netG resnet_9blocks --precision fp32 --batch-size 4
    python3 benchmarks/train_speed.py --size 128 --netG resnet_6blocks --precision bf16 --merge --compile

`--paired` builds the reference (`--ref-method`, default CycleGAN, in `--ref-precision`, default
float32) and the configuration under test in one process and alternates single iterations of both
for `--rounds` rounds: the median of the per-round ratios (`speedup`, the last JSON line) is what to
compare across machines.

`--matrix` runs a set of configurations, each in a fresh process, prints a markdown table and writes
`benchmarks/results/train_speed.json`; `--matrix --methods` runs CycleGAN, CUT and FastCUT side by
side at 128 px (resnet_6blocks) and 256 px (resnet_9blocks), fp32 and bf16, into
`benchmarks/results/train_speed_methods.json`. Columns: seconds per iteration (median of the timed
iterations), images/s (batch / s), peak memory (CPU: the process's peak RSS, VmHWM; CUDA: peak
allocated), GFLOP per iteration (counted with torch's FlopCounterMode on one eager step), achieved
GFLOP/s, and its ratio to the peak this script measures on the machine: the throughput of the
convolution that dominates the step (a ResNet block's 3x3 conv at 1/4 resolution, forward), in the
same precision. The `fp32` eager row with `--merge` off is the reference: it is the official
implementation's step, operation for operation (the golden training-step test checks it).
"""

from __future__ import annotations

import argparse
import json
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from cyclegan.config import build_config
from cyclegan.methods import Method, get_method
from cyclegan.pool import ImagePool
from cyclegan.device import resolve_device
from cyclegan.precision import autocast
from cyclegan.training.state import GradScalers, build_optimizers
from cyclegan.training.step import train_step

MATRIX = [
    "--size 128 --netG resnet_6blocks --precision fp32",
    "--size 128 --netG resnet_6blocks --precision bf16",
    "--size 128 --netG resnet_6blocks --precision bf16 --merge",
    "--size 128 --netG resnet_6blocks --precision bf16 --batch-size 4",
    "--size 128 --netG resnet_6blocks --precision bf16 --compile",
    "--size 256 --netG resnet_9blocks --precision fp32",
    "--size 256 --netG resnet_9blocks --precision bf16",
    "--size 256 --netG resnet_9blocks --precision bf16 --batch-size 4",
    "--size 256 --netG resnet_9blocks --precision bf16 --compile",
]

METHODS_MATRIX = [f"--method {m} --size {size} --netG {g} --precision {p}"
                  for size, g in ((128, "resnet_6blocks"), (256, "resnet_9blocks")) for p in ("fp32", "bf16")
                  for m in ("cyclegan", "cut", "fastcut")]


def cpu_name() -> str:
    try:
        return re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text()).group(1).strip()
    except (OSError, AttributeError):
        return platform.processor() or platform.machine()


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1)) / 1024


def conv_peak_gflops(size: int, device: torch.device, precision: str, seconds: float = 2.0) -> float:
    """GFLOP/s of the step's dominant convolution (3x3, 256 -> 256 channels, at size/4), forward."""
    side = size // 4
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).to(device)
    x = torch.randn(1, 256, side, side, device=device)
    flop = 2 * 256 * 256 * 9 * side * side
    with torch.no_grad(), autocast(device, precision):
        for _ in range(3):
            conv(x)
        sync(device)
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            conv(x)
            n += 1
        sync(device)
    return flop * n / (time.perf_counter() - t0) / 1e9


def count_gflop(model: Method, step) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops() / 1e9


def build_step(args: argparse.Namespace, device: torch.device, real_a: torch.Tensor, real_b: torch.Tensor, *,
               method: str, precision: str, merge: bool, low_precision_discriminators: bool, compile: bool):
    """(one training step of this configuration, its GFLOP, its compile seconds or None)."""
    torch.manual_seed(0)
    overrides = [f"model.generator={args.netG}", f"train.precision={precision}", f"model.ngf={args.ngf}",
                 f"model.ndf={args.ngf}", f"train.merge_passes={merge}",
                 f"train.low_precision_discriminators={low_precision_discriminators}"]
    cfg = build_config([] if method == "cyclegan" else [method], overrides)
    model = get_method(cfg.model.method).from_config(cfg).to(device)
    opt_g, opt_d = build_optimizers(model, cfg.optim)
    pool_a, pool_b = ImagePool(cfg.loss.pool_size, seed=1), ImagePool(cfg.loss.pool_size, seed=2)
    scalers = GradScalers(device, precision)

    def step() -> None:
        train_step(model, real_a, real_b, opt_g, opt_d, pool_a, pool_b, precision=precision,
                   scalers=scalers, sync_losses=False)

    gflop = count_gflop(model, step)
    compile_s = None
    if compile:
        for net in model.networks().values():
            net.compile()
        t0 = time.perf_counter()
        step()
        sync(device)
        compile_s = time.perf_counter() - t0
    return step, gflop, compile_s


def random_images(args: argparse.Namespace, device: torch.device) -> torch.Tensor:
    """A batch of `args.batch_size` uniform random RGB images of `args.size` pixels in [-1, 1]."""
    return torch.rand(args.batch_size, 3, args.size, args.size, device=device) * 2 - 1


def run_paired(args: argparse.Namespace) -> dict:
    """The reference (`--ref-method` in `--ref-precision`, eager; float32 by default: the official
    arithmetic) and the mode under test built in one process on the same inputs, timed in alternating
    single iterations for `--rounds` rounds (the order swapped every round), so that machine load hits
    both alike. `speedup` is the median of the per-round ratios reference / mode."""
    device = resolve_device(args.device)
    real_a, real_b = random_images(args, device), random_images(args, device)
    ref, ref_gflop, _ = build_step(args, device, real_a, real_b, method=args.ref_method, precision=args.ref_precision,
                                   merge=False, low_precision_discriminators=False, compile=False)
    mode, mode_gflop, compile_s = build_step(args, device, real_a, real_b, method=args.method, precision=args.precision,
                                             merge=args.merge, low_precision_discriminators=args.low_precision_discriminators,
                                             compile=args.compile)
    for _ in range(args.warmup):
        ref()
        mode()
    sync(device)

    def timed(fn) -> float:
        t0 = time.perf_counter()
        fn()
        sync(device)
        return time.perf_counter() - t0

    ref_times, mode_times, ratios = [], [], []
    for r in range(args.rounds):
        if r % 2:
            tm, tr = timed(mode), timed(ref)
        else:
            tr, tm = timed(ref), timed(mode)
        ref_times.append(tr)
        mode_times.append(tm)
        ratios.append(tr / tm)
    q = statistics.quantiles(ratios, n=4) if len(ratios) >= 2 else [ratios[0]] * 3
    peak_ref = conv_peak_gflops(args.size, device, args.ref_precision, seconds=args.peak_seconds)
    peak_mode = peak_ref if args.precision == args.ref_precision else conv_peak_gflops(
        args.size, device, args.precision, seconds=args.peak_seconds)
    s_ref, s_mode = statistics.median(ref_times), statistics.median(mode_times)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {
        "paired": True, "reference": f"{args.ref_method} {args.ref_precision}", "method": args.method, "size": args.size,
        "netG": args.netG, "ngf": args.ngf, "precision": args.precision, "batch_size": args.batch_size,
        "merge": args.merge, "compile": args.compile, "low_precision_discriminators": args.low_precision_discriminators,
        "rounds": args.rounds, "speedup": statistics.median(ratios), "speedup_q1": q[0], "speedup_q3": q[2],
        "ref_s_per_iter": s_ref, "mode_s_per_iter": s_mode,
        "ref_of_peak": ref_gflop / s_ref / peak_ref, "mode_of_peak": mode_gflop / s_mode / peak_mode,
        "ref_gflop": ref_gflop, "mode_gflop": mode_gflop, "compile_s": compile_s,
        "device": name, "threads": torch.get_num_threads(), "torch": torch.__version__,
    }


def warm_step(args: argparse.Namespace) -> tuple[torch.device, Callable[[], None], float, float | None]:
    """The step `args` describe on random inputs, after `args.warmup` untimed runs: (device, step,
    GFLOP per step, compile seconds)."""
    device = resolve_device(args.device)
    real_a, real_b = random_images(args, device), random_images(args, device)
    step, gflop, compile_s = build_step(args, device, real_a, real_b, method=args.method, precision=args.precision,
                                        merge=args.merge, low_precision_discriminators=args.low_precision_discriminators,
                                        compile=args.compile)
    for _ in range(args.warmup):
        step()
    sync(device)
    return device, step, gflop, compile_s


def run_one(args: argparse.Namespace) -> dict:
    device, step, gflop, compile_s = warm_step(args)
    times = []
    for _ in range(args.iters):
        t0 = time.perf_counter()
        step()
        sync(device)
        times.append(time.perf_counter() - t0)
    s_per_iter = statistics.median(times)
    peak = conv_peak_gflops(args.size, device, args.precision, seconds=args.peak_seconds)
    achieved = gflop / s_per_iter
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {
        "method": args.method, "size": args.size, "netG": args.netG, "ngf": args.ngf, "precision": args.precision, "batch_size": args.batch_size,
        "merge": args.merge, "compile": args.compile, "iters": args.iters,
        "low_precision_discriminators": args.low_precision_discriminators,
        "s_per_iter": s_per_iter, "s_per_iter_mean": statistics.fmean(times),
        "images_per_s": args.batch_size / s_per_iter, "s_per_image": s_per_iter / args.batch_size,
        "peak_rss_mb" if device.type == "cpu" else "peak_cuda_mb": peak_memory_mb(device),
        "gflop_per_iter": gflop, "achieved_gflops": achieved, "conv_peak_gflops": peak,
        "ratio_to_peak": achieved / peak, "compile_s": compile_s,
        "device": name, "threads": torch.get_num_threads(), "torch": torch.__version__,
    }


def label(r: dict) -> str:
    extra = [x for x, on in (("merged", r["merge"]), ("compiled", r["compile"]),
                             ("bf16 D", r.get("low_precision_discriminators"))) if on]
    width = f" ngf {r['ngf']}" if r.get("ngf", 64) != 64 else ""
    method = {"cyclegan": "", "cut": "CUT ", "fastcut": "FastCUT "}[r.get("method", "cyclegan")]
    return f"{method}{r['size']} px {r['netG']}{width} {r['precision']}" + (f" {'+'.join(extra)}" if extra else "") + \
        (f" batch {r['batch_size']}" if r["batch_size"] > 1 else "")


def matrix(args: argparse.Namespace) -> None:
    rows = []
    for config in args.configs or (METHODS_MATRIX if args.methods else MATRIX):
        cmd = [sys.executable, __file__, *config.split(), "--iters", str(args.iters), "--warmup", str(args.warmup),
               "--device", args.device, "--json"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode:
            print(f"{config}: failed\n{res.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        print(f"done: {label(rows[-1])}: {rows[-1]['s_per_iter']:.3f} s/it", file=sys.stderr, flush=True)
    memory = "peak_rss_mb" if "peak_rss_mb" in rows[0] else "peak_cuda_mb"
    print(f"\n{rows[0]['device']}, {rows[0]['threads']} threads, torch {rows[0]['torch']}\n")
    print("| configuration | s/iter | images/s | peak memory | GFLOP/iter | GFLOP/s | conv peak GFLOP/s | of peak |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {label(r)} | {r['s_per_iter']:.3f} | {r['images_per_s']:.2f} | {r[memory]:.0f} MB | "
              f"{r['gflop_per_iter']:.0f} | {r['achieved_gflops']:.0f} | {r['conv_peak_gflops']:.0f} | "
              f"{100 * r['ratio_to_peak']:.0f} % |")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"rows": rows, "python": platform.python_version()}, indent=2) + "\n")
    print(f"\nwrote {args.out}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", default="cyclegan", choices=["cyclegan", "cut", "fastcut"])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--netG", default="resnet_6blocks", choices=["resnet_6blocks", "resnet_9blocks", "unet_128", "unet_256"])
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--ngf", type=int, default=64, help="generator and discriminator width (the paper: 64)")
    ap.add_argument("--merge", action="store_true", help="merged generator passes (train.merge_passes)")
    ap.add_argument("--low-precision-discriminators", action="store_true",
                    help="bf16/fp16 discriminators too (train.low_precision_discriminators)")
    ap.add_argument("--compile", action="store_true", help="torch.compile the networks (compile time reported apart)")
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--peak-seconds", type=float, default=2.0, help="time spent measuring the conv peak")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--matrix", action="store_true", help="run the standard configurations, print a table")
    ap.add_argument("--configs", nargs="+", help="with --matrix: configurations to run instead of the standard ones")
    ap.add_argument("--methods", action="store_true", help="with --matrix: CycleGAN, CUT and FastCUT side by side")
    ap.add_argument("--paired", action="store_true",
                    help="time the mode against the reference (--ref-method, --ref-precision) in one process, "
                    "alternating single iterations; prints the median ratio (JSON with --json: `speedup`)")
    ap.add_argument("--ref-method", default="cyclegan", choices=["cyclegan", "cut", "fastcut"],
                    help="with --paired: the reference's method (eager)")
    ap.add_argument("--ref-precision", default="fp32", choices=["fp32", "bf16", "fp16"],
                    help="with --paired: the reference's precision (default fp32: the official arithmetic; bf16 "
                         "compares methods at the same precision)")
    ap.add_argument("--rounds", type=int, default=20, help="with --paired: alternating rounds (default 20)")
    ap.add_argument("--out", type=Path, help="with --matrix: the JSON file (default benchmarks/results/train_speed.json, "
                    "or train_speed_methods.json with --methods)")
    args = ap.parse_args()
    args.out = args.out or Path(f"benchmarks/results/train_speed{'_methods' if args.methods else ''}.json")
    if args.matrix:
        matrix(args)
        return
    if args.paired:
        r = run_paired(args)
        if not args.json:
            print(f"{r['device']}, {r['threads']} threads, torch {r['torch']}, {r['rounds']} rounds")
            print(f"reference {r['reference']}: {r['ref_s_per_iter']:.3f} s/iter ({100 * r['ref_of_peak']:.0f} % of "
                  f"the fp32 conv peak)")
            print(f"{r['method']} {r['precision']}{' compiled' if r['compile'] else ''}: {r['mode_s_per_iter']:.3f} "
                  f"s/iter ({100 * r['mode_of_peak']:.0f} % of its conv peak)")
            print(f"speedup (median of per-round ratios): {r['speedup']:.2f}x (quartiles {r['speedup_q1']:.2f} – "
                  f"{r['speedup_q3']:.2f})")
        print(json.dumps(r))
        return
    result = run_one(args)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{label(result)}: {result['s_per_iter']:.3f} s/iter, {result['images_per_s']:.2f} images/s, "
              f"{result['gflop_per_iter']:.0f} GFLOP/iter, {result['achieved_gflops']:.0f} GFLOP/s "
              f"({100 * result['ratio_to_peak']:.0f} % of the conv peak {result['conv_peak_gflops']:.0f})")


if __name__ == "__main__":
    main()
