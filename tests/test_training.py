"""Training loop: exact resume, checkpoint contents and atomicity, schedules, logs and samples."""

from __future__ import annotations

import json

import pytest
import torch

from cyclegan.config import OptimConfig
from cyclegan.atomic import atomic_save
from cyclegan.checkpoint import CheckpointError, load_checkpoint
from cyclegan.data.sampler import EpochSampler
from cyclegan.training.loop import train
from cyclegan.training.schedule import build_scheduler, linear_factor

from helpers import tiny_config, tiny_dataset


def states_equal(a: dict, b: dict, path: str = "") -> None:
    """Assert two nested checkpoint structures are identical, tensors bit for bit."""
    assert type(a) is type(b), path
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            states_equal(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b)):
            states_equal(x, y, f"{path}[{i}]")
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b), path
    else:
        assert a == b, path


@pytest.mark.parametrize(
    "extra",
    [[], ["model.dropout=true", "loss.gan_mode=wgangp"], ["optim.lr_policy=plateau"]],
    ids=["default", "dropout-wgangp", "plateau"],
)
def test_resume_is_exact(tmp_path, extra):
    """N steps + resume + N steps == 2N steps: weights, optimisers, pools, RNG, progress.

    N = 4 stops mid-epoch (6 images per epoch); 2N crosses an epoch boundary (LR schedule step).
    A pool of 3 fills up, so its random swaps are exercised; dropout and WGAN-GP use the torch RNG.
    """
    data = tiny_dataset(tmp_path / "data")
    cfg = tiny_config("loss.pool_size=3", "train.deterministic=true", *extra)
    train(data, tmp_path / "straight", cfg, max_steps=8, progress=False)
    train(data, tmp_path / "resumed", cfg, max_steps=4, progress=False)
    mid = load_checkpoint(tmp_path / "resumed")
    assert {k: mid["progress"][k] for k in ("epoch", "batch_in_epoch", "step", "skipped")} == {"epoch": 1, "batch_in_epoch": 4, "step": 4, "skipped": 0}
    with (tmp_path / "resumed" / "losses.jsonl").open("a") as f:
        f.write('{"step": 5, "g_ab": 0.')  # a line cut short by a crash after the checkpoint
    train(None, tmp_path / "resumed", resume=True, max_steps=8, progress=False)

    straight, resumed = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "resumed")
    assert straight["progress"]["step"] == 8 and straight["progress"]["epoch"] == 2
    for key in ("nets", "optim", "sched", "pools", "rng", "progress"):
        states_equal(straight[key], resumed[key], key)
    # The loss log of the resumed run continues where it stopped, without duplicates.
    steps = [json.loads(line)["step"] for line in (tmp_path / "resumed" / "losses.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 9))


def test_deterministic_mode_is_scoped_to_training():
    from cyclegan.training.loop import deterministic_mode

    before = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    with deterministic_mode(True):
        assert torch.are_deterministic_algorithms_enabled() and torch.get_num_threads() == 1
    assert (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()) == before
    with deterministic_mode(False):
        assert (torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()) == before


def test_run_dir_contents(tmp_path):
    data = tiny_dataset(tmp_path / "data")
    run = tmp_path / "run"
    progress = train(data, run, tiny_config(), progress=False)  # full schedule: 2 epochs x 6 steps
    assert progress.step == 12 and progress.epoch == 3
    assert (run / "config.yaml").is_file() and (run / "index.html").is_file()
    assert sorted(p.name for p in (run / "samples").iterdir()) == [f"step_{s:07d}.png" for s in (3, 6, 9, 12)]
    assert {p.name for p in (run / "generators").iterdir()} == {"latest_net_G_A.pth", "latest_net_G_B.pth",
                                                               "latest_net_G_A.pth.sha256", "latest_net_G_B.pth.sha256"}
    record = json.loads((run / "losses.jsonl").read_text().splitlines()[-1])
    assert {"g_ab", "g_ba", "cycle_a", "cycle_b", "idt_ab", "idt_ba", "d_a", "d_b", "lr", "step"} <= set(record)
    assert record["lr"] == pytest.approx(2e-4 * linear_factor(1, 1, 1))  # second epoch: decayed
    ckpt = load_checkpoint(run)
    assert set(ckpt["nets"]) == {"g_ab", "g_ba", "d_a", "d_b"}
    assert ckpt["config"]["model"]["ngf"] == 4
    # A second `train` into the same dir refuses instead of overwriting the run.
    with pytest.raises(FileExistsError, match="--resume"):
        train(data, run, tiny_config(), progress=False)


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "latest.pt"
    atomic_save({"format": "cyclegan-checkpoint", "version": 1, "x": torch.ones(2)}, path)

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        atomic_save({"x": torch.zeros(2)}, path)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(path)["x"], torch.ones(2))  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["latest.pt"]  # no temporary left behind


def test_load_checkpoint_rejects_bad_files(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="no checkpoints/latest.pt"):
        load_checkpoint(tmp_path)
    (tmp_path / "garbage.pt").write_bytes(b"\x00not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "garbage.pt")
    torch.save({"model.1.weight": torch.ones(1)}, tmp_path / "official.pth")
    with pytest.raises(CheckpointError, match="not a cyclegan checkpoint"):
        load_checkpoint(tmp_path / "official.pth")

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"format": "cyclegan-checkpoint", "evil": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="cannot read"):
        load_checkpoint(tmp_path / "evil.pt")


def test_linear_policy_matches_the_official_factor():
    """Paper: 100 epochs at 2e-4, then linear decay over 100 epochs (official lambda_rule)."""
    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=2e-4)
    sched = build_scheduler(opt, OptimConfig())
    lrs = []
    for _ in range(200):  # lr used by epochs 1..200
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[:100] == [pytest.approx(2e-4)] * 100
    assert lrs[100] == pytest.approx(2e-4 * 100 / 101)
    assert lrs[199] == pytest.approx(2e-4 * 1 / 101)
    assert all(a > b for a, b in zip(lrs[100:], lrs[101:]))


@pytest.mark.parametrize("policy", ["step", "plateau", "cosine"])
def test_other_policies_build_and_step(policy):
    from cyclegan.training.schedule import step_scheduler

    opt = torch.optim.Adam([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = build_scheduler(opt, OptimConfig(lr_policy=policy, n_epochs=4, lr_decay_iters=2))
    for _ in range(10):
        opt.step()
        step_scheduler(sched, 1.0)
    assert opt.param_groups[0]["lr"] < 1.0


def test_epoch_sampler_is_a_pure_function_of_seed_and_epoch():
    a = list(EpochSampler(10, seed=3, epoch=2))
    assert a == list(EpochSampler(10, seed=3, epoch=2))
    assert a[4:] == list(EpochSampler(10, seed=3, epoch=2, start=4))
    assert sorted(i for i, _ in a) == list(range(10))
    assert a != list(EpochSampler(10, seed=3, epoch=3))
    assert [i for i, _ in EpochSampler(5, seed=0, epoch=1, shuffle=False)] == list(range(5))


def test_tensorboard_scalars_and_images(tmp_path):
    """With the optional `tensorboard` extra (installed by the `test` extra), runs log to RUN/tensorboard."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    data = tiny_dataset(tmp_path / "data")
    train(data, tmp_path / "run", tiny_config(), max_steps=3, progress=False)
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    assert {"train/g_ab", "train/d_a", "train/lr"} <= set(events.Tags()["scalars"])
    assert [e.step for e in events.Scalars("train/cycle_a")] == [1, 2, 3]
    assert "samples" in events.Tags()["images"]


def test_ctrl_c_finishes_the_step_saves_and_resumes_exactly(tmp_path):
    """SIGINT mid-run: exit 130 with a checkpoint at a step boundary; resuming it matches a straight run."""
    import signal
    import subprocess
    import sys
    import time

    from helpers import TINY

    data = tiny_dataset(tmp_path / "data")
    overrides = [*TINY, "optim.n_epochs=1000", "loss.pool_size=3", "train.deterministic=true"]  # runs far longer than we wait
    args = [a for o in overrides for a in ("--set", o)]
    run = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, "-m", "cyclegan", "train", str(data), "--run-dir", str(run), *args, "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    log = run / "losses.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not log.exists() or len(log.read_text().splitlines()) < 5):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "checkpoint saved" in err and "--resume" in err, err
    stopped = load_checkpoint(run)["progress"]["step"]
    assert stopped >= 5, err
    assert len(log.read_text().splitlines()) == stopped, err  # log_every = 1: the log matches the checkpoint

    total = stopped + 3
    train(None, run, resume=True, max_steps=total, progress=False)
    cfg = tiny_config("optim.n_epochs=1000", "loss.pool_size=3", "train.deterministic=true")
    train(data, tmp_path / "straight", cfg, max_steps=total, progress=False)
    a, b = load_checkpoint(run), load_checkpoint(tmp_path / "straight")
    for key in ("nets", "optim", "pools", "progress"):
        states_equal(a[key], b[key], key)
