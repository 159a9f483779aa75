"""Procedural paired "aerial photo <-> map tile" dataset, so ``cyclegan demo`` runs offline.

It mimics the *maps* dataset of pix2pix/CycleGAN: Google Maps satellite imagery (domain A) and the
Google Maps rendering of the same place (domain B). A seed fixes a random town — a jittered and
possibly rotated road grid with main roads and side streets, the odd diagonal or curved road,
blocks of buildings, parks or bare land, and a river, lake or coast. Both domains are rendered from
one label raster drawn on a supersampled canvas: the map flat-colours it, the aerial photo textures
it (asphalt, roofs with shadows, tree crowns, water, ground), so aerial -> map is learnable.

Geometry is drawn in tile units ([0, 1]²) before any size-dependent draw, so a seed gives the same
town at every resolution. Only numpy and Pillow; all randomness comes from ``default_rng(seed)``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ..atomic import atomic_write_text

__all__ = [
    "MAP_PALETTE", "CityLayout", "Label", "generate_layout", "render_aerial",
    "render_city", "render_map", "write_city_dataset",
]


class Label(IntEnum):
    """Semantic classes of the layout raster; later classes are painted over earlier ones."""

    LAND = 0
    BUILDING = 1
    PARK = 2
    WATER = 3
    CURB = 4  # road casing: the grey outline on the map, kerb and pavement in the photo
    STREET = 5
    MAIN_ROAD = 6


MAP_PALETTE: dict[Label, tuple[int, int, int]] = {
    Label.LAND: (232, 229, 222),
    Label.BUILDING: (215, 212, 205),
    Label.PARK: (200, 230, 190),
    Label.WATER: (170, 200, 245),
    Label.CURB: (196, 192, 184),
    Label.STREET: (255, 255, 255),
    Label.MAIN_ROAD: (253, 226, 147),
}

# Bump whenever rendering changes, so cached datasets on disk are regenerated.
GENERATOR_VERSION = 1

_REACH = 0.75  # the grid covers [-R, R]² around the tile centre: enough for any rotation
_CURB = 0.006  # casing width on each side of a road, tile units
_DISTRICTS: dict[str, dict] = {
    # spacing: block edge lengths; modes: block content probabilities (rows, big, houses, park,
    # land); height: shadow length range; drop: chance a side-street segment is missing.
    "downtown": dict(spacing=(0.13, 0.24), modes=(0.5, 0.3, 0.0, 0.1, 0.1),
                     height=(0.012, 0.04), drop=0.05, lot=(0.04, 0.09), trees=0.03),
    "residential": dict(spacing=(0.16, 0.3), modes=(0.2, 0.05, 0.5, 0.12, 0.13),
                        height=(0.005, 0.012), drop=0.1, lot=(0.035, 0.055), trees=0.12),
    "suburb": dict(spacing=(0.22, 0.4), modes=(0.05, 0.05, 0.45, 0.15, 0.3),
                   height=(0.004, 0.01), drop=0.2, lot=(0.04, 0.06), trees=0.25),
}


@dataclass(frozen=True)
class CityLayout:
    """The geometry shared by both renderings.

    ``labels`` is the (size * supersample)² uint8 raster of :class:`Label` values; the renderers
    downsample it to ``size``. Buildings are ``footprints`` (n, 4, 2) in tile units, with shadow
    lengths ``heights`` (n,) in tile units and whether each has a gabled roof, ``pitched`` (n,).
    """

    labels: np.ndarray
    footprints: np.ndarray
    heights: np.ndarray
    pitched: np.ndarray
    district: str
    size: int
    supersample: int

    def coarse_labels(self) -> tuple[np.ndarray, np.ndarray]:
        """(size, size) label of each output pixel's centre, and whether its footprint is pure."""
        s = self.supersample
        blocks = self.labels.reshape(self.size, s, self.size, s)
        pure = (blocks.min(axis=(1, 3)) == blocks.max(axis=(1, 3)))
        return self.labels[s // 2::s, s // 2::s], pure


def _bilinear(quad: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Map params (a, b) in [0, 1]² into the quad (P00, P10, P11, P01); returns (..., 2)."""
    a, b = np.asarray(a)[..., None], np.asarray(b)[..., None]
    return ((1 - a) * (1 - b) * quad[0] + a * (1 - b) * quad[1]
            + a * b * quad[2] + (1 - a) * b * quad[3])


def _poly(pts: np.ndarray) -> list[float]:
    """Flat coordinate list, the fastest form ImageDraw accepts."""
    return pts.ravel().tolist()


def _dist_to_polyline(pts: np.ndarray, line: np.ndarray) -> np.ndarray:
    """Distance of each point (n, 2) to the polyline (m, 2)."""
    a, ab = line[:-1], np.diff(line, axis=0)  # (m-1, 2)
    rel = pts[:, None] - a[None]  # (n, m-1, 2)
    t = np.clip((rel * ab).sum(-1) / np.maximum((ab * ab).sum(-1), 1e-12), 0.0, 1.0)
    return np.linalg.norm(rel - t[..., None] * ab, axis=-1).min(axis=1)


def _grid_lines(rng: np.random.Generator, spacing: tuple[float, float]) -> np.ndarray:
    lo, hi = spacing
    pos = [-_REACH - rng.uniform(0.0, hi)]
    while pos[-1] < _REACH:
        pos.append(pos[-1] + rng.uniform(lo, hi))
    return np.array(pos)


def _road_widths(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Widths (tile units) of n parallel roads and which are main roads: every 3rd to 5th."""
    period = rng.integers(3, 6)
    main = (np.arange(n) % period == rng.integers(period)) & (rng.random(n) < 0.8)
    widths = np.where(main, rng.uniform(0.042, 0.06, n), rng.uniform(0.024, 0.032, n))
    return widths, main


def _wobbly_line(rng: np.random.Generator, centre: np.ndarray, angle: float,
                 n: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """An irregular curve through ``centre`` spanning the tile: (n, 2) points and unit normals."""
    t = np.linspace(-1.0, 1.0, n)
    d = np.array([np.cos(angle), np.sin(angle)])
    nrm = np.array([-d[1], d[0]])
    offset = (rng.uniform(-0.25, 0.25) * t ** 2
              + rng.uniform(0.0, 0.05) * np.sin(rng.uniform(2, 5) * t + rng.uniform(0, 6.3)))
    pts = centre + 1.3 * t[:, None] * d + offset[:, None] * nrm  # reaches past every corner
    tangent = np.gradient(pts, axis=0)
    tangent /= np.linalg.norm(tangent, axis=1, keepdims=True)
    return pts, np.stack([-tangent[:, 1], tangent[:, 0]], axis=1)


def _jagged(rng: np.random.Generator, n: int, scale: float) -> np.ndarray:
    """Smoothed random walk: an irregular shoreline offset of n samples."""
    walk = np.cumsum(rng.normal(0.0, scale, n))
    return np.convolve(walk - walk.mean(), np.ones(3) / 3, mode="same")


def _water_polygon(rng: np.random.Generator) -> tuple[np.ndarray | None, str]:
    """A river, lake or coast as a polygon in tile units (or None), and which it is."""
    kind = str(rng.choice(["none", "river", "coast", "lake"], p=[0.35, 0.3, 0.22, 0.13]))
    return _WATER_SHAPES[kind](rng), kind


def _lake(rng: np.random.Generator) -> np.ndarray:
    theta = np.linspace(0.0, 2 * np.pi, 56, endpoint=False)
    r = rng.uniform(0.1, 0.22) * (1 + sum(
        rng.uniform(0, 0.2) / k * np.sin(k * theta + rng.uniform(0, 6.3)) for k in (2, 3, 5)))
    r = r + _jagged(rng, theta.size, 0.003)
    return rng.uniform(0.2, 0.8, 2) + r[:, None] * np.stack([np.cos(theta), np.sin(theta)], 1)


def _river(rng: np.random.Generator) -> np.ndarray:
    pts, normals = _wobbly_line(rng, 0.5 + rng.uniform(-0.2, 0.2, 2), rng.uniform(0.0, np.pi))
    half = rng.uniform(0.04, 0.11) * (1 + 0.2 * np.sin(np.linspace(0, rng.uniform(2, 6), 48)))
    left = pts + (half + _jagged(rng, 48, 0.003))[:, None] * normals
    right = pts - (half + _jagged(rng, 48, 0.003))[:, None] * normals
    return np.concatenate([left, right[::-1]])


def _coast(rng: np.random.Generator) -> np.ndarray:
    """Sea on the side of a shoreline that ``nrm`` points to, covering under half the tile."""
    angle = rng.uniform(0.0, np.pi)
    nrm = np.array([-np.sin(angle), np.cos(angle)])
    pts, normals = _wobbly_line(rng, 0.5 + rng.uniform(0.1, 0.32) * nrm, angle)
    pts = pts + _jagged(rng, 48, 0.004)[:, None] * normals
    far = 3.0 * normals[[-1, 0]] * np.sign(normals[0] @ nrm)
    return np.concatenate([pts, pts[[-1, 0]] + far])


_WATER_SHAPES = {"none": lambda rng: None, "river": _river, "coast": _coast, "lake": _lake}


def _extra_roads(rng: np.random.Generator, grid_angle: float) -> list[tuple[np.ndarray, float]]:
    """Optional diagonal avenue and curved road crossing the grid: (polyline, width) pairs."""
    roads = []
    if rng.random() < 0.3:
        phi = grid_angle + rng.choice([-1, 1]) * rng.uniform(np.pi / 6, np.pi / 3)
        p0, d = rng.uniform(0.25, 0.75, 2), 1.2 * np.array([np.cos(phi), np.sin(phi)])
        # many vertices, so that the road can be cut where it meets water
        roads.append((p0 + np.linspace(-1, 1, 24)[:, None] * d, rng.uniform(0.042, 0.06)))
    if rng.random() < 0.25:
        pts, _ = _wobbly_line(rng, rng.uniform(0.3, 0.7, 2), rng.uniform(0, np.pi), n=32)
        roads.append((pts, rng.uniform(0.026, 0.05)))
    return roads


def _split(rng: np.random.Generator, lo: float, hi: float, n: int) -> np.ndarray:
    """n + 1 cut points from lo to hi with random, roughly even gaps."""
    return lo + np.concatenate([[0.0], np.cumsum(rng.dirichlet(np.full(n, 5.0)))]) * (hi - lo)


def _block_lots(rng: np.random.Generator, lengths: tuple[float, float], inset: np.ndarray,
                mode: str, lot: tuple[float, float]) -> list[tuple[float, float, float, float]]:
    """Footprints filling one block, as (a0, a1, b0, b1) rectangles in the block's bilinear
    parameters. ``lengths`` are the block's side lengths and ``inset`` its (a0, a1, b0, b1)
    margins, both in tile units."""
    len_a, len_b = lengths
    a0, a1 = inset[0] / len_a, 1 - inset[1] / len_a
    b0, b1 = inset[2] / len_b, 1 - inset[3] / len_b
    if (a1 - a0) * len_a < 0.02 or (b1 - b0) * len_b < 0.02:
        return []
    if mode == "big":
        n = int(rng.integers(1, 3))
        cuts, gap = _split(rng, a0, a1, n), 0.006 / len_a
        return [(cuts[k] + gap * (k > 0), cuts[k + 1] - gap * (k < n - 1),
                 b0 + rng.uniform(0, 0.15) * (b1 - b0), b1 - rng.uniform(0, 0.15) * (b1 - b0))
                for k in range(n)]
    # rows and houses: lots along the block's a side, one row of lots per street front
    houses = mode == "houses"
    rows = 2 if (b1 - b0) * len_b > 0.07 else 1
    n_lots = max(1, int(round((a1 - a0) * len_a / rng.uniform(*lot))))
    out = []
    for row in range(rows):
        r0, r1 = (b0, b1) if rows == 1 else ((b0, (b0 + b1) / 2), ((b0 + b1) / 2, b1))[row]
        cuts = _split(rng, a0, a1, n_lots)
        for lo, hi in zip(cuts[:-1], cuts[1:]):
            if houses and rng.random() < 0.15:
                continue  # an empty lot
            if houses:
                fa, fb = rng.uniform(0.5, 0.8), rng.uniform(0.35, 0.6)
                front = rng.uniform(0.1, 0.25)  # front garden
            else:
                fa, fb, front = rng.uniform(0.8, 0.95), rng.uniform(0.6, 1.0), 0.0
            pad = (1 - fa) * (hi - lo) / 2
            depth, lead = fb * (r1 - r0), front * (r1 - r0)
            # buildings face the street: the row at b0 hugs b0, the row at b1 hugs b1
            if row == 0:
                out.append((lo + pad, hi - pad, r0 + lead, r0 + lead + depth))
            else:
                out.append((lo + pad, hi - pad, r1 - lead - depth, r1 - lead))
    return out


def _in_box(pts: np.ndarray, margin: float) -> np.ndarray:
    """Whether any of the points (..., k, 2) lies near the tile: (...,) bool."""
    lo, hi = pts.min(axis=-2), pts.max(axis=-2)
    return ((hi > -margin) & (lo < 1 + margin)).all(axis=-1)


def _lookup(mask: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Values of a square raster at points (..., 2) in tile units."""
    px = mask.shape[0]
    idx = np.clip((pts * px).astype(int), 0, px - 1)
    return mask[idx[..., 1], idx[..., 0]]


def _grid(rng: np.random.Generator, cfg: dict, angle: float) -> tuple[np.ndarray, tuple, tuple]:
    """A jittered road grid rotated by ``angle``.

    Returns the intersections (nu, nv, 2) in tile units, and (widths, is_main) for the u lines
    (constant first index) and for the v lines.
    """
    u, v = _grid_lines(rng, cfg["spacing"]), _grid_lines(rng, cfg["spacing"])
    su, sv = rng.normal(0, 0.04, u.size), rng.normal(0, 0.04, v.size)  # per-line tilt
    u_roads, v_roads = _road_widths(rng, u.size), _road_widths(rng, v.size)
    # intersections of u-line i (u = u_i + su_i v) with v-line j (v = v_j + sv_j u): (nu, nv)
    iu = (u[:, None] + su[:, None] * v[None]) / (1 - su[:, None] * sv[None])
    iv = v[None] + sv[None] * iu
    c, s = np.cos(angle), np.sin(angle)
    return 0.5 + np.stack([c * iu - s * iv, s * iu + c * iv], axis=-1), u_roads, v_roads


def _fill_blocks(rng: np.random.Generator, nodes: np.ndarray, u_widths: np.ndarray,
                 v_widths: np.ndarray, cfg: dict) -> tuple[list[np.ndarray], np.ndarray, np.ndarray,
                                                           np.ndarray]:
    """Parks (list of quads) and buildings (footprints, heights, pitched) of the grid's blocks."""
    # blocks: (nu-1, nv-1, 4, 2) corners P00, P10, P11, P01; only those near the tile are filled
    quads = np.stack([nodes[:-1, :-1], nodes[1:, :-1], nodes[1:, 1:], nodes[:-1, 1:]], axis=2)
    modes = rng.choice(["rows", "big", "houses", "park", "land"], size=quads.shape[:2],
                       p=cfg["modes"])
    parks, corners, heights, pitched = [], [np.zeros((0, 4, 2))], [np.zeros(0)], [np.zeros(0, bool)]
    for i, j in zip(*np.nonzero(_in_box(quads, 0.05) & (modes != "land"))):
        quad, mode = quads[i, j], modes[i, j]
        if mode == "park":
            parks.append(quad)
            continue
        inset = (np.array([u_widths[i], u_widths[i + 1], v_widths[j], v_widths[j + 1]]) / 2
                 + _CURB + rng.uniform(0.003, 0.01))
        lengths = (np.linalg.norm(quad[1] - quad[0]), np.linalg.norm(quad[3] - quad[0]))
        lots = np.array(_block_lots(rng, lengths, inset, mode, cfg["lot"])).reshape(-1, 4)
        corners.append(_bilinear(quad, lots[:, [0, 1, 1, 0]], lots[:, [2, 2, 3, 3]]))
        heights.append(rng.uniform(*cfg["height"], len(lots)) * (1.5 if mode == "big" else 1.0))
        pitched.append(np.full(len(lots), mode == "houses"))
    return parks, np.concatenate(corners), np.concatenate(heights), np.concatenate(pitched)


def _runs(line: np.ndarray, keep: np.ndarray) -> list[np.ndarray]:
    """The polylines made of consecutive kept segments of ``line``."""
    runs, start = [], None
    for seg in range(keep.size + 1):
        if seg < keep.size and keep[seg]:
            start = seg if start is None else start
        elif start is not None:
            runs.append(line[start:seg + 1])
            start = None
    return runs


def _roads(rng: np.random.Generator, candidates: list[tuple[np.ndarray, float, bool, float]],
           water: np.ndarray, bridges: bool) -> list[tuple[np.ndarray, float, bool]]:
    """Cut candidate (polyline, width, is_main, drop chance) roads into drawn pieces.

    A segment is dropped at random with its drop chance, and where it meets water unless it is
    a main road and the water a river (a bridge). Returns (polyline, width, is_main).
    """
    roads = []
    steps = np.array([0.25, 0.5, 0.75])[None, :, None]
    for line, width, is_main, drop in candidates:
        probes = line[:-1, None] + (line[1:, None] - line[:-1, None]) * steps  # (segs, 3, 2)
        keep = rng.random(len(line) - 1) >= drop
        if not (is_main and bridges):
            keep &= ~_lookup(water, probes).any(axis=1)
        roads += [(run, width, is_main) for run in _runs(line, keep)]
    return roads


def _rasterise(canvas_px: int, parks: list[np.ndarray], footprints: np.ndarray,
               water: Image.Image, roads: list[tuple[np.ndarray, float, bool]]) -> np.ndarray:
    """Paint the label raster, later layers over earlier ones: (canvas_px, canvas_px) uint8."""
    img = Image.new("L", (canvas_px, canvas_px), Label.LAND)
    draw = ImageDraw.Draw(img)
    for quad in parks:
        draw.polygon(_poly(quad * canvas_px), fill=Label.PARK)
    for footprint in footprints * canvas_px:
        draw.polygon(_poly(footprint), fill=Label.BUILDING)
    img.paste(Label.WATER, mask=water)
    # every casing first, so casings outline the union of roads instead of crossing junctions
    layers = [(Label.CURB, roads, 2 * _CURB),
              (Label.STREET, [r for r in roads if not r[2]], 0.0),
              (Label.MAIN_ROAD, [r for r in roads if r[2]], 0.0)]
    for label, layer, extra_width in layers:
        for line, width, _ in layer:
            draw.line(_poly(line * canvas_px), fill=label, joint="curve",
                      width=max(1, round((width + extra_width) * canvas_px)))
    return np.asarray(img).copy()


def generate_layout(rng: np.random.Generator, size: int, *, supersample: int = 4) -> CityLayout:
    """Draw a random town and rasterise its labels on a ``size * supersample`` canvas."""
    if size < 8:
        raise ValueError(f"size must be at least 8 pixels, got {size}")
    district = str(rng.choice(list(_DISTRICTS), p=[0.3, 0.45, 0.25]))
    cfg = _DISTRICTS[district]
    grid_angle = 0.0 if rng.random() < 0.35 else rng.uniform(-np.pi / 4, np.pi / 4)
    nodes, u_roads, v_roads = _grid(rng, cfg, grid_angle)
    water_polygon, water_kind = _water_polygon(rng)
    extra = _extra_roads(rng, grid_angle)

    canvas_px = size * supersample
    water = Image.new("1", (canvas_px, canvas_px), 0)
    if water_polygon is not None:
        ImageDraw.Draw(water).polygon(_poly(water_polygon * canvas_px), fill=1)
    water_np = np.asarray(water)

    parks, footprints, heights, pitched = _fill_blocks(rng, nodes, u_roads[0], v_roads[0], cfg)
    # drop footprints off the tile, in the water or under an extra road
    probes = np.concatenate([footprints, footprints.mean(axis=1, keepdims=True)], axis=1)
    keep = _in_box(footprints, 0.05) & ~_lookup(water_np, probes).any(axis=1)
    for line, width in extra:
        dist = _dist_to_polyline(probes.reshape(-1, 2), line).reshape(-1, 5)
        keep &= dist.min(axis=1) > width / 2 + _CURB
    footprints, heights, pitched = footprints[keep], heights[keep], pitched[keep]

    candidates = [(line, width, width > 0.04, 0.0) for line, width in extra]
    for lines, (widths, mains) in ((nodes, u_roads), (nodes.transpose(1, 0, 2), v_roads)):
        candidates += [(lines[k], widths[k], bool(mains[k]), 0.0 if mains[k] else cfg["drop"])
                       for k in range(len(lines))]
    roads = _roads(rng, candidates, water_np, bridges=water_kind == "river")
    labels = _rasterise(canvas_px, parks, footprints, water, roads)
    return CityLayout(labels, footprints, heights, pitched, district, size, supersample)


def render_map(layout: CityLayout) -> Image.Image:
    """Google-Maps-style tile: the labels in flat colours, downsampled with anti-aliasing."""
    lut = np.array([MAP_PALETTE[label] for label in Label], dtype=np.uint8)
    return Image.fromarray(lut[layout.labels]).resize((layout.size, layout.size), Image.LANCZOS)


# Aerial base colours (RGB) before per-image jitter: bare ground variants and roof materials.
_GROUNDS = np.array([[128, 118, 96], [104, 108, 80], [122, 118, 108], [96, 104, 74]], np.float32)
_ROOFS = np.array([[168, 166, 160], [118, 118, 120], [84, 84, 88], [200, 198, 192],
                   [132, 96, 74], [150, 82, 64], [108, 80, 66], [150, 140, 120]], np.float32)
# (low, mid) frequency texture amplitude per Label, in grey levels
_TEXTURE = np.array([[14, 9], [0, 5], [10, 12], [4, 2], [5, 4], [4, 5], [4, 5]], np.float32)
_SHADE = np.array([0.5, 0.53, 0.62], np.float32)  # shadows are lit by blue skylight only


def _value_noise(rng: np.random.Generator, canvas_px: int, cells: int) -> np.ndarray:
    """Smooth ~unit-variance noise with about ``cells`` features across: (C, C) float32."""
    grid = rng.standard_normal((cells + 1, cells + 1)).astype(np.float32)
    return np.asarray(Image.fromarray(grid).resize((canvas_px, canvas_px), Image.BICUBIC))


def _shadow_hulls(footprints: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Region swept by convex footprints (n, 4, 2) moved by offsets (n, 2): (n, 8, 2) polygons.

    Each vertex is emitted twice, as itself where the edge before/after it faces away from the
    offset and translated where that edge faces it; repeated points do not hurt the polygon.
    """
    edges = np.roll(footprints, -1, axis=1) - footprints  # (n, 4, 2)
    area = (footprints[..., 0] * np.roll(footprints[..., 1], -1, axis=1)
            - np.roll(footprints[..., 0], -1, axis=1) * footprints[..., 1]).sum(axis=1)
    outward = np.sign(area)[:, None, None] * np.stack([edges[..., 1], -edges[..., 0]], axis=-1)
    faces = ((outward * offsets[:, None]).sum(-1) > 0)[..., None]  # (n, 4, 1)
    first = footprints + np.roll(faces, 1, axis=1) * offsets[:, None]
    second = footprints + faces * offsets[:, None]
    return np.stack([first, second], axis=2).reshape(-1, 8, 2)


def _roof_halves(footprints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The two slopes of gabled roofs, split along the long axis: two (n, 4, 2) arrays."""
    p0, p1, p2, p3 = (footprints[:, k] for k in range(4))
    along_a = (np.linalg.norm(p1 - p0, axis=1) >= np.linalg.norm(p3 - p0, axis=1))[:, None]
    m0 = np.where(along_a, (p0 + p3) / 2, (p0 + p1) / 2)
    m1 = np.where(along_a, (p1 + p2) / 2, (p3 + p2) / 2)
    along_a = along_a[..., None]
    first = np.where(along_a, np.stack([p0, p1, m1, m0], 1), np.stack([p0, m0, m1, p3], 1))
    second = np.where(along_a, np.stack([m0, m1, p2, p3], 1), np.stack([m0, p1, p2, m1], 1))
    return first, second


def _draw_roofs(rng: np.random.Generator, layout: CityLayout, shadow_dir: np.ndarray,
                px: int) -> tuple[Image.Image, Image.Image]:
    """Roof colours (RGB) and the region swept by building shadows (L), on a px² canvas."""
    n = len(layout.heights)
    roof, shadow = Image.new("RGB", (px, px)), Image.new("L", (px, px), 0)
    draw_roof, draw_shadow = ImageDraw.Draw(roof), ImageDraw.Draw(shadow)
    pts = layout.footprints * px
    hulls = _shadow_hulls(pts, layout.heights[:, None] * px * shadow_dir)
    for hull in hulls.reshape(n, -1).tolist():
        draw_shadow.polygon(hull, fill=255)

    colours = (_ROOFS[rng.integers(len(_ROOFS), size=n)] * rng.uniform(0.85, 1.1, (n, 1))
               + rng.normal(0, 3, (n, 3)))
    first, second = _roof_halves(pts)
    # the slope facing away from the sun is darker
    away = ((second.mean(1) - first.mean(1)) @ shadow_dir > 0)[:, None]
    lit = colours.astype(int).tolist()
    dim = (colours * 0.75).astype(int).tolist()
    edge = (colours * 0.7).astype(int).tolist()
    flat_pts, first, second = (a.reshape(n, -1).tolist() for a in (pts, first, second))
    for k in range(n):
        if not layout.pitched[k]:
            draw_roof.polygon(flat_pts[k], fill=tuple(lit[k]), outline=tuple(edge[k]))
        else:
            dark_second = bool(away[k, 0])
            draw_roof.polygon(first[k], fill=tuple(lit[k] if dark_second else dim[k]))
            draw_roof.polygon(second[k], fill=tuple(dim[k] if dark_second else lit[k]))
    return roof, shadow


def _draw_trees(rng: np.random.Generator, labels: np.ndarray, district: str,
                shadow_dir: np.ndarray, n_shades: int) -> Image.Image:
    """Tree crowns in parks and on open land, on a canvas the shape of ``labels``.

    Pixel values: 0 none, 1 tree shadow, 2.. crown shade index, 2 + n_shades.. its highlight.
    """
    px = labels.shape[0]
    pts = rng.random((1600, 2))
    idx = (pts * px).astype(int)
    under = labels[idx[:, 1], idx[:, 0]]
    density = np.where(under == Label.PARK, rng.uniform(0.35, 0.9),
                       np.where(under == Label.LAND, _DISTRICTS[district]["trees"], 0.0))
    keep = rng.random(len(pts)) < density
    pts, radius = pts[keep] * px, rng.uniform(0.009, 0.018, keep.sum()) * px
    shades = rng.integers(0, n_shades, keep.sum())
    img = Image.new("L", (px, px), 0)
    draw = ImageDraw.Draw(img)
    for layer in range(3):
        for p, r, shade in zip(pts, radius, shades):
            if layer == 0:
                c, rr, value = p + shadow_dir * r * 1.1, r, 1
            elif layer == 1:
                c, rr, value = p, r, 2 + shade
            else:
                c, rr, value = p - shadow_dir * r * 0.35, r * 0.5, 2 + n_shades + shade
            draw.ellipse([c[0] - rr, c[1] - rr, c[0] + rr, c[1] + rr], fill=int(value))
    return img


def render_aerial(layout: CityLayout, rng: np.random.Generator) -> Image.Image:
    """Photo-like rendering: textured materials, shadows, trees, blur, illumination and noise."""
    # textures need less supersampling than the map's crisp edges: the photo is blurred anyway
    step = max(1, layout.supersample // 2)
    lab, size = layout.labels[step // 2::step, step // 2::step], layout.size
    px = lab.shape[0]
    sun = rng.uniform(0, 2 * np.pi)
    shadow_dir = np.array([np.cos(sun), np.sin(sun)])

    colours = np.zeros((len(Label), 3), np.float32)
    # downtown open ground is mostly paved; elsewhere it is soil with patches of grass
    paved = layout.district == "downtown"
    ground = _GROUNDS[2] if paved else _GROUNDS[rng.integers(len(_GROUNDS))]
    colours[Label.LAND] = ground + rng.normal(0, 6, 3)
    colours[Label.PARK] = np.array([74, 98, 54]) + rng.normal(0, 5, 3)
    colours[Label.WATER] = np.array([34, 54, 60]) + rng.normal(0, 4, 3)
    colours[Label.CURB] = np.array([150, 146, 138]) + rng.normal(0, 5, 3)
    colours[Label.STREET] = colours[Label.MAIN_ROAD] = 72 + rng.normal(0, 5, 3).mean()
    colours[Label.MAIN_ROAD] += 8  # wider roads: fresher, lighter asphalt

    # everything below is channel-first, (3, C, C) float32, and composited by blending with
    # 0/1 masks: several times faster than channel-last arrays and np.where
    low, mid = _value_noise(rng, px, 5), _value_noise(rng, px, max(4, size // 2))
    patches = _value_noise(rng, px, 8)
    vegetated = ((lab == Label.LAND) | (lab == Label.PARK)).astype(np.float32)
    grain = np.take(_TEXTURE[:, 0], lab) * low + np.take(_TEXTURE[:, 1], lab) * mid
    rgb = np.take(colours.T, lab, axis=1) + grain[None]
    grass = np.array([86, 102, 62], np.float32) + rng.normal(0, 4, 3).astype(np.float32)
    greenness = rng.uniform(0.0, 0.3) if paved else rng.uniform(0.2, 0.8)
    greening = np.clip(0.5 + 0.4 * patches, 0, 1) * greenness * (lab == Label.LAND)
    rgb += greening[None] * (grass - colours[Label.LAND])[:, None, None]

    roof, building_shadow = _draw_roofs(rng, layout, shadow_dir, px)
    is_building = (lab == Label.BUILDING).astype(np.float32)
    roof_rgb = np.stack([np.asarray(band) for band in roof.split()]).astype(np.float32)
    roof_rgb += 5 * mid[None]
    rgb += is_building[None] * (roof_rgb - rgb)

    n_shades = 6
    crowns = np.array([42, 64, 34], np.float32) * rng.uniform(0.75, 1.25, (n_shades, 1))
    tree_colours = np.concatenate([np.zeros((2, 3), np.float32), crowns, crowns * 1.35])
    trees = np.asarray(_draw_trees(rng, lab, layout.district, shadow_dir, n_shades))
    is_crown = (trees >= 2) * vegetated
    crown_rgb = np.take(tree_colours.T.astype(np.float32), trees, axis=1) + 8 * mid[None]
    rgb += is_crown[None] * (crown_rgb - rgb)
    shaded = np.maximum((np.asarray(building_shadow) > 0) * (1 - is_building),
                        (trees == 1) * vegetated)
    rgb *= 1 - shaded[None] * (1 - _SHADE[:, None, None])

    bands = [Image.fromarray(band) for band in np.clip(rgb, 0, 255).astype(np.uint8)]
    img = Image.merge("RGB", bands).resize((size, size), Image.LANCZOS)
    img = img.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 0.7)))
    # illumination and atmosphere differ between acquisitions; sensor noise is per pixel
    out = np.asarray(img, np.float32) * rng.normal(1.0, 0.025, 3) * rng.uniform(0.85, 1.15)
    haze = rng.uniform(0.0, 0.15)
    out = out * (1 - haze) + haze * np.array([150, 160, 170], np.float32)
    out += rng.normal(0.0, rng.uniform(2.0, 5.0), out.shape)
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def render_city(seed: int, size: int = 64) -> tuple[Image.Image, Image.Image]:
    """(aerial, map) RGB images of the town for ``seed``, both ``size`` x ``size``."""
    rng = np.random.default_rng(seed)
    layout = generate_layout(rng, size)
    return render_aerial(layout, rng), render_map(layout)


def _city_seed(seed: int, split: str, index: int) -> int:
    """Seed of one image: train and test seeds interleave, so they never collide."""
    return (seed << 32) | (2 * index + (split == "test"))


def _expected_names(n: int) -> set[str]:
    return {f"{i:05d}.png" for i in range(n)}


def _is_complete(root: Path, params: dict, counts: dict[str, int]) -> bool:
    """Marker written last matches ``params`` and each folder holds exactly the expected PNGs."""
    try:
        if json.loads((root / ".complete").read_text()) != params:
            return False
        return all({p.name for p in (root / f"{split}{domain}").glob("*.png")} == _expected_names(n)
                   for split, n in counts.items() for domain in "AB")
    except (OSError, ValueError):
        return False


def write_city_dataset(root: str | Path, *, n_train: int = 400, n_test: int = 40, size: int = 64,
                       seed: int = 0) -> Path:
    """Write the town dataset in the CycleGAN folder layout and return ``root``.

    ``root/{train,test}{A,B}/NNNNN.png`` hold aerial photos (A) and maps (B); a file name is the
    same place in A and B. Train and test towns come from disjoint seeds. A ``.complete`` marker
    holding the parameters is written last; a later call with the same parameters finds it and
    returns at once, and an interrupted write (no marker) is redone.
    """
    if n_train < 1 or n_test < 0:
        raise ValueError(f"need n_train >= 1 and n_test >= 0, got {n_train} and {n_test}")
    if seed < 0 or size < 8:
        raise ValueError(f"need seed >= 0 and size >= 8, got seed={seed} and size={size}")
    root = Path(root)
    counts = {"train": n_train, "test": n_test}
    params = dict(generator=GENERATOR_VERSION, n_train=n_train, n_test=n_test, size=size, seed=seed)
    if _is_complete(root, params, counts):
        return root
    marker = root / ".complete"
    marker.unlink(missing_ok=True)
    for split, n in counts.items():
        folders, expected = [root / f"{split}A", root / f"{split}B"], _expected_names(n)
        for folder in folders:
            folder.mkdir(parents=True, exist_ok=True)
            # images left by an earlier, larger dataset would otherwise join this one
            for stale in folder.glob("*.png"):
                if stale.name not in expected:
                    stale.unlink()
        for i in range(n):
            for image, folder in zip(render_city(_city_seed(seed, split, i), size), folders):
                image.save(folder / f"{i:05d}.png")
    atomic_write_text(marker, json.dumps(params))
    return root
