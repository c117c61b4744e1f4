"""Instance label clean-up shared by every kind: one connected component per id, ids 1..N."""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from skimage.measure import label as label_components


def largest_components(labels: np.ndarray, min_size: int = 1) -> np.ndarray:
    """Keep only the largest connected piece of every instance; drop instances < ``min_size``.

    ``labels``: integer array of any spatial ndim, 0 = background. Connectivity is the full
    neighbourhood's face neighbours (4 in 2D, 6 in 3D), so every kept id is one component under
    any usual definition. Returns an array of the same shape and dtype (ids not renumbered).
    """
    pieces = label_components(labels, background=0, connectivity=1)
    n = int(pieces.max())
    if n == 0:
        return labels.copy()
    sizes = np.bincount(pieces.ravel(), minlength=n + 1)
    # The id each piece belongs to: every pixel of a piece carries the same id.
    owner = np.zeros(n + 1, dtype=np.int64)
    owner[pieces.ravel()] = labels.ravel()
    order = np.lexsort((-sizes[1:], owner[1:])) + 1  # by owner, largest piece first
    first = np.ones(order.size, dtype=bool)
    first[1:] = owner[order[1:]] != owner[order[:-1]]
    keep = np.zeros(n + 1, dtype=bool)
    keep[order[first]] = True
    keep &= sizes >= min_size
    keep[0] = False
    return np.where(keep[pieces], labels, 0).astype(labels.dtype, copy=False)


def relabel(labels: np.ndarray, dtype=np.uint16) -> np.ndarray:
    """Renumber the ids present to 1..N in order of first appearance value (sorted), 0 stays 0."""
    ids = np.unique(labels)
    ids = ids[ids != 0]
    if ids.size and ids.size > np.iinfo(dtype).max:
        raise ValueError(f"{ids.size} instances do not fit in {np.dtype(dtype).name}")
    lut = np.zeros(int(labels.max()) + 1 if labels.size else 1, dtype=dtype)
    lut[ids] = np.arange(1, ids.size + 1, dtype=dtype)
    return lut[labels]


def clean(labels: np.ndarray, min_size: int = 1, dtype=np.uint16) -> np.ndarray:
    """:func:`largest_components` then :func:`relabel`: ids 1..N, each one component."""
    return relabel(largest_components(labels, min_size), dtype)


def sizes(labels: np.ndarray) -> np.ndarray:
    """Pixel count per id 0..max (index = id)."""
    return np.bincount(labels.ravel().astype(np.int64))


def equivalent_radius(size, ndim: int):
    """Radius of the disc (2D) or ball (3D) of ``size`` pixels (voxels); arrays elementwise."""
    unit = np.pi if ndim == 2 else 4.0 / 3.0 * np.pi
    return (size / unit) ** (1.0 / ndim)


def centroids(labels: np.ndarray, n: int) -> np.ndarray:
    """Centroid (ndim,) of ids 1..n as an (n, ndim) float array (NaN where an id is absent)."""
    if n == 0:
        return np.zeros((0, labels.ndim))
    return np.asarray(ndimage.center_of_mass(np.ones_like(labels, dtype=np.uint8), labels,
                                             np.arange(1, n + 1)), dtype=float).reshape(n, labels.ndim)


def inner(labels: np.ndarray) -> np.ndarray:
    """Bool mask of instance pixels whose face neighbours all carry the same id.

    Pixels on the image border count as not inner. Its complement within instances is the
    inner boundary (the outermost ring of pixels of every instance).
    """
    same = labels > 0
    for ax in range(labels.ndim):
        for shift in (1, -1):
            nb = np.roll(labels, shift, axis=ax)
            edge = [slice(None)] * labels.ndim
            edge[ax] = 0 if shift == 1 else -1
            nb[tuple(edge)] = 0
            same &= nb == labels
    return same
