"""Per-pixel targets for segmentation training: boundary and signed distance maps."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from workflow_lib.simulate.labels import inner


def depth(labels: np.ndarray) -> np.ndarray:
    """Distance (pixels, float32) from each instance pixel to the nearest pixel outside its
    instance (another id, background or beyond the image border); 0 on background.

    The outermost ring of an instance has depth 1. ``labels``: spatial (Y, X) or (Z, Y, X).
    Computed per instance inside its bounding box padded by one pixel, so the cost follows the
    instances' volume, not the image's.
    """
    out = np.zeros(labels.shape, np.float32)
    for cid, box in enumerate(ndimage.find_objects(labels), start=1):
        if box is None:
            continue
        own = labels[box] == cid
        d = ndimage.distance_transform_edt(np.pad(own, 1))[(slice(1, -1),) * labels.ndim]
        out[box][own] = d[own]
    return out


def boundary(labels: np.ndarray) -> np.ndarray:
    """uint8 mask of the inner boundary: instance pixels with a face neighbour of another id
    (background or another instance) or on the image border. Spatial in, spatial out."""
    return ((labels > 0) & ~inner(labels)).astype(np.uint8)


def signed_distance(labels: np.ndarray) -> np.ndarray:
    """float32 signed distance: :func:`depth` inside instances (>= 1), minus the distance to
    the nearest instance pixel on background (<= -1; all -inf-free: an empty mask gives 0)."""
    inside = depth(labels)
    cell = labels > 0
    if not cell.any():
        return inside
    outside = ndimage.distance_transform_edt(~cell)
    return np.where(cell, inside, -outside).astype(np.float32)


def edge_distance(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(float32 signed distance of each pixel centre to the nearest mask edge, positive inside;
    id of the nearest instance for every pixel). The edge lies half a pixel outside the outermost
    instance pixels, so :func:`depth` - 0.5 inside and -(distance to an instance - 0.5) outside."""
    cell = labels > 0
    if not cell.any():
        return np.zeros(labels.shape, np.float32), np.zeros(labels.shape, labels.dtype)
    outside, nearest = ndimage.distance_transform_edt(~cell, return_indices=True)
    signed = np.where(cell, depth(labels) - 0.5, -(outside - 0.5))
    return signed.astype(np.float32), labels[tuple(nearest)]


def per_slice(fn, labels: np.ndarray, spatial: int) -> np.ndarray:
    """Apply a spatial function to every leading-axis slice of ``labels`` (C or T, C axes)."""
    lead = labels.shape[: labels.ndim - spatial]
    flat = labels.reshape((-1, *labels.shape[-spatial:]))
    return np.stack([fn(x) for x in flat]).reshape((*lead, *flat.shape[1:]))
