"""Nothing lost: divergence never reaches a checkpoint (stop, or roll back with a lower learning
rate), checkpoints and generator files are checksummed and a corrupt one falls back to the previous,
SIGTERM / SIGUSR1 save and exit with the conventional status, one trainer per run dir, and SIGKILL at
seeded random moments loses nothing (a deterministic run ends with the uninterrupted run's weights).
Real `cyclegan` subprocesses wherever a signal, a lock or an exit status is checked."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import random
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from cyclegan.atomic import digest_file, previous_file, save_verified, verify_digest
from cyclegan.checkpoint import CheckpointError, load_checkpoint
from cyclegan.config import ConfigError, build_config
from cyclegan.training.loop import train
from cyclegan.training.safety import RunLock, TrainingDiverged

from helpers import TINY, cli_environ, flip_a_byte, tiny_config, tiny_dataset

TESTS = Path(__file__).parent
STEPS = 12  # tiny_dataset's 6 images x TINY's 1 + 1 epochs


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return tiny_dataset(tmp_path_factory.mktemp("safety") / "data")


@pytest.fixture
def diverging():
    import nan_method

    nan_method.register()
    yield nan_method
    nan_method.unregister()


def cyclegan(*args, env=None, **kwargs) -> subprocess.Popen:
    """A `cyclegan` process that can register the diverging test method first."""
    code = "import sys, nan_method; from cyclegan.cli import main; sys.exit(main(sys.argv[1:]))"
    environ = cli_environ(env)
    environ["PYTHONPATH"] = os.pathsep.join([str(TESTS), environ["PYTHONPATH"]])
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], env=environ, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kwargs)


def finish(proc: subprocess.Popen, timeout: float = 300) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def sets(*overrides: str) -> list[str]:
    return [a for o in overrides for a in ("--set", o)]


def weights(run: Path) -> dict[str, torch.Tensor]:
    return {f"{n}.{k}": v for n, sd in load_checkpoint(run)["nets"].items() for k, v in sd.items()}


# ---------------------------------------------------------------------------------------------------
# Configuration and divergence


@pytest.mark.parametrize("override, message", [
    ("optim.lr=inf", "optim.lr must be a finite number"), ("optim.lr=nan", "optim.lr must be a finite number"),
    ("optim.lr=0", "optim.lr=0.0 is out of range"), ("optim.beta1=1.5", "optim.beta1=1.5 is out of range"),
    ("loss.lambda_a=1e30", "loss.lambda_a=1e+30 is out of range"),
])
def test_numeric_config_values_are_checked_when_the_config_is_built(override, message, data, tmp_path):
    with pytest.raises(ConfigError, match=re.escape(message)):
        build_config(overrides=[override])
    code, _, err = finish(cyclegan("train", data, "--run-dir", tmp_path / "run", "--set", override))
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_divergence_stops_and_keeps_the_last_good_checkpoint(diverging, data, tmp_path):
    run = tmp_path / "run"
    cfg = tiny_config("model.method=nan_test", "train.checkpoint_every=2")
    with pytest.raises(TrainingDiverged, match=rf"diverged at step 5 \(g_ab = nan\); the last good checkpoint is "
                                               rf"{run}/checkpoints/latest.pt \(step 4\)"):
        train(data, run, cfg, progress=False)
    good = load_checkpoint(run)
    assert good["progress"]["step"] == 4
    assert all(torch.isfinite(v).all() for v in weights(run).values())
    assert not (run / "generators").exists()  # no export of a diverged model
    assert [json.loads(x)["step"] for x in (run / "losses.jsonl").read_text().splitlines()] == [1, 2, 3, 4]


def test_divergence_through_the_cli_is_one_line_and_a_failure(data, tmp_path):
    proc = cyclegan("train", data, "--run-dir", tmp_path / "run", "--no-progress",
                    *sets(*TINY, "model.method=nan_test", "train.checkpoint_every=2"))
    code, _, err = finish(proc)
    assert code == 1
    assert "cyclegan: error: training diverged at step 5 (g_ab = nan); the last good checkpoint" in err
    assert "Traceback" not in err


def test_a_non_finite_state_is_never_written_over_a_good_checkpoint(data, tmp_path):
    from cyclegan.training.state import build_training_state

    run_dir = tmp_path / "run"
    cfg = tiny_config()
    state = build_training_state(cfg, run_dir, data, torch.device("cpu"))
    state.save()
    before = (run_dir / "checkpoints" / "latest.pt").read_bytes()
    with torch.no_grad():
        next(state.model.g_ab.parameters()).view(-1)[0] = float("inf")
    state.progress.step += 1
    with pytest.raises(TrainingDiverged, match=r"g_ab\..* holds NaN or infinite values, so no checkpoint was written"):
        state.save()
    assert (run_dir / "checkpoints" / "latest.pt").read_bytes() == before


def test_rollback_resumes_from_the_last_checkpoint_with_a_lower_learning_rate(diverging, data, tmp_path, caplog):
    run = tmp_path / "run"
    cfg = tiny_config("model.method=nan_test", "train.checkpoint_every=2", "train.on_divergence=rollback",
                      "train.rollback_lr_factor=0.25")
    train(data, run, cfg, progress=False)
    assert "rollback 1 of 3: back to step 4 with the learning rate x 0.25" in caplog.text
    ckpt = load_checkpoint(run)
    assert ckpt["progress"]["step"] == STEPS and all(torch.isfinite(v).all() for v in weights(run).values())
    assert ckpt["sched"]["g"]["base_lrs"] == pytest.approx([2e-4 * 0.25])  # carried by the checkpoint
    logged = [json.loads(x) for x in (run / "losses.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == list(range(1, STEPS + 1))  # the rolled-back steps once each
    assert logged[3]["lr"] == pytest.approx(2e-4) and logged[4]["lr"] == pytest.approx(2e-4 * 0.25)
    assert logged[6]["lr"] == pytest.approx(2e-4 * 0.25 * 0.5)  # epoch 2 of the linear schedule: 1/2 of the base
    assert (run / "generators" / "latest_net_G_A.pth").is_file()


# ---------------------------------------------------------------------------------------------------
# Checksums and corrupt files


@pytest.fixture
def finished(data, tmp_path):
    run = tmp_path / "run"
    train(data, run, tiny_config("train.checkpoint_every=4", "train.deterministic=true"), max_steps=8, progress=False)
    return run


def test_checkpoints_and_generators_carry_verified_checksums(finished):
    latest = finished / "checkpoints" / "latest.pt"
    assert verify_digest(latest) is True and verify_digest(previous_file(latest)) is True
    assert load_checkpoint(previous_file(latest))["progress"]["step"] < load_checkpoint(latest)["progress"]["step"]
    for f in (finished / "generators").glob("*.pth"):
        assert verify_digest(f) is True
    assert digest_file(latest).read_text().endswith("  latest.pt\n")


def test_a_corrupt_latest_checkpoint_falls_back_to_the_previous(finished, data, caplog):
    latest = finished / "checkpoints" / "latest.pt"
    previous_step = load_checkpoint(previous_file(latest))["progress"]["step"]
    assert previous_step == 6  # the epoch end; steps 4, 6, 8 were saved
    flip_a_byte(latest)
    ckpt = load_checkpoint(finished)
    assert ckpt["progress"]["step"] == 6 and "does not match its checksum" in caplog.text
    assert "using the previous checkpoint" in caplog.text
    with pytest.raises(CheckpointError, match="does not match its checksum"):
        load_checkpoint(latest)  # a file named directly has no fallback
    train(None, finished, resume=True, progress=False)  # resumes from step 4 and finishes
    assert load_checkpoint(finished)["progress"]["step"] == STEPS and verify_digest(latest) is True


@pytest.mark.parametrize("damage, message", [
    ("empty", "is empty (0 bytes)"),
    ("truncated", "cannot read"),
    ("missing_key", "lacks optim"),
    ("wrong_shape", "does not fit its own config"),
])
def test_damaged_checkpoints_are_clear_errors_and_rewrite_nothing(finished, damage, message, tmp_path):
    latest, config = finished / "checkpoints" / "latest.pt", finished / "config.yaml"
    previous_file(latest).unlink()  # no fallback: the damage must be reported
    ckpt = torch.load(latest, weights_only=True)
    if damage == "empty":
        latest.write_bytes(b"")
    elif damage == "truncated":
        latest.write_bytes(latest.read_bytes()[:1000])
    else:
        if damage == "missing_key":
            del ckpt["optim"]
        else:
            ckpt["nets"]["g_ab"]["encoder.1.weight"] = torch.zeros(3, 3, 3, 3)
        torch.save(ckpt, latest)
    digest_file(latest).unlink()  # a file without a checksum (earlier versions) is still checked
    config.write_text(config.read_text() + "# marker\n")
    before = {p: p.read_bytes() for p in finished.rglob("*") if p.is_file()}
    code, _, err = finish(cyclegan("train", "--resume", finished, "--no-progress"))
    assert code == 1 and message in err and len(err.strip().splitlines()) == 1, err
    after = {p: p.read_bytes() for p in finished.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == {p: b for p, b in before.items() if p.name != ".lock"}  # config.yaml and logs untouched


def test_a_corrupt_generator_file_is_refused(finished, tmp_path):
    gen = finished / "generators" / "latest_net_G_A.pth"
    flip_a_byte(gen)
    code, _, err = finish(cyclegan("translate", gen, finished.parent / "data" / "testA", "--out", tmp_path / "o"))
    assert code == 1 and "does not match its checksum" in err


@pytest.mark.slow
def test_a_full_disk_during_a_checkpoint_write_keeps_the_previous_one(finished):
    latest = finished / "checkpoints" / "latest.pt"
    good = latest.read_bytes()
    limit = latest.stat().st_size // 2

    def small_disk() -> None:  # the child can write files of `limit` bytes at most
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    code, _, err = finish(cyclegan("train", "--resume", finished, "--no-progress", preexec_fn=small_disk))
    assert code == 1 and "cannot write" in err and "latest.pt" in err and "the previous latest.pt is intact" in err
    assert latest.read_bytes() == good and verify_digest(latest) is True
    assert not list((finished / "checkpoints").glob(".*.tmp"))  # no partial file left behind


# ---------------------------------------------------------------------------------------------------
# Signals, the lock, and killing at random moments


def wait_for_step(run: Path, step: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    log = run / "losses.jsonl"
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            raise AssertionError(f"the trainer ended early: {proc.stderr.read()[-2000:]}")
        if log.exists() and any(json.loads(x)["step"] >= step for x in log.read_text().splitlines() if x.strip()):
            return
        time.sleep(0.05)
    raise AssertionError(f"no step {step} within {timeout} s")


@pytest.mark.slow
@pytest.mark.parametrize("sig, status", [(signal.SIGTERM, 143), (signal.SIGUSR1, 138)])
def test_a_stop_signal_finishes_the_step_saves_and_exits_with_the_conventional_status(sig, status, data, tmp_path):
    run = tmp_path / "run"
    proc = cyclegan("train", data, "--run-dir", run, "--no-progress", *sets(*TINY, "train.checkpoint_every=1000"))
    wait_for_step(run, 2, proc)
    proc.send_signal(sig)
    code, _, err = finish(proc)
    assert code == status and "checkpoint saved" in err, err
    saved = load_checkpoint(run)["progress"]["step"]
    logged = [json.loads(x)["step"] for x in (run / "losses.jsonl").read_text().splitlines()]
    assert saved >= 2 and logged[-1] == saved  # nothing trained past the checkpoint is lost
    code, _, _ = finish(cyclegan("train", "--resume", run, "--no-progress"))
    assert code == 0 and load_checkpoint(run)["progress"]["step"] == STEPS


def test_a_second_trainer_on_the_run_dir_is_refused_naming_the_first(finished):
    with RunLock(finished):
        code, _, err = finish(cyclegan("train", "--resume", finished, "--no-progress"))
    assert code == 1 and f"is being trained by PID {os.getpid()} on " in err and len(err.strip().splitlines()) == 1
    code, _, _ = finish(cyclegan("train", "--resume", finished, "--no-progress"))  # the lock died with its owner
    assert code == 0


@pytest.mark.slow
def test_killed_at_random_moments_nothing_is_lost(tmp_path):
    """SIGKILL (and SIGTERM) at seeded random moments of a 40-step run, including during checkpoint
    writes (a checkpoint every step), then resume each time: the run dir always loads, the temporary
    files of killed writes are cleaned up, and the deterministic run ends with the uninterrupted run's
    weights. Kills are placed by training progress (a random step, then a random fraction of a step's
    time), so they land mid-run however fast the machine is."""
    data = tiny_dataset(tmp_path / "data", n_train=20)
    steps = 40
    overrides = (*TINY, "train.deterministic=true", "train.checkpoint_every=1")
    straight = tmp_path / "straight"
    assert finish(cyclegan("train", data, "--run-dir", straight, "--no-progress", *sets(*overrides)))[0] == 0
    run, rng, kills = tmp_path / "run", random.Random(1234), 0
    targets = sorted(rng.sample(range(2, steps - 2), 6))
    proc = cyclegan("train", data, "--run-dir", run, "--no-progress", *sets(*overrides))
    for round_, target in enumerate(targets):
        try:
            wait_for_step(run, target, proc)
        except AssertionError:  # already past it (a resumed run starts after the last checkpoint)
            if proc.poll() is not None:
                break
        time.sleep(rng.uniform(0.0, 0.15))
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL if round_ % 3 else signal.SIGTERM)
        proc.communicate(timeout=120)
        kills += 1
        load_checkpoint(run)  # never corrupt
        proc = cyclegan("train", "--resume", run, "--no-progress")
    assert finish(proc)[0] == 0 and kills >= 4
    assert load_checkpoint(run)["progress"]["step"] == steps
    assert not list((run / "checkpoints").glob(".*.tmp"))
    a, b = weights(straight), weights(run)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


class Killed(BaseException):
    """Stands for a SIGKILL between two renames (the process ends there; nothing after it runs)."""


@contextlib.contextmanager
def killed_before_rename(monkeypatch, kill_before, folder=None):
    """The block's writes end (Killed, swallowed here) before its `kill_before`-th rename (counting the
    renames into `folder` only, when given); yields the list of the renames' targets done."""
    import cyclegan.atomic as atomic

    real_replace, done = os.replace, []

    def replace(src, dst):
        if folder is None or Path(dst).parent == folder:
            if len(done) == kill_before:
                raise Killed
            done.append(Path(dst))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", replace)
    try:
        yield done
    except Killed:
        pass
    finally:
        monkeypatch.setattr(atomic.os, "replace", real_replace)


@pytest.mark.parametrize("keep_previous", [True, False])
def test_checkpoint_writes_killed_between_any_two_steps_leave_files_that_load(finished, keep_previous, monkeypatch):
    """Every state that `save_verified` passes through, also when the resumed run's write is killed in
    turn, loads: the earlier checkpoint or the new one, never "latest.pt is missing; latest.prev.pt does
    not match its checksum" (which the random-kill test once hit, when the file moved before its
    checksum), and no file has a checksum beside it that does not describe it."""
    ckpt = load_checkpoint(finished)
    most = 0

    def save(step, latest, kill_before):
        """Write the checkpoint of `step`, killed before the `kill_before`-th rename; the renames done."""
        with killed_before_rename(monkeypatch, kill_before) as done:
            save_verified({**ckpt, "progress": {**ckpt["progress"], "step": step}}, latest, keep_previous=keep_previous)
        return done

    for first, second in itertools.product(range(5), range(5)):
        run = finished.parent / f"killed{first}{second}"
        latest = run / "checkpoints" / "latest.pt"
        save(1, latest, 99)
        save(2, latest, 99)
        expected = 2
        for step, kill_before in ((3, first), (4, second)):  # killed, then the resumed run's write killed
            done = save(step, latest, kill_before)
            most = max(most, len(done))
            expected = step if latest in done else expected
            assert load_checkpoint(run if keep_previous else latest)["progress"]["step"] == expected
            assert all(verify_digest(f) is not False for f in latest.parent.glob("*.pt"))
        save(5, latest, 99)
        assert load_checkpoint(latest)["progress"]["step"] == 5 and verify_digest(latest) is True
        if keep_previous:
            assert load_checkpoint(previous_file(latest))["progress"]["step"] in (2, 3, 4)
    assert most == (4 if keep_previous else 2)  # a kill before each rename of the write, and none


@pytest.mark.parametrize("writer", ["save_verified", "copy_verified", "save_safetensors"])
def test_a_checksummed_file_overwritten_and_killed_mid_write_never_mismatches_its_checksum(writer, tmp_path,
                                                                                           monkeypatch):
    import cyclegan.atomic as atomic
    from safetensors.torch import load_file

    def write(value, path):
        if writer == "save_verified":
            atomic.save_verified({"w": torch.full((3,), value)}, path)
        elif writer == "copy_verified":
            atomic.save_verified({"w": torch.full((3,), value)}, tmp_path / f"source{value}.pt")
            atomic.copy_verified(tmp_path / f"source{value}.pt", path)
        else:
            atomic.save_safetensors({"w": torch.full((3,), value)}, path)

    def value(path):
        read = load_file(path) if writer == "save_safetensors" else torch.load(path, weights_only=True)
        return read["w"][0].item()

    for kill_before in range(3):
        path = tmp_path / f"kill{kill_before}" / "best.pt"
        path.parent.mkdir()
        write(1.0, path)
        with killed_before_rename(monkeypatch, kill_before, folder=path.parent) as done:  # not copy's source
            write(2.0, path)
        assert verify_digest(path) is not False and value(path) == (2.0 if path in done else 1.0)


def test_stale_temporary_files_are_removed_when_a_trainer_starts(finished):
    stale = finished / "checkpoints" / ".latest.pt.99999.deadbeef.tmp"
    stale.write_bytes(b"partial")
    assert finish(cyclegan("train", "--resume", finished, "--no-progress"))[0] == 0
    assert not stale.exists()


def test_save_verified_refuses_a_file_that_reads_back_differently(tmp_path, monkeypatch):
    import cyclegan.atomic as atomic

    target = tmp_path / "x.pt"
    save_verified({"a": torch.zeros(3)}, target)
    monkeypatch.setattr(atomic, "file_digest", lambda path: "0" * 64)  # the disk returns other bytes
    with pytest.raises(OSError, match="did not read back as written .*; the previous x.pt is intact"):
        save_verified({"a": torch.ones(3)}, target)
    assert torch.equal(torch.load(target, weights_only=True)["a"], torch.zeros(3))
