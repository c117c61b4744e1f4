"""Kind ``nuclei``: non-overlapping star-convex nuclei in one of four arrangements."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workflow_lib.simulate.labels import clean
from workflow_lib.simulate.params import Params
from workflow_lib.simulate.placement import PLACEMENT_KEYS, PlacementSettings, place, read_placement
from workflow_lib.simulate.shapes import SHAPE_KEYS, ShapeParams, make_shapes, paint, read_shape_params

KEYS = SHAPE_KEYS + PLACEMENT_KEYS


@dataclass(frozen=True)
class NucleiSettings:
    shapes: ShapeParams              # how each nucleus looks
    placement: PlacementSettings     # where the nuclei go


def read_settings(p: Params, ndim: int) -> NucleiSettings:
    """Every key of the kind for ``ndim`` spatial axes; refuses the keys left unused."""
    shapes = read_shape_params(p, ndim)
    settings = NucleiSettings(shapes, read_placement(p, ndim, shapes.mean_radius))
    p.finish()
    return settings


def simulate_nuclei(shape: tuple[int, ...], s: NucleiSettings, rng: np.random.Generator) -> np.ndarray:
    """Labels (1, *shape) uint16: nuclei ids 1..N, no overlaps, each one component."""
    centres = place(shape, s.placement, s.shapes.spacing, rng)
    labels = np.zeros(shape, np.int32)
    paint(labels, make_shapes(rng, centres, s.shapes), s.shapes.spacing)
    return clean(labels)[None]
