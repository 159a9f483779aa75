"""Cityscapes for CycleGAN and pix2pix, prepared from the two official archives.

Cityscapes may not be redistributed, so the official repository ships
`datasets/prepare_cityscapes_dataset.py` instead of a zip; this is the same procedure. For the
phases train -> train and val -> test, the colour label maps `gtFine/<phase>/<city>/*_color.png`
are paired (sorted) with the photos `leftImg8bit/<phase>/<city>/*_leftImg8bit.png`, checking that
each pair has the same `<city>_<seq>_<frame>` prefix; both are converted to RGB and resized to
256x256 with PIL's bicubic filter, and written as JPEG (quality 100, no chroma subsampling):
    <phase>A/<i>_A.jpg   the photo          (CycleGAN domain A)
    <phase>B/<i>_B.jpg   the colour labels  (CycleGAN domain B)
    <phase>/<i>.jpg      photo | labels, 512x256 side by side (pix2pix)
Either input may be the downloaded zip (read member by member, not extracted) or an extracted folder.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from ..data.image_io import DataError
from .datasets import staged_folder

PHASES = {"train": "train", "val": "test"}  # Cityscapes phase -> output phase; its test labels are withheld
SIZE = 256
_LABEL = re.compile(r"(?:(.*)/)?(train|val)/([^/]+)/([^/]*_color\.png)")
_PHOTO = re.compile(r"(?:(.*)/)?(train|val)/([^/]+)/([^/]*_leftImg8bit\.png)")


class _Source:
    """The files of a folder or a zip archive, by relative POSIX path."""

    def __init__(self, path: Path, zf: zipfile.ZipFile | None) -> None:
        self.path, self.zf = path, zf

    def names(self) -> list[str]:
        if self.zf is not None:
            return [n for n in self.zf.namelist() if not n.endswith("/")]
        return [p.relative_to(self.path).as_posix() for p in self.path.rglob("*.png")]

    def read(self, name: str) -> bytes:
        return self.zf.read(name) if self.zf is not None else (self.path / name).read_bytes()


@contextmanager
def _open_source(path: str | Path, what: str) -> Iterator[_Source]:
    path = Path(path)
    if path.is_dir():
        yield _Source(path, None)
    elif path.is_file() and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            yield _Source(path, zf)
    else:
        raise DataError(f"{path} is neither a folder nor a zip archive; give the {what} zip or its extracted folder")


def _find(source: _Source, pattern: re.Pattern, what: str) -> dict[str, list[str]]:
    """{phase: sorted member names} of the files matching `pattern`, all under one root."""
    found: dict[str, list[str]] = {phase: [] for phase in PHASES}
    roots = set()
    for name in source.names():
        if m := pattern.fullmatch(name):
            roots.add(m.group(1) or "")
            found[m.group(2)].append(name)
    if not roots:
        raise DataError(f"{source.path} holds no {what} files under train/<city>/ or val/<city>/; give the right zip or folder")
    if len(roots) > 1:
        raise DataError(f"{source.path} holds several {what} trees ({', '.join(sorted(roots))}); give just one")
    return {phase: sorted(names) for phase, names in found.items()}


def _frame_id(name: str, suffix: str) -> str:
    return name.rsplit("/", 1)[-1].replace(suffix, "")


def _load(data: bytes) -> Image.Image:
    # As the official `Image.open(p).convert('RGB').resize((256, 256))`, whose default is bicubic.
    return Image.open(io.BytesIO(data)).convert("RGB").resize((SIZE, SIZE), Image.BICUBIC)


def _save(img: Image.Image, path: Path) -> None:
    img.save(path, format="JPEG", quality=100, subsampling=0)


def prepare_cityscapes(gtfine: str | Path, leftimg8bit: str | Path, out: str | Path, *, progress: bool = True) -> Path:
    """Write the CycleGAN (trainA/B, testA/B) and pix2pix (train, test) Cityscapes sets into `out`.

    Args:
        gtfine: gtFine_trainvaltest.zip or its extracted folder (the one holding train/ and val/,
            or a folder above it).
        leftimg8bit: leftImg8bit_trainvaltest.zip or its extracted folder.
        out: the output folder; it must not exist or be empty. It is written beside, then renamed
            into place, so an interrupted run leaves nothing half-done at `out`.

    Raises:
        DataError: an input is missing or not Cityscapes, the label and photo lists do not pair up,
            or `out` already holds files.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out} already exists and is not empty; remove it or choose another --out")
    with _open_source(gtfine, "gtFine_trainvaltest") as labels, _open_source(leftimg8bit, "leftImg8bit_trainvaltest") as photos:
        label_files = _find(labels, _LABEL, "gtFine *_color.png")
        photo_files = _find(photos, _PHOTO, "leftImg8bit *_leftImg8bit.png")
        pairs = {phase: _pair(label_files[phase], photo_files[phase], phase) for phase in PHASES}
        if not any(pairs.values()):
            raise DataError(f"no train or val images in {gtfine} and {leftimg8bit}; give the trainvaltest archives")
        with staged_folder(out) as tmp:  # replaces `out` only if empty (checked above)
            for phase, phase_pairs in pairs.items():
                _write_phase(labels, photos, phase_pairs, tmp, PHASES[phase], progress=progress)
    return out


def _pair(label_files: list[str], photo_files: list[str], phase: str) -> list[tuple[str, str]]:
    if len(label_files) != len(photo_files):
        raise DataError(
            f"{len(label_files)} {phase} label maps (*_color.png) but {len(photo_files)} {phase} photos "
            "(*_leftImg8bit.png): give matching gtFine and leftImg8bit trainvaltest archives"
        )
    for label, photo in zip(label_files, photo_files):
        if _frame_id(label, "_gtFine_color.png") != _frame_id(photo, "_leftImg8bit.png"):
            raise DataError(f"{label} and {photo} are not the same frame: the gtFine and leftImg8bit sets do not match")
    return list(zip(label_files, photo_files))


def _write_phase(
    labels: _Source, photos: _Source, pairs: list[tuple[str, str]], out: Path, phase: str, *, progress: bool
) -> None:
    for sub in (phase, f"{phase}A", f"{phase}B"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    for i, (label_name, photo_name) in enumerate(tqdm(pairs, desc=f"cityscapes {phase}", unit="img", disable=not progress)):
        label, photo = _load(labels.read(label_name)), _load(photos.read(photo_name))
        side_by_side = Image.new("RGB", (2 * SIZE, SIZE))
        side_by_side.paste(photo, (0, 0))
        side_by_side.paste(label, (SIZE, 0))
        _save(side_by_side, out / phase / f"{i}.jpg")
        _save(photo, out / f"{phase}A" / f"{i}_A.jpg")
        _save(label, out / f"{phase}B" / f"{i}_B.jpg")
