"""Measuring real membrane-stain images (bright cell boundaries, dim cell interiors, dark
background outside the tissue): what a simulation of kind ``membranes`` needs to look like them.

The membrane counterpart of :mod:`.measure`, whose per-object statistics, summaries and
settings it reuses. Cells are found without annotation (:func:`find_cells`) unless masks are
given:

1. Gaussian smoothing (``sigma`` pixels). The background is the darkest of three intensity
   classes (outside, dim interiors, membranes): the pixels below the Otsu threshold of the
   pixels below the Otsu threshold; its level and noise are their median and 1.4826 MAD.
2. The tissue: everything 3 noise SDs above the background (the membrane network), closed by 2
   pixels and hole-filled, so the cells' dim interiors, enclosed by membranes, join it and the
   outside background does not.
3. A watershed of the smoothed image inside the tissue, seeded by its h-minima of depth
   ``h = max(0.05 x (membrane level - background), 3 noise SDs)`` (membrane level: the 95th
   percentile of the tissue): one basin per cell, the watershed lines on the membranes' ridges.
   A fraction of the contrast, not ``MeasureSettings.h`` (pixels of distance), sets the depth:
   the seeds are intensity minima here, and a cell's interior is darker than its membrane by a
   share of the membrane's brightness whatever the image units.
4. Cells under ``min_size`` pixels (voxels) lose their seed and the watershed is run again, so
   their pixels join their neighbours (the tissue stays tiled).
5. The 3-SD threshold of step 2 lies in the blurred fall-off outside the outer membrane: pixels
   below half the membrane level that are reached from the outside within ``_RIM`` pixels are
   cut off, so the tissue's outline is the half maximum of its edge (as a nucleus' in
   :mod:`.measure`) and a dim gap in a membrane cannot open a cell to the outside.

Per cell (spatial ``(Y, X)`` or ``(Z, Y, X)`` arrays, lengths in physical pixels as in
:mod:`.measure`): ``radius``, ``elongation``, ``solidity`` (2D), ``z_extent_ratio`` (3D) and
``nn_distance`` exactly as for nuclei; ``brightness``: the mean intensity of the cell's
membrane band (its pixels within the membrane's half width of its boundary) above the
background, relative to the 95th percentile over cells (``brightness_scale``, image units).
Cells touching the image border take part in the density, neighbour and profile statistics only.

The membrane's apparent thickness (``membrane_width_px``, also ``edge_sigma_px``, the sketch's
blur): intensities relative to their cell's outermost ring, ``(I - bg) / (ring - bg)``,
averaged in 0.5-pixel bins of the distance to the cell's boundary (:func:`.targets.depth` - 0.5,
on the labels extended beyond the image so its border is no membrane). A membrane between two
cells is seen from both sides, so this half profile is the whole profile folded at the
boundary. Above the profile's floor (its lowest bin, the interiors' level) a Gaussian
``A exp(-d^2 / 2 w^2)`` centred on the boundary is fitted to the bins down to 20 % of the
first (a line through ``log`` against ``d^2``): ``w`` is the membrane sigma (its FWHM / 2.355
for a Gaussian membrane; a thin membrane's is the blur).

Per image: ``density`` (cells per 10^4 tissue pixels in 2D, 10^6 tissue voxels in 3D: a
calibrated simulation scales it to its own tissue) and ``foreground`` (tissue fraction).
Pooled: background level and noise (:func:`.measure._background` of the tissue: the pixels at
least 3 pixels outside it; where the tissue leaves none, of the pixels 3 pixels away from the
membranes, the cells' interiors, whose level then bounds the background from above), the
radial profile (:func:`.measure._radial_profile`: bin 0 the rim, 9 the centre) and the texture
(:mod:`.texture`, the membrane bands as its ``objects``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import ndimage
from skimage.filters import threshold_otsu
from skimage.morphology import h_minima
from skimage.segmentation import watershed

from workflow_lib.calibrate.measure import MeasureSettings, Pool, _background, relabelled
from workflow_lib.calibrate.stats import robust_stats
from workflow_lib.calibrate.texture import measure_texture
from workflow_lib.simulate import MEMBRANE_STAIN
from workflow_lib.sketch.targets import depth

#: Seed depth as a share of the membranes' contrast over the background (module doc, step 3).
_SEED_DEPTH = 0.05
_CLOSING = 2
_RIM = 5
#: Reach (pixels) of the membrane profile from the boundary, and its bin width.
_PROFILE_REACH = 8.0
_PROFILE_BIN = 0.5
#: The Gaussian fit stops where the profile falls below this share of its first bin.
_FIT_FLOOR = 0.2
#: sigma -> FWHM of a Gaussian (2 sqrt(2 ln 2)).
_FWHM = 2.355


def _background_class(smooth: np.ndarray) -> tuple[float, float]:
    """(median, robust SD) of the darkest of three intensity classes (module doc, step 1)."""
    low = smooth[smooth <= threshold_otsu(smooth)]
    if low.max() > low.min():
        low = low[low <= threshold_otsu(low)]
    return robust_stats(low)


def _watershed(smooth: np.ndarray, markers: np.ndarray, tissue: np.ndarray, min_size: int) -> np.ndarray:
    """Basins of ``smooth`` in ``tissue``; basins under ``min_size`` lose their seed and are
    flooded again by their neighbours."""
    labels = watershed(smooth, markers, mask=tissue)
    small = np.bincount(labels.ravel(), minlength=int(markers.max()) + 1) < min_size
    small[0] = False
    if small.any():
        labels = watershed(smooth, np.where(small[markers], 0, markers), mask=tissue)
    return labels


def find_cells(image: np.ndarray, s: MeasureSettings = MeasureSettings()) -> np.ndarray:
    """Unsupervised instance segmentation of cells in a membrane-stain image (module doc),
    int32 labels of the image's spatial shape (0 = background outside the tissue)."""
    smooth = ndimage.gaussian_filter(np.asarray(image, np.float32), s.sigma)
    if smooth.max() <= smooth.min():
        return np.zeros(smooth.shape, np.int32)
    bg, noise = _background_class(smooth)
    noise = max(noise, 1e-6)
    above = smooth > bg + 3.0 * noise
    # Closing bridges small gaps in the membranes; or-ing the original keeps the tissue that
    # the closing's erosion takes off at the image border.
    tissue = ndimage.binary_fill_holes(above | ndimage.binary_closing(above, iterations=_CLOSING))
    if not tissue.any():
        return np.zeros(smooth.shape, np.int32)
    top = float(np.percentile(smooth[tissue], 95))
    h = max(_SEED_DEPTH * (top - bg), 3.0 * noise)
    markers, _ = ndimage.label(h_minima(smooth, h) & tissue)
    labels = _watershed(smooth, markers, tissue, s.min_size)
    dim = smooth <= bg + 0.5 * (top - bg)
    rim = ndimage.binary_dilation(~tissue, iterations=_RIM, mask=dim)
    return relabelled(np.where(rim, 0, labels))


def boundary_depth(labels: np.ndarray) -> np.ndarray:
    """Distance (pixels) of every cell pixel to its cell's boundary (:func:`.targets.depth` -
    0.5), on the labels extended by ``_PROFILE_REACH`` pixels beyond the image so the image
    border is no boundary; 0 outside the cells."""
    pad = int(np.ceil(_PROFILE_REACH)) + 1
    inner = (slice(pad, -pad),) * labels.ndim
    d = depth(np.pad(labels, pad, mode="edge"))[inner]
    return np.where(labels > 0, d - 0.5, 0.0)


def membrane_sigma(
    image: np.ndarray, labels: np.ndarray, dist: np.ndarray, bg: float
) -> float | None:
    """Membrane sigma (pixels) of a Gaussian fitted to the pooled, per-cell normalised
    intensity against the distance to the boundary (module doc); None if it cannot be told."""
    top = int(labels.max())
    ring_pixels = np.where((labels > 0) & (dist < 1.0), labels, 0)
    ring = np.full(top + 1, np.nan)
    ring[1:] = ndimage.mean(image, ring_pixels, np.arange(1, top + 1))
    level = ring[labels] - bg
    near = (labels > 0) & (dist <= _PROFILE_REACH) & (level > 0)
    if near.sum() < 10:
        return None
    rel = (image[near] - bg) / level[near]
    bins = np.floor(dist[near] / _PROFILE_BIN).astype(int)
    count = np.bincount(bins)
    ok = count > 0
    centres = ((np.arange(len(count)) + 0.5) * _PROFILE_BIN)[ok]
    prof = (np.bincount(bins, rel) / np.maximum(count, 1))[ok]
    peak = prof - prof.min()
    # The bins from the boundary inwards until the peak has fallen below _FIT_FLOOR of its first.
    low = np.nonzero(peak < _FIT_FLOOR * peak[0])[0]
    end = low[0] if len(low) else len(peak)
    if end < 2 or peak[0] <= 0:
        return None
    slope = np.polyfit(centres[:end] ** 2, np.log(peak[:end]), 1, w=np.sqrt(count[ok][:end]))[0]
    return float(np.sqrt(-0.5 / slope)) if slope < 0 else None


def measure_membranes(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray | None],
    s: MeasureSettings = MeasureSettings(),
) -> dict:
    """Statistics of cells in real membrane-stain ``images`` (module doc); ``masks[k]`` (cell
    instance labels) replaces :func:`find_cells` for image k where given. Returns a JSON-ready
    dict with the keys of :func:`.measure.measure_nuclei` (``stain`` ``membranes``, density per
    tissue area) plus ``membrane_width_px``."""
    if not images:
        raise ValueError("no images to calibrate on")
    ndim = images[0].ndim
    pool = Pool(ndim, s.z_scale)
    widths, found = [], []
    # Segmentation, background and membrane widths first: the membrane bands of the
    # brightness and texture are as wide as the pooled width.
    for image, mask in zip(images, masks):
        image = np.asarray(image, np.float32)
        labels = relabelled(np.asarray(mask)) if mask is not None else find_cells(image, s)
        tissue = labels > 0
        dist = boundary_depth(labels)
        outside = not ndimage.binary_dilation(tissue, iterations=3).all()
        # Without an outside, the pixels away from the membranes (the cell interiors) stand in.
        background = _background(image, tissue if outside else tissue & (dist < 1.0))
        pool.add_image("mask" if mask is not None else "unsupervised", labels, int(tissue.sum()), background)
        if labels.max():
            sigma = membrane_sigma(image, labels, dist, background[0])
            if sigma is not None:
                widths.append(sigma)
        found.append((image, labels, dist, background[0]))
    width = float(np.median(widths)) if widths else None
    # The band where a Gaussian membrane is above half its peak: half its FWHM from the boundary.
    band = max(0.5 * _FWHM * width, 1.0) if width is not None else 1.0
    for image, labels, dist, bg in found:
        membrane = (labels > 0) & (dist < band)
        pool.textures.append(measure_texture(image, membrane))
        if labels.max():
            pool.add_objects(image, labels, bg, np.where(membrane, labels, 0))
    unit = "cells per 1e4 tissue pixels" if ndim == 2 else "cells per 1e6 tissue voxels"
    return {**pool.result(MEMBRANE_STAIN, unit), "membrane_width_px": width, "edge_sigma_px": width}
