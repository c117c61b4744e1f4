"""Kind ``overlapping``: cells that may overlap (a smear), each kept whole in one layer.

Annotation layout: labels ``(L, *shape)`` with ``L = layers``. Each layer holds
non-overlapping instances; ids are unique across layers (1..N over the whole stack); every
cell lies whole in exactly one layer, the first one where none of its pixels is taken
(greedy colouring of the overlap graph in placement order). A cell that overlaps cells in
all ``L`` layers is left out, so raise ``layers`` for crowded smears.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from workflow_lib.simulate.labels import relabel
from workflow_lib.simulate.nuclei import KEYS as NUCLEI_KEYS
from workflow_lib.simulate.nuclei import make_shapes, read_centres, read_shape_params
from workflow_lib.simulate.params import Params
from workflow_lib.simulate.shapes import rasterise

KEYS = NUCLEI_KEYS + ("layers",)


def simulate_overlapping(shape: tuple[int, ...], p: Params, rng: np.random.Generator) -> np.ndarray:
    """Labels (layers, *shape) uint16 as described in the module doc."""
    sp = read_shape_params(p, len(shape), radius=(12.0, 20.0))
    layers = p.number("layers", 2, 1, 16, integer=True)
    centres = read_centres(p, shape, rng, sp, default_cells=(30, 40), default_min_distance=0.5)
    p.finish()
    stack = np.zeros((layers, *shape), np.int32)
    for k, s in enumerate(make_shapes(rng, centres, sp)):
        hit = rasterise(s, shape, sp.spacing)
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
