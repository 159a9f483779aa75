"""Benchmark: data-parallel training throughput, 1 process vs N torchrun processes, on this machine.

Trains `cyclegan train` on a synthetic 128 px dataset (the demo's town generator) for a few steps,
once as a single process and once under `torchrun --nproc_per_node=N` (gloo on CPU, NCCL on GPUs),
and reads the seconds per step from the run's loss log (the first logged stretch, which includes
start-up, is skipped). On CPU the cores are split between the processes (OMP_NUM_THREADS), so this
measures how well data parallelism uses the same cores; on a multi-GPU machine each process gets a GPU.

    python3 benchmarks/ddp_speed.py [--nproc 2] [--steps 30] [--size 128] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from cyclegan.demo.city import write_city_dataset


def run(nproc: int, data: Path, run_dir: Path, args: argparse.Namespace, threads: int) -> float:
    base = ["-m", "cyclegan", "train", str(data), "--run-dir", str(run_dir), "--no-progress", "--max-steps",
            str(args.steps), "--device", args.device]
    sets = ["model.generator=resnet_6blocks", f"data.load_size={args.size}", f"data.crop_size={args.size}",
            "data.num_workers=1", "train.log_every=5", "train.sample_every=100000", "train.checkpoint_every=100000",
            f"train.precision={args.precision}"]
    cmd = [sys.executable, *(["-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
                             if nproc > 1 else []), *base, *[a for s in sets for a in ("--set", s)]]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
    records = [json.loads(line) for line in (run_dir / "losses.jsonl").read_text().splitlines()]
    timed = records[1:]  # the first stretch includes start-up
    return sum(r["sec_per_step"] for r in timed) / len(timed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--precision", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", type=Path, default=Path("benchmarks/results/ddp_speed.json"))
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = write_city_dataset(tmp / "data", n_train=args.steps * args.nproc + 4, n_test=1, size=args.size)
        rows = []
        for nproc in (1, args.nproc):
            threads = max(1, cores // nproc) if args.device == "cpu" else 1
            sec = run(nproc, data, tmp / f"run{nproc}", args, threads)
            rows.append({"processes": nproc, "threads_per_process": threads, "sec_per_step": sec,
                         "images_per_s": nproc / sec, "size": args.size, "precision": args.precision,
                         "device": args.device})
    print(f"\n{args.size} px resnet_6blocks width 64, batch 1 per process, {args.precision}, {args.device}, "
          f"{cores} cores\n")
    print("| processes | threads each | s/step | images/s | speed-up |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['processes']} | {r['threads_per_process']} | {r['sec_per_step']:.3f} | {r['images_per_s']:.2f} | "
              f"{r['images_per_s'] / rows[0]['images_per_s']:.2f}x |")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
