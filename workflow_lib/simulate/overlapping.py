"""Kind ``overlapping``: cells that may overlap (a smear), each kept whole in one layer.

Annotation layout: labels ``(L, *shape)`` with ``L = layers``. Each layer holds
non-overlapping instances; ids are unique across layers (1..N over the whole stack); every
cell lies whole in exactly one layer, the first one where none of its pixels is taken
(greedy colouring of the overlap graph in placement order). A cell that overlaps cells in
all ``L`` layers is left out, so raise ``layers`` for crowded smears.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from workflow_lib.simulate.labels import relabel
from workflow_lib.simulate.params import Params
from workflow_lib.simulate.placement import PLACEMENT_KEYS, PlacementSettings, place, read_placement
from workflow_lib.simulate.shapes import SHAPE_KEYS, ShapeParams, make_shapes, rasterise, read_shape_params

KEYS = SHAPE_KEYS + PLACEMENT_KEYS + ("layers",)


@dataclass(frozen=True)
class OverlappingSettings:
    shapes: ShapeParams              # how each cell looks
    placement: PlacementSettings     # where the cells go
    layers: int                      # overlap layers L, 1..16


def read_settings(p: Params, ndim: int) -> OverlappingSettings:
    """Every key of the kind for ``ndim`` spatial axes; refuses the keys left unused."""
    shapes = read_shape_params(p, ndim, radius=(12.0, 20.0))
    layers = p.number("layers", 2, 1, 16, integer=True)
    # A small min_distance lets the cells overlap.
    placement = read_placement(p, ndim, shapes.mean_radius, default_cells=(30, 40),
                               default_min_distance=0.5)
    p.finish()
    return OverlappingSettings(shapes, placement, layers)


def simulate_overlapping(
    shape: tuple[int, ...], s: OverlappingSettings, rng: np.random.Generator
) -> np.ndarray:
    """Labels (layers, *shape) uint16 as described in the module doc."""
    centres = place(shape, s.placement, s.shapes.spacing, rng)
    stack = np.zeros((s.layers, *shape), np.int32)
    for k, cell in enumerate(make_shapes(rng, centres, s.shapes)):
        hit = rasterise(cell, shape, s.shapes.spacing)
        if hit is None:
            continue
        box, mask = hit
        parts, n = ndimage.label(mask)
        if n > 1:  # a strong warp can pinch off a sliver: keep the body only
            mask = parts == np.argmax(np.bincount(parts.ravel())[1:]) + 1
        for layer in stack:
            if not np.any(layer[box][mask]):
                layer[box][mask] = k + 1
                break
    return relabel(stack)
