"""Bring arrays read from ImageJ TIFFs back into the workflow's axis layout."""

from __future__ import annotations

import numpy as np


def to_layout(array: np.ndarray, axes: str, layout: str) -> np.ndarray:
    """Reorder ``array`` with ``axes`` (e.g. ``ZCYX``, singletons dropped) into ``layout``
    (e.g. ``CZYX``), inserting length-1 axes ``layout`` has and ``axes`` lacks.

    Raises ValueError when ``axes`` has a letter ``layout`` lacks or does not fit the array.
    """
    if len(axes) != array.ndim or set(axes) - set(layout):
        raise ValueError(f"axes '{axes}' of an array {array.shape} do not fit layout '{layout}'")
    missing = [a for a in layout if a not in axes]
    array = array.reshape(array.shape + (1,) * len(missing))
    full = axes + "".join(missing)
    return np.transpose(array, [full.index(a) for a in layout])
