"""Where cells go: candidate centres per arrangement, thinned to a minimum distance.

Arrangements (``placement``): ``spread`` (uniform over the image), ``clustered`` (groups
around random cluster centres, like HeLa), ``embryo`` (inside a centred ellipsoid/ellipse, like
C. elegans), ``shell`` (on the surface of a centred ellipsoid/ellipse, like Tribolium).
All positions are in pixels; distances are physical (pixel offsets times ``spacing``).

The kinds that place nuclei-like cells read the arrangement keys (:data:`PLACEMENT_KEYS`) with
:func:`read_placement` and draw the centres with :func:`place`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from workflow_lib.errors import ParamError
from workflow_lib.simulate.params import Params

PLACEMENTS = ("spread", "clustered", "embryo", "shell")
PLACEMENT_KEYS = ("cells", "placement", "min_distance", "clusters", "cluster_spread", "extent")

Sampler = Callable[[int], np.ndarray]


def thin(
    sample: Sampler,
    n: int,
    min_distance: float,
    spacing: np.ndarray,
    max_rounds: int = 60,
) -> np.ndarray:
    """Up to ``n`` centres from ``sample(k) -> (k, ndim)`` with pairwise distance >= min_distance.

    Dart throwing in vectorised batches: a batch's candidates too close to accepted centres are
    dropped, and of each too-close pair inside the batch the later one is dropped. Returns an
    (m, ndim) array, m <= n (m < n when the space is full).
    """
    spacing = np.asarray(spacing, float)
    ndim = spacing.size
    accepted = np.zeros((0, ndim))
    for _ in range(max_rounds):
        missing = n - len(accepted)
        if missing <= 0:
            break
        cand = sample(max(2 * missing, 16))
        if min_distance > 0:
            phys = cand * spacing
            if len(accepted):
                d, _ = cKDTree(accepted * spacing).query(phys, k=1)
                keep = d >= min_distance
                cand, phys = cand[keep], phys[keep]
            pairs = cKDTree(phys).query_pairs(min_distance, output_type="ndarray")
            if len(pairs):
                drop = np.zeros(len(cand), bool)
                drop[pairs.max(axis=1)] = True
                cand = cand[~drop]
        accepted = np.concatenate([accepted, cand[:missing]])
    return accepted


def uniform_box(rng: np.random.Generator, shape: tuple[int, ...], margin: float = 0.0) -> Sampler:
    """Uniform positions in the image, ``margin`` pixels away from the border where it fits."""
    lo = np.array([min(margin, (s - 1) / 2) for s in shape])
    hi = np.array(shape, float) - 1 - lo
    return lambda k: rng.uniform(lo, hi, size=(k, len(shape)))


def clustered(
    rng: np.random.Generator, shape: tuple[int, ...], clusters: int, spread: float,
    spacing: np.ndarray, margin: float = 0.0,
) -> Sampler:
    """Gaussian groups (std ``spread``, physical) around ``clusters`` uniform cluster centres."""
    box = uniform_box(rng, shape, margin)
    centres = box(clusters)
    hi = np.array(shape, float) - 1

    def sample(k: int) -> np.ndarray:
        which = rng.integers(0, clusters, size=k)
        pts = centres[which] + rng.normal(0.0, spread, size=(k, len(shape))) / spacing
        return pts[np.all((pts >= 0) & (pts <= hi), axis=1)]

    return sample


def ellipsoid(
    rng: np.random.Generator, shape: tuple[int, ...], semi_axes: np.ndarray, surface: bool,
    centre: np.ndarray | None = None,
) -> Sampler:
    """Uniform positions inside (or on the surface of) an axis-aligned ellipsoid (pixels)."""
    ndim = len(shape)
    centre = (np.array(shape, float) - 1) / 2 if centre is None else np.asarray(centre, float)
    hi = np.array(shape, float) - 1
    semi_axes = np.asarray(semi_axes, float)

    def sample(k: int) -> np.ndarray:
        d = rng.normal(size=(k, ndim))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        if surface:
            # Directions uniform on the sphere, stretched: near-uniform for mild eccentricity.
            pts = centre + d * semi_axes
        else:
            pts = centre + d * semi_axes * rng.uniform(size=(k, 1)) ** (1.0 / ndim)
        return pts[np.all((pts >= 0) & (pts <= hi), axis=1)]

    return sample


@dataclass(frozen=True)
class PlacementSettings:
    """Where the cells of one sample go (the arrangement keys, see module doc)."""

    cells: tuple[int, int]                   # number of cells, [min, max]
    arrangement: str                         # key ``placement``: one of PLACEMENTS
    min_distance: float                      # least distance between centres (physical)
    margin: float                            # pixels kept between cluster centres and the border
    clusters: tuple[int, int] | None = None  # clustered only: number of groups, [min, max]
    cluster_spread: float | None = None      # clustered only: std around a group centre (physical)
    extent: tuple[float, ...] | None = None  # embryo/shell only: semi-axes / half the image size


def read_placement(
    p: Params, ndim: int, mean_radius: float, default_cells: tuple[int, int] = (30, 40),
    default_min_distance: float = 1.8,
) -> PlacementSettings:
    """Read the arrangement keys of ``p`` for ``ndim`` spatial axes.

    The cells' ``mean_radius`` (physical) sets the defaults of ``min_distance``
    (``default_min_distance`` times it) and ``cluster_spread``, and the clusters' border margin.
    Keys of other arrangements are not read, so :meth:`Params.finish` refuses them.
    """
    cells = p.range("cells", default_cells, 1, integer=True)
    arrangement = p.choice("placement", "spread", PLACEMENTS)
    min_distance = p.number("min_distance", default_min_distance * mean_radius, 0.0)
    if arrangement == "clustered":
        return PlacementSettings(
            cells, arrangement, min_distance, mean_radius,
            clusters=p.range("clusters", [3, 6], 1, integer=True),
            cluster_spread=p.number("cluster_spread", 2.5 * mean_radius, 0.0, low_open=True),
        )
    if arrangement in ("embryo", "shell"):
        extent = p.vector("extent", [0.85] * ndim, ndim, 0.0, low_open=True)
        return PlacementSettings(cells, arrangement, min_distance, mean_radius, extent=extent)
    return PlacementSettings(cells, arrangement, min_distance, mean_radius)


def place(
    shape: tuple[int, ...], s: PlacementSettings, spacing: tuple[float, ...], rng: np.random.Generator
) -> np.ndarray:
    """Centres (n, ndim) in pixels of one sample in an image of ``shape``.

    ``spacing``: physical size of a pixel per axis. Raises :class:`ParamError` on ``cells`` when
    fewer than its minimum fit.
    """
    spacing_arr = np.asarray(spacing)
    half = (np.array(shape, float) - 1) / 2
    # The draws of each sampler's set-up come before the cell count's: seeds keep their samples.
    if s.arrangement == "clustered":
        groups = int(rng.integers(s.clusters[0], s.clusters[1] + 1))
        sampler = clustered(rng, shape, groups, s.cluster_spread, spacing_arr, margin=s.margin)
    elif s.arrangement in ("embryo", "shell"):
        sampler = ellipsoid(rng, shape, half * np.asarray(s.extent), s.arrangement == "shell")
    else:
        sampler = uniform_box(rng, shape)
    lo, hi = s.cells
    n = int(rng.integers(lo, hi + 1))
    centres = thin(sampler, n, s.min_distance, spacing_arr)
    if len(centres) < lo:
        raise ParamError(
            "cells",
            f"only {len(centres)} of {n} cells fit in shape {list(shape)} with placement "
            f"'{s.arrangement}' and min_distance {s.min_distance:g}; ask for fewer cells, a "
            "smaller min_distance or a larger shape",
        )
    return centres
