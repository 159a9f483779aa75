"""Translation at scale: tiles without seams in bounded memory, batched folders, formats, resume,
results pages and video."""

from __future__ import annotations

import contextlib
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import cyclegan.inference.tiling as tiling
from cyclegan.data.image_io import tensor_to_uint8
from cyclegan.inference import load_generator, translate_paths, translate_tensor, translate_tiled
from cyclegan.nn import build_generator, to_official
from helpers import optional_module
from test_inference import make_checkpoint, noise_image


def structured_image(h: int, w: int, seed: int = 0, noise: float = 10) -> np.ndarray:
    """Smooth colour fields with texture: regions that differ, as in a photo (sea, fields, city)."""
    rs = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = np.stack([(np.sin(xx / 17) + np.cos(yy / 23)) * 60 + 128, xx * 255 / w, yy * 255 / h], -1)
    img[: h // 2, : w // 3] = 30  # a flat dark region: its own instance-norm statistics would differ a lot
    return np.clip(img + rs.normal(0, noise, img.shape), 0, 255).astype(np.uint8)


def resnet(ngf: int = 8, blocks: str = "resnet_9blocks", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_generator(blocks, 3, 3, ngf=ngf, norm="instance").eval()


def whole(generator: torch.nn.Module, image: np.ndarray) -> np.ndarray:
    return tensor_to_uint8(translate_tensor(generator, tiling.array_to_tensor(image)))


def test_tiles_reproduce_the_whole_image_output():
    """With whole-image statistics and the default overlap, tiling changes nothing visible."""
    g, img = resnet(), structured_image(384, 512)
    tiled = translate_tiled(g, img, tile=256)  # 3 x 3 tiles, overlap 128
    diff = np.abs(tiled.astype(int) - whole(g, img).astype(int))
    assert tiled.shape == img.shape and diff.max() <= 1, diff.max()


def test_per_tile_instance_norm_would_show_seams(monkeypatch):
    """The reason for the statistics pass: without it, tiles are normalised differently and differ
    from the whole-image output by far more (and visibly, at tile borders)."""
    g, img = resnet(), structured_image(384, 512)
    reference = whole(g, img).astype(int)
    good = np.abs(translate_tiled(g, img, tile=256).astype(int) - reference).mean()
    monkeypatch.setattr(tiling, "fixed_instance_norm", lambda *a: contextlib.nullcontext())
    naive = np.abs(translate_tiled(g, img, tile=256).astype(int) - reference).mean()
    assert naive > 20 * max(good, 0.05), (naive, good)


def test_downscaled_statistics_stay_close_and_seamless():
    """Above `stats_pixels` the statistics come from a downscaled image: a small global change, and
    neighbouring tiles still agree (no step at the tile borders)."""
    g, img = resnet(), structured_image(384, 512)
    reference = whole(g, img).astype(np.float64)
    tiled = translate_tiled(g, img, tile=256, stats_pixels=96 * 128).astype(np.float64)
    assert np.abs(tiled - reference).mean() < 20  # random weights amplify it: see README
    # Seams: the column-to-column change across the blend zones is no larger than elsewhere.
    steps = np.abs(np.diff(tiled, axis=1)).mean(axis=(0, 2))  # (W - 1,)
    starts = tiling.tile_starts(512, 256, 128)
    zones = [c for s in starts[1:] for c in range(s, s + 128)]
    assert steps[zones].mean() < 1.25 * np.delete(steps, zones).mean()


def test_blend_weights_are_a_partition_of_unity():
    for n, tile, overlap in [(1000, 256, 64), (300, 256, 128), (2000, 512, 128), (700, 256, 200)]:
        starts = tiling.tile_starts(n, tile, overlap)
        assert starts[0] == 0 and starts[-1] == n - tile
        assert all(b - a <= tile - overlap for a, b in zip(starts, starts[1:]))
        total = torch.zeros(n)
        for s, w in zip(starts, tiling.blend_weights(starts, tile, n)):
            total[s : s + tile] += w
        assert torch.allclose(total, torch.ones(n), atol=1e-5)


def test_tiling_restores_the_generator_and_handles_odd_sizes_and_grayscale():
    g = resnet(ngf=4, blocks="resnet_6blocks")
    img = structured_image(301, 157)  # odd sizes: edge tiles are padded to the size multiple
    before = whole(g, img)
    out = translate_tiled(g, img, tile=128, overlap=64)
    assert out.shape == img.shape
    assert np.array_equal(whole(g, img), before)  # instance norm is back to normal afterwards
    torch.manual_seed(0)
    gray = build_generator("resnet_6blocks", 1, 1, ngf=4).eval()
    assert translate_tiled(gray, img[:, :, 0], tile=128).shape == (301, 157)
    with pytest.raises(ValueError, match="overlap"):
        translate_tiled(g, img, tile=128, overlap=128)


@pytest.mark.slow
def test_4000x3000_image_translates_in_bounded_memory(tmp_path):
    """The real CLI on a 12-megapixel photo with --tile 512: peak memory of the whole process stays
    under 1 GB (a whole-image pass of this resnet_9blocks would need several GB)."""
    torch.manual_seed(0)
    pth = tmp_path / "G.pth"
    torch.save(to_official(build_generator("resnet_9blocks", 3, 3, ngf=8)), pth)
    big = tmp_path / "in" / "big.jpg"
    big.parent.mkdir()
    Image.fromarray(structured_image(3000, 4000)).save(big, quality=90)
    # VmHWM: this process image's peak RSS (ru_maxrss would include the forking pytest process's).
    code = (
        "import re, sys; from cyclegan.cli import main; "
        f"rc = main(['translate', {str(pth)!r}, {str(big)!r}, '--out', {str(tmp_path / 'out')!r}, "
        "'--tile', '512', '--no-progress', '--device', 'cpu']); "
        "hwm = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1); "
        "print('MAXRSS_MB', int(hwm) // 1024); sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    peak = int(result.stdout.split("MAXRSS_MB")[1].split()[0])
    with Image.open(tmp_path / "out" / "big.png") as out:
        assert out.size == (4000, 3000)
    assert peak < 1024, f"peak RSS {peak} MB"


def test_folders_batched_with_workers_equal_one_by_one(tmp_path):
    g = resnet(ngf=4, blocks="resnet_6blocks")
    for i in range(5):
        noise_image(tmp_path / "in" / ("sub" if i % 2 else "") / f"im{i}.png", 32, 24 if i < 4 else 40, seed=i)
    (tmp_path / "in" / "broken.png").write_bytes(b"not a png")
    one = translate_paths(g, [tmp_path / "in"], tmp_path / "one", progress=False)
    many = translate_paths(g, [tmp_path / "in"], tmp_path / "many", batch_size=3, num_workers=2, progress=False)
    assert [p.relative_to(tmp_path / "one") for p in one.written] == [p.relative_to(tmp_path / "many") for p in many.written]
    assert len(one.written) == 5 and (tmp_path / "many" / "sub" / "im1.png").is_file()
    assert [f.name for f, _ in many.failed] == ["broken.png"]
    for a, b in zip(one.written, many.written):
        # Batched convolutions may round differently from single ones, by a grey level at most.
        assert np.abs(np.asarray(Image.open(a), int) - np.asarray(Image.open(b), int)).max() <= 1


def test_formats_quality_and_skip_existing(tmp_path):
    g = resnet(ngf=4, blocks="resnet_6blocks")
    for i in range(3):
        noise_image(tmp_path / "in" / f"im{i}.png", 32, 32, seed=i)
    first = translate_paths(g, [tmp_path / "in"], tmp_path / "out", image_format="jpg", quality=50, progress=False)
    assert [p.name for p in first.written] == ["im0.jpg", "im1.jpg", "im2.jpg"]
    low = (tmp_path / "out" / "im0.jpg").stat().st_size
    translate_paths(g, [tmp_path / "in" / "im0.png"], tmp_path / "hq", image_format="jpg", quality=100, progress=False)
    assert (tmp_path / "hq" / "im0.jpg").stat().st_size > low
    (tmp_path / "out" / "im1.jpg").unlink()  # as if the run had been interrupted there
    before = (tmp_path / "out" / "im0.jpg").stat().st_mtime_ns
    again = translate_paths(g, [tmp_path / "in"], tmp_path / "out", image_format="jpg", skip_existing=True, progress=False)
    assert [p.name for p in again.written] == ["im1.jpg"] and len(again.skipped) == 2
    assert (tmp_path / "out" / "im0.jpg").stat().st_mtime_ns == before
    with pytest.raises(ValueError, match="format"):
        translate_paths(g, [tmp_path / "in"], tmp_path / "x", image_format="bmp2", progress=False)


def test_results_page_with_reconstructions(tmp_path):
    ckpt = make_checkpoint(tmp_path)
    for i in range(2):
        noise_image(tmp_path / "in" / f"im{i}.png", 32, 32, seed=i)
    out = tmp_path / "out"
    result = subprocess.run(
        [sys.executable, "-m", "cyclegan", "translate", str(ckpt), str(tmp_path / "in"), "--out", str(out), "--page",
         "--no-progress"], capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stderr
    page = (out / "index.html").read_text()
    assert "reconstruction" in page and page.count("<img") == 6
    rec = np.asarray(Image.open(out / "reconstructed" / "im0.png"))
    g_ab, g_ba = load_generator(ckpt, "AtoB"), load_generator(ckpt, "BtoA")
    fake = np.asarray(Image.open(out / "im0.png"), dtype=int)
    real = np.asarray(Image.open(tmp_path / "in" / "im0.png"))
    # Another process: oneDNN may round differently by a grey level.
    assert np.abs(fake - whole(g_ab, real)).max() <= 1
    assert np.abs(rec - whole(g_ba, fake.astype(np.uint8))).max() <= 1
    # An official .pth holds one generator: the page has no reconstruction column.
    pth = tmp_path / "G.pth"
    torch.save(to_official(g_ab), pth)
    subprocess.run([sys.executable, "-m", "cyclegan", "translate", str(pth), str(tmp_path / "in"), "--out",
                    str(tmp_path / "out2"), "--page", "--no-progress"], check=True, capture_output=True, timeout=300)
    assert "reconstruction" not in (tmp_path / "out2" / "index.html").read_text()


def test_video_frame_by_frame(tmp_path):
    imageio = optional_module("imageio.v2")  # the video extra; CI installs it (the test extra)
    optional_module("imageio_ffmpeg")  # imageio's mp4 reader and writer
    g = resnet(ngf=4, blocks="resnet_6blocks")
    frames = [np.roll(structured_image(48, 64, noise=0), 9 * i, axis=1) for i in range(6)]  # a panning shot
    src = tmp_path / "clip.mp4"
    imageio.mimwrite(src, frames, fps=12, quality=10, macro_block_size=16)
    written = translate_paths(g, [src], tmp_path / "out", progress=False).written
    assert written == [tmp_path / "out" / "clip.mp4"]
    reader = imageio.get_reader(written[0])
    assert reader.get_meta_data()["fps"] == pytest.approx(12)
    got = [np.asarray(f) for f in reader]
    decoded = [np.asarray(f) for f in imageio.get_reader(src)]
    assert len(got) == 6 and got[0].shape == (48, 64, 3)
    # Frame 3 is frame 3's translation, up to what H.264 (4:2:0, lossy) loses on it anyway: the
    # noise-like output of random weights costs about 20 grey levels through the codec.
    expected = [whole(g, frame) for frame in decoded]
    error = [np.abs(got[3].astype(int) - e.astype(int)).mean() for e in expected]
    codec = imageio.get_writer(tmp_path / "ref.mp4", format="FFMPEG", fps=12, quality=8, macro_block_size=2)
    codec.append_data(expected[3])
    codec.close()
    baseline = np.abs(np.asarray(imageio.get_reader(tmp_path / "ref.mp4").get_data(0), int) - expected[3]).mean()
    assert np.argmin(error) == 3 and error[3] < 1.2 * baseline + 1, (error, baseline)
