"""The real maps dataset (../shared/data/maps_128, never committed): layout, loading, a few steps."""

from __future__ import annotations

import torch

from cyclegan.config import build_config
from cyclegan.data.unaligned import UnalignedDataset
from cyclegan.checkpoint import load_checkpoint
from cyclegan.training.loop import train


def test_maps_layout_and_items(maps_dir):
    cfg = build_config(["maps_128"])
    train_set = UnalignedDataset.from_root(maps_dir, cfg.data)
    test_set = UnalignedDataset.from_root(maps_dir, cfg.data, phase="test")
    assert (len(train_set.paths_a), len(train_set.paths_b)) == (1096, 1096)
    assert (len(test_set.paths_a), len(test_set.paths_b)) == (1098, 1098)
    assert [p.name for p in test_set.paths_a] == [p.name for p in test_set.paths_b]  # pairs by name
    item = train_set[(5, 123)]
    assert item["a"].shape == item["b"].shape == (3, 128, 128)
    assert -1.0 <= item["a"].min() and item["a"].max() <= 1.0
    assert item["skipped"] == 0


def test_a_few_training_steps_on_real_maps(maps_dir, tmp_path):
    cfg = build_config(
        ["maps_128"],
        ["model.ngf=4", "model.ndf=4", "data.max_dataset_size=4", "data.num_workers=0", "train.log_every=1"],
    )
    train(maps_dir, tmp_path / "run", cfg, max_steps=3, progress=False)
    ckpt = load_checkpoint(tmp_path / "run")
    assert ckpt["progress"]["step"] == 3
    assert all(torch.isfinite(v).all() for v in ckpt["nets"]["g_ab"].values())
