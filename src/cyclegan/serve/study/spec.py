"""A perceptual study's definition (a YAML file) and each participant's sequence of trials.

```yaml
name: maps -> aerial photos         # shown to participants
real: data/maps/testB               # folder of real images (relative to this file)
methods:                            # name -> folder of generated images
  cyclegan: results/cyclegan/fake_B
  simgan: results/simgan/fake_B
practice_trials: 10                 # with feedback, not scored
scored_trials: 40                   # without feedback
display_seconds: 1.0                # how long both images are shown
seed: 0                             # with the participant number, fixes each participant's trials
pair_by_name: false                 # true: show each fake beside the real image of the same name
database: study.sqlite              # answers (default: this file's name with .sqlite)
```

Each trial pairs one generated image with one real image, in random left/right order. Methods take
turns (shuffled; balanced within each block); images are drawn without replacement and start
again once a folder is used up.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, fields
from pathlib import Path

import yaml

from ...data.image_io import find_images, pair_key

SIDES = ("left", "right")


@dataclass(frozen=True)
class StudySpec:
    """A study: real images, generated images per method, and the protocol's numbers."""

    real: Path
    methods: dict[str, Path]
    name: str = "Real or fake?"
    practice_trials: int = 5
    scored_trials: int = 20
    display_seconds: float = 1.0
    seed: int = 0
    pair_by_name: bool = False
    database: Path | None = None
    _images: dict = field(default_factory=dict, compare=False, repr=False)  # folder -> sorted relative names

    def images(self, folder: Path) -> list[str]:
        if folder not in self._images:
            self._images[folder] = [p.relative_to(folder).as_posix() for p in find_images(folder)]
        return self._images[folder]

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        d["real"], d["database"] = str(self.real), str(self.database)
        d["methods"] = {k: str(v) for k, v in self.methods.items()}
        return d


@dataclass(frozen=True)
class Trial:
    """One trial: the generated image `fake` of `method` beside the real image `real` (paths relative
    to their folders); `fake_side` is where the fake is shown."""

    index: int
    practice: bool
    method: str
    fake: str
    real: str
    fake_side: str


def load_study(path: str | Path) -> StudySpec:
    """Read and check a study file; folders are relative to the file.

    Raises:
        ValueError: unknown keys, missing or empty folders, impossible numbers.
    """
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"study file {path} does not exist") from None
    except yaml.YAMLError as e:
        raise ValueError(f"study file {path} is not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"study file {path} must be a mapping with at least 'real' and 'methods'")
    valid = [f.name for f in fields(StudySpec) if not f.name.startswith("_")]
    unknown = sorted(set(raw) - set(valid))
    if unknown:
        raise ValueError(f"study file {path}: unknown key(s) {', '.join(unknown)}; valid keys: {', '.join(valid)}")
    for key in ("real", "methods"):
        if key not in raw:
            raise ValueError(f"study file {path}: '{key}' is required")
    base = path.resolve().parent
    methods = raw["methods"]
    if not isinstance(methods, dict) or not methods:
        raise ValueError(f"study file {path}: 'methods' must map method names to folders of generated images")
    spec = StudySpec(
        real=base / str(raw["real"]),
        methods={str(k): base / str(v) for k, v in methods.items()},
        name=str(raw.get("name", StudySpec.name)),
        practice_trials=_int(raw, "practice_trials", StudySpec.practice_trials, 0),
        scored_trials=_int(raw, "scored_trials", StudySpec.scored_trials, 1),
        display_seconds=float(raw.get("display_seconds", StudySpec.display_seconds)),
        seed=_int(raw, "seed", 0, None),
        pair_by_name=bool(raw.get("pair_by_name", False)),
        database=base / str(raw.get("database", path.with_suffix(".sqlite").name)),
    )
    if not 0 < spec.display_seconds <= 60:
        raise ValueError(f"study file {path}: display_seconds must be in (0, 60], got {spec.display_seconds}")
    for folder in (spec.real, *spec.methods.values()):
        spec.images(folder)  # raises DataError (a ValueError) naming a missing or empty folder
    if spec.pair_by_name:
        for method, folder in spec.methods.items():
            if not _pairs(spec, folder):
                raise ValueError(f"study file {path}: pair_by_name is set but no image of {method} ({folder}) has "
                                 f"a real image of the same name in {spec.real}")
    return spec


def _int(raw: dict, key: str, default: int, minimum: int | None) -> int:
    value = raw.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or (minimum is not None and value < minimum):
        raise ValueError(f"study '{key}' must be an integer{f' >= {minimum}' if minimum is not None else ''}, "
                         f"got {value!r}")
    return value


def _pairs(spec: StudySpec, folder: Path) -> dict[str, str]:
    """fake relative name -> real relative name, for fakes that pair with a real image (`pair_key`)."""
    real = {pair_key(spec.real / r, spec.real): r for r in spec.images(spec.real)}
    return {f: real[n] for f in spec.images(folder) if (n := pair_key(folder / f, folder)) in real}


def plan_trials(spec: StudySpec, participant: int) -> list[Trial]:
    """The practice then scored trials of participant number `participant` (deterministic)."""
    rng = random.Random(f"{spec.seed}/{participant}")
    methods = list(spec.methods)
    draws = {m: _Deck(list(_pairs(spec, f)) if spec.pair_by_name else spec.images(f), rng)
             for m, f in spec.methods.items()}
    pairs = {m: _pairs(spec, f) for m, f in spec.methods.items()} if spec.pair_by_name else {}
    reals = _Deck(spec.images(spec.real), rng)
    trials = []
    for practice, count in ((True, spec.practice_trials), (False, spec.scored_trials)):
        order = [methods[i % len(methods)] for i in range(count)]
        rng.shuffle(order)
        for method in order:
            fake = draws[method].draw()
            real = pairs[method][fake] if spec.pair_by_name else reals.draw()
            trials.append(Trial(len(trials), practice, method, fake, real, rng.choice(SIDES)))
    return trials


class _Deck:
    """Draws without replacement; reshuffles when empty."""

    def __init__(self, items: list[str], rng: random.Random) -> None:
        self.items, self.rng, self.left = items, rng, []

    def draw(self) -> str:
        if not self.left:
            self.left = list(self.items)
            self.rng.shuffle(self.left)
        return self.left.pop()

