"""Wall completeness of membrane stains: does the image show a bright wall on every label
boundary, and no wall inside a cell?

The membrane counterpart of :mod:`workflow_lib.evaluate.completeness`:

- **Walls of the labels.** A wall segment is the boundary between one pair of face-touching
  labels ``(a, b)``, ``a > b``; ``b = 0`` is a cell against the background (the tissue
  outline); the image border is no wall. Segments of fewer than :data:`MIN_FACES` touching
  pixel faces (3 in 2D, 9 in 3D) do not count. Every pixel belongs to the segment of its
  nearest boundary, at a signed distance ``t`` (pixels, from its centre to the crack between
  the two labels' pixels; positive on the ``a`` side).
- **Walls of the image.** A Hessian ridge filter at the membrane's scale, ``sigma = max(width,
  1)`` pixels: ``response = -sigma**2 x`` the most negative Hessian eigenvalue, positive on
  bright walls (sheets in 3D) whatever each cell's own brightness level. Its statistics come
  from the cells' interiors (pixels farther than ``far``, below, from every boundary), as
  completeness takes the background from the pixels the mask calls background: ``base``
  (median) and ``spread`` (1.4826 x MAD); ``contrast`` is the median response on the pixels
  next to a boundary over ``base``. A wall is also brighter than BOTH its sides, which tells
  it from the bright side of a step between a bright and a dim region (where the Hessian
  responds too): its crest stands above the brighter side by :data:`PROMINENCE` x its height
  over the darker side.
- ``missed_walls``: a segment is shown when, in the median response of its pixels per
  0.5-pixel bin of ``t``, a bin within ``near = 0.5 x width + MARGIN`` of the boundary exceeds
  ``base`` by :data:`K_WALL` ``x spread`` (shrunk as the square root of the bin's independent
  pixels, one per ``2 sigma`` along the wall) and by :data:`F_WALL` ``x contrast``, and its
  median intensity profile peaks within ``near`` by PROMINENCE over the darkest bin on each
  side. Medians along the whole segment let a thin wall broken by noise count, and keep the
  segment's ends, near other walls, from lending it a wall it does not have.
- ``unannotated_walls``: cells holding a crest piece that reaches farther than ``far = 1.18 x
  width + MARGIN`` (the wall's half width at half maximum plus a margin) from every
  boundary. Crests are the pixels where the response is a maximum across the wall (along the
  Hessian's eigenvector) and the smoothed image drops on both sides ``far`` away (by
  PROMINENCE, as above), kept by hysteresis against the ridges pixel noise makes: pieces above
  ``low = base + max(K_LOW x spread, F_LOW x contrast)`` holding a pixel above ``high`` (the
  same with :data:`K_HIGH`, :data:`F_HIGH`). A piece counts from :data:`INNER` pixels off the
  boundary (so a wall running into the cell's boundary keeps its length) when its part beyond
  ``far`` spans :data:`MIN_EXTENT` pixels and the whole piece half the cell's equivalent
  radius (bounding box diagonals). Percentages are of the annotated cells: the cells the image
  shows split by a wall the labels do not have.
- ``wall_offset_px``: over the segments with a wall within ``2 x far`` (the response test of
  ``missed_walls`` passed by some bin), the median of ``|t|`` at the crest of the segment's
  median-response profile at the finest scale (:data:`LOCATE_SIGMA`, so a brighter neighbour
  cell moves it least), refined by a parabola through the peak bin and its neighbours:
  unsigned, 0 = walls exactly on the boundaries. ``outline_offset_px``: the same over the
  tissue outline, signed: positive when the image's wall lies outside the labels (in the
  background), negative inside the cells. A boundary-mode sketch draws each wall as its two
  cells' rims, so its crest lies up to about a pixel into the brighter cell.

``width`` is the membrane's Gaussian SD in pixels as the calibration measures it
(``membrane_width_px``); None measures it per image the same way (:func:`estimate_width`).

All functions take spatial arrays ``(Y, X)`` or ``(Z, Y, X)``: the image (any intensity
range) and integer instance labels of the same shape; pixels are taken as isotropic.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from workflow_lib.calibrate.membranes import boundary_depth, membrane_sigma
from workflow_lib.calibrate.stats import robust_stats
from workflow_lib.simulate.labels import equivalent_radius

#: Fewest touching pixel faces of a counted wall segment, by spatial dimensions.
MIN_FACES = {2: 3, 3: 9}
#: Smallest extent (pixels, bounding box diagonal) of an unannotated wall's far part.
MIN_EXTENT = 4.0
#: Margin (pixels) added to a wall's half width: how far a crest may stray from its boundary.
MARGIN = 1.5
#: Membrane SD (pixels) where it is neither given nor measurable: the sketch's default blur.
DEFAULT_WIDTH = 1.0
#: Shown walls: robust SDs of the interiors' response (for one independent pixel) and share
#: of the walls' contrast that a segment's median response must exceed.
K_WALL, F_WALL = 3.0, 0.3
#: Crest hysteresis: robust SDs of the interiors' response and shares of the walls' contrast.
K_LOW, K_HIGH = 3.0, 4.0
F_LOW, F_HIGH = 0.1, 0.2
#: A wall's crest stands above its brighter side by this share of its height over the darker.
PROMINENCE = 0.1
#: Crest pixels this near (pixels) to a boundary belong to its wall.
INNER = 1.0
#: Scale (pixels) at which a wall's crest is located for its offset.
LOCATE_SIGMA = 1.0
_BIN = 0.5


def ridge(image: np.ndarray, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """(response float32 (*S), unit direction across the wall float32 (*S, ndim)) of ``image``
    at scale ``sigma`` pixels: ``-sigma**2 x`` the most negative Hessian eigenvalue and its
    eigenvector."""
    img = np.asarray(image, np.float64)
    nd = img.ndim
    hess = np.empty((*img.shape, nd, nd), np.float32)
    for i in range(nd):
        for j in range(i, nd):
            order = [0] * nd
            order[i] += 1
            order[j] += 1
            hess[..., i, j] = hess[..., j, i] = ndimage.gaussian_filter(img, sigma, order=order)
    values, vectors = np.linalg.eigh(hess)
    return -sigma**2 * values[..., 0], vectors[..., :, 0]


def _prominence(peak: np.ndarray, sides: np.ndarray) -> np.ndarray:
    """(peak - brighter side) / (peak - darker side) over the sides' first axis, ignoring
    NaN sides; 0 where the peak is not above the brighter side, 1 where no side is known."""
    known = np.isfinite(sides)
    bright = np.where(known, sides, -np.inf).max(0)
    dark = np.where(known, sides, np.inf).min(0)
    above = peak > bright
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(above, (peak - bright) / np.where(above, peak - dark, 1.0), 0.0)
    return np.where(known.any(0), share, 1.0)


def crest_candidates(image: np.ndarray, response: np.ndarray, direction: np.ndarray,
                     sigma: float, reach: float) -> np.ndarray:
    """bool (*S): pixels whose response is a maximum along ``direction`` (against both
    neighbours one pixel away, linearly interpolated), where the image smoothed by ``sigma``
    drops ``reach`` pixels away on both sides by PROMINENCE (a wall, not a step's bright side)."""
    grid = np.indices(response.shape, np.float32)
    step = np.moveaxis(direction, -1, 0)

    def at(values, offset):
        return ndimage.map_coordinates(values, grid + offset, order=1, mode="nearest")

    top = (response >= at(response, step)) & (response >= at(response, -step))
    smooth = ndimage.gaussian_filter(np.asarray(image, np.float64), sigma)
    sides = np.stack([at(smooth, reach * step), at(smooth, -reach * step)])
    return top & (_prominence(smooth, sides) > PROMINENCE)


def hysteresis(candidates: np.ndarray, response: np.ndarray, low: float, high: float) -> np.ndarray:
    """bool (*S): ``candidates`` above ``low`` in connected pieces (full connectivity) holding
    a pixel above ``high``."""
    above = candidates & (response > low)
    pieces, n = ndimage.label(above, np.ones((3,) * response.ndim, bool))
    strong = np.zeros(n + 1, bool)
    strong[pieces[above & (response > high)]] = True
    strong[0] = False
    return strong[pieces]


def crack_distance(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(float32 distance from each pixel centre to the nearest crack between it and a pixel of
    another label: the EDT distance to that pixel minus 0.5; int64 label across that crack,
    -1 for a cell pixel nearest to the image border, and everywhere without cells)."""
    labels = np.asarray(labels)
    nd = labels.ndim
    dist = np.zeros(labels.shape, np.float32)
    other = np.full(labels.shape, -1, np.int64)
    cell = labels > 0
    if not cell.any():
        return dist, other
    if not cell.all():
        outside, near = ndimage.distance_transform_edt(~cell, return_indices=True)
        dist[~cell] = outside[~cell] - 0.5
        other[~cell] = labels[tuple(near)][~cell]
    # Per cell in its bounding box padded by one pixel (-1 beyond the image border), as
    # targets.depth, so the cost follows the cells' volume.
    padded = np.pad(labels.astype(np.int64), 1, constant_values=-1)
    core = (slice(1, -1),) * nd
    for cid, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        window = padded[tuple(slice(s.start, s.stop + 2) for s in box)]
        own = window == cid
        d, near = ndimage.distance_transform_edt(own, return_indices=True)
        inner = own[core]
        dist[box][inner] = d[core][inner] - 0.5
        other[box][inner] = window[tuple(near)][core][inner]
    return dist, other


def estimate_width(image: np.ndarray, labels: np.ndarray) -> float:
    """Membrane SD (pixels) as the calibration measures it (:mod:`.calibrate.membranes`: a
    Gaussian fitted to the intensity, per cell relative to its outermost ring, against the
    distance to the boundary), with the median of the pixels the labels call background as the
    background level (else the image's 1st percentile); :data:`DEFAULT_WIDTH` where the fit
    fails. Kept within [0.5, max(1, a quarter of the cells' median equivalent radius)]: a
    wider wall could not be told from the cell it bounds."""
    labels = np.asarray(labels)
    image = np.asarray(image, np.float64)
    sizes = np.bincount(labels.ravel().astype(np.int64))[1:]
    sizes = sizes[sizes > 0]
    if not len(sizes):
        return DEFAULT_WIDTH
    cap = max(1.0, 0.25 * float(np.median(equivalent_radius(sizes, labels.ndim))))
    background = labels == 0
    bg = float(np.median(image[background])) if background.any() else float(np.percentile(image, 1))
    with np.errstate(invalid="ignore", divide="ignore"):   # ids absent from the labels
        width = membrane_sigma(image, labels, boundary_depth(labels), bg)
    if width is None or not np.isfinite(width):
        return DEFAULT_WIDTH
    return float(np.clip(width, 0.5, cap))


def _segment_keys(labels: np.ndarray, top: int) -> np.ndarray:
    """Sorted keys ``a * top + b`` (``a > b``) of the segments with at least MIN_FACES faces."""
    keys = []
    for axis in range(labels.ndim):
        a = np.moveaxis(labels, axis, 0)[:-1].astype(np.int64)
        b = np.moveaxis(labels, axis, 0)[1:].astype(np.int64)
        diff = a != b
        keys.append(np.maximum(a, b)[diff] * top + np.minimum(a, b)[diff])
    found, faces = np.unique(np.concatenate(keys), return_counts=True)
    return found[faces >= MIN_FACES[labels.ndim]]


def _group_median(group: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """Median of ``values`` per group 0..n-1 (NaN for an empty group)."""
    if not len(values):
        return np.full(n, np.nan)
    ranked = values[np.lexsort((values, group))]
    count = np.bincount(group, minlength=n)
    start = np.concatenate([[0], np.cumsum(count)[:-1]])
    lo = np.minimum(start + (count - 1) // 2, len(ranked) - 1)
    hi = np.minimum(start + count // 2, len(ranked) - 1)
    return np.where(count > 0, 0.5 * (ranked[lo] + ranked[hi]), np.nan)


def _crest(profile: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Per row of ``profile`` (segments x bins, NaN in empty bins): the abscissa (``at``) of
    its maximum, refined by the vertex of the parabola through it and its two neighbours
    where both are filled."""
    rows = np.arange(len(profile))
    nb = profile.shape[1]
    filled = np.isfinite(profile)
    peak = np.argmax(np.where(filled, profile, -np.inf), axis=1)
    prev, nxt = np.maximum(peak - 1, 0), np.minimum(peak + 1, nb - 1)
    x0, x1, x2 = at[rows, prev], at[rows, peak], at[rows, nxt]
    y0, y1, y2 = profile[rows, prev], profile[rows, peak], profile[rows, nxt]
    ok = (peak > 0) & (peak < nb - 1) & filled[rows, prev] & filled[rows, nxt]
    with np.errstate(invalid="ignore", divide="ignore"):
        num = (x1 - x0) ** 2 * (y1 - y2) - (x1 - x2) ** 2 * (y1 - y0)
        den = (x1 - x0) * (y1 - y2) - (x1 - x2) * (y1 - y0)
        vertex = x1 - 0.5 * num / den
    ok &= np.isfinite(vertex)
    return np.where(ok, np.clip(vertex, x0, x2), x1)


def _extents(pieces: np.ndarray, n: int) -> np.ndarray:
    """Bounding box diagonal (pixels) of pieces 1..n; 0 for an absent piece."""
    return np.array([np.sqrt(sum((s.stop - s.start) ** 2 for s in box)) if box else 0.0
                     for box in ndimage.find_objects(pieces, n)])


def wall_scores(image: np.ndarray, labels: np.ndarray, width: float | None = None) -> dict:
    """Per-image counts behind :func:`wall_completeness` (module doc), plus arrays:
    ``segment_offsets`` and ``outline_offsets`` (pixels, for pooling), ``missed_segments``
    (M, 2) label pairs ``(a, b)`` and ``split_cells`` (the cells counted as unannotated)."""
    labels = np.asarray(labels)
    image = np.asarray(image, np.float64)
    nd = labels.ndim
    ids = np.unique(labels)
    ids = ids[ids > 0]
    out = {"cells": len(ids), "annotated_walls": 0, "missed_walls": 0, "unannotated_walls": 0,
           "width_px": None, "segment_offsets": np.zeros(0), "outline_offsets": np.zeros(0),
           "missed_segments": np.zeros((0, 2), np.int64), "split_cells": np.zeros(0, np.int64)}
    if not len(ids):
        return out
    width = estimate_width(image, labels) if width is None else float(width)
    out["width_px"] = width
    sigma = max(width, 1.0)
    near, far = 0.5 * width + MARGIN, 1.18 * width + MARGIN
    top = int(labels.max()) + 1
    seg_keys = _segment_keys(labels, top)
    n_seg = len(seg_keys)
    out["annotated_walls"] = n_seg

    dist, other = crack_distance(labels)
    response, direction = ridge(image, sigma)
    # Interiors: beyond every wall's half width, where a wall's filter response has died down.
    interior = (labels > 0) & (dist > far)
    if interior.sum() < 20:
        interior = labels > 0
    base, spread = robust_stats(response[interior])
    edge = (dist == 0.5) & (other >= 0)
    contrast = max(float(np.median(response[edge])) - base, 0.0) if edge.any() else 0.0
    # A floor for noise-free images, whose interiors have no spread to scale by.
    eps = 1e-6 * max(float(np.ptp(image)), 1e-12)

    # Unannotated: crest pieces inside cells reaching beyond `far`.
    candidates = crest_candidates(image, response, direction, sigma, far)
    low = base + max(K_LOW * spread, F_LOW * contrast, eps)
    high = base + max(K_HIGH * spread, F_HIGH * contrast, eps)
    inside = hysteresis(candidates, response, low, high) & (labels > 0) & (dist > INNER)
    pieces, n = ndimage.label(inside, np.ones((3,) * nd, bool))
    if n:
        extent = _extents(pieces, n)
        far_extent = _extents(np.where(dist > far, pieces, 0), n)
        owner = np.zeros(n + 1, np.int64)
        owner[pieces[inside]] = labels[inside]
        size = np.bincount(labels.ravel().astype(np.int64), minlength=top)
        need = np.maximum(0.5 * equivalent_radius(size[owner[1:]], nd), MIN_EXTENT)
        split = np.unique(owner[1:][(far_extent >= MIN_EXTENT) & (extent >= need)])
        out["split_cells"], out["unannotated_walls"] = split, len(split)
    if not n_seg:
        return out

    # Missed and offsets: each segment's profiles across it, from its own pixels.
    own = labels.astype(np.int64)
    pix_key = np.maximum(own, other) * top + np.minimum(own, other)
    seg = np.minimum(np.searchsorted(seg_keys, pix_key), n_seg - 1)
    t = np.where(own >= other, dist, -dist)
    reach = 2 * far
    valid = (other >= 0) & (other != own) & (seg_keys[seg] == pix_key) & (np.abs(t) <= reach)
    # Bins of 0.5 pixels by |t| on either side of the crack: no pixel centre lies on it
    # (|t| >= 0.5), so there is no bin at 0; a bin's abscissa is its pixels' mean t.
    half = int(round(reach / _BIN))
    k = np.round(np.abs(t[valid]) / _BIN).astype(np.int64)
    nb = 2 * half
    index = seg[valid] * nb + np.where(t[valid] < 0, half - k, half - 1 + k)

    def profile(values: np.ndarray) -> np.ndarray:
        return _group_median(index, values[valid], n_seg * nb).reshape(n_seg, nb)

    count = np.bincount(index, minlength=n_seg * nb).reshape(n_seg, nb)
    at = np.bincount(index, t[valid], minlength=n_seg * nb).reshape(n_seg, nb)
    at = at / np.maximum(count, 1)
    # One independent pixel per 2 sigma along the wall (per (2 sigma)^2 of a 3D wall).
    noise = spread * np.sqrt(np.minimum(1.0, (2 * sigma) ** (nd - 1) / np.maximum(count, 1)))
    bright = profile(response) > base + np.maximum(K_WALL * noise, max(F_WALL * contrast, eps))
    on = (count > 0) & (np.abs(at) <= near)
    beyond = (count > 0) & ~on
    level = profile(image)
    sides = np.stack([np.where(beyond & (at < 0), level, np.inf).min(1),
                      np.where(beyond & (at > 0), level, np.inf).min(1)])
    sides[np.isinf(sides)] = np.nan
    wall = _prominence(np.where(on, level, -np.inf).max(1), sides) > PROMINENCE
    missed = ~((bright & on).any(axis=1) & wall)
    out["missed_walls"] = int(np.count_nonzero(missed))
    out["missed_segments"] = np.stack([seg_keys[missed] // top, seg_keys[missed] % top], 1)

    walled = bright.any(axis=1)
    crest_t = _crest(profile(ridge(image, LOCATE_SIGMA)[0]), at)
    outline = seg_keys % top == 0
    out["segment_offsets"] = np.abs(crest_t[walled])
    out["outline_offsets"] = -crest_t[walled & outline]
    return out


def wall_completeness(
    images: Sequence[np.ndarray], labels: Sequence[np.ndarray], width: float | None = None,
) -> dict[str, float | int | None]:
    """Wall completeness scores (module doc) pooled over image/label pairs; JSON-ready.

    Keys: ``cells``, ``annotated_walls``, ``missed_walls`` and ``missed_walls_pct`` (of the
    annotated walls), ``unannotated_walls`` and ``unannotated_walls_pct`` (of the cells),
    ``wall_offset_px`` and ``offset_walls`` (the segments it is the median of),
    ``outline_offset_px``, ``width_px`` (median membrane SD used); percentages and offsets
    are None where nothing was there to count.
    """
    totals = {"cells": 0, "annotated_walls": 0, "missed_walls": 0, "unannotated_walls": 0}
    offsets, outline, widths = [np.zeros(0)], [np.zeros(0)], []
    for image, lab in zip(images, labels):
        scores = wall_scores(image, lab, width)
        for key in totals:
            totals[key] += int(scores[key])
        offsets.append(scores["segment_offsets"])
        outline.append(scores["outline_offsets"])
        if scores["width_px"] is not None:
            widths.append(scores["width_px"])
    offsets, outline = np.concatenate(offsets), np.concatenate(outline)

    def pct(n: int, of: int) -> float | None:
        return 100.0 * n / of if of else None

    return {
        **totals,
        "missed_walls_pct": pct(totals["missed_walls"], totals["annotated_walls"]),
        "unannotated_walls_pct": pct(totals["unannotated_walls"], totals["cells"]),
        "wall_offset_px": float(np.median(offsets)) if len(offsets) else None,
        "offset_walls": int(len(offsets)),
        "outline_offset_px": float(np.median(outline)) if len(outline) else None,
        "width_px": float(np.median(widths)) if widths else None,
    }
