"""The one place that writes export TIFFs, with physical pixel sizes.

ImageJ files go through :func:`workflow_lib.io.write_tiff` (which writes the pixel sizes the
way the workflow's own TIFFs carry them); shaped TIFFs are written here with tifffile.

Two flavours, both read back by ``tifffile.imread`` in exactly the written shape:

- ImageJ hyperstack (``imagej=True``, axes a subset of ``TZCYX`` in that order, uint8, uint16
  or float32): what Fiji opens with its axes. Pixel sizes: XY resolution in pixels per micron
  plus ImageJ's ``spacing`` (Z step) and ``unit`` ``um``. ImageJ drops axes of size 1 when read.
- Shaped TIFF (``imagej=False``, or a dtype/axes ImageJ cannot hold, e.g. channel-last
  ``YXC`` or uint32): tifffile's JSON description keeps the exact shape, a last ``C`` axis is
  stored as samples per pixel. Pixel sizes: XY resolution in pixels per centimetre (standard
  TIFF unit) and ``spacing`` (microns, spatial axes in ``[Z,] Y, X`` order) in the description.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tifffile

from workflow_lib.io import atomic_path, write_tiff

_IMAGEJ_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32))


def write_image(
    path: Path,
    array: np.ndarray,
    axes: str,
    spacing: tuple[float, ...] | None = None,
    imagej: bool = True,
    compress: bool = True,
) -> None:
    """Write ``array`` (axes ``axes``) atomically; ``spacing``: microns per spatial axis
    (``[Z,] Y, X``, as many as ``axes`` has of Z, Y, X) or None."""
    array = np.asarray(array)
    if len(axes) != array.ndim:
        raise ValueError(f"{path}: axes '{axes}' do not fit an array of shape {array.shape}")
    spatial = [a for a in axes if a in "ZYX"]
    if spacing is not None and len(spacing) != len(spatial):
        raise ValueError(f"{path}: spacing {spacing} does not fit the spatial axes {spatial}")
    imagej = imagej and array.dtype in _IMAGEJ_DTYPES and _imagej_order(axes)
    if imagej:
        write_tiff(path, array, axes, compress=compress, spacing=spacing)
        return
    kwargs: dict = {"compression": "zlib" if compress else None}
    sizes = dict(zip(spatial, spacing)) if spacing is not None else {}
    metadata: dict = {"axes": axes}
    if sizes:
        metadata["spacing"] = [float(s) for s in spacing]
        kwargs.update(resolution=(1e4 / sizes["X"], 1e4 / sizes["Y"]),
                      resolutionunit="CENTIMETER")
    kwargs.update(metadata=metadata, photometric="minisblack")
    if axes.endswith("C") and array.ndim > 2:
        kwargs["planarconfig"] = "contig"
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, array, **kwargs)


def _imagej_order(axes: str) -> bool:
    """True when ``axes`` are distinct letters of ``TZCYX`` in that order (no transposing)."""
    order = "TZCYX"
    return set(axes) <= set(order) and list(axes) == sorted(axes, key=order.index) \
        and len(set(axes)) == len(axes)
