"""Kind ``membranes``: tissue as an additively weighted Voronoi tessellation of seeded centres.

Each pixel of the tissue belongs to the seed minimising ``|x - c_i| - w_i`` (physical units),
with weights ``w_i = size_jitter * nn_i * u_i``, ``nn_i`` the seed's nearest-neighbour distance
and ``u_i`` uniform in [-1, 1]: cells next to sparse neighbours grow, others shrink, and each
cell stays star-shaped around its seed (hence connected) for ``size_jitter <= 0.5``.
The tissue fills the image (``tissue: full``), a centred ellipsoid, or a dome (a half
ellipsoid standing on the high end of axis 0, apex towards index 0, like a shoot meristem);
outside it is background. With ``layers``, the seeds of an ellipsoid or dome lie in concentric
layers under its surface (as the original meristem simulation) instead of at random.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from workflow_lib.errors import ParamError
from workflow_lib.simulate import placement
from workflow_lib.simulate.labels import largest_components, relabel
from workflow_lib.simulate.params import Params

TISSUES = ("full", "ellipsoid", "dome")
KEYS = ("cells", "tissue", "extent", "size_jitter", "min_distance", "min_size", "z_scale",
        "layers", "layer_spacing", "layer_shrink")
_BLOCK = 16            # side (pixels) of the blocks the tessellation is computed in
_BLOCK_ROWS = 4096     # blocks per candidate-bound matrix, bounds its memory to ~100 MB


@dataclass(frozen=True)
class TissueSettings:
    """The tissue keys (kind ``membranes``, and the cells of ``multichannel``).

    Either ``layers`` > 0 with ``layer_spacing``/``layer_shrink``, or ``cells`` with
    ``min_distance``; the other pair is None. ``min_distance``/``min_size`` None: their defaults,
    which depend on the tissue volume and the drawn cell count.
    """

    spacing: tuple[float, ...]            # physical size of a pixel per axis: (z_scale, 1, 1)
    tissue: str                           # one of TISSUES
    extent: tuple[float, ...]             # semi-axes / half the image size (per axis)
    size_jitter: float                    # 0..0.5, see module doc
    layers: int                           # 0: seeds thrown at random; > 0: layered seeds
    min_size: float | None                # pixels; default 0.15 x the mean cell size
    cells: tuple[int, int] | None = None  # random seeds: number of cells, [min, max]
    min_distance: float | None = None     # random seeds: least seed distance (physical)
    layer_spacing: float | None = None    # layered seeds: distance of layers (physical)
    layer_shrink: float | None = None     # layered seeds: spacing factor per layer inwards


def read_tissue(p: Params, ndim: int) -> TissueSettings:
    """The tissue keys of ``p`` for ``ndim`` spatial axes (see :class:`TissueSettings`)."""
    z_scale = p.number("z_scale", 1.0, 0, low_open=True) if ndim == 3 else 1.0
    spacing = (z_scale, 1.0, 1.0) if ndim == 3 else (1.0, 1.0)
    tissue = p.choice("tissue", "full", TISSUES)
    extent = p.vector("extent", [0.9] * ndim, ndim, 0.0, low_open=True)
    jitter = p.number("size_jitter", 0.3, 0.0, 0.5)
    layers = p.number("layers", 0, 0, 100, integer=True) if tissue != "full" else 0
    if layers:
        seeding = dict(
            layer_spacing=p.number("layer_spacing", 23.0, 0.0, low_open=True),
            layer_shrink=p.number("layer_shrink", 0.9, 0.0, 1.0, low_open=True),
        )
    else:
        seeding = dict(
            cells=p.range("cells", [60, 80], 1, integer=True),
            min_distance=p.optional_number("min_distance", 0.0),
        )
    # The defaults of min_distance and min_size depend on the drawn tissue: None until then.
    min_size = p.optional_number("min_size", 0.0)
    return TissueSettings(spacing, tissue, extent, jitter, layers, min_size, **seeding)


def read_settings(p: Params, ndim: int) -> TissueSettings:
    """Every key of the kind for ``ndim`` spatial axes; refuses the keys left unused."""
    settings = read_tissue(p, ndim)
    p.finish()
    return settings


def tissue_geometry(shape: tuple[int, ...], tissue: str, extent: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centre and semi-axes (pixels) of an ``ellipsoid``/``dome`` tissue; ``extent`` are
    semi-axis fractions of half the image size (for the dome's height, of all of axis 0)."""
    size = np.array(shape, float)
    centre, semi = (size - 1) / 2, np.asarray(extent, float) * (size - 1) / 2
    if tissue == "dome":
        centre[0] = size[0] - 1
        semi[0] = extent[0] * (size[0] - 1)
    return centre, semi


def tissue_mask(shape: tuple[int, ...], tissue: str, extent: np.ndarray) -> np.ndarray:
    """Bool mask of the tissue region (see module doc and :func:`tissue_geometry`)."""
    if tissue == "full":
        return np.ones(shape, bool)
    centre, semi = tissue_geometry(shape, tissue, extent)
    grids = np.ogrid[tuple(slice(0, s) for s in shape)]
    r2 = sum(((g - c) / max(a, 1e-9)) ** 2 for g, c, a in zip(grids, centre, semi))
    return r2 <= 1.0


def _surface(semi: np.ndarray) -> float:
    """Perimeter (2D, Ramanujan) or surface area (3D, Thomsen) of an ellipse/ellipsoid."""
    if semi.size == 2:
        a, b = semi
        return float(np.pi * (3 * (a + b) - np.sqrt((3 * a + b) * (a + 3 * b))))
    a, b, c = semi
    q = 1.6075
    return float(4 * np.pi * (((a * b) ** q + (a * c) ** q + (b * c) ** q) / 3) ** (1 / q))


def layered_seeds(
    rng: np.random.Generator, shape: tuple[int, ...], centre: np.ndarray, semi: np.ndarray,
    spacing: np.ndarray, layers: int, step: float, shrink: float,
) -> np.ndarray:
    """Seeds (pixels) in concentric layers under the tissue surface, like a shoot meristem.

    Layer k lies on the tissue ellipsoid shrunk inwards by its depth (the first ``step / 2``,
    then ``step * shrink**k`` deeper per layer), seeds ``step * shrink**k`` apart; the core left
    under the last layer is filled with seeds as far apart as the last layer's.
    """
    semi_phys = semi * spacing
    ndim = len(shape)
    depth, parts = 0.5 * step, []
    for k in range(layers + 1):
        gap = step * shrink ** min(k, layers - 1)
        axes = semi_phys - depth
        if np.any(axes <= 0.5 * gap):
            break
        core = k == layers
        sampler = placement.ellipsoid(rng, shape, axes / spacing, surface=not core, centre=centre)
        room = np.prod(axes) * (np.pi if ndim == 2 else 4 / 3 * np.pi) if core else _surface(axes)
        wanted = int(np.ceil(1.5 * room / gap ** (ndim if core else ndim - 1)))
        parts.append(placement.thin(sampler, wanted, 0.9 * gap, spacing, max_rounds=20))
        depth += gap
    return np.concatenate(parts) if parts else np.zeros((0, ndim))


def weighted_voronoi(
    mask: np.ndarray, seeds: np.ndarray, weight: np.ndarray, spacing: np.ndarray
) -> np.ndarray:
    """int32 owner map (seed k -> id k+1) of the pixels in ``mask``, 0 elsewhere.

    A pixel x belongs to the seed minimising ``|x * spacing - seeds_k| - weight_k``. Exact and
    vectorised: the image is cut into blocks; per block, only seeds whose lower bound over the
    block can beat the best upper bound are compared, with one (pixels x candidates) distance
    matrix per block.
    """
    shape = mask.shape
    ndim = len(shape)
    starts = np.stack(np.meshgrid(*[np.arange(0, s, _BLOCK) for s in shape], indexing="ij"), -1)
    starts = starts.reshape(-1, ndim)
    ends = np.minimum(starts + _BLOCK, shape)
    centre = (starts + ends - 1) / 2 * spacing
    half = np.linalg.norm((ends - starts - 1) / 2 * spacing, axis=1)
    cells = np.zeros(shape, np.int32)
    for first in range(0, len(starts), _BLOCK_ROWS):
        rows = slice(first, first + _BLOCK_ROWS)
        dist = np.linalg.norm(centre[rows, None, :] - seeds[None], axis=-1)   # (blocks, seeds)
        lower = np.maximum(dist - half[rows, None], 0) - weight
        upper = (dist + half[rows, None] - weight).min(axis=1)
        candidates = lower <= upper[:, None]
        for b in range(first, min(first + _BLOCK_ROWS, len(starts))):
            box = tuple(slice(a, e) for a, e in zip(starts[b], ends[b]))
            inside = mask[box]
            if not inside.any():
                continue
            cand = np.flatnonzero(candidates[b - first])
            pts = np.argwhere(inside) + starts[b]
            d = np.sqrt((((pts * spacing)[:, None, :] - seeds[cand][None]) ** 2).sum(-1)) - weight[cand]
            cells[box][inside] = cand[np.argmin(d, axis=1)] + 1
    return cells


def tessellate(
    shape: tuple[int, ...], s: TissueSettings, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Build the tessellation of one sample in an image of ``shape``.

    Returns ``(cells, seeds, spacing)``: cells int32 ``shape`` with id k+1 for seed k (ids with
    no pixels left after clean-up are absent, not renumbered), seeds (n, ndim) in pixels, and
    the physical pixel size per axis (ndim,). Raises :class:`ParamError` when the settings
    leave no tissue, no layer or too few cells in ``shape``.
    """
    ndim = len(shape)
    spacing = np.array(s.spacing)
    extent = np.asarray(s.extent)
    mask = tissue_mask(shape, s.tissue, extent)
    volume = float(mask.sum()) * float(np.prod(spacing))
    if volume == 0:
        raise ParamError("extent", f"leaves no tissue inside shape {list(shape)}")
    if s.layers:
        centre, semi = tissue_geometry(shape, s.tissue, extent)
        seeds = layered_seeds(rng, shape, centre, semi, spacing, s.layers, s.layer_spacing,
                              s.layer_shrink)
        if len(seeds) == 0:
            raise ParamError("layer_spacing", f"{s.layer_spacing:g} leaves no layer inside the tissue")
        n = len(seeds)
    else:
        lo, hi = s.cells
        n = int(rng.integers(lo, hi + 1))
        typical = (volume / n) ** (1.0 / ndim)   # side of the mean cell's cube
        min_distance = 0.5 * typical if s.min_distance is None else s.min_distance
        coords = np.argwhere(mask)

        def sample(k: int) -> np.ndarray:
            return coords[rng.integers(0, len(coords), size=k)] + rng.uniform(-0.5, 0.5, (k, ndim))

        seeds = placement.thin(sample, n, min_distance, spacing)
        if len(seeds) < lo:
            raise ParamError(
                "cells",
                f"only {len(seeds)} of {n} cells fit in the tissue with min_distance "
                f"{min_distance:g}; ask for fewer cells or a smaller min_distance",
            )
    min_size = float(0.15 * volume / n / np.prod(spacing)) if s.min_size is None else s.min_size
    phys = seeds * spacing
    if len(seeds) > 1:
        nn = cKDTree(phys).query(phys, k=2)[0][:, 1]
    else:
        nn = np.zeros(1)
    weight = s.size_jitter * nn * rng.uniform(-1.0, 1.0, size=len(seeds))
    cells = weighted_voronoi(mask, phys, weight, spacing)
    return largest_components(cells, int(np.ceil(min_size))), seeds, spacing


def simulate_membranes(shape: tuple[int, ...], s: TissueSettings, rng: np.random.Generator) -> np.ndarray:
    """Labels (1, *shape) uint16: tissue cells ids 1..N (touching), background outside."""
    cells, _, _ = tessellate(shape, s, rng)
    return relabel(cells)[None]
