"""Benchmark: where one training step's time goes, per class of operation.

Builds the step exactly as `train_speed.py` does (same flags), profiles `--steps` steps with
torch.profiler after warm-up and sums each operator's self time into classes: convolutions (forward and
backward), norms, padding, compiled fused kernels (inductor's generated code: elementwise, norms and
padding fused together), other elementwise/reduction ops, the optimiser step, copies and casts; what
the operators do not account for is framework overhead (Python, autograd, dispatch, compiled-graph
guards). Prints a table and writes JSON.

    python3 benchmarks/profile_step.py --size 128 --netG resnet_6blocks --precision fp32
    python3 benchmarks/profile_step.py --size 128 --netG resnet_6blocks --precision bf16 --merge --compile
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).parent))
from train_speed import cpu_name, sync, warm_step  # noqa: E402


CLASSES = [  # (class, pattern on the operator name), first match wins
    ("convolutions", r"conv"),
    ("optimiser", r"adam|_foreach|lerp|addcdiv|addcmul"),
    ("compiled fused kernels", r"cpp_fused|triton_|graph_\d|compiled"),
    ("norms", r"norm"),
    ("padding", r"pad"),
    ("copies and casts", r"copy_|^aten::to$|_to_copy|contiguous|clone|cat|stack|empty_like|fill_|zero_"),
    ("elementwise and reductions", r"add|mul|sub|div|tanh|relu|threshold|sigmoid|mse|l1|abs|sum|mean|pow|sqrt|neg|"
                                   r"where|sign|exp|log|ones_like|zeros_like|rand|normal"),
]


def classify(name: str) -> str:
    for cls, pattern in CLASSES:
        if re.search(pattern, name, re.IGNORECASE):
            return cls
    return "other operators"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", default="cyclegan", choices=["cyclegan", "cut", "fastcut"])
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--netG", default="resnet_6blocks")
    ap.add_argument("--ngf", type=int, default=64)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--merge", action="store_true")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--low-precision-discriminators", action="store_true")
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--top", type=int, default=12, help="also list the N most expensive operators")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    device, step, gflop, _ = warm_step(args)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        t0 = time.perf_counter()
        for _ in range(args.steps):
            step()
        sync(device)
        wall = (time.perf_counter() - t0) / args.steps
    attr = "self_device_time_total" if device.type == "cuda" else "self_cpu_time_total"
    per_class: dict[str, float] = {}
    ops = []
    for e in prof.key_averages():
        seconds = getattr(e, attr) / 1e6 / args.steps
        if seconds <= 0 or e.key.startswith("ProfilerStep"):
            continue
        per_class[classify(e.key)] = per_class.get(classify(e.key), 0.0) + seconds
        ops.append((seconds, e.key, e.count // args.steps))
    accounted = sum(per_class.values())
    if device.type == "cpu":
        per_class["framework overhead (not in operators)"] = max(wall - accounted, 0.0)
    config = " ".join(f"--{k.replace('_', '-')} {v}" if not isinstance(v, bool) else f"--{k.replace('_', '-')}"
                      for k, v in vars(args).items()
                      if k in ("method", "size", "netG", "precision", "batch_size") or (v is True))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    print(f"\n{name}, {torch.get_num_threads()} threads, torch {torch.__version__}; {config}: "
          f"{wall:.3f} s/iter, {gflop:.0f} GFLOP/iter (profiled, {args.steps} steps)\n")
    print("| class | s/iter | share |")
    print("|---|---|---|")
    total = sum(per_class.values())
    for cls, seconds in sorted(per_class.items(), key=lambda kv: -kv[1]):
        print(f"| {cls} | {seconds:.3f} | {100 * seconds / total:.0f} % |")
    print("\n| operator | s/iter | calls/iter |\n|---|---|---|")
    for seconds, key, count in sorted(ops, reverse=True)[: args.top]:
        print(f"| `{key[:70]}` | {seconds:.4f} | {count} |")
    result = {"config": config, "device": name, "threads": torch.get_num_threads(), "torch": torch.__version__,
              "s_per_iter_profiled": wall, "gflop_per_iter": gflop, "classes": per_class,
              "top_operators": [{"name": k, "s_per_iter": s, "calls_per_iter": c} for s, k, c in sorted(ops, reverse=True)[:40]]}
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n")
        print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
