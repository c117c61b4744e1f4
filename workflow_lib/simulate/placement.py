"""Where cells go: candidate centres per arrangement, thinned to a minimum distance.

Arrangements (``placement``): ``spread`` (uniform over the image), ``clustered`` (groups
around random cluster centres, like HeLa), ``embryo`` (inside a centred ellipsoid/ellipse, like
C. elegans), ``shell`` (on the surface of a centred ellipsoid/ellipse, like Tribolium).
All positions are in pixels; distances are physical (pixel offsets times ``spacing``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.spatial import cKDTree

PLACEMENTS = ("spread", "clustered", "embryo", "shell")

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
