"""Data-parallel training with torchrun on CPU processes (gloo): ranks agree bit for bit, 2 ranks x
batch 1 equal 1 process x batch 2, checkpoints move between world sizes, a dead rank ends the job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cyclegan.checkpoint import load_checkpoint
from cyclegan.data.sampler import EpochSampler

from helpers import METHOD_TINY, TINY, tiny_dataset

pytestmark = pytest.mark.timeout(300)


def torchrun(nproc: int, *args: str, wait: bool = True, timeout: float = 240):
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "cyclegan", "train", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if not wait:
        return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


def sets(*overrides: str) -> list[str]:
    return [a for o in (*TINY, *overrides) for a in ("--set", o)]


def test_sampler_shards_cover_the_epoch_with_equal_counts():
    n = 7
    shards = [list(EpochSampler(n, seed=1, epoch=2, rank=r, world_size=3)) for r in range(3)]
    assert [len(s) for s in shards] == [3, 3, 3]  # 7 positions padded to 9 by wrapping around
    whole = list(EpochSampler(n, seed=1, epoch=2))
    assert {k for s in shards for k in s} == set(whole)
    assert [k for trio in zip(*shards) for k in trio][:n] == whole  # rank r takes positions r, r + 3, ...
    resumed = [list(EpochSampler(n, seed=1, epoch=2, start=4, rank=r, world_size=2)) for r in range(2)]
    assert resumed == [[whole[4], whole[6]], [whole[5], whole[4]]]


def test_two_ranks_train_to_identical_weights(tmp_path):
    data = tiny_dataset(tmp_path / "data")
    run = tmp_path / "run"
    res = torchrun(2, str(data), "--run-dir", str(run), "--no-progress", *sets())
    assert res.returncode == 0, res.stderr[-3000:]
    check = json.loads((run / "distributed.json").read_text())
    assert check["world_size"] == 2 and check["identical"] and len(set(check["fingerprints"])) == 1
    ckpt = load_checkpoint(run)
    # 6 images over 2 ranks: 3 steps per epoch, 2 epochs
    assert ckpt["progress"]["step"] == 6 and ckpt["progress"]["epoch"] == 3 and ckpt["progress"]["world_size"] == 2
    assert len((run / "losses.jsonl").read_text().splitlines()) == 6  # one writer: rank 0
    assert (run / "index.html").is_file() and (run / "generators" / "latest_net_G_A.pth").is_file()


@pytest.mark.parametrize("method", sorted(set(METHOD_TINY) - {"cyclegan"}))
def test_every_method_trains_data_parallel(method, tmp_path):
    """One data-parallel path for any method's networks: its translate and discriminator losses are
    the DDP-wrapped passes, so pix2pix, BiGAN and CoGAN train on 2 ranks that end bit-identical."""
    data = tiny_dataset(tmp_path / "data")
    run = tmp_path / "run"
    res = torchrun(2, str(data), "--run-dir", str(run), "--no-progress", *sets(*METHOD_TINY[method]))
    assert res.returncode == 0, res.stderr[-3000:]
    check = json.loads((run / "distributed.json").read_text())
    assert check["world_size"] == 2 and check["identical"], check
    ckpt = load_checkpoint(run)
    assert ckpt["config"]["model"]["method"] == method and ckpt["progress"]["step"] == 6


def test_two_ranks_of_batch_1_match_one_process_of_batch_2(tmp_path):
    """With the history pool off (each rank's pool draws its own images) and instance norm (per-image
    statistics), the loss of a batch of 2 is the mean of the two images' losses and its gradient the
    mean of theirs: exactly what DDP averages. So the same images give the same losses and updates,
    up to float rounding (a batch of 2 is summed in another order)."""
    data = tiny_dataset(tmp_path / "data")
    common = ("loss.pool_size=0", "train.deterministic=true")
    res = torchrun(2, str(data), "--run-dir", str(tmp_path / "ddp"), "--no-progress", "--max-steps", "3",
                   *sets(*common))
    assert res.returncode == 0, res.stderr[-3000:]
    single = subprocess.run(
        [sys.executable, "-m", "cyclegan", "train", str(data), "--run-dir", str(tmp_path / "one"), "--no-progress",
         "--max-steps", "3", *sets(*common, "data.batch_size=2")], capture_output=True, text=True)
    assert single.returncode == 0, single.stderr[-3000:]
    logs = [[json.loads(x) for x in (tmp_path / d / "losses.jsonl").read_text().splitlines()] for d in ("ddp", "one")]
    # Step 1 starts from the same weights: its losses agree up to summation order. Adam's first update
    # is lr * g / (|g| + eps), i.e. +-lr for every weight whose gradient is not ~0, so a weight whose
    # gradient is rounding noise moves either way and later losses drift apart slightly (a few 1e-4
    # here, depending on the CPU's kernels): they are compared loosely.
    for ddp, one in zip(*logs):
        rel = 1e-5 if ddp["step"] == 1 else 2e-3
        for k in ("g_ab", "g_ba", "cycle_a", "cycle_b", "idt_ab", "idt_ba", "d_a", "d_b"):
            assert ddp[k] == pytest.approx(one[k], rel=rel), (ddp["step"], k)
    # The weights after 3 steps: all but a few conv weights agree within 1e-4 (measured: 99.99 %; a
    # weight whose step-1 gradient was noise is 2 lr = 4e-4 off). A process stepping on its own image
    # without the other's gradient ends with only ~30 % of them within 1e-4 of the batch-2 run.
    nets = [load_checkpoint(tmp_path / d)["nets"] for d in ("ddp", "one")]
    diffs = torch.cat([(w - nets[1][n][k]).abs().flatten() for n in nets[0] for k, w in nets[0][n].items()
                       if w.dim() > 1])  # conv weights (biases before instance norm get only noise)
    assert (diffs < 1e-4).float().mean() > 0.99


def test_resume_across_world_sizes(tmp_path):
    data = tiny_dataset(tmp_path / "data")
    two_then_one = tmp_path / "a"
    res = torchrun(2, str(data), "--run-dir", str(two_then_one), "--no-progress", "--max-steps", "2", *sets())
    assert res.returncode == 0, res.stderr[-3000:]
    assert load_checkpoint(two_then_one)["progress"]["samples_in_epoch"] == 4
    res = subprocess.run([sys.executable, "-m", "cyclegan", "train", "--resume", str(two_then_one), "--no-progress",
                          "--max-steps", "4"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    p = load_checkpoint(two_then_one)["progress"]
    assert (p["step"], p["epoch"], p["samples_in_epoch"], p["world_size"]) == (4, 2, 0, 1)  # images 5, 6 ended epoch 1

    one_then_two = tmp_path / "b"
    res = subprocess.run([sys.executable, "-m", "cyclegan", "train", str(data), "--run-dir", str(one_then_two),
                          "--no-progress", "--max-steps", "3", *sets()], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-3000:]
    res = torchrun(2, "--resume", str(one_then_two), "--no-progress", "--max-steps", "5")
    assert res.returncode == 0, res.stderr[-3000:]
    p = load_checkpoint(one_then_two)["progress"]
    assert (p["step"], p["epoch"], p["samples_in_epoch"], p["world_size"]) == (5, 2, 0, 2)
    assert json.loads((one_then_two / "distributed.json").read_text())["identical"]


def test_a_dead_rank_ends_the_job_with_an_error(tmp_path):
    data = tiny_dataset(tmp_path / "data")
    run = tmp_path / "run"
    proc = torchrun(2, str(data), "--run-dir", str(run), "--no-progress", *sets("optim.n_epochs=500"), wait=False)
    try:
        deadline = time.monotonic() + 120
        while not ((run / "losses.jsonl").exists() and (run / "losses.jsonl").read_text().strip()):
            assert proc.poll() is None and time.monotonic() < deadline, "training did not start"
            time.sleep(0.5)
        workers = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _parent(p) == proc.pid]
        assert len(workers) == 2
        os.kill(max(workers), signal.SIGKILL)
        t0 = time.monotonic()
        _, stderr = proc.communicate(timeout=90)
        assert proc.returncode != 0 and time.monotonic() - t0 < 90
        assert "SIGKILL" in stderr or "Signal 9" in stderr or "failed" in stderr.lower()
    finally:
        if proc.poll() is None:
            proc.kill()


def _parent(proc_dir: Path) -> int | None:
    try:
        return int((proc_dir / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def test_syncbatch_on_cpu_processes_is_refused_clearly(tmp_path):
    data = tiny_dataset(tmp_path / "data")
    res = torchrun(2, str(data), "--run-dir", str(tmp_path / "run"), "--no-progress", *sets("model.norm=syncbatch"))
    assert res.returncode != 0
    assert "syncbatch needs CUDA" in res.stderr and "model.norm=batch" in res.stderr
