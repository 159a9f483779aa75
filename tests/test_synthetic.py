"""Tests for the procedural aerial <-> map dataset (cyclegan.demo.city)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from cyclegan.demo.city import (
    MAP_PALETTE, Label, generate_layout, render_aerial, render_city, render_map, write_city_dataset,
)

SEEDS = range(8)
PALETTE = np.array([MAP_PALETTE[label] for label in Label], np.float32)  # (labels, 3)
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def _pair(seed: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    aerial, tile = render_city(seed, size)
    return np.asarray(aerial, np.float32), np.asarray(tile, np.float32)


def _interior(labels: np.ndarray, pure: np.ndarray, radius: int = 1) -> np.ndarray:
    """Pure pixels with only pure pixels of the same class within ``radius`` (a square)."""
    keep = pure.copy()
    keep[:radius] = keep[-radius:] = keep[:, :radius] = keep[:, -radius:] = False
    for dy in range(-radius, radius + 1):
        for dx in range(-radius, radius + 1):
            shifted = np.roll(labels, (dy, dx), (0, 1))
            keep &= np.roll(pure, (dy, dx), (0, 1)) & (shifted == labels)
    return keep


def _near(image: np.ndarray, label: Label, tol: float = 8.0) -> np.ndarray:
    return np.linalg.norm(image - PALETTE[label], axis=-1) < tol


def _local_variation(image: np.ndarray) -> np.ndarray:
    """Mean absolute difference to the right and lower neighbours, per pixel (H-1, W-1)."""
    return (np.abs(np.diff(image, axis=0))[:, :-1] + np.abs(np.diff(image, axis=1))[:-1]).mean(-1)


def test_same_seed_same_bytes_and_different_seed_differs():
    first, again, other = render_city(3), render_city(3), render_city(4)
    for a, b in zip(first, again):
        assert a.tobytes() == b.tobytes()
    for a, b in zip(first, other):
        assert a.tobytes() != b.tobytes()


@pytest.mark.parametrize("size", [16, 64, 128])
def test_shapes_and_modes(size):
    for image in render_city(1, size):
        assert image.mode == "RGB" and image.size == (size, size)


def test_render_city_is_layout_then_renders():
    rng = np.random.default_rng(5)
    layout = generate_layout(rng, 64)
    aerial, tile = render_city(5)
    assert render_aerial(layout, rng).tobytes() == aerial.tobytes()
    assert render_map(layout).tobytes() == tile.tobytes()
    assert layout.labels.shape == (64 * layout.supersample,) * 2
    assert layout.footprints.shape == (len(layout.heights), 4, 2)


def test_too_small_size_raises():
    with pytest.raises(ValueError, match="size"):
        render_city(0, 4)


def test_map_is_flat_palette_and_aerial_is_textured():
    map_variation, aerial_variation = [], []
    for seed in SEEDS:
        aerial, tile = _pair(seed)
        dist = np.linalg.norm(tile[:, :, None] - PALETTE, axis=-1).min(-1)
        assert (dist < 12).mean() > 0.75  # only anti-aliased edges leave the palette
        assert len(np.unique(aerial.reshape(-1, 3), axis=0)) > 2000

        layout = generate_layout(np.random.default_rng(seed), 64)
        # radius 3: the Lanczos kernel's reach, beyond which edges leave no ringing
        inside = _interior(*layout.coarse_labels(), radius=3)[:-1, :-1]
        map_variation.append(_local_variation(tile)[inside])
        aerial_variation.append(_local_variation(aerial)[inside])
    map_variation = np.concatenate(map_variation)
    aerial_variation = np.concatenate(aerial_variation)
    assert map_variation.size > 200
    assert map_variation.mean() < 0.5  # flat colour inside regions
    assert aerial_variation.mean() > 5.0  # texture and noise everywhere


def test_map_colours_match_layout_labels():
    for seed in SEEDS:
        rng = np.random.default_rng(seed)
        layout = generate_layout(rng, 64)
        tile = np.asarray(render_map(layout), np.float32)
        labels, pure = layout.coarse_labels()
        inside = _interior(labels, pure)
        assert inside.sum() > 200
        error = np.linalg.norm(tile - PALETTE[labels], axis=-1)[inside]
        assert np.percentile(error, 95) < 6.0


def test_aerial_agrees_with_map():
    """Where the map draws a road the photo shows dark grey asphalt; parks green, water dark."""
    road_luma, land_luma = [], []
    for seed in SEEDS:
        aerial, tile = _pair(seed)
        luma, saturation = aerial @ LUMA, aerial.max(-1) - aerial.min(-1)
        road = _near(tile, Label.STREET) | _near(tile, Label.MAIN_ROAD)
        assert road.sum() > 50
        assert ((luma < 125) & (saturation < 30))[road].mean() > 0.95
        park, water = _near(tile, Label.PARK), _near(tile, Label.WATER)
        if park.any():
            green = (aerial[..., 1] >= aerial[..., 0]) & (aerial[..., 1] >= aerial[..., 2])
            assert green[park].mean() > 0.9
        if water.any():
            assert (luma < 90)[water].mean() > 0.95
        road_luma.append(luma[road].mean())
        land_luma.append(luma[_near(tile, Label.LAND)].mean())
    assert np.mean(road_luma) < np.mean(land_luma) - 5


def test_same_town_at_every_resolution():
    small = generate_layout(np.random.default_rng(9), 32)
    large = generate_layout(np.random.default_rng(9), 64)
    np.testing.assert_allclose(small.footprints, large.footprints)
    assert (small.labels == large.labels[::2, ::2]).mean() > 0.85  # other seeds: ~0.4


def _files(root):
    return {p.relative_to(root).as_posix(): p.stat().st_mtime_ns
            for p in sorted(root.rglob("*")) if p.is_file()}


def test_write_city_dataset_layout_and_idempotence(tmp_path):
    root = write_city_dataset(tmp_path / "maps", n_train=3, n_test=2, size=16, seed=1)
    assert root == tmp_path / "maps"
    for split, n in (("train", 3), ("test", 2)):
        names = [f"{i:05d}.png" for i in range(n)]
        for domain in "AB":
            assert sorted(p.name for p in (root / f"{split}{domain}").iterdir()) == names
        with Image.open(root / f"{split}A" / names[0]) as image:
            assert image.mode == "RGB" and image.size == (16, 16)
    assert json.loads((root / ".complete").read_text())["n_train"] == 3
    # train and test towns are different places
    train = {(root / "trainB" / f"{i:05d}.png").read_bytes() for i in range(3)}
    assert not train & {(root / "testB" / f"{i:05d}.png").read_bytes() for i in range(2)}

    before = _files(root)
    write_city_dataset(root, n_train=3, n_test=2, size=16, seed=1)
    assert _files(root) == before  # nothing rewritten


def test_write_city_dataset_redoes_incomplete_or_changed(tmp_path):
    root = write_city_dataset(tmp_path, n_train=3, n_test=1, size=16)
    (root / ".complete").unlink()  # as if interrupted
    (root / "trainA" / "00001.png").unlink()
    write_city_dataset(root, n_train=3, n_test=1, size=16)
    assert (root / "trainA" / "00001.png").exists() and (root / ".complete").exists()

    write_city_dataset(root, n_train=2, n_test=1, size=16)  # smaller: stale files go
    assert sorted(p.name for p in (root / "trainB").iterdir()) == ["00000.png", "00001.png"]


def test_write_city_dataset_rejects_bad_arguments(tmp_path):
    with pytest.raises(ValueError):
        write_city_dataset(tmp_path, n_train=0)
    with pytest.raises(ValueError):
        write_city_dataset(tmp_path, seed=-1)
    with pytest.raises(ValueError):
        write_city_dataset(tmp_path, size=4)
