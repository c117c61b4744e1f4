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


def middle_plane(array: np.ndarray) -> np.ndarray:
    """The middle Z plane of a spatial ``(Z, Y, X)`` array; a ``(Y, X)`` array unchanged."""
    return array[array.shape[0] // 2] if array.ndim == 3 else array


__all__ = ["middle_plane", "pyplot", "save_figure"]
