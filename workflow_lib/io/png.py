"""PNG reading (2D images and label images), one clear error per unreadable file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workflow_lib.errors import InputError


def read_png(path: str | Path) -> np.ndarray:
    """The pixels of a PNG: ``(Y, X)`` or ``(Y, X, C)``. Raises :class:`InputError`."""
    import imageio.v3 as iio  # only jobs that meet a PNG need it

    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        return np.asarray(iio.imread(path))
    except Exception as exc:  # imageio raises many types for broken files
        raise InputError(path, f"not a readable PNG ({exc})") from exc
