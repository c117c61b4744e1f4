"""Kind ``multichannel``: one tissue, a cell (membrane) channel and a nucleus channel.

Cells come from the membranes tessellation; every cell gets a star-convex nucleus centred on
its seed with mean radius ``nucleus_size`` times the cell's equivalent radius, cut to the
cell's interior (never touching its membrane). Cells whose nucleus would be empty are dropped,
so both channels hold exactly the ids 1..N and nucleus k lies inside cell k.
"""

from __future__ import annotations

import numpy as np

from workflow_lib.simulate.labels import inner, largest_components, sizes
from workflow_lib.simulate.membranes import KEYS as TISSUE_KEYS
from workflow_lib.simulate.membranes import tessellate
from workflow_lib.simulate.nuclei import SHAPE_KEYS, make_shapes, paint, read_shape_params
from workflow_lib.simulate.params import Params

KEYS = tuple(sorted(set(TISSUE_KEYS) | set(SHAPE_KEYS) - {"radius"} | {"nucleus_size"}))


def simulate_multichannel(shape: tuple[int, ...], p: Params, rng: np.random.Generator) -> np.ndarray:
    """Labels (2, *shape) uint16: channel 0 cells, channel 1 nuclei, same ids 1..N."""
    ndim = len(shape)
    cells, seeds, spacing = tessellate(shape, p, rng)
    fraction = p.range("nucleus_size", [0.4, 0.55], 0.0, 1.0, low_open=True)
    sp = read_shape_params(p, ndim, radius=None)
    p.finish()
    volume = sizes(cells)[1:len(seeds) + 1] * float(np.prod(spacing))
    volume = np.pad(volume, (0, len(seeds) - len(volume)))
    unit = np.pi if ndim == 2 else 4.0 / 3.0 * np.pi
    radii = (volume / unit) ** (1.0 / ndim) * rng.uniform(*fraction, size=len(seeds))
    shapes = make_shapes(rng, seeds, sp, radii=np.maximum(radii, 0.5))
    nuclei = np.zeros(shape, np.int32)
    paint(nuclei, shapes, tuple(spacing), min_visible=0.0, within=np.where(inner(cells), cells, 0))
    nuclei = largest_components(nuclei)
    cells = np.where(np.isin(cells, np.unique(nuclei)), cells, 0)
    ids = np.unique(cells)
    ids = ids[ids > 0]
    lut = np.zeros(int(max(cells.max(), nuclei.max())) + 1, np.uint16)
    lut[ids] = np.arange(1, ids.size + 1)
    return np.stack([lut[cells], lut[nuclei]])

