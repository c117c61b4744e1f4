"""Annotation completeness: does the image show an object wherever, and only where, the mask has one?

Unlike the fidelity score (a watershed seeded with the known number of objects), nothing here
knows how many objects there should be:

- **Detection.** The image is smoothed (Gaussian, ``sigma`` pixels); a pixel is foreground when
  it exceeds the background median by ``k`` robust standard deviations (1.4826 x the median
  absolute deviation), both measured on the pixels the mask calls background; connected
  foreground pieces of at least ``min_size`` pixels are the detected objects (default
  :data:`MIN_SIZE`: a disc of radius 2.5 pixels in 2D, 20 pixels; a ball of that radius in
  3D, 65 voxels, so a speck two planes thick is not a nucleus in a volume either).
- ``unannotated_pct``: detected objects that overlap no annotated instance, in % of the number
  of annotated instances (objects the image shows but the labels miss).
- ``missed_pct``: annotated instances that overlap no detected object, in % of the annotated
  (labels the image does not show).
- ``boundary_offset_px``: where the image's object edge lies relative to the mask edge, median
  over instances, in pixels; positive when the visible object extends beyond its mask (a
  halo), negative when it stops inside. Per instance, the mean intensity is profiled against
  the signed distance to the mask edge (pixel centres; inside positive) within the instance's
  own neighbourhood (pixels nearer to it than to any other instance), and the edge is where
  the profile crosses halfway between the instance's interior (distance >= ``inner``) and the
  background around it (distance <= -``outer``).

All functions take spatial arrays ``(Y, X)`` or ``(Z, Y, X)``: the image (any intensity range)
and integer instance labels of the same shape.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from workflow_lib.calibrate.stats import robust_stats
from workflow_lib.sketch.targets import edge_distance

#: Smallest detected object by spatial dimensions: the area of a disc (2D) and the volume of a
#: ball (3D) of radius 2.5 pixels.
MIN_SIZE = {2: 20, 3: 65}
#: Bins of the edge profile: signed distance in pixels, from -_REACH to +_REACH.
_REACH = 8.0
_BIN = 0.5


def detect_objects(
    image: np.ndarray, labels: np.ndarray, sigma: float = 1.0, k: float = 4.0,
    min_size: int | None = None,
) -> np.ndarray:
    """Objects visible in ``image`` (int32 ids 1..N), found as described in the module doc."""
    if min_size is None:
        min_size = MIN_SIZE[np.ndim(image)]
    smooth = ndimage.gaussian_filter(np.asarray(image, np.float32), sigma)
    median, spread = robust_stats(smooth[labels == 0] if np.any(labels == 0) else smooth.ravel())
    foreground = smooth > median + k * max(spread, 1e-6)
    found, n = ndimage.label(foreground)
    if n == 0:
        return found
    sizes = np.bincount(found.ravel(), minlength=n + 1)
    keep = sizes >= min_size
    keep[0] = False
    lut = np.zeros(n + 1, np.int32)
    lut[keep] = np.arange(1, int(keep.sum()) + 1)
    return lut[found]


def boundary_offsets(
    image: np.ndarray, labels: np.ndarray, inner: float = 2.0, outer: float = 4.0
) -> np.ndarray:
    """Per-instance offset (pixels) of the image edge from the mask edge; NaN where undefined."""
    labels = np.asarray(labels)
    top = int(labels.max())
    if top == 0:
        return np.zeros(0)
    signed, owner = edge_distance(labels)
    bins = np.arange(-_REACH, _REACH + _BIN, _BIN)
    nb = len(bins)
    near = np.abs(signed) <= _REACH
    b = np.clip(np.round((signed[near] + _REACH) / _BIN).astype(np.int64), 0, nb - 1)
    index = owner[near].astype(np.int64) * nb + b
    values = np.asarray(image, np.float64)[near]
    count = np.bincount(index, minlength=(top + 1) * nb).reshape(top + 1, nb)
    total = np.bincount(index, values, minlength=(top + 1) * nb).reshape(top + 1, nb)
    with np.errstate(invalid="ignore", divide="ignore"):
        profile = total / count
        inside = (total[:, bins >= inner].sum(1)) / count[:, bins >= inner].sum(1)
        around = (total[:, bins <= -outer].sum(1)) / count[:, bins <= -outer].sum(1)
    half = (inside + around) / 2
    offsets = np.full(top + 1, np.nan)
    for cid in range(1, top + 1):
        prof, level = profile[cid], half[cid]
        if not np.isfinite(level) or inside[cid] <= around[cid]:
            continue
        valid = np.isfinite(prof)
        d, p = bins[valid], prof[valid]
        # Walk outwards from the interior: the first bin at or below the half level.
        order = np.argsort(-d)
        d, p = d[order], p[order]
        below = np.nonzero(p <= level)[0]
        if not len(below) or below[0] == 0:
            continue
        j = below[0]
        d0, d1, p0, p1 = d[j - 1], d[j], p[j - 1], p[j]
        edge = d0 + (level - p0) * (d1 - d0) / (p1 - p0) if p1 != p0 else d1
        offsets[cid] = -edge
    return offsets[1:]


def completeness(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    sigma: float = 1.0,
    k: float = 4.0,
    min_size: int | None = None,
) -> dict[str, float | int | None]:
    """Completeness scores (module doc) pooled over image/label pairs; JSON-ready."""
    annotated = unannotated = missed = detected = 0
    offsets = []
    for image, lab in zip(images, labels):
        lab = np.asarray(lab)
        found = detect_objects(image, lab, sigma, k, min_size)
        ids = np.unique(lab)
        ids = ids[ids > 0]
        annotated += len(ids)
        n_found = int(found.max())
        detected += n_found
        if n_found:
            touches = np.bincount(found[lab > 0], minlength=n_found + 1)[1:]
            unannotated += int(np.count_nonzero(touches == 0))
        if len(ids):
            seen = np.unique(lab[found > 0])
            missed += len(np.setdiff1d(ids, seen))
            offsets.append(boundary_offsets(image, lab))
    all_offsets = np.concatenate(offsets) if offsets else np.zeros(0)
    all_offsets = all_offsets[np.isfinite(all_offsets)]
    pct = (lambda n: 100.0 * n / annotated) if annotated else (lambda n: None)
    return {
        "annotated": annotated,
        "detected": detected,
        "unannotated": unannotated,
        "unannotated_pct": pct(unannotated),
        "missed": missed,
        "missed_pct": pct(missed),
        "boundary_offset_px": float(np.median(all_offsets)) if len(all_offsets) else None,
        "boundary_instances": int(len(all_offsets)),
    }
