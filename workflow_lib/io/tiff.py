"""TIFF reading and writing with ImageJ axes metadata, so Fiji and napari open arrays correctly.

Array conventions of the workflow (see the README): 2D images are ``(C, Y, X)``, 3D images
``(C, Z, Y, X)``, time series add a leading ``T``: ``(T, C, Y, X)`` or ``(T, C, Z, Y, X)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from workflow_lib.errors import InputError
from workflow_lib.io.atomic import atomic_path

_IMAGEJ_DTYPES = (np.uint8, np.uint16, np.float32)


def axes_for(ndim_spatial: int, time: bool = False) -> str:
    """Axes string of the workflow's convention: ``CYX``, ``CZYX``, ``TCYX`` or ``TCZYX``."""
    if ndim_spatial not in (2, 3):
        raise ValueError(f"ndim_spatial must be 2 or 3, got {ndim_spatial}")
    return ("T" if time else "") + "C" + ("ZYX" if ndim_spatial == 3 else "YX")


def write_tiff(path: str | Path, array: np.ndarray, axes: str, compress: bool = True) -> None:
    """Write ``array`` with ImageJ ``axes`` (a subset of ``TZCYX`` in any order) atomically.

    ImageJ hyperstacks require the order ``TZCYX``; the array is transposed into it, and
    ``tifffile.imread`` then returns that order. uint8, uint16 and float32 are supported.
    """
    array = np.asarray(array)
    if array.dtype not in _IMAGEJ_DTYPES:
        raise TypeError(f"{path}: ImageJ TIFF needs uint8, uint16 or float32, got {array.dtype}")
    if len(axes) != array.ndim or set(axes) - set("TZCYX") or len(set(axes)) != len(axes):
        raise ValueError(f"{path}: axes '{axes}' do not fit an array of shape {array.shape}")
    order = [a for a in "TZCYX" if a in axes]
    array = np.transpose(array, [axes.index(a) for a in order])
    with atomic_path(path) as tmp:
        tifffile.imwrite(
            tmp,
            array,
            imagej=True,
            metadata={"axes": "".join(order)},
            compression="zlib" if compress else None,
        )


def read_tiff(path: str | Path) -> tuple[np.ndarray, str]:
    """Read a TIFF and return ``(array, axes)``; ``axes`` from its metadata, '' if unknown.

    Raises :class:`InputError` naming the file when it is missing, empty, truncated or not a
    TIFF at all.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    if path.stat().st_size == 0:
        raise InputError(path, "file is empty (0 bytes)")
    try:
        with tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes = series.axes if series.axes and "Q" not in series.axes else ""
            array = series.asarray()
    except (tifffile.TiffFileError, ValueError, OSError, IndexError) as exc:
        raise InputError(path, f"not a readable TIFF ({exc})") from exc
    if array.size == 0:
        raise InputError(path, "image has no pixels")
    if len(axes) != array.ndim:
        axes = ""
    return array, axes.replace("S", "C")
