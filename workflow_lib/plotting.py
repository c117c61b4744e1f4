"""What every report figure shares: a headless matplotlib, atomic PNG saving, the plane shown."""

from __future__ import annotations

from pathlib import Path

import matplotlib

# Jobs run on cluster nodes without a display.
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from workflow_lib.io import atomic_path  # noqa: E402


def save_figure(fig: plt.Figure, path: str | Path, dpi: int = 100, tight: bool = True) -> None:
    """Write ``fig`` as a PNG atomically, then free it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight" if tight else None)
    plt.close(fig)


def middle_plane(array: np.ndarray) -> np.ndarray:
    """The middle Z plane of a spatial ``(Z, Y, X)`` array; a ``(Y, X)`` array unchanged."""
    return array[array.shape[0] // 2] if array.ndim == 3 else array


__all__ = ["middle_plane", "plt", "save_figure"]
