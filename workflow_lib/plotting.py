"""What every report figure shares: a headless matplotlib, atomic PNG saving, the plane shown.

matplotlib is imported on the first figure (:func:`pyplot`), not with this module: the per-image
jobs that draw nothing (simulate, synthesize) would otherwise spend ~0.3 s each on the import.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from workflow_lib.io import atomic_path

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def pyplot():
    """``matplotlib.pyplot`` on the headless Agg backend (jobs run on nodes without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Figure, path: str | Path, dpi: int = 100, tight: bool = True) -> None:
    """Write ``fig`` as a PNG atomically, then free it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    pyplot().close(fig)


def orthogonal_views(array: np.ndarray, view: int | None = None) -> np.ndarray:
    """A spatial array as one 2D panel: a ``(Y, X)`` array as it is, a ``(Z, Y, X)`` one as
    Fiji's orthogonal views: the middle XY plane, the YZ plane through its middle X column to
    the right (columns are Z) and the XZ plane through its middle Y row below (rows are Z),
    divided by one-pixel lines at the array's maximum (an intensity array: a bright line) or
    minimum (labels, masks: no object). ``view``: at most this many pixels of Y and X are
    shown (the top-left corner; the side views cut through its middle)."""
    y_end, x_end = (array.shape[-2], array.shape[-1]) if view is None else \
        (min(view, array.shape[-2]), min(view, array.shape[-1]))
    if array.ndim == 2:
        return array[:y_end, :x_end]
    z = array.shape[0]
    panel = np.full((y_end + 1 + z, x_end + 1 + z), array.min(), dtype=array.dtype)
    line = array.max() if array.dtype.kind == "f" else array.min()
    panel[y_end, : x_end + 1] = line
    panel[: y_end + 1, x_end] = line
    panel[:y_end, :x_end] = array[z // 2, :y_end, :x_end]
    panel[:y_end, x_end + 1 :] = array[:, :y_end, x_end // 2].T
    panel[y_end + 1 :, :x_end] = array[:, y_end // 2, :x_end]
    return panel


__all__ = ["orthogonal_views", "pyplot", "save_figure"]
