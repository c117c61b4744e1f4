"""Kind ``membranes``: tissue as an additively weighted Voronoi tessellation of seeded centres.

Each pixel of the tissue belongs to the seed minimising ``|x - c_i| - w_i`` (physical units),
with weights ``w_i = size_jitter * nn_i * u_i``, ``nn_i`` the seed's nearest-neighbour distance
and ``u_i`` uniform in [-1, 1]: cells next to sparse neighbours grow, others shrink, and each
cell stays star-shaped around its seed (hence connected) for ``size_jitter <= 0.5``.
The tissue fills the image (``tissue: full``), a centred ellipsoid, or a dome (a half
ellipsoid standing on the high end of axis 0, apex towards index 0, like a shoot meristem);
outside it is background.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from workflow_lib.simulate import placement
from workflow_lib.simulate.labels import largest_components, relabel
from workflow_lib.simulate.params import Params

TISSUES = ("full", "ellipsoid", "dome")
KEYS = ("cells", "tissue", "extent", "size_jitter", "min_distance", "min_size", "z_scale")
_NEIGHBOURS = 8        # seeds compared per pixel: the nearest ones by plain distance
_CHUNK = 1 << 20       # pixels per KD-tree query, bounds memory to ~150 MB


def tissue_mask(shape: tuple[int, ...], tissue: str, extent: np.ndarray, spacing: np.ndarray) -> np.ndarray:
    """Bool mask of the tissue region (see module doc); ``extent`` are semi-axis fractions
    (of half the image size; for the dome's height, of the full size of axis 0)."""
    if tissue == "full":
        return np.ones(shape, bool)
    size = np.array(shape, float)
    if tissue == "ellipsoid":
        centre, semi = (size - 1) / 2, extent * (size - 1) / 2
    else:
        centre = (size - 1) / 2
        centre[0] = size[0] - 1
        semi = extent * (size - 1) / 2
        semi[0] = extent[0] * (size[0] - 1)
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    r2 = sum(((g - c) / max(a, 1e-9)) ** 2 for g, c, a in zip(grids, centre, semi))
    return r2 <= 1.0


def tessellate(
    shape: tuple[int, ...], p: Params, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read the tissue keys of ``p`` and build the tessellation.

    Returns ``(cells, seeds, spacing)``: cells int32 ``shape`` with id k+1 for seed k (ids with
    no pixels left after clean-up are absent, not renumbered), seeds (n, ndim) in pixels, and
    the physical pixel size per axis.
    """
    ndim = len(shape)
    z_scale = p.number("z_scale", 1.0, 0, low_open=True) if ndim == 3 else 1.0
    spacing = np.array((z_scale, 1.0, 1.0) if ndim == 3 else (1.0, 1.0))
    lo, hi = p.range("cells", [60, 80], 1, integer=True)
    tissue = p.choice("tissue", "full", TISSUES)
    extent = np.asarray(p.vector("extent", [0.9] * ndim, ndim, 0.0, low_open=True))
    jitter = p.number("size_jitter", 0.3, 0.0, 0.5)
    mask = tissue_mask(shape, tissue, extent, spacing)
    volume = float(mask.sum()) * float(np.prod(spacing))
    if volume == 0:
        raise p.error("extent", f"leaves no tissue inside shape {list(shape)}")
    n = int(rng.integers(lo, hi + 1))
    typical = (volume / n) ** (1.0 / ndim)   # side of the mean cell's cube
    min_distance = p.number("min_distance", 0.5 * typical, 0.0)
    min_size = p.number("min_size", 0.15 * volume / n / np.prod(spacing), 0.0)

    coords = np.argwhere(mask)
    def sample(k: int) -> np.ndarray:
        return coords[rng.integers(0, len(coords), size=k)] + rng.uniform(-0.5, 0.5, (k, ndim))

    seeds = placement.thin(sample, n, min_distance, spacing)
    if len(seeds) < lo:
        raise p.error(
            "cells",
            f"only {len(seeds)} of {n} cells fit in the tissue with min_distance "
            f"{min_distance:g}; ask for fewer cells or a smaller min_distance",
        )
    phys = seeds * spacing
    tree = cKDTree(phys)
    k = min(_NEIGHBOURS, len(seeds))
    if len(seeds) > 1:
        nn = tree.query(phys, k=2)[0][:, 1]
    else:
        nn = np.zeros(1)
    weight = jitter * nn * rng.uniform(-1.0, 1.0, size=len(seeds))

    owner = np.zeros(len(coords), np.int32)
    for start in range(0, len(coords), _CHUNK):
        pts = coords[start:start + _CHUNK] * spacing
        dist, idx = tree.query(pts, k=k, workers=-1)
        dist, idx = dist.reshape(len(pts), k), idx.reshape(len(pts), k)
        best = np.argmin(dist - weight[idx], axis=1)
        owner[start:start + _CHUNK] = idx[np.arange(len(pts)), best] + 1
    cells = np.zeros(shape, np.int32)
    cells[tuple(coords.T)] = owner
    return largest_components(cells, int(np.ceil(min_size))), seeds, spacing


def simulate_membranes(shape: tuple[int, ...], p: Params, rng: np.random.Generator) -> np.ndarray:
    """Labels (1, *shape) uint16: tissue cells ids 1..N (touching), background outside."""
    cells, _, _ = tessellate(shape, p, rng)
    p.finish()
    return relabel(cells)[None]

