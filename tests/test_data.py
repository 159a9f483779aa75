"""Data pipeline: folder scanning, loading of unusual files, official preprocessing, datasets, saving."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cyclegan.config import DataConfig
from cyclegan.data import (
    DataError,
    ImageFolderDataset,
    Preprocess,
    UnalignedDataset,
    apply_transform,
    find_images,
    load_image,
    output_size,
    sample_params,
    save_image,
    tensor_to_uint8,
    to_tensor,
)
from cyclegan.data.transforms import resize


def noise_image(w: int, h: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    rs = np.random.RandomState(seed)
    shape = (h, w, 3) if mode == "RGB" else (h, w)
    return Image.fromarray(rs.randint(0, 256, shape, dtype=np.uint8))


def read(path: Path) -> Image.Image:
    with Image.open(path) as img:
        img.load()
        return img.copy()


def write_images(folder: Path, names: list[str], size: tuple[int, int] = (40, 36)) -> list[Path]:
    paths = []
    for i, name in enumerate(names):
        p = folder / name
        p.parent.mkdir(parents=True, exist_ok=True)
        noise_image(*size, seed=i).save(p)
        paths.append(p)
    return paths


# ---------------------------------------------------------------- find_images


def test_find_images_recursive_sorted_skips_hidden_and_other_files(tmp_path):
    write_images(tmp_path, ["b.png", "a.JPG", "sub/c.jpeg", "sub/deeper/d.BMP", "e.webp", "f.TIFF", "g.ppm"])
    write_images(tmp_path, [".hidden.png", ".cache/x.png", "sub/._apple.jpg"])
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "model.pth").write_bytes(b"\0")
    rel = [p.relative_to(tmp_path).as_posix() for p in find_images(tmp_path)]
    assert rel == ["a.JPG", "b.png", "e.webp", "f.TIFF", "g.ppm", "sub/c.jpeg", "sub/deeper/d.BMP"]
    top = [p.name for p in find_images(tmp_path, recursive=False)]
    assert top == ["a.JPG", "b.png", "e.webp", "f.TIFF", "g.ppm"]
    assert [p.name for p in find_images(tmp_path, max_count=2)] == ["a.JPG", "b.png"]


def test_find_images_errors_name_the_folder(tmp_path):
    with pytest.raises(DataError, match=r"does not exist") as e:
        find_images(tmp_path / "nope")
    assert "nope" in str(e.value)
    (tmp_path / "file.png").write_bytes(b"x")
    with pytest.raises(DataError, match="not a folder"):
        find_images(tmp_path / "file.png")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "readme.txt").write_text("hi")
    with pytest.raises(DataError, match=r"no images found in .*empty.*\.jpg.*\.png.*\.webp"):
        find_images(empty)


# ---------------------------------------------------------------- load_image


def test_load_image_odd_modes(tmp_path):
    w, h = 40, 30
    rgb = noise_image(w, h)
    cases = {}
    rgba = rgb.convert("RGBA")
    rgba.putalpha(0)  # fully transparent: the official convert('RGB') keeps the colours
    cases["rgba.png"] = rgba
    cases["la.png"] = noise_image(w, h, "L").convert("LA")
    p = rgb.convert("P", palette=Image.ADAPTIVE, colors=16)
    p.info["transparency"] = 3
    cases["p_transparent.png"] = p
    cases["p.gif"] = rgb.convert("P")  # not a dataset extension, but load_image reads any PIL format
    cases["cmyk.jpg"] = rgb.convert("CMYK")
    cases["one_bit.png"] = noise_image(w, h, "L").convert("1")
    cases["float.tiff"] = Image.fromarray(np.random.RandomState(1).rand(h, w).astype(np.float32))
    cases["int32.tiff"] = Image.fromarray(np.full((h, w), 1000, dtype=np.int32))
    for name, img in cases.items():
        img.save(tmp_path / name, **({"transparency": 3} if name == "p_transparent.png" else {}))
    for name in cases:
        for channels, mode in ((3, "RGB"), (1, "L")):
            out = load_image(tmp_path / name, channels)
            assert (out.mode, out.size) == (mode, (w, h)), name
    assert np.array_equal(np.asarray(load_image(tmp_path / "rgba.png")), np.asarray(rgb))
    assert set(np.unique(np.asarray(load_image(tmp_path / "one_bit.png", 1)))) <= {0, 255}
    assert np.all(np.asarray(load_image(tmp_path / "int32.tiff", 1)) == round(1000 * 255 / 65535))


def test_load_image_16bit_scales_by_full_range(tmp_path):
    a = np.zeros((32, 32), dtype=np.uint16)
    a[0, 0], a[0, 1], a[0, 2] = 65535, 32768, 257
    Image.fromarray(a).save(tmp_path / "deep.png")
    assert read(tmp_path / "deep.png").mode.startswith("I")
    out = np.asarray(load_image(tmp_path / "deep.png", 1))
    assert out[0, 0] == 255 and out[0, 1] in (127, 128) and out[0, 2] == 1 and out[1, 1] == 0
    rgb = np.asarray(load_image(tmp_path / "deep.png", 3))
    assert rgb.shape == (32, 32, 3) and rgb[0, 0].tolist() == [255, 255, 255]


def test_load_image_float_in_unit_range(tmp_path):
    a = np.zeros((8, 8), dtype=np.float32)
    a[0, 0], a[0, 1] = 1.0, 0.5
    Image.fromarray(a).save(tmp_path / "f.tif")
    out = np.asarray(load_image(tmp_path / "f.tif", 1))
    assert out[0, 0] == 255 and out[0, 1] in (127, 128) and out[1, 1] == 0


def test_load_image_applies_exif_orientation(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated 90 degrees: the stored 40x30 pixels display as 30x40
    noise_image(40, 30).save(tmp_path / "phone.jpg", exif=exif)
    assert load_image(tmp_path / "phone.jpg").size == (30, 40)
    assert load_image(tmp_path / "phone.jpg", exif_transpose=False).size == (40, 30)


def test_load_image_bad_files_raise_data_error_naming_them(tmp_path, monkeypatch):
    (tmp_path / "random.png").write_bytes(np.random.RandomState(0).bytes(500))
    buf = tmp_path / "full.jpg"
    noise_image(64, 64).save(buf, quality=95)
    data = buf.read_bytes()
    (tmp_path / "truncated.jpg").write_bytes(data[: len(data) // 2])
    (tmp_path / "empty.png").write_bytes(b"")
    for name in ("random.png", "truncated.jpg", "empty.png", "missing.png"):
        with pytest.raises(DataError) as e:
            load_image(tmp_path / name)
        assert name in str(e.value)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 64 * 64 > 2 * 1000: a "bomb"
    with pytest.raises(DataError, match="too large"):
        load_image(buf)


# ---------------------------------------------------------------- tensors and saving


def test_to_tensor_is_totensor_normalize():
    img = Image.fromarray(np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2))
    t = to_tensor(img)
    assert t.dtype == torch.float32 and t.shape == (3, 16, 16)
    ref = (torch.arange(256, dtype=torch.float32) / 255 - 0.5) / 0.5
    assert torch.equal(t[0].flatten(), ref)
    assert t.min() == -1 and t.max() == 1
    assert to_tensor(img.convert("L")).shape == (1, 16, 16)


def test_save_image_truncates_like_tensor2im_and_round_trips(tmp_path):
    v = np.arange(256, dtype=np.uint8)
    img = Image.fromarray(np.stack([v.reshape(16, 16)] * 3, axis=2))
    t = to_tensor(img)
    # The official tensor2im truncates: float32 error puts some values just under the integer.
    official = ((np.transpose(t.numpy(), (1, 2, 0)) + 1) / 2.0 * 255.0).astype(np.uint8)
    assert np.array_equal(tensor_to_uint8(t), official)
    assert np.abs(official.astype(int) - np.asarray(img).astype(int)).max() <= 1
    save_image(t, tmp_path / "out" / "trunc.png")
    assert np.array_equal(np.asarray(read(tmp_path / "out" / "trunc.png")), official)
    save_image(t, tmp_path / "round.png", rounding=True)
    assert np.array_equal(np.asarray(read(tmp_path / "round.png")), np.asarray(img))
    # a value that maps to 127.99 is saved as 127, not rounded to 128
    x = torch.full((3, 4, 4), 127.99 / 127.5 - 1.0)
    save_image(x, tmp_path / "x.png")
    assert np.all(np.asarray(read(tmp_path / "x.png")) == 127)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "round.png", "x.png"]  # no temp files left


def test_save_image_grayscale_and_jpeg(tmp_path):
    gray = to_tensor(noise_image(20, 12, "L"))
    save_image(gray, tmp_path / "g.png", rounding=True)
    back = read(tmp_path / "g.png")
    assert back.mode == "L" and back.size == (20, 12)
    assert torch.equal(to_tensor(back), gray)
    save_image(torch.zeros(3, 12, 20), tmp_path / "z.jpg")
    with Image.open(tmp_path / "z.jpg") as img:
        assert img.format == "JPEG"
    with pytest.raises(ValueError, match="suffix"):
        save_image(gray, tmp_path / "noext")


# ---------------------------------------------------------------- transforms


@pytest.mark.parametrize(
    "preprocess, load, crop, size, expected",
    [
        ("resize_and_crop", 36, 32, (50, 40), (32, 32)),  # the 286 -> 256 recipe, small
        ("crop", 36, 32, (50, 40), (32, 32)),
        ("scale_width", 40, 32, (50, 30), (40, 32)),  # height 24 raised to crop_size
        ("scale_width", 40, 32, (80, 100), (40, 50)),
        ("scale_width", 40, 32, (40, 70), (40, 70)),  # already the width: untouched
        ("scale_width_and_crop", 40, 32, (80, 100), (32, 32)),
        ("none", 36, 32, (50, 30), (48, 32)),  # round(12.5) = 12, round(7.5) = 8 (half to even)
        ("none", 36, 32, (54, 31), (56, 32)),
        ("none", 36, 32, (48, 32), (48, 32)),
    ],
)
def test_preprocess_output_sizes(preprocess, load, crop, size, expected):
    cfg = DataConfig(preprocess=preprocess, load_size=load, crop_size=crop)
    img = noise_image(*size)
    t = Preprocess(cfg)(img, random.Random(0))
    assert t.shape == (3, expected[1], expected[0])
    assert output_size(cfg, size) == expected
    assert Preprocess(cfg, grayscale=True)(img, np.random.default_rng(0)).shape == (1, expected[1], expected[0])
    assert Preprocess(cfg).eval(img).shape == (3, expected[1], expected[0])


def test_resize_is_pil_bicubic_and_transform_matches_manual_pipeline():
    img = noise_image(50, 40)
    cfg = DataConfig(preprocess="resize_and_crop", load_size=36, crop_size=32)
    assert np.array_equal(np.asarray(resize(img, cfg)), np.asarray(img.resize((36, 36), Image.BICUBIC)))
    sw = DataConfig(preprocess="scale_width", load_size=40, crop_size=20)
    assert np.array_equal(np.asarray(resize(img, sw)), np.asarray(img.resize((40, 32), Image.BICUBIC)))
    params = {"crop_pos": (3, 1), "flip": True}
    manual = img.resize((36, 36), Image.BICUBIC).crop((3, 1, 35, 33)).transpose(Image.FLIP_LEFT_RIGHT)
    assert torch.equal(apply_transform(img, cfg, params), to_tensor(manual))
    gray = apply_transform(img, cfg, params, grayscale=True)
    # grayscale comes first in the official order (it does not commute with the bicubic resize)
    assert torch.equal(gray, to_tensor(img.convert("L").resize((36, 36), Image.BICUBIC).crop((3, 1, 35, 33))
                                       .transpose(Image.FLIP_LEFT_RIGHT)))


def test_sample_params_ranges_flip_and_small_image_error():
    cfg = DataConfig(preprocess="resize_and_crop", load_size=36, crop_size=32)
    rng = random.Random(0)
    ps = [sample_params(cfg, (50, 40), rng) for _ in range(300)]
    xs = {p["crop_pos"][0] for p in ps}
    assert xs == set(range(5))  # 0 .. load - crop inclusive, like torchvision RandomCrop
    assert {p["flip"] for p in ps} == {True, False}
    no_flip = DataConfig(preprocess="resize_and_crop", load_size=36, crop_size=32, flip=False)
    assert not any(sample_params(no_flip, (50, 40), rng)["flip"] for _ in range(20))
    with pytest.raises(DataError, match=r"20x20 px.*smaller than the 32x32 crop.*resize_and_crop"):
        sample_params(DataConfig(preprocess="crop", crop_size=32), (20, 20), rng)


def test_flip_really_flips_for_some_seeds():
    img = noise_image(32, 32)
    cfg = DataConfig(preprocess="none")
    plain = to_tensor(img)
    outs = [Preprocess(cfg)(img, random.Random(s)) for s in range(20)]
    flipped = [torch.equal(o, plain.flip(-1)) for o in outs]
    same = [torch.equal(o, plain) for o in outs]
    assert any(flipped) and any(same) and all(f != s for f, s in zip(flipped, same))


# ---------------------------------------------------------------- datasets


def make_domains(tmp_path: Path, n_a: int = 4, n_b: int = 3) -> Path:
    write_images(tmp_path / "trainA", [f"a{i}.png" for i in range(n_a)])
    write_images(tmp_path / "trainB", [f"b{i}.jpg" for i in range(n_b)], size=(48, 40))
    return tmp_path


SMALL = DataConfig(preprocess="resize_and_crop", load_size=36, crop_size=32)


def test_unaligned_items_are_deterministic_per_key(tmp_path):
    ds = UnalignedDataset.from_root(make_domains(tmp_path), SMALL)
    assert len(ds) == 4
    x, y = ds[(2, 7)], ds[(2, 7)]
    assert torch.equal(x["a"], y["a"]) and torch.equal(x["b"], y["b"]) and x["b_path"] == y["b_path"]
    assert x["a"].shape == (3, 32, 32) and x["b"].shape == (3, 32, 32) and x["skipped"] == 0
    assert Path(x["a_path"]).name == "a2.png"
    assert torch.equal(ds[2]["a"], ds[(2, 2)]["a"])  # a plain index is its own seed
    others = [ds[(2, s)] for s in range(8)]
    assert any(not torch.equal(o["a"], x["a"]) for o in others)
    assert len({o["b_path"] for o in others}) > 1  # B is drawn at random
    with pytest.raises(IndexError):
        ds[4]


def test_serial_batches_pairs_by_index_and_max_dataset_size(tmp_path):
    cfg = DataConfig(preprocess="resize_and_crop", load_size=36, crop_size=32, serial_batches=True)
    ds = UnalignedDataset.from_root(make_domains(tmp_path), cfg)
    pairs = [(Path(ds[(i, 5)]["a_path"]).name, Path(ds[(i, 5)]["b_path"]).name) for i in range(4)]
    assert pairs == [("a0.png", "b0.jpg"), ("a1.png", "b1.jpg"), ("a2.png", "b2.jpg"), ("a3.png", "b0.jpg")]
    small = UnalignedDataset.from_root(tmp_path, DataConfig(max_dataset_size=2, load_size=36, crop_size=32))
    assert [p.name for p in small.paths_a] == ["a0.png", "a1.png"] and len(small) == 2


def test_grayscale_domain(tmp_path):
    ds = UnalignedDataset.from_root(make_domains(tmp_path), SMALL, channels_a=1)
    item = ds[0]
    assert item["a"].shape == (1, 32, 32) and item["b"].shape == (3, 32, 32)


def test_corrupt_training_image_is_skipped_with_warning(tmp_path, caplog):
    root = make_domains(tmp_path)
    bad = root / "trainA" / "a1.png"
    bad.write_bytes(b"\x89PNG not really")
    cfg = DataConfig(preprocess="resize_and_crop", load_size=36, crop_size=32, serial_batches=True)
    ds = UnalignedDataset.from_root(root, cfg)
    with caplog.at_level(logging.WARNING, logger="cyclegan.data.unaligned"):
        item = ds[(1, 0)]
    assert item["skipped"] == 1 and Path(item["a_path"]).name == "a2.png"
    assert any("a1.png" in r.getMessage() for r in caplog.records)
    assert ds[(1, 0)]["skipped"] == 1  # known bad: still counted, not re-read
    assert ds[(0, 0)]["skipped"] == 0


def test_image_smaller_than_crop_is_skipped_and_all_bad_raises(tmp_path, caplog):
    write_images(tmp_path / "A", ["big.png"], size=(40, 40))
    write_images(tmp_path / "A", ["small.png"], size=(16, 16))
    write_images(tmp_path / "B", ["b.png"], size=(40, 40))
    ds = UnalignedDataset(tmp_path / "A", tmp_path / "B", DataConfig(preprocess="crop", crop_size=32))
    with caplog.at_level(logging.WARNING):
        item = ds[1]  # "small.png" sorts second
    assert item["skipped"] == 1 and Path(item["a_path"]).name == "big.png"
    for p in (tmp_path / "A").iterdir():
        p.write_bytes(b"garbage")
    ds = UnalignedDataset(tmp_path / "A", tmp_path / "B", DataConfig(preprocess="crop", crop_size=32))
    with pytest.raises(DataError, match="too many unreadable images in"):
        ds[0]


def test_from_root_and_config_errors(tmp_path):
    (tmp_path / "trainA").mkdir()
    with pytest.raises(DataError, match=r"expected .*trainA and .*trainB.*missing: trainB"):
        UnalignedDataset.from_root(tmp_path, SMALL)
    with pytest.raises(DataError, match="does not exist"):
        UnalignedDataset.from_root(tmp_path / "nowhere", SMALL)
    make_domains(tmp_path)
    with pytest.raises(DataError, match="load_size"):
        UnalignedDataset.from_root(tmp_path, DataConfig(preprocess="scale_width_and_crop", load_size=20, crop_size=32))
    with pytest.raises(ValueError, match="choose one of"):
        UnalignedDataset.from_root(tmp_path, DataConfig(preprocess="zoom"))


class KeySampler(torch.utils.data.Sampler):
    """Yields (index, seed) keys: a shuffled order per epoch and one seed per item."""

    def __init__(self, n: int, seed: int, epoch: int) -> None:
        self.n, self.seed, self.epoch = n, seed, epoch

    def __iter__(self):
        rng = random.Random(f"{self.seed}/{self.epoch}")
        order = list(range(self.n))
        rng.shuffle(order)
        return iter((i, rng.getrandbits(63)) for i in order)

    def __len__(self) -> int:
        return self.n


def test_dataloader_workers_give_the_same_batches(tmp_path):
    ds = UnalignedDataset.from_root(make_domains(tmp_path), SMALL)

    def run(workers: int) -> list[dict]:
        dl = torch.utils.data.DataLoader(ds, batch_size=2, sampler=KeySampler(len(ds), 0, 1), num_workers=workers)
        return list(dl)

    serial, parallel = run(0), run(2)
    assert len(serial) == 2
    for s, p in zip(serial, parallel):
        assert torch.equal(s["a"], p["a"]) and torch.equal(s["b"], p["b"]) and s["b_path"] == p["b_path"]
        assert s["skipped"].tolist() == [0, 0]


def test_image_folder_dataset(tmp_path):
    write_images(tmp_path, ["x.png", "y.png"], size=(50, 30))
    ds = ImageFolderDataset(tmp_path, 3)
    item = ds[0]
    assert item["image"].shape == (3, 30, 50) and Path(item["path"]).name == "x.png"
    assert torch.equal(item["image"], to_tensor(read(tmp_path / "x.png")))
    assert ImageFolderDataset([tmp_path / "y.png"], 1)[0]["image"].shape == (1, 30, 50)
    assert len(ImageFolderDataset(tmp_path / "x.png")) == 1
    resized = ImageFolderDataset(tmp_path, 3, cfg=DataConfig(preprocess="none"))
    assert resized[1]["image"].shape == (3, 32, 48)
