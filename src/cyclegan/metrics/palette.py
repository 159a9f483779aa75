"""Label palettes: class names and colours, and the mapping of RGB label images to class indices.

A label image in the CycleGAN datasets is a colour picture (often a JPEG), not an index mask. Each
pixel goes to the class of the nearest palette colour (Euclidean distance in RGB). A palette with a
`max_distance` leaves the pixels that are farther than that from every colour *unmapped*: index
`palette.unmapped` (= the number of classes). Noisy JPEG labels need it: on facades_128 about a
quarter of the pixels are blends at class boundaries (see the data's SOURCE.md), and nearest-colour
mapping alone would give, e.g., a thin red pillar on blue wall the class "shop". Unmapped pixels
are treated like void classes: ignored where they are the ground truth, wrong where they are
the prediction (see `metrics.segmentation`).

Built in: `CITYSCAPES` (19 training classes + void, no distance limit) and `FACADES` (the 12 CMP
classes, limit 40). Any other palette comes from a file (`Palette.from_file`):

- JSON or YAML (`.json`, `.yaml`, `.yml`): `name`, `classes` (a list of `{name, rgb: [R, G, B]}`,
  with `void: true` for a class that is ignored in the ground truth) and optionally `max_distance`;
- text (any other suffix): one class per line, `name R G B`; a name ending in `*` is void.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from ..names import PALETTES as PALETTE_NAMES


@dataclass(frozen=True)
class Palette:
    """Class names and their RGB colours; classes in `void` are ignored in the ground truth.

    `max_distance`: a pixel farther than this (RGB distance) from every colour is unmapped;
    None maps every pixel to its nearest colour.
    """

    names: tuple[str, ...]
    colours: np.ndarray  # (K, 3) uint8
    void: tuple[str, ...] = ()
    name: str = "custom"
    max_distance: float | None = None

    @property
    def scored(self) -> list[int]:
        """Indices of the classes that are scored (not void)."""
        return [i for i, n in enumerate(self.names) if n not in self.void]

    @property
    def unmapped(self) -> int:
        """The index of pixels that match no colour (farther than `max_distance`): len(names)."""
        return len(self.names)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (the mapping layout of a palette file), e.g. to store beside a network's weights."""
        classes = [{"name": n, "rgb": [int(v) for v in c], **({"void": True} if n in self.void else {})}
                   for n, c in zip(self.names, self.colours)]
        return {"name": self.name, "classes": classes, "max_distance": self.max_distance}

    @classmethod
    def from_dict(cls, data: Any, source: str = "palette") -> Palette:
        """A palette from `to_dict`'s layout; `source` names it in error messages.

        Raises:
            ValueError: a field is missing or malformed, a class is named twice, or none is scored.
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("classes"), list):
            raise ValueError(f"{source}: expected a mapping with `name` and a list `classes` of {{name, rgb}}")
        names, colours, void = [], [], []
        for i, entry in enumerate(data["classes"]):
            rgb = entry.get("rgb") if isinstance(entry, Mapping) else None
            name = entry.get("name") if isinstance(entry, Mapping) else None
            if not isinstance(name, str) or not name or not (
                    isinstance(rgb, list) and len(rgb) == 3
                    and all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 255 for v in rgb)):
                raise ValueError(f"{source}: classes[{i}] must be {{name: TEXT, rgb: [R, G, B]}} with values 0-255, "
                                 f"got {entry!r}")
            names.append(name)
            colours.append(rgb)
            if entry.get("void", False):
                void.append(name)
        limit = data.get("max_distance")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, (int, float)) or limit <= 0):
            raise ValueError(f"{source}: max_distance must be a positive number (RGB distance) or absent, got {limit!r}")
        return cls._checked(names, colours, void, str(data.get("name") or Path(source).stem), limit, source)

    @classmethod
    def from_file(cls, path: str | Path) -> Palette:
        """Read a palette file: JSON or YAML by suffix (see the module docstring), else text lines
        `name R G B` (0-255), `#` starting a comment, a name ending in `*` being void.

        Raises:
            ValueError: the file is missing, unreadable or malformed (the message says where).
        """
        path = Path(path)
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise ValueError(f"cannot read palette file {path}: {getattr(e, 'strerror', None) or e}") from None
        if path.suffix.lower() in (".json", ".yaml", ".yml"):
            try:
                data = json.loads(text) if path.suffix.lower() == ".json" else yaml.safe_load(text)
            except (json.JSONDecodeError, yaml.YAMLError) as e:
                reason = str(e).strip().splitlines()[0]
                raise ValueError(f"palette file {path} is not valid {path.suffix[1:].upper()}: {reason}") from None
            return cls.from_dict(data, str(path))
        names, colours, void = [], [], []
        for number, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.rsplit(maxsplit=3)
            try:
                rgb = [int(v) for v in parts[1:]]
                if len(parts) != 4 or not all(0 <= v <= 255 for v in rgb):
                    raise ValueError
            except ValueError:
                raise ValueError(f"{path}, line {number}: expected `name R G B` with values 0-255, got {line!r}") from None
            name = parts[0]
            if name.endswith("*"):
                name = name[:-1]
                void.append(name)
            names.append(name)
            colours.append(rgb)
        return cls._checked(names, colours, void, path.stem, None, str(path))

    @classmethod
    def _checked(cls, names: list[str], colours: list[list[int]], void: list[str], name: str,
                 max_distance: float | None, source: str) -> Palette:
        if len(names) - len(void) < 1:
            raise ValueError(f"{source} defines no scored class; give at least one class that is not void")
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise ValueError(f"{source} names a class twice: {', '.join(twice)}")
        return cls(tuple(names), np.array(colours, dtype=np.uint8).reshape(-1, 3), tuple(void), name, max_distance)


# The 19 Cityscapes training classes with their official colours (cityscapesScripts `labels.py`),
# plus `void` (black) for every pixel the benchmark ignores.
CITYSCAPES = Palette(
    names=("road", "sidewalk", "building", "wall", "fence", "pole", "traffic light", "traffic sign",
           "vegetation", "terrain", "sky", "person", "rider", "car", "truck", "bus", "train", "motorcycle",
           "bicycle", "void"),
    colours=np.array([
        (128, 64, 128), (244, 35, 232), (70, 70, 70), (102, 102, 156), (190, 153, 153), (153, 153, 153),
        (250, 170, 30), (220, 220, 0), (107, 142, 35), (152, 251, 152), (70, 130, 180), (220, 20, 60),
        (255, 0, 0), (0, 0, 142), (0, 0, 70), (0, 60, 100), (0, 80, 100), (0, 0, 230), (119, 11, 32),
        (0, 0, 0),
    ], dtype=np.uint8),
    void=("void",),
    name="cityscapes",
)

# The 12 CMP Facades classes (index order 1..12 of the CMP database) with the "source nominal" colours
# of facades_128's SOURCE.md (the mode inside uniform areas of the 256 px pix2pix label JPEGs). Pixels
# more than 40 from every colour are unmapped: the JPEG blends at class boundaries (SOURCE.md's
# "share" column counts the pixels within 40 of each colour). The closest two colours, background
# and facade, are 58 apart, so every mapped pixel is nearer to its own colour than half-way to another's.
FACADES = Palette(
    names=("background", "facade", "window", "door", "cornice", "sill", "balcony", "blind", "deco", "molding",
           "pillar", "shop"),
    colours=np.array([
        (0, 0, 222), (0, 48, 255), (0, 128, 255), (0, 207, 255), (32, 255, 224), (112, 254, 142),
        (192, 255, 63), (255, 240, 0), (255, 159, 0), (255, 80, 0), (255, 0, 0), (174, 0, 0),
    ], dtype=np.uint8),
    name="facades",
    max_distance=40.0,
)

PALETTES = {"cityscapes": CITYSCAPES, "facades": FACADES}
assert tuple(PALETTES) == PALETTE_NAMES  # the CLI offers names.PALETTES without importing numpy


def palette_by_name(spec: str | Path | Palette) -> Palette:
    """A built-in palette by name (`cityscapes`, `facades`), or a palette file's.

    Raises:
        ValueError: neither a built-in name nor a readable, well-formed palette file.
    """
    if isinstance(spec, Palette):
        return spec
    if str(spec) in PALETTES:
        return PALETTES[str(spec)]
    if not Path(spec).is_file():
        raise ValueError(f"palette {str(spec)!r} is neither built in ({', '.join(PALETTES)}) nor an existing "
                         "palette file (.json, .yaml or `name R G B` lines)")
    return Palette.from_file(spec)


def colours_to_labels(image: np.ndarray, palette: Palette) -> np.ndarray:
    """(H, W) int64 class indices of the nearest palette colour (Euclidean in RGB) to each pixel of an
    (H, W, 3) uint8 image; `palette.unmapped` where it is farther than `palette.max_distance`."""
    flat = np.asarray(image, dtype=np.int32).reshape(-1, 3)
    colours = palette.colours.astype(np.int32)
    # Distances through the unique colours: a label image has few, so this stays small.
    unique, inverse = np.unique(flat, axis=0, return_inverse=True)
    distance = ((unique[:, None, :] - colours[None]) ** 2).sum(-1)  # (U, K) squared
    nearest = distance.argmin(1)
    if palette.max_distance is not None:
        nearest[distance.min(1) > palette.max_distance**2] = palette.unmapped
    return nearest[inverse.reshape(-1)].reshape(image.shape[:2]).astype(np.int64)
