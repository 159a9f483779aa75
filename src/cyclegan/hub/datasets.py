"""The official CycleGAN datasets: download a zip, extract it safely, check the layout.

As `datasets/download_cyclegan_dataset.sh` of pytorch-CycleGAN-and-pix2pix: each zip holds a top
folder `<name>/` with trainA, trainB, testA and testB (ae_photos, Alexei Efros's test photos, is a
test-only set: at least one of those folders is required there). Extraction refuses any member that
would land outside the target (absolute paths, `..`, drive letters) and symlink members, writes into
a temporary folder beside the target, checks the layout there and only then renames it into place.
Cityscapes cannot be redistributed: see `prepare_cityscapes` (in `cityscapes.py`).
"""

from __future__ import annotations

import contextlib
import difflib
import logging
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..data.files import DataError, is_image_file
from ..weights.download import DownloadError, cache_dir, download, join_url, looks_like_html

log = logging.getLogger(__name__)

DEFAULT_URL = "http://efrosgans.eecs.berkeley.edu/cyclegan/datasets"
ENV_URL = "CYCLEGAN_DATASETS_URL"
FOLDERS = ("trainA", "trainB", "testA", "testB")
CITYSCAPES_HELP = (
    "cityscapes cannot be downloaded automatically (its license requires registration): register at "
    "https://www.cityscapes-dataset.com, download gtFine_trainvaltest.zip and leftImg8bit_trainvaltest.zip, "
    "then run: cyclegan datasets prepare-cityscapes gtFine_trainvaltest.zip leftImg8bit_trainvaltest.zip "
    "--out datasets/cityscapes"
)
_JUNK = re.compile(r"(^|/)(__MACOSX/|\.DS_Store$)")  # macOS zip debris, skipped


@dataclass(frozen=True)
class DatasetInfo:
    """One official dataset: its zip name, what it holds, and the folders it must have."""

    name: str
    description: str
    complete: bool = True  # False: a partial set (at least one of FOLDERS is enough)


DATASETS: dict[str, DatasetInfo] = {
    d.name: d
    for d in (
        DatasetInfo("ae_photos", "test photos by Alexei Efros (for the style_* models); test only", complete=False),
        DatasetInfo("apple2orange", "996 apple / 1020 orange ImageNet photos"),
        DatasetInfo("summer2winter_yosemite", "1273 summer / 854 winter Yosemite photos (Flickr)"),
        DatasetInfo("horse2zebra", "939 horse / 1177 zebra ImageNet photos"),
        DatasetInfo("monet2photo", "1074 Monet paintings / 6853 landscape photos"),
        DatasetInfo("cezanne2photo", "584 Cezanne paintings / 6853 landscape photos"),
        DatasetInfo("ukiyoe2photo", "1433 Ukiyo-e prints / 6853 landscape photos"),
        DatasetInfo("vangogh2photo", "401 Van Gogh paintings / 6853 landscape photos"),
        DatasetInfo("maps", "1096 aerial photo / Google Maps tile pairs, used unpaired"),
        DatasetInfo("facades", "400 CMP Facades photos / label maps"),
        DatasetInfo("iphone2dslr_flower", "1813 iPhone / 3316 DSLR flower photos (Flickr)"),
    )
}
NOT_DOWNLOADABLE = {"cityscapes": CITYSCAPES_HELP}


def dataset_url(name: str) -> str:
    """Where `name` is downloaded from: `$CYCLEGAN_DATASETS_URL/<name>.zip`, else the official server."""
    return join_url(os.environ.get(ENV_URL) or DEFAULT_URL, f"{get_dataset(name).name}.zip")


def layout_problems(folder: str | Path, *, complete: bool = True) -> list[str]:
    """What a dataset folder lacks: [] if trainA, trainB, testA, testB (or, if not `complete`, at
    least one of them) exist and hold images; else phrases such as "trainB is missing"."""
    folder = Path(folder)
    problems = []
    for sub in FOLDERS:
        d = folder / sub
        if not d.is_dir():
            problems.append(f"{sub} is missing")
        elif not any(is_image_file(p) for p in d.rglob("*")):
            problems.append(f"{sub} has no images")
    if not complete and len(problems) < len(FOLDERS):
        return []
    return problems


def is_present(name: str, root: str | Path) -> bool:
    """Whether dataset `name` is under `root` (as ROOT/NAME) with its folders holding images."""
    folder = Path(root) / name
    return folder.is_dir() and not layout_problems(folder, complete=get_dataset(name).complete)


def download_dataset(
    name: str, root: str | Path = Path("datasets"), *, force: bool = False, keep_zip: bool = False, progress: bool = True
) -> Path:
    """`root/<name>` with the official layout, downloaded and extracted unless already complete.

    The zip is downloaded into `cache_dir()/datasets/` and deleted after extraction unless
    `keep_zip` (a kept zip is reused by the next call). `force` downloads and extracts again.

    Raises:
        ValueError: unknown name, or cityscapes (the message says how to prepare it).
        DataError: `root/<name>` exists but is incomplete (and not `force`), or the zip lacks folders.
        DownloadError: the download failed or the file is not a zip archive.
    """
    info = get_dataset(name)
    target = Path(root) / info.name
    if target.exists() and not force:
        problems = layout_problems(target, complete=info.complete)
        if not problems:
            return target
        raise DataError(
            f"{target} exists but is incomplete ({'; '.join(problems)}); remove it, or pass --force (force=True) "
            "to download it again"
        )
    url = dataset_url(name)
    archive = cache_dir() / "datasets" / f"{info.name}.zip"
    if force or not archive.is_file() or not zipfile.is_zipfile(archive):
        download(url, archive, check=lambda p: _check_zip(p, url), progress=progress, mirror_env=ENV_URL)
    try:
        extract_dataset(archive, target, top=info.name, complete=info.complete, source=url)
    finally:
        if not keep_zip:
            archive.unlink(missing_ok=True)
    return target


def extract_dataset(
    archive: str | Path, target: str | Path, *, top: str | None = None, complete: bool = True, source: str | None = None
) -> Path:
    """Extract a dataset zip safely into `target` (replacing it atomically) and check its layout.

    Args:
        top: the zip's top folder (e.g. "horse2zebra"), whose content is extracted; if absent, a
            single top folder of another name is used, else the zip's root.
        complete: require all of trainA/trainB/testA/testB (else at least one).
        source: the name of the archive in error messages (default: its path).

    Raises:
        DataError: a member is unsafe (escapes the target, is a link) or the layout is incomplete;
            nothing is written to `target` then.
    """
    archive, target = Path(archive), Path(target)
    source = source or str(archive)
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as zf:
        members = [(info, _safe_member(info, source)) for info in zf.infolist() if not _JUNK.search(info.filename)]
        members = [(info, parts) for info, parts in members if parts]
        tops = {parts[0] for _, parts in members if len(parts) > 1}
        prefix = top if top in tops else next(iter(tops)) if len(tops) == 1 and not tops & set(FOLDERS) else None
        if prefix:  # extract `<name>/...` as the target's content; stray files beside it are skipped
            members = [(info, parts[1:]) for info, parts in members if parts[0] == prefix and len(parts) > 1]
        _check_space(target.parent, sum(info.file_size for info, _ in members), source)
        with staged_folder(target) as tmp:
            root = tmp.resolve()
            for info, parts in members:
                out = tmp.joinpath(*parts)
                if not out.resolve().is_relative_to(root):  # belt and braces after _safe_member
                    raise DataError(f"refusing to extract {source}: member {info.filename!r} escapes the target folder")
                if info.is_dir():
                    out.mkdir(parents=True, exist_ok=True)
                    continue
                out.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as fin, open(out, "wb") as fout:
                    shutil.copyfileobj(fin, fout, 1 << 20)
            problems = layout_problems(tmp, complete=complete)
            if problems:
                raise DataError(
                    f"{source} does not hold a CycleGAN dataset ({'; '.join(problems)}): expected "
                    f"{top + '/' if top else ''}trainA, trainB, testA, testB with images; check the archive or mirror"
                )
    return target


def get_dataset(name: str) -> DatasetInfo:
    """The table entry for `name`; ValueError with instructions for cityscapes, or listing the valid names."""
    if name in DATASETS:
        return DATASETS[name]
    if name in NOT_DOWNLOADABLE:
        raise ValueError(NOT_DOWNLOADABLE[name])
    close = difflib.get_close_matches(name, [*DATASETS, *NOT_DOWNLOADABLE], n=3)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    raise ValueError(f"unknown dataset {name!r}; {hint}choose one of: {', '.join(DATASETS)} (cityscapes: see its help)")


def _safe_member(info: zipfile.ZipInfo, source: str) -> tuple[str, ...]:
    """The path parts of a zip member, or DataError if it could be written outside the target."""
    name = info.filename.replace("\\", "/")  # Windows tools write backslashes; treat them as separators
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise DataError(f"refusing to extract {source}: member {info.filename!r} is a symbolic link")
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        raise DataError(f"refusing to extract {source}: member {info.filename!r} has an absolute path")
    parts = tuple(p for p in PurePosixPath(name).parts if p not in ("", "."))
    if ".." in parts:
        raise DataError(f"refusing to extract {source}: member {info.filename!r} points outside the target folder")
    return parts


def _check_zip(path: Path, url: str) -> None:
    if not zipfile.is_zipfile(path):
        what = "an HTML page (an error or login page?)" if looks_like_html(path) else "not a zip archive"
        raise DownloadError(f"{url} is {what}; check the name or set {ENV_URL} to a working mirror")


def _check_space(folder: Path, needed: int, source: str) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise DataError(
            f"extracting {source} needs {needed / 2**30:.1f} GiB but {folder} has {free / 2**30:.1f} GiB free; "
            "free some space or extract elsewhere (`cyclegan datasets download --out`)"
        )


@contextlib.contextmanager
def staged_folder(target: Path) -> Iterator[Path]:
    """Build a folder in a temporary folder beside `target`, then swap it in for `target`.

    On success an existing `target` is moved aside and deleted after the rename; on any error the
    temporary folder is removed and `target` is left as it was.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if not target.exists():
        os.replace(tmp, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.replace(target, old / target.name)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
