"""Tile seams: does the background step where two synthesis tiles meet?

Synthesis denoises overlapping tiles and blends them at every step; where the tiles disagree
(few network calls, a model out of its training distribution) the image steps across the
overlap. The measure compares, along every axis, the mean background of the band just before
an overlap with the band just after it (the seam step) against the same difference between
bands as far apart inside single tiles (the texture's own step): a seam-free image has seam
steps like the others.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from scipy import ndimage


#: Width of the compared bands (pixels along the axis).
BAND = 8
#: Background pixels are at least this far (pixels) from every labelled object.
MARGIN = 3


def seam_steps(
    image: np.ndarray,
    labels: np.ndarray,
    starts: Sequence[Sequence[int]],
    tile: Sequence[int],
    band: int = BAND,
) -> dict[str, float | int | None]:
    """Seam steps of one image channel ``(*S)`` synthesised in tiles of ``tile`` pixels whose
    ``starts`` per axis are given (:func:`workflow_lib.diffusion.tiling.tile_layout`).

    ``labels`` ``(*S)`` or ``(L, *S)`` (any label channel marks an object): the background is
    what lies :data:`MARGIN` pixels away from every object. For every overlap between
    neighbouring tiles along an axis, the seam step is the mean difference between the
    ``band``-wide slab just after the overlap and the one just before it, over the positions
    (along the other axes) where both slabs are background: paired, so a background region
    that narrows does not count as a step. The reference step is the same difference between
    every pair of slabs as far apart that lie inside one tile, clear of all overlaps. Returns
    :func:`summary` of the two.
    """
    return summary(*_steps(image, labels, starts, tile, band))


def seam_summary(
    pairs: Iterable[tuple[np.ndarray, np.ndarray]],
    starts: Sequence[Sequence[int]],
    tile: Sequence[int],
    band: int = BAND,
) -> dict[str, float | int | None]:
    """:func:`seam_steps` pooled over many ``(image channel, labels)`` pairs of one layout."""
    seams: list[float] = []
    references: list[float] = []
    for image, labels in pairs:
        more_seams, more_references = _steps(image, labels, starts, tile, band)
        seams += more_seams
        references += more_references
    return summary(seams, references)


def summary(seams: Sequence[float], references: Sequence[float]) -> dict[str, float | int | None]:
    """``{"seam_step", "max_seam_step", "reference_step", "ratio", "seams"}``: the mean and
    the largest seam step, the mean reference step, the ratio of the two means (about 1
    without seams; None without a seam or a reference) and the number of seams measured (slab
    pairs without common background are skipped)."""
    seam = float(np.mean(seams)) if seams else None
    reference = float(np.mean(references)) if references else None
    ratio = seam / reference if seam is not None and reference else None
    return {"seam_step": seam, "max_seam_step": max(seams) if seams else None,
            "reference_step": reference, "ratio": ratio, "seams": len(seams)}


def _steps(image: np.ndarray, labels: np.ndarray, starts: Sequence[Sequence[int]],
           tile: Sequence[int], band: int) -> tuple[list[float], list[float]]:
    """The seam steps and the reference steps of one image channel (:func:`seam_steps`)."""
    image = np.asarray(image, np.float64)
    objects = np.asarray(labels) > 0
    if objects.ndim == image.ndim + 1:
        objects = objects.any(axis=0)
    background = ~ndimage.binary_dilation(objects, iterations=MARGIN) if objects.any() \
        else np.ones(image.shape, bool)
    seams, references = [], []
    for axis, (axis_starts, size) in enumerate(zip(starts, image.shape)):
        length = min(tile[axis], size)
        values = np.moveaxis(image, axis, 0)
        clear = np.moveaxis(background, axis, 0)
        covered = np.zeros(size, bool)
        for before, after in zip(axis_starts, axis_starts[1:]):
            covered[after : before + length] = True
            step = _step(values, clear, after - band, before + length, band)
            if step is not None:
                seams.append(step)
        if len(axis_starts) > 1:
            gap = axis_starts[0] + length - axis_starts[1]  # the overlap's width
            for left in range(0, size - 2 * band - gap + 1, band):
                right = left + band + gap
                if not covered[left : right + band].any():
                    step = _step(values, clear, left, right, band)
                    if step is not None:
                        references.append(step)
    return seams, references


def _step(values: np.ndarray, clear: np.ndarray, left: int, right: int,
          band: int) -> float | None:
    """|mean over common background positions of (slab [right, right + band) - slab [left,
    left + band))| along the first axis of ``values``; None when they share no background or
    one lies outside the image."""
    if left < 0 or right + band > len(values):
        return None
    both = clear[left : left + band].all(axis=0) & clear[right : right + band].all(axis=0)
    if not both.any():
        return None
    a = values[left : left + band].mean(axis=0)[both]
    b = values[right : right + band].mean(axis=0)[both]
    return float(abs(np.mean(b - a)))
