"""Kind ``nuclei``: non-overlapping star-convex nuclei in one of four arrangements."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workflow_lib.simulate import placement
from workflow_lib.simulate.labels import clean
from workflow_lib.simulate.params import Params
from workflow_lib.simulate.shapes import Shape, random_shape, rasterise


SHAPE_KEYS = ("radius", "elongation", "irregularity", "order", "mitotic", "mitotic_elongation", "z_scale")
PLACEMENT_KEYS = ("cells", "placement", "min_distance", "clusters", "cluster_spread", "extent")
KEYS = SHAPE_KEYS + PLACEMENT_KEYS


@dataclass(frozen=True)
class ShapeParams:
    """How single nuclei look (shared by the nuclei, overlapping and timeseries kinds)."""

    radius: tuple[float, float]          # mean radius range, physical pixels (Y/X units)
    elongation: tuple[float, float]      # long/short axis ratio of interphase nuclei
    irregularity: float                  # 2D warp / 3D harmonics strength (see shapes.py)
    order: int                           # highest spherical-harmonics degree (3D)
    mitotic: float                       # share of elongated "mitotic" nuclei
    mitotic_elongation: tuple[float, float]
    spacing: tuple[float, ...]           # physical size of a pixel per axis: (z_scale, 1, 1)

    @property
    def mean_radius(self) -> float:
        return 0.5 * (self.radius[0] + self.radius[1])


def read_shape_params(p: Params, ndim: int, radius=(8.0, 14.0)) -> ShapeParams:
    """Read the shape keys of ``p`` (radius, elongation, irregularity, order, mitotic, ...).

    ``radius=None``: the caller sets radii itself, so the key is not read (and is refused).
    """
    z_scale = p.number("z_scale", 1.0, 0, low_open=True) if ndim == 3 else 1.0
    return ShapeParams(
        radius=(1.0, 1.0) if radius is None else p.range("radius", radius, 1.0),
        elongation=p.range("elongation", [1.0, 1.3], 1.0),
        irregularity=p.number("irregularity", 0.1, 0.0, 1.0),
        order=p.number("order", 10, 2, 30, integer=True) if ndim == 3 else 0,
        mitotic=p.number("mitotic", 0.0, 0.0, 1.0),
        mitotic_elongation=p.range("mitotic_elongation", [1.8, 2.4], 1.0),
        spacing=(z_scale, 1.0, 1.0) if ndim == 3 else (1.0, 1.0),
    )


def make_shapes(
    rng: np.random.Generator, centres: np.ndarray, sp: ShapeParams, radii: np.ndarray | None = None
) -> list[Shape]:
    """One random shape per centre (pixels); ``radii`` overrides the random mean radii."""
    n = len(centres)
    if radii is None:
        radii = rng.uniform(*sp.radius, size=n)
    mitotic = rng.uniform(size=n) < sp.mitotic
    elong = np.where(
        mitotic, rng.uniform(*sp.mitotic_elongation, size=n), rng.uniform(*sp.elongation, size=n)
    )
    return [
        random_shape(rng, centres[k], radii[k], elong[k], sp.irregularity, sp.order)
        for k in range(n)
    ]


def paint(
    labels: np.ndarray, shapes: list[Shape], spacing: tuple[float, ...], min_visible: float = 0.5,
    first_id: int = 1, within: np.ndarray | None = None,
) -> np.ndarray:
    """Paint ``shapes`` into ``labels`` in place, never over existing instances.

    Shape k gets id ``first_id + k``; a shape keeping less than ``min_visible`` of its pixels
    (covered by earlier ones) is left out. ``within`` (same shape as ``labels``, ints) restricts
    shape k to pixels where ``within == first_id + k`` (nuclei inside their cells).
    Returns the bool array of which shapes were painted.
    """
    painted = np.zeros(len(shapes), bool)
    for k, s in enumerate(shapes):
        hit = rasterise(s, labels.shape, spacing)
        if hit is None:
            continue
        box, mask = hit
        free = mask & (labels[box] == 0)
        if within is not None:
            free &= within[box] == first_id + k
        if free.sum() < min_visible * mask.sum() or not free.any():
            continue
        labels[box][free] = first_id + k
        painted[k] = True
    return painted


def read_centres(
    p: Params, shape: tuple[int, ...], rng: np.random.Generator, sp: ShapeParams,
    default_cells=(30, 40), default_min_distance: float = 1.8,
) -> np.ndarray:
    """Read the arrangement keys (cells, placement, min_distance, ...) and place the centres.

    ``default_min_distance`` is in units of the mean radius.
    """
    ndim = len(shape)
    spacing = np.asarray(sp.spacing)
    lo, hi = p.range("cells", default_cells, 1, integer=True)
    kind = p.choice("placement", "spread", placement.PLACEMENTS)
    min_distance = p.number("min_distance", default_min_distance * sp.mean_radius, 0.0)
    half = (np.array(shape, float) - 1) / 2
    if kind in ("clustered",):
        clusters = p.range("clusters", [3, 6], 1, integer=True)
        spread = p.number("cluster_spread", 2.5 * sp.mean_radius, 0.0, low_open=True)
        sampler = placement.clustered(
            rng, shape, int(rng.integers(clusters[0], clusters[1] + 1)), spread, spacing,
            margin=sp.mean_radius,
        )
    elif kind in ("embryo", "shell"):
        extent = p.vector("extent", [0.85] * ndim, ndim, 0.0, low_open=True)
        sampler = placement.ellipsoid(rng, shape, half * np.asarray(extent), kind == "shell")
    else:
        sampler = placement.uniform_box(rng, shape)
    n = int(rng.integers(lo, hi + 1))
    centres = placement.thin(sampler, n, min_distance, spacing)
    if len(centres) < lo:
        raise p.error(
            "cells",
            f"only {len(centres)} of {n} cells fit in shape {list(shape)} with placement "
            f"'{kind}' and min_distance {min_distance:g}; ask for fewer cells, a smaller "
            "min_distance or a larger shape",
        )
    return centres


def simulate_nuclei(shape: tuple[int, ...], p: Params, rng: np.random.Generator) -> np.ndarray:
    """Labels (1, *shape) uint16: nuclei ids 1..N, no overlaps, each one component."""
    sp = read_shape_params(p, len(shape))
    centres = read_centres(p, shape, rng, sp)
    p.finish()
    labels = np.zeros(shape, np.int32)
    paint(labels, make_shapes(rng, centres, sp), sp.spacing)
    return clean(labels)[None]
