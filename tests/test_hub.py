"""cyclegan.hub against a real HTTP server on 127.0.0.1: resumable, verified downloads
(cyclegan.weights.download), the pretrained generators through cyclegan.weights, safe dataset
extraction, Cityscapes preparation, and the CLI end to end."""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import shutil
import stat
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import numpy as np
import pytest
from PIL import Image

from cyclegan.data.image_io import DataError
from cyclegan.hub import download_dataset
from cyclegan.weights.pretrained import download_pretrained
from cyclegan.hub.datasets import extract_dataset
from cyclegan.weights.pretrained import is_cached, is_pretrained_name, pretrained_path
from cyclegan.weights.download import DownloadError, cache_dir, download, file_sha256

from helpers import cli_environ

FOLDERS = ("trainA", "trainB", "testA", "testB")


# ---------------------------------------------------------------------------------------------------
# A file server with Range support and fault injection


class FileServer:
    """Serves `root` over HTTP on 127.0.0.1 and records every request as (path, Range header)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.requests: list[tuple[str, str | None]] = []
        self.drop = 0  # the next N responses close the connection halfway through the body
        self.hang = 0.0  # seconds to stall before answering
        self.html = False  # answer every request with an HTML error page (status 200)
        self.ignore_range = False  # answer Range requests with 200 and the whole file
        self.release = threading.Event()  # ends a stall early at teardown
        state = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                state.serve(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def serve(self, h: BaseHTTPRequestHandler) -> None:
        rng = h.headers.get("Range")
        self.requests.append((h.path, rng))
        if self.hang:
            self.release.wait(self.hang)
            return
        if self.html:
            self._send(h, 200, b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", "text/html")
            return
        file = self.root / unquote(urlsplit(h.path).path).lstrip("/")
        if not file.is_file():
            h.send_error(404)
            return
        data = file.read_bytes()
        start = 0
        if rng and not self.ignore_range:
            start = int(re.fullmatch(r"bytes=(\d+)-", rng).group(1))
            if start >= len(data):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
        extra = {"Content-Range": f"bytes {start}-{len(data) - 1}/{len(data)}"} if start else {}
        self._send(h, 206 if start else 200, data[start:], "application/octet-stream", extra)

    def _send(self, h, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
        h.send_response(status)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            h.send_header(k, v)
        h.end_headers()
        if self.drop > 0:
            self.drop -= 1
            body = body[: len(body) // 2]
            h.close_connection = True
        h.wfile.write(body)

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(tmp_path):
    srv = FileServer(tmp_path / "served")
    srv.root.mkdir()
    yield srv
    srv.close()


@pytest.fixture
def hub_env(tmp_path, server, monkeypatch):
    """Cache under tmp_path (via XDG_CACHE_HOME) and both mirrors pointing at the test server."""
    monkeypatch.delenv("CYCLEGAN_CACHE", raising=False)
    monkeypatch.delenv("CYCLEGAN_PRETRAINED_URL", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.setenv("CYCLEGAN_WEIGHTS_MIRROR", server.url)
    monkeypatch.setenv("CYCLEGAN_DATASETS_URL", server.url)
    return server


def payload(server: FileServer, name: str = "blob.bin", size: int = 300_000) -> bytes:
    data = np.random.RandomState(0).bytes(size)
    (server.root / name).write_bytes(data)
    return data


def serve_generator(server: FileServer, fixtures_dir: Path, name: str = "horse2zebra") -> bytes:
    shutil.copyfile(fixtures_dir / "official_G_resnet9_ngf8.pth", server.root / f"{name}.pth")
    return (server.root / f"{name}.pth").read_bytes()


def cli(*args, env: dict, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cyclegan", *map(str, args)], capture_output=True, text=True, timeout=120, env=env, cwd=cwd
    )


def cli_env(tmp_path: Path, server: FileServer) -> dict:
    env = cli_environ({k: v for k, v in os.environ.items() if k not in ("CYCLEGAN_CACHE", "CYCLEGAN_PRETRAINED_URL")})
    env.update(XDG_CACHE_HOME=str(tmp_path / "xdg"), CYCLEGAN_WEIGHTS_MIRROR=server.url, CYCLEGAN_DATASETS_URL=server.url)
    return env


# ---------------------------------------------------------------------------------------------------
# The downloader


def test_cache_dir_env(tmp_path, monkeypatch):
    monkeypatch.delenv("CYCLEGAN_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "cyclegan"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "cyclegan"
    monkeypatch.setenv("CYCLEGAN_CACHE", str(tmp_path / "mine"))
    assert cache_dir() == tmp_path / "mine"


def test_resume_after_dropped_connection(server, tmp_path):
    data = payload(server)
    server.drop = 1
    dest = download(f"{server.url}/blob.bin", tmp_path / "out" / "blob.bin", progress=False)
    assert dest.read_bytes() == data
    assert server.requests == [("/blob.bin", None), ("/blob.bin", f"bytes={len(data) // 2}-")]
    assert not (tmp_path / "out" / "blob.bin.part").exists()


def test_resume_partial_file_from_an_earlier_run(server, tmp_path):
    data = payload(server)
    server.drop = 5  # more drops than retries: the call fails but keeps its progress
    dest = tmp_path / "blob.bin"
    with pytest.raises(DownloadError, match="run the command again to resume"):
        download(f"{server.url}/blob.bin", dest, retries=1, progress=False)
    part = tmp_path / "blob.bin.part"
    assert not dest.exists() and 0 < part.stat().st_size < len(data)
    kept = part.stat().st_size
    server.drop, server.requests = 0, []
    download(f"{server.url}/blob.bin", dest, sha256=hashlib.sha256(data).hexdigest(), progress=False)
    assert dest.read_bytes() == data and server.requests == [("/blob.bin", f"bytes={kept}-")]


def test_restart_when_server_ignores_range(server, tmp_path):
    data = payload(server)
    (tmp_path / "blob.bin.part").write_bytes(b"stale bytes that are not a prefix")
    server.ignore_range = True
    dest = download(f"{server.url}/blob.bin", tmp_path / "blob.bin", progress=False)
    assert dest.read_bytes() == data
    assert server.requests == [("/blob.bin", "bytes=33-")]


def test_restart_after_416(server, tmp_path):
    data = payload(server, size=1000)
    (tmp_path / "blob.bin.part").write_bytes(b"x" * 2000)  # longer than the file: 416
    dest = download(f"{server.url}/blob.bin", tmp_path / "blob.bin", progress=False)
    assert dest.read_bytes() == data
    assert server.requests == [("/blob.bin", "bytes=2000-"), ("/blob.bin", None)]


def test_timeout_is_one_clear_error(server, tmp_path):
    payload(server)
    server.hang = 10
    t0 = time.monotonic()
    with pytest.raises(DownloadError) as e:
        download(f"{server.url}/blob.bin", tmp_path / "blob.bin", timeout=0.3, progress=False, mirror_env="CYCLEGAN_X_URL")
    assert time.monotonic() - t0 < 5
    msg = str(e.value)
    assert "timed out" in msg and f"{server.url}/blob.bin" in msg and "CYCLEGAN_X_URL" in msg and "\n" not in msg
    assert not (tmp_path / "blob.bin").exists()


@pytest.mark.parametrize("kind", ["size", "sha256", "check"])
def test_a_wrong_file_leaves_nothing_at_dest(server, tmp_path, kind):
    data = payload(server)
    dest = tmp_path / "blob.bin"
    dest_old = b"the previous version"
    dest.write_bytes(dest_old)

    def reject(path: Path) -> None:
        raise DownloadError("rejected by the caller")

    kwargs = {"size": {"expected_size": len(data) + 1}, "sha256": {"sha256": "0" * 64}, "check": {"check": reject}}[kind]
    with pytest.raises(DownloadError, match="expected|rejected"):
        download(f"{server.url}/blob.bin", dest, progress=False, **kwargs)
    assert dest.read_bytes() == dest_old and not (tmp_path / "blob.bin.part").exists()


def test_http_error_and_local_mirrors(server, tmp_path):
    with pytest.raises(DownloadError, match=r"HTTP 404.*CYCLEGAN_X_URL"):
        download(f"{server.url}/missing.bin", tmp_path / "m.bin", progress=False, mirror_env="CYCLEGAN_X_URL")
    assert not (tmp_path / "m.bin").exists() and not (tmp_path / "m.bin.part").exists()
    data = payload(server)
    src = server.root / "blob.bin"
    assert download(src.as_uri(), tmp_path / "a.bin").read_bytes() == data
    assert download(str(src), tmp_path / "b.bin", expected_size=len(data)).read_bytes() == data
    with pytest.raises(DownloadError, match="does not exist"):
        download(str(server.root / "nope.bin"), tmp_path / "c.bin")
    assert server.requests == [("/missing.bin", None)]


# ---------------------------------------------------------------------------------------------------
# Pretrained generators


def test_pretrained_download_cache_hit_and_corruption(hub_env, fixtures_dir, caplog):
    data = serve_generator(hub_env, fixtures_dir)
    assert not is_cached("horse2zebra")
    path = download_pretrained("horse2zebra", progress=False)
    assert path == pretrained_path("horse2zebra") and path.parent == cache_dir() / "pretrained"
    assert str(path).startswith(os.environ["XDG_CACHE_HOME"])  # XDG_CACHE_HOME respected
    assert path.read_bytes() == data and is_cached("horse2zebra")
    sidecar = path.with_name("horse2zebra.pth.sha256")
    assert sidecar.read_text() == f"{hashlib.sha256(data).hexdigest()}  horse2zebra.pth\n"

    assert download_pretrained("horse2zebra", progress=False) == path
    assert len(hub_env.requests) == 1  # cache hit: no second request

    with open(path, "r+b") as f:  # flip one byte in the middle
        f.seek(len(data) // 2)
        byte = f.read(1)
        f.seek(len(data) // 2)
        f.write(bytes([byte[0] ^ 0xFF]))
    with caplog.at_level(logging.WARNING, logger="cyclegan.weights"):
        assert download_pretrained("horse2zebra", progress=False) == path
    assert "corrupt" in caplog.text and len(hub_env.requests) == 2
    assert path.read_bytes() == data and file_sha256(path) == sidecar.read_text().split()[0]


def test_pretrained_rejects_an_html_page(hub_env, fixtures_dir):
    serve_generator(hub_env, fixtures_dir)
    hub_env.html = True
    with pytest.raises(DownloadError, match="HTML page.*CYCLEGAN_WEIGHTS_MIRROR"):
        download_pretrained("horse2zebra", progress=False)
    path = pretrained_path("horse2zebra")
    assert not path.exists() and not path.with_name("horse2zebra.pth.part").exists()


def test_pretrained_rejects_a_non_generator(hub_env):
    import torch

    torch.save({"weight": torch.zeros(3)}, hub_env.root / "zebra2horse.pth")
    with pytest.raises(DownloadError, match="not an official CycleGAN generator"):
        download_pretrained("zebra2horse", progress=False)
    assert not pretrained_path("zebra2horse").exists()


def test_pretrained_names(hub_env):
    assert is_pretrained_name("style_vangogh") and not is_pretrained_name("style_vangog")
    assert not is_pretrained_name(Path("horse2zebra"))
    with pytest.raises(ValueError, match="did you mean horse2zebra.*choose one of: apple2orange"):
        download_pretrained("horse2zebr")
    assert hub_env.requests == []


def test_pretrained_cli_download_and_translate(tmp_path, hub_env, fixtures_dir):
    """The key end-to-end test: download over HTTP with the real CLI, then translate with it."""
    serve_generator(hub_env, fixtures_dir)
    env = cli_env(tmp_path, hub_env)
    result = cli("pretrained", "download", "horse2zebra", "--no-progress", env=env)
    assert result.returncode == 0, result.stderr
    path = Path(result.stdout.strip())
    assert path == tmp_path / "xdg" / "cyclegan" / "pretrained" / "horse2zebra.pth"
    result = cli("pretrained", "list", env=env)
    assert re.search(r"^horse2zebra\s+cached\s+horse -> zebra", result.stdout, re.M), result.stdout

    expected = np.asarray(Image.open(fixtures_dir / "translate_expected.png").convert("RGB"), dtype=int)
    for i, source in enumerate([path, "horse2zebra"]):  # the downloaded file, then the name itself
        out = tmp_path / f"out{i}"
        result = cli("translate", source, fixtures_dir / "translate_input.png", "--out", out, "--device", "cpu", env=env)
        assert result.returncode == 0, result.stderr
        got = np.asarray(Image.open(out / "translate_input.png").convert("RGB"), dtype=int)
        assert got.shape == expected.shape and np.abs(got - expected).max() <= 1
    assert len(hub_env.requests) == 1  # translate used the cache


def test_pretrained_cli_errors_are_one_line(tmp_path, hub_env):
    env = cli_env(tmp_path, hub_env)
    result = cli("pretrained", "download", "horse2zebra", "--no-progress", env=env)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and "HTTP 404" in result.stderr


# ---------------------------------------------------------------------------------------------------
# Datasets


def png_bytes(seed: int) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.RandomState(seed).randint(0, 256, (8, 8, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def dataset_zip(path: Path, name: str, folders=FOLDERS, extra: list[zipfile.ZipInfo | str] = ()) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}/", b"")
        for i, sub in enumerate(folders):
            for j in range(2):
                zf.writestr(f"{name}/{sub}/{j}_{sub}.png", png_bytes(10 * i + j))
        for member in extra:
            zf.writestr(member, b"outside!")
    return path


def test_datasets_cli_download(tmp_path, hub_env):
    dataset_zip(hub_env.root / "horse2zebra.zip", "horse2zebra", extra=["__MACOSX/._junk", "README.txt"])
    env, root = cli_env(tmp_path, hub_env), tmp_path / "data"
    for _ in range(2):  # the second run finds it complete and downloads nothing
        result = cli("datasets", "download", "horse2zebra", "--out", root, "--no-progress", env=env)
        assert result.returncode == 0, result.stderr
        assert Path(result.stdout.strip()) == root / "horse2zebra"
    assert len(hub_env.requests) == 1
    assert sorted(p.name for p in (root / "horse2zebra").iterdir()) == sorted(FOLDERS)
    for sub in FOLDERS:
        assert len(list((root / "horse2zebra" / sub).glob("*.png"))) == 2
    assert os.listdir(root) == ["horse2zebra"]  # no temp folders or junk left
    assert not (tmp_path / "xdg" / "cyclegan" / "datasets" / "horse2zebra.zip").exists()
    assert re.search(r"^horse2zebra\s+present", cli("datasets", "list", "--root", root, env=env).stdout, re.M)


def test_datasets_test_only_set_and_kept_zip(hub_env, tmp_path):
    dataset_zip(hub_env.root / "ae_photos.zip", "ae_photos", folders=("testA",))
    target = download_dataset("ae_photos", tmp_path / "data", keep_zip=True, progress=False)
    assert len(list((target / "testA").iterdir())) == 2
    assert (cache_dir() / "datasets" / "ae_photos.zip").is_file()
    download_dataset("ae_photos", tmp_path / "data", force=True, progress=False)
    assert len(hub_env.requests) == 2  # force downloads again


def test_extract_flat_or_renamed_zip(tmp_path):
    for i, top in enumerate(["", "horse2zebra_v2/"]):
        with zipfile.ZipFile(tmp_path / f"{i}.zip", "w") as zf:
            for sub in FOLDERS:
                zf.writestr(f"{top}{sub}/0.png", png_bytes(i))
        target = extract_dataset(tmp_path / f"{i}.zip", tmp_path / f"data{i}" / "horse2zebra", top="horse2zebra")
        assert sorted(os.listdir(target)) == sorted(FOLDERS)


def symlink_member(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    "member, reason",
    [("horse2zebra/../../evil.txt", "outside"), ("/tmp/evil.txt", "absolute"), ("C:/evil.txt", "absolute"),
     (symlink_member("horse2zebra/trainA/link.png"), "symbolic link")],
)
def test_unsafe_zip_members_are_refused(tmp_path, member, reason):
    archive = dataset_zip(tmp_path / "evil.zip", "horse2zebra", extra=[member])
    root = tmp_path / "sandbox" / "root"
    root.mkdir(parents=True)
    with pytest.raises(DataError, match=reason):
        extract_dataset(archive, root / "horse2zebra")
    assert os.listdir(root) == [] and os.listdir(tmp_path / "sandbox") == ["root"]
    assert not Path("/tmp/evil.txt").exists() or Path("/tmp/evil.txt").read_bytes() != b"outside!"


def test_incomplete_layout_is_reported(hub_env, tmp_path):
    dataset_zip(hub_env.root / "maps.zip", "maps", folders=("trainA", "trainB", "testA"))
    root = tmp_path / "data"
    with pytest.raises(DataError, match="testB is missing"):
        download_dataset("maps", root, progress=False)
    assert not (root / "maps").exists() and os.listdir(root) == []
    (root / "maps" / "trainA").mkdir(parents=True)
    with pytest.raises(DataError, match=r"exists but is incomplete.*--force"):
        download_dataset("maps", root, progress=False)


def test_dataset_errors(hub_env, tmp_path):
    with pytest.raises(ValueError, match="register at https://www.cityscapes-dataset.com.*prepare-cityscapes"):
        download_dataset("cityscapes", tmp_path)
    with pytest.raises(ValueError, match="did you mean horse2zebra"):
        download_dataset("horse2zebr", tmp_path)
    hub_env.html = True
    with pytest.raises(DownloadError, match="HTML page.*CYCLEGAN_DATASETS_URL"):
        download_dataset("facades", tmp_path, progress=False)
    assert not (tmp_path / "facades").exists()


# ---------------------------------------------------------------------------------------------------
# Cityscapes


CITIES = {"train": {"aachen": 2, "bremen": 1}, "val": {"frankfurt": 1, "lindau": 1}}


def cityscapes_zips(tmp_path: Path) -> tuple[Path, Path]:
    """Tiny archives in the official layout; photos are reddish and labels bluish, with a frame index
    in the green channel so that the pairing and order can be checked."""
    gt, left = tmp_path / "gtFine_trainvaltest.zip", tmp_path / "leftImg8bit_trainvaltest.zip"
    with zipfile.ZipFile(gt, "w") as zg, zipfile.ZipFile(left, "w") as zl:
        zg.writestr("README", b"gtFine")
        k = 0
        for phase, cities in CITIES.items():
            for city, n in cities.items():
                for f in range(n):
                    stem = f"{city}_{k:06d}_{19 + f:06d}"
                    for z, suffix, colour in ((zl, "leftImg8bit", (220, 0, 0)), (zg, "gtFine_color", (0, 0, 220))):
                        img = Image.new("RGBA" if z is zg else "RGB", (64, 32), (*colour[:1], 20 * k, *colour[2:]))
                        buf = io.BytesIO()
                        img.save(buf, "PNG")
                        top = "leftImg8bit" if z is zl else "gtFine"
                        z.writestr(f"{top}/{phase}/{city}/{stem}_{suffix}.png", buf.getvalue())
                    zg.writestr(f"gtFine/{phase}/{city}/{stem}_gtFine_labelIds.png", b"not used")
                    k += 1
    return gt, left


def test_prepare_cityscapes_cli(tmp_path, hub_env):
    gt, left = cityscapes_zips(tmp_path)
    out = tmp_path / "cityscapes"
    result = cli("datasets", "prepare-cityscapes", gt, left, "--out", out, "--no-progress", env=cli_env(tmp_path, hub_env))
    assert result.returncode == 0, result.stderr
    for phase, n in (("train", 3), ("test", 2)):
        assert sorted(os.listdir(out / f"{phase}A")) == [f"{i}_A.jpg" for i in range(n)]
        assert sorted(os.listdir(out / f"{phase}B")) == [f"{i}_B.jpg" for i in range(n)]
        assert sorted(os.listdir(out / phase)) == [f"{i}.jpg" for i in range(n)]
        for i in range(n):
            a, b = Image.open(out / f"{phase}A" / f"{i}_A.jpg"), Image.open(out / f"{phase}B" / f"{i}_B.jpg")
            pair = np.asarray(Image.open(out / phase / f"{i}.jpg"), dtype=int)
            assert a.size == b.size == (256, 256) and pair.shape == (256, 512, 3)
            k = i if phase == "train" else 3 + i  # sorted by city, then frame
            assert np.abs(np.asarray(a, dtype=int)[128, 128] - (220, 20 * k, 0)).max() <= 2
            assert np.abs(np.asarray(b, dtype=int)[128, 128] - (0, 20 * k, 220)).max() <= 2
            assert np.abs(pair[:, :256] - np.asarray(a, dtype=int)).max() <= 2  # photo left, labels right
            assert np.abs(pair[:, 256:] - np.asarray(b, dtype=int)).max() <= 2


def test_prepare_cityscapes_from_folders_matches_zips(tmp_path):
    from cyclegan.hub import prepare_cityscapes

    gt, left = cityscapes_zips(tmp_path)
    for z in (gt, left):
        with zipfile.ZipFile(z) as zf:
            zf.extractall(tmp_path / z.stem)
    a = prepare_cityscapes(gt, left, tmp_path / "from_zips", progress=False)
    b = prepare_cityscapes(tmp_path / gt.stem / "gtFine", tmp_path / left.stem, tmp_path / "from_dirs", progress=False)
    files = sorted(p.relative_to(a) for p in a.rglob("*.jpg"))
    assert len(files) == 15 and files == sorted(p.relative_to(b) for p in b.rglob("*.jpg"))
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)

    (tmp_path / left.stem / "leftImg8bit" / "val" / "lindau" / "lindau_000004_000019_leftImg8bit.png").rename(
        tmp_path / left.stem / "leftImg8bit" / "val" / "lindau" / "lindau_000004_000020_leftImg8bit.png"
    )
    with pytest.raises(DataError, match="not the same frame"):
        prepare_cityscapes(gt, tmp_path / left.stem, tmp_path / "bad", progress=False)
    with pytest.raises(DataError, match="already exists and is not empty"):
        prepare_cityscapes(gt, left, a, progress=False)
    assert not (tmp_path / "bad").exists()
