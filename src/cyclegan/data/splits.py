"""Evaluation splits: which images of a data root a run is scored on.

- `test`: `testA` / `testB`, what papers report;
- `val`: `valA` / `valB`, or, with `eval.holdout = N`, N images per domain held out of `trainA` /
  `trainB` (never trained on), drawn from the run's seed and recorded in the run dir
  (`holdout.json`), so a resume and a later `evaluate run --split val` use the same images.

A run keeps `best.pt` by its scores on the validation split only: the best test score seen during
training is an optimistic estimate of the test score (the checkpoint was picked on the test set).
On a paired dataset the held-out images are pairs (the same names in both domains), so paired
metrics can pick the checkpoint.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from cyclegan.atomic import atomic_write_text
from cyclegan.config import Config
from cyclegan.data.image_io import DataError, find_images, pair_key

SPLITS = ("test", "val")
HOLDOUT_FILE = "holdout.json"


@dataclass(frozen=True)
class Split:
    """Images to score, per domain a folder and the names (paths relative to it, sorted) to use."""

    name: str  # "test", "val" (valA/valB folders) or "holdout" (held out of trainA/trainB)
    dir_a: Path
    dir_b: Path
    names_a: tuple[str, ...]
    names_b: tuple[str, ...]

    @classmethod
    def of_folders(cls, name: str, dir_a: str | Path, dir_b: str | Path) -> Split:
        """Every image of two folders (a DataError if one is missing)."""
        dir_a, dir_b = Path(dir_a), Path(dir_b)
        return cls(name, dir_a, dir_b, _names(dir_a), _names(dir_b))

    @property
    def files_a(self) -> list[Path]:
        return [self.dir_a / n for n in self.names_a]

    @property
    def files_b(self) -> list[Path]:
        return [self.dir_b / n for n in self.names_b]

    @property
    def paired(self) -> bool:
        """Whether some image of A shares its pair key with one of B."""
        keys_a = {pair_key(p, self.dir_a) for p in self.files_a}
        return any(pair_key(p, self.dir_b) in keys_a for p in self.files_b)

    @property
    def is_validation(self) -> bool:
        return self.name != "test"

    def describe(self) -> str:
        where = f"{self.dir_a} / {self.dir_b}"
        if self.name == "holdout":
            return f"{len(self.names_a)} + {len(self.names_b)} images held out of {where}"
        return f"{where} ({len(self.names_a)} + {len(self.names_b)} images)"


def _names(folder: Path) -> tuple[str, ...]:
    return tuple(p.relative_to(folder).as_posix() for p in find_images(folder))


def folder_split(root: str | Path, name: str) -> Split:
    """`root/{name}A` and `root/{name}B` with all their images, or a DataError saying what is missing."""
    root = Path(root)
    dirs = root / f"{name}A", root / f"{name}B"
    missing = [d.name for d in dirs if not d.is_dir()]
    if missing:
        raise DataError(f"{root} has no {' or '.join(missing)} folder; evaluation on the {name} split needs "
                        f"{name}A/{name}B (or set eval.data to a folder that has them)")
    return Split.of_folders(name, *dirs)


def choose_holdout(root: str | Path, n: int, seed: int) -> Split:
    """`n` images per domain of `root/trainA` and `root/trainB`, drawn with `seed`: pairs (images of
    one pair key in both folders) when the folders hold at least `n` of them, else independently.

    Raises:
        DataError: a folder is missing, or it would keep fewer than one training image.
    """
    root = Path(root)
    dirs = root / "trainA", root / "trainB"
    for d in dirs:
        if not d.is_dir():
            raise DataError(f"eval.holdout holds images out of {d.name}, and {root} has no {d.name} folder "
                            "(a side-by-side A|B layout cannot be held out of: give valA/valB folders)")
    files = [find_images(d) for d in dirs]
    for d, fs in zip(dirs, files):
        if len(fs) <= n:
            raise DataError(f"eval.holdout={n} would hold out every image of {d} ({len(fs)}); use a smaller "
                            "eval.holdout")
    rng = random.Random(f"cyclegan/holdout/{seed}")
    keyed = [{pair_key(p, d): p for p in fs} for d, fs in zip(dirs, files)]
    counts = [Counter(pair_key(p, d) for p in fs) for d, fs in zip(dirs, files)]
    shared = sorted(k for k in keyed[0] if k in keyed[1] and counts[0][k] == counts[1][k] == 1)
    if len(shared) >= n:
        keys = rng.sample(shared, n)
        chosen = [[k_to_file[k] for k in keys] for k_to_file in keyed]
    else:
        chosen = [rng.sample(fs, n) for fs in files]
    names = [tuple(sorted(p.relative_to(d).as_posix() for p in ps)) for d, ps in zip(dirs, chosen)]
    return Split("holdout", dirs[0], dirs[1], names[0], names[1])


def save_holdout(run_dir: str | Path, split: Split, seed: int) -> None:
    """Record the held-out names in `run_dir/holdout.json` (relative to trainA / trainB)."""
    record = {"seed": seed, "n": len(split.names_a), "a": list(split.names_a), "b": list(split.names_b)}
    atomic_write_text(Path(run_dir) / HOLDOUT_FILE, json.dumps(record, indent=1) + "\n")


def load_holdout(run_dir: str | Path, root: str | Path) -> Split | None:
    """The held-out images recorded in `run_dir` (under `root/trainA`, `root/trainB`), None if none
    are recorded.

    Raises:
        DataError: the record is unreadable or names images that are gone.
    """
    path = Path(run_dir) / HOLDOUT_FILE
    if not path.exists():
        return None
    try:
        record = json.loads(path.read_text())
        names = tuple(map(str, record["a"])), tuple(map(str, record["b"]))
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"{path} is not a holdout record ({e}); restore it, or remove it to draw the held-out "
                        "images again from the run's seed") from None
    root = Path(root)
    split = Split("holdout", root / "trainA", root / "trainB", *names)
    gone = [p for p in (*split.files_a, *split.files_b) if not p.is_file()]
    if gone:
        raise DataError(f"{len(gone)} held-out images recorded in {path} are gone (e.g. {gone[0]}); the "
                        "validation split of this run cannot be rebuilt")
    return split


def holdout_of(cfg: Config, root: str | Path, run_dir: str | Path | None) -> Split | None:
    """The run's held-out images: recorded in `run_dir`, else drawn from `cfg.train.seed`; None
    when `cfg.eval.holdout` is 0."""
    if not cfg.eval.holdout:
        return None
    recorded = load_holdout(run_dir, root) if run_dir is not None else None
    return recorded or choose_holdout(root, cfg.eval.holdout, cfg.train.seed)


def evaluation_split(name: str, cfg: Config, root: str | Path, run_dir: str | Path | None = None) -> Split:
    """The split `name` ("test" or "val") of a run of `cfg` on the data root `root` (`eval.data`
    when set): val is the held-out images with `eval.holdout`, else `valA` / `valB`.

    Raises:
        DataError: the split's images are missing (the message says how to get a validation split).
    """
    if name not in SPLITS:
        raise ValueError(f"unknown split {name!r}; choose one of: {', '.join(SPLITS)}")
    eval_root = Path(cfg.eval.data or root)
    if name == "test":
        return folder_split(eval_root, "test")
    held_out = holdout_of(cfg, root, run_dir)
    if held_out is not None:
        return held_out
    if (eval_root / "valA").is_dir() and (eval_root / "valB").is_dir():
        return folder_split(eval_root, "val")
    raise DataError(
        f"{eval_root} has no validation split (valA/valB) to pick the best checkpoint on: hold images out of "
        "training with eval.holdout=N (e.g. 50 per domain), add valA/valB folders, or evaluate on the test split "
        "with eval.split=test (scores are logged, no best.pt is kept)"
    )
