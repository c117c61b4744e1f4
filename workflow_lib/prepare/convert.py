"""convert: one microscope image -> float32 array in [0, 1], (C, Y, X) or (C, Z, Y, X), in HDF5."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from workflow_lib.errors import InputError
from workflow_lib.io import read_h5, read_tiff, write_h5
from workflow_lib.prepare.axes import guess_axes, normalize_axes, to_channel_first

log = logging.getLogger(__name__)

_HISTOGRAM_CHUNK = 1 << 22


def load_image(path: str | Path, h5_dataset: str = "data/image") -> tuple[np.ndarray, str]:
    """Read a TIFF, PNG or HDF5 image; return ``(array, axes)`` with axes '' when unknown."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in (".tif", ".tiff"):
        return read_tiff(path)
    if suffix in (".h5", ".hdf5"):
        array, attrs = read_h5(path, h5_dataset)
        axes = attrs.get("axes", "")
        return array, axes if isinstance(axes, str) and len(axes) == array.ndim else ""
    if suffix == ".png":
        import imageio.v3 as iio

        if not path.is_file():
            raise InputError(path, "file not found")
        try:
            array = np.asarray(iio.imread(path))
        except Exception as exc:  # imageio raises many types for broken files
            raise InputError(path, f"not a readable PNG ({exc})") from exc
        return array, "YXC" if array.ndim == 3 else "YX"
    raise InputError(path, f"unsupported file type '{suffix}' (use .tif, .tiff, .png or .h5)")


def percentiles(channel: np.ndarray, lower: float, upper: float) -> tuple[float, float]:
    """Percentiles ``lower`` and ``upper`` (in %) of the finite values of ``channel``.

    Integer images of up to 16 bits use a histogram (exact, same linear interpolation as
    ``np.percentile``, and O(n) instead of a sort), which keeps large volumes fast.
    """
    if channel.dtype.kind in "ub" or (channel.dtype.kind == "i" and channel.dtype.itemsize <= 2):
        values = channel.ravel()
        offset = int(values.min()) if channel.dtype.kind == "i" else 0
        counts = np.zeros(int(values.max()) - offset + 1, dtype=np.int64)
        # Chunks keep the int64 copies that bincount makes small for large volumes.
        for start in range(0, values.size, _HISTOGRAM_CHUNK):
            chunk = values[start : start + _HISTOGRAM_CHUNK].astype(np.int64) - offset
            counts += np.bincount(chunk, minlength=counts.size)
        cumulative = np.cumsum(counts)
        result = []
        for q in (lower, upper):
            rank = q / 100 * (values.size - 1)
            below, frac = int(np.floor(rank)), rank - np.floor(rank)
            v0 = int(np.searchsorted(cumulative, below, side="right"))
            v1 = int(np.searchsorted(cumulative, min(below + 1, values.size - 1), side="right"))
            result.append(offset + v0 + frac * (v1 - v0))
        return result[0], result[1]
    finite = channel[np.isfinite(channel)]
    lo, hi = np.percentile(finite, [lower, upper])
    return float(lo), float(hi)


def normalize(
    image: np.ndarray, lower: float, upper: float, path: object = None
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Map each channel of a channel-first ``image`` so its percentiles become 0 and 1, clipped.

    Returns float32 ``(C, ...)`` in [0, 1] and the (low, high) values used per channel.
    Non-finite pixels are set to 0 (with a warning). Raises :class:`InputError` for a channel
    without finite values or without contrast between the percentiles.
    """
    out = np.empty(image.shape, dtype=np.float32)
    used = []
    for c in range(image.shape[0]):
        channel = image[c]
        finite = None
        if channel.dtype.kind == "f":
            finite = np.isfinite(channel)
            if not finite.any():
                raise InputError(path, f"channel {c} has no finite values (all NaN/inf)")
            if not finite.all():
                log.warning("%s: channel %d has %d NaN/inf pixels, set to 0", path, c,
                            finite.size - int(finite.sum()))
        lo, hi = percentiles(channel, lower, upper)
        if not hi > lo:
            lo, hi = (float(np.nanmin(channel)), float(np.nanmax(channel)))
            if not hi > lo:
                raise InputError(path, f"channel {c} is constant ({lo:g}); nothing to learn")
            log.warning("%s: channel %d has no contrast between the %g and %g percentiles; "
                        "using min-max", path, c, lower, upper)
        dst = out[c]
        dst[...] = channel
        dst -= np.float32(lo)
        dst *= np.float32(1.0 / (hi - lo))
        np.clip(dst, 0.0, 1.0, out=dst)
        if finite is not None:
            dst[~finite] = 0.0
        used.append((float(lo), float(hi)))
    return out, used


def convert_image(
    source: str | Path,
    target: str | Path,
    ndim: int,
    channels: Sequence[int],
    axes: str | None = None,
    h5_dataset: str = "data/image",
    normalize_percentiles: tuple[float, float] = (1.0, 99.8),
    rescale: float | Sequence[float] | None = None,
) -> dict[str, Any]:
    """Convert one image file to ``target`` (.h5, dataset ``data/image``); return its attributes.

    ``axes`` overrides the file's metadata; ``channels`` picks channels (in that order);
    ``rescale`` zooms spatial axes (one factor or one per axis, ``[Z,] Y, X``) before
    normalisation. The output is float32 in [0, 1], ``(C, Y, X)`` or ``(C, Z, Y, X)``.
    """
    source = Path(source)
    array, file_axes = load_image(source, h5_dataset)
    if array.dtype.kind not in "uifb":
        raise InputError(source, f"has unsupported pixel type {array.dtype}")
    if array.ndim < ndim:
        raise InputError(
            source, f"is {array.ndim}D (shape {array.shape}) but the data set has ndim: {ndim}"
        )
    in_axes = normalize_axes(axes) if axes else (file_axes or guess_axes(array.shape, ndim, source))
    image, out_axes = to_channel_first(array, in_axes, ndim, source)
    missing = [c for c in channels if c >= image.shape[0]]
    if missing:
        raise InputError(
            source,
            f"channel {missing[0]} does not exist (the image has {image.shape[0]} "
            f"channel{'s' if image.shape[0] != 1 else ''}, axes {in_axes})",
        )
    image = image[list(channels)]
    if rescale is not None:
        factors = [rescale] * ndim if np.isscalar(rescale) else list(rescale)
        image = np.stack(
            [ndimage.zoom(c.astype(np.float32), factors, order=1) for c in image]
        )
    data, used = normalize(image, *normalize_percentiles, path=source)
    attrs = {
        "source": str(source),
        "source_axes": in_axes,
        "source_dtype": str(array.dtype),
        "source_shape": list(array.shape),
        "axes": out_axes,
        "channels": list(channels),
        "percentiles": list(normalize_percentiles),
        "percentile_values": np.asarray(used, dtype=np.float64),
        "rescale": "none" if rescale is None else str(rescale),
    }
    write_h5(target, {"data/image": data}, attrs)
    log.info("%s -> %s: %s %s, axes %s -> %s %s", source, target, array.dtype, array.shape,
             in_axes, out_axes, data.shape)
    return attrs
