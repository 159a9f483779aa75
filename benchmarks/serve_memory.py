"""Benchmark: the web app's memory under concurrent large uploads (the worst case the hardening bounds).

Starts `cyclegan serve G.pth` as a real server on 127.0.0.1 (an official-layout resnet_9blocks
generator, width 16 by default, random weights: the memory does not depend on them), then sends
`--clients` uploads of one large JPEG (default 4000x3000, 12 megapixels, within `--max-pixels`) at
once, and samples the server process's resident memory while they run. Prints the idle and peak
memory, how many requests were translated (200) and how many were turned away (503 + Retry-After),
and writes JSON.

    python3 benchmarks/serve_memory.py [--clients 8] [--width 5000 --height 4000] [--max-active 1] [--tile 512]
"""

from __future__ import annotations

import argparse
import io
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import torch
from PIL import Image

from cyclegan.nn import build_generator, to_official

sys.path.insert(0, str(Path(__file__).parent))
from train_speed import cpu_name  # noqa: E402


def rss_mb(pid: int, field: str = "VmRSS") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def big_jpeg(width: int, height: int) -> bytes:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, (height // 16, width // 16, 3), dtype=np.uint8)  # smooth-ish: a realistic size
    img = Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--width", type=int, default=4000)
    ap.add_argument("--height", type=int, default=3000)
    ap.add_argument("--ngf", type=int, default=16, help="generator width (memory is dominated by the images)")
    ap.add_argument("--max-active", type=int, default=1)
    ap.add_argument("--max-waiting", type=int, default=4)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--out", type=Path, default=Path("benchmarks/results/serve_memory.json"))
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pth = Path(tmp) / "G.pth"
        torch.manual_seed(0)
        torch.save(to_official(build_generator("resnet_9blocks", ngf=args.ngf)), pth)
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "cyclegan", "serve", str(pth), "--port", str(port), "--device", "cpu",
             "--max-active", str(args.max_active), "--max-waiting", str(args.max_waiting), "--tile", str(args.tile),
             "--max-seconds", "3000"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            base = f"http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    if httpx.get(base + "/api/models", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            else:
                raise SystemExit(f"the server did not start: {server.stderr.read()[-2000:]}")
            payload = big_jpeg(args.width, args.height)
            idle = rss_mb(server.pid)
            statuses: list[int] = []
            peak, done = [idle], threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], rss_mb(server.pid))
                    time.sleep(0.05)

            def client() -> None:
                r = httpx.post(base + "/api/translate", data={"model": "G.pth", "direction": "AtoB"},
                               files={"file": ("big.jpg", payload, "image/jpeg")}, timeout=3600)
                statuses.append(r.status_code)

            sampler = threading.Thread(target=sample)
            sampler.start()
            t0 = time.perf_counter()
            threads = [threading.Thread(target=client) for _ in range(args.clients)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            seconds = time.perf_counter() - t0
            done.set()
            sampler.join()
            hwm = rss_mb(server.pid, "VmHWM")
        finally:
            server.terminate()
            server.wait(timeout=60)
    result = {"clients": args.clients, "image": f"{args.width}x{args.height} JPEG ({len(payload) / 1e6:.1f} MB)",
              "max_active": args.max_active, "max_waiting": args.max_waiting, "tile": args.tile,
              "idle_rss_mb": round(idle), "peak_rss_mb": round(max(peak[0], hwm)),
              "translated": statuses.count(200), "turned_away_503": statuses.count(503),
              "other_statuses": sorted(s for s in statuses if s not in (200, 503)), "seconds": round(seconds, 1),
              "generator": f"resnet_9blocks, ngf {args.ngf}", "cpu": cpu_name(), "threads": torch.get_num_threads(),
              "torch": torch.__version__}
    print(json.dumps(result, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
