"""convert: one microscope image -> float32 array in [0, 1], (C, Y, X) or (C, Z, Y, X), in HDF5."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from workflow_lib.errors import InputError
from workflow_lib.io import read_h5, read_tiff, write_h5
from workflow_lib.prepare.axes import axes_examples, guess_axes, normalize_axes, to_channel_first

# The workflow runner echoes this logger's warnings to the console.
log = logging.getLogger("cellsynth")

# Pixels per piece in the percentile passes: bounds their temporary memory (under 64 MiB).
_CHUNK = 1 << 20
# Bits of the key resolved per pass of the percentile selection: 65536-bin histograms.
_DIGIT = 16


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

    Exact, with the linear interpolation of ``np.percentile``, for every integer and float
    dtype, in memory bounded by a chunk of :data:`_CHUNK` pixels whatever the size or the
    values of ``channel``: a radix selection reads the order statistics off histograms of
    16-bit digits (one pass over the image for 8/16-bit images, up to four for 64-bit).
    Raises ``ValueError`` when there is no finite value.
    """
    bits = 8 * channel.dtype.itemsize
    digit = min(_DIGIT, bits)
    top = _digit_histograms(channel, {0}, bits - digit, digit)
    count = int(top[0].sum())
    if count == 0:
        raise ValueError("no finite values")
    spans = []
    for q in (lower, upper):
        rank = q / 100 * (count - 1)
        below = int(np.floor(rank))
        spans.append((below, min(below + 1, count - 1), rank - below))
    ranks = sorted({r for a, b, _ in spans for r in (a, b)})
    value = dict(zip(ranks, _order_statistics(channel, ranks, top, digit)))
    lo, hi = (float(value[a] + frac * (value[b] - value[a])) for a, b, frac in spans)
    return lo, hi


def _finite_blocks(array: np.ndarray) -> Iterator[np.ndarray]:
    """The finite values of ``array`` in 1D pieces of at most :data:`_CHUNK` values."""
    pieces = np.nditer(array, flags=["external_loop", "buffered", "zerosize_ok"],
                       buffersize=_CHUNK, order="K")
    for block in pieces:
        yield block[np.isfinite(block)] if array.dtype.kind == "f" else block


def _sortable_keys(values: np.ndarray) -> np.ndarray:
    """Unsigned integers of the same width that sort like ``values`` (no NaN among them)."""
    utype = np.dtype(f"u{values.dtype.itemsize}")
    bits = values.view(utype)
    sign = utype.type(1 << (8 * utype.itemsize - 1))
    if values.dtype.kind in "ub":
        return bits
    if values.dtype.kind == "i":
        return bits ^ sign
    # IEEE floats: negatives sort in reverse order of their bits, and below all positives.
    return np.where(bits & sign, ~bits, bits | sign)


def _from_key(key: int, dtype: np.dtype) -> int | float:
    """The value of ``dtype`` whose :func:`_sortable_keys` key is ``key``."""
    utype = np.dtype(f"u{dtype.itemsize}")
    sign = 1 << (8 * utype.itemsize - 1)
    if dtype.kind == "i":
        key ^= sign
    elif dtype.kind == "f":
        key = key ^ sign if key & sign else ~key & (2 * sign - 1)
    return np.array(key, dtype=utype).view(dtype).item()


def _digit_histograms(
    channel: np.ndarray, prefixes: set[int], shift: int, digit: int
) -> dict[int, np.ndarray]:
    """Per prefix, a histogram of the ``digit`` bits above ``shift`` of the keys of the finite
    values of ``channel`` whose bits above those equal the prefix (all keys for the top digit)."""
    width = 8 * channel.dtype.itemsize
    mask = (1 << digit) - 1
    hists = {p: np.zeros(mask + 1, np.int64) for p in prefixes}
    for block in _finite_blocks(channel):
        keys = _sortable_keys(block)
        for prefix, hist in hists.items():
            sel = keys if shift + digit == width else keys[keys >> (shift + digit) == prefix]
            hist += np.bincount(((sel >> shift) & mask).astype(np.intp), minlength=mask + 1)
    return hists


def _order_statistics(
    channel: np.ndarray, ranks: list[int], top: dict[int, np.ndarray], digit: int
) -> list[int | float]:
    """The values at 0-based ``ranks`` of the sorted finite values of ``channel``, given the
    histogram ``top`` of the top digit: each pass fixes one more digit of each rank's key."""
    prefixes = [0] * len(ranks)
    remaining = list(ranks)
    hists = top
    for shift in range(8 * channel.dtype.itemsize - digit, -1, -digit):
        for i, prefix in enumerate(prefixes):
            cumulative = np.cumsum(hists[prefix])
            d = int(np.searchsorted(cumulative, remaining[i], side="right"))
            remaining[i] -= int(cumulative[d - 1]) if d else 0
            prefixes[i] = (prefix << digit) | d
        if shift:
            hists = _digit_histograms(channel, set(prefixes), shift - digit, digit)
    return [_from_key(key, channel.dtype) for key in prefixes]


def normalize(
    image: np.ndarray, lower: float, upper: float, path: object = None
) -> tuple[np.ndarray, list[tuple[float, float]], list[int]]:
    """Map each channel of a channel-first ``image`` so its percentiles become 0 and 1, clipped.

    Returns float32 ``(C, ...)`` in [0, 1], the (low, high) values used per channel and the
    number of non-finite pixels per channel. Non-finite pixels (NaN, +inf, -inf) are left out
    of the percentiles and set to 0, with a warning naming ``path`` and their count. Raises
    :class:`InputError` for a channel without finite values or without contrast.
    """
    out = np.empty(image.shape, dtype=np.float32)
    used, nonfinite = [], []
    for c in range(image.shape[0]):
        channel = image[c]
        bad = ~np.isfinite(channel) if channel.dtype.kind == "f" else None
        n_bad = 0 if bad is None else int(np.count_nonzero(bad))
        if n_bad == channel.size:
            raise InputError(path, f"channel {c} has no finite values (all NaN/inf)")
        if n_bad:
            log.warning("%s: channel %d has %d non-finite pixels (NaN or inf); they are left "
                        "out of the normalisation and set to 0", path, c, n_bad)
        lo, hi = percentiles(channel, lower, upper)
        if not hi > lo:
            lo, hi = percentiles(channel, 0, 100)
            if not hi > lo:
                raise InputError(path, f"channel {c} is constant ({lo:g}); nothing to learn")
            log.warning("%s: channel %d has no contrast between the %g and %g percentiles; "
                        "using min-max", path, c, lower, upper)
        dst = out[c]
        # float64 arithmetic, cast into float32 by numpy's buffered loop: keeps the precision
        # of large offsets (uint32, float64) without a float64 copy of the channel.
        # Differences beyond float32's range (3e38) saturate to inf and clip to 1.
        with np.errstate(over="ignore"):
            np.subtract(channel, np.float64(lo), out=dst, casting="unsafe")
            np.multiply(dst, np.float64(1.0 / (hi - lo)), out=dst, casting="unsafe")
        np.clip(dst, 0.0, 1.0, out=dst)
        if n_bad:
            dst[bad] = 0.0
        used.append((float(lo), float(hi)))
        nonfinite.append(n_bad)
    return out, used, nonfinite


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
    try:
        image, out_axes = to_channel_first(array, in_axes, ndim, source)
    except InputError as exc:
        if axes or file_axes:
            raise
        raise InputError(
            source,
            f"{exc.problem}; its axes are unknown (the file has no axes metadata) and were "
            f"guessed as {in_axes} from its shape {array.shape}: if that is wrong, set `axes:` "
            f"for this data set in the config (e.g. {axes_examples(array.ndim)})",
        ) from exc
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
    data, used, nonfinite = normalize(image, *normalize_percentiles, path=source)
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
        "nonfinite_pixels": np.asarray(nonfinite, dtype=np.int64),
    }
    write_h5(target, {"data/image": data}, attrs)
    log.info("%s -> %s: %s %s, axes %s -> %s %s", source, target, array.dtype, array.shape,
             in_axes, out_axes, data.shape)
    return attrs
