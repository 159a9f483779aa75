"""The benchmark scripts keep working (they are run by hand and on GPU machines, not timed here):
one tiny configuration each, checked for the JSON contract the issues and README rely on."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from PIL import Image

from cyclegan.checkpoint import load_checkpoint

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def run_json(*args: str) -> dict:
    res = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1])


def test_train_speed_contract():
    r = run_json(str(BENCHMARKS / "train_speed.py"), "--size", "32", "--netG", "resnet_6blocks", "--ngf", "8",
                 "--precision", "bf16", "--merge", "--iters", "2", "--warmup", "1", "--peak-seconds", "0.2",
                 "--device", "cpu", "--json")
    for key in ("s_per_iter", "images_per_s", "peak_rss_mb", "gflop_per_iter", "achieved_gflops", "ratio_to_peak"):
        assert r[key] > 0, key
    # 32 px, width 8: about (8/64)^2 * (32/128)^2 of the 338 GFLOP of the paper's 128 px step
    assert 0.1 < r["gflop_per_iter"] < 1.0 and r["precision"] == "bf16" and r["merge"] is True


def test_translate_speed_contract():
    r = run_json(str(BENCHMARKS / "translate_speed.py"), "--one", "--size", "32", "--batch-size", "2",
                 "--precision", "bf16", "--iters", "1", "--warmup", "0", "--device", "cpu", "--json")
    assert r["images_per_s"] > 0 and r["batch_size"] == 2 and r["peak_memory_mb"] > 0


def test_train_speed_paired_contract():
    """--paired: the float32 reference and the mode under test (here CUT in bf16) alternate in one
    process; the last line is JSON with the median per-round ratio."""
    r = run_json(str(BENCHMARKS / "train_speed.py"), "--paired", "--method", "cut", "--size", "32", "--ngf", "8",
                 "--precision", "bf16", "--rounds", "3", "--warmup", "1", "--peak-seconds", "0.2", "--device", "cpu",
                 "--json")
    assert r["paired"] is True and r["reference"] == "cyclegan fp32" and r["method"] == "cut" and r["rounds"] == 3
    assert r["speedup"] > 0 and r["speedup_q1"] <= r["speedup"] <= r["speedup_q3"]
    assert r["ref_s_per_iter"] > 0 and r["mode_s_per_iter"] > 0 and 0 < r["mode_of_peak"]
    # methods compared at the same precision: the reference in bf16 too
    r = run_json(str(BENCHMARKS / "train_speed.py"), "--paired", "--method", "fastcut", "--ref-precision", "bf16",
                 "--size", "32", "--ngf", "8", "--precision", "bf16", "--rounds", "2", "--warmup", "1",
                 "--peak-seconds", "0.2", "--device", "cpu", "--json")
    assert r["reference"] == "cyclegan bf16" and r["method"] == "fastcut" and r["precision"] == "bf16"
    assert 0 < r["ref_of_peak"] and 0 < r["mode_of_peak"]


def test_profile_step_contract(tmp_path):
    """profile_step.py: per-class seconds that add up to the profiled step, convolutions dominant."""
    out = tmp_path / "profile.json"
    res = subprocess.run([sys.executable, str(BENCHMARKS / "profile_step.py"), "--size", "32", "--ngf", "8",
                          "--steps", "1", "--warmup", "1", "--device", "cpu", "--out", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    r = json.loads(out.read_text())
    classes = r["classes"]
    assert classes["convolutions"] > 0 and classes["norms"] > 0 and classes["optimiser"] > 0
    assert sum(classes.values()) >= 0.99 * r["s_per_iter_profiled"]
    assert r["top_operators"] and "| convolutions |" in res.stdout


def test_maps_quality_contract_reuse_and_merge(tmp_path):
    """maps_quality.py: a tiny run scored next to the constants, with the palette snap after a median
    filter; run again on the same --work, the finished run is reused (not retrained: no training time,
    same scores); --merge-seeds gives mean, sample std and each seed's value."""
    from helpers import tiny_dataset

    data = tiny_dataset(tmp_path / "data")
    common = [str(BENCHMARKS / "maps_quality.py"), "--data", str(data), "--ngf", "4", "--crop", "32", "--epochs",
              "1", "0", "--max-train", "3", "--methods", "CycleGAN", "--palette-colors", "3",
              "--palette-median", "0", "3", "--work", str(tmp_path / "work")]
    jsons = [tmp_path / "a.json", tmp_path / "b.json"]
    for out in jsons:
        res = subprocess.run([sys.executable, *common, "--json", str(out)], capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr[-3000:]
    first, again = (json.loads(p.read_text()) for p in jsons)
    names = [r["method"] for r in first["rows"]]
    assert names[0] == "output = input" and "CycleGAN" in names
    assert {"CycleGAN + palette 3", "CycleGAN + palette 3, median 3"} <= set(names)
    assert first["settings"]["ngf"] == 4 and first["settings"]["palette_median"] == [0, 3]
    trained = {r["method"]: r for r in first["rows"]}["CycleGAN"]
    reused = {r["method"]: r for r in again["rows"]}["CycleGAN"]
    assert trained["steps"] == reused["steps"] == 3 and "train_s" in trained and "train_s" not in reused
    assert reused["rmse"] == trained["rmse"]
    res = subprocess.run([sys.executable, *common, "--seed", "1", "--json", str(tmp_path / "c.json")],
                         capture_output=True, text=True, timeout=300)  # the run in --work has seed 0
    assert res.returncode != 0 and "holds a run with other settings" in res.stderr and "Traceback" not in res.stderr

    merged = tmp_path / "merged.json"
    res = subprocess.run([sys.executable, str(BENCHMARKS / "maps_quality.py"), "--merge-seeds", *map(str, jsons),
                          "--json", str(merged)], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-3000:]
    row = {r["method"]: r for r in json.loads(merged.read_text())["rows"]}["CycleGAN"]
    assert row["n"] == 2 and row["rmse.per_seed"] == [trained["rmse"], reused["rmse"]] and row["rmse.std"] == 0.0
    assert row["train_s.per_seed"] == [trained["train_s"]]


def test_demo_recipes_contract(tmp_path):
    out = tmp_path / "results.json"
    cmd = [sys.executable, str(BENCHMARKS / "demo_recipes.py"), "--out", str(tmp_path / "runs"), "--recipes", "resize",
           "--steps", "2", "--json", str(out), "--montage", "resize", str(tmp_path / "demo.jpg")]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    (row,) = json.loads(out.read_text())["rows"]
    assert row["recipe"] == "resize" and row["settings"][0] == "model.upsample=resize" and row["demo seconds"] > 0
    assert load_checkpoint(tmp_path / "runs" / "resize" / "run")["config"]["model"]["upsample"] == "resize"
    assert {"G(aerial) L1", "F(map) L1", "G(aerial) checkerboard", "F(map) checkerboard"} <= set(row)
    assert all(row[k] > 0 for k in ("G(aerial) L1", "F(map) L1", "F(map) checkerboard"))
    assert Image.open(tmp_path / "demo.jpg").size == (4 * 128, 4 * 128)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)  # reused: scored again, not trained
    assert res.returncode == 0 and json.loads(out.read_text())["rows"] == [row]  # its time kept, the same scores
