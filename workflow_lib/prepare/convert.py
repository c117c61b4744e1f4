"""convert: one microscope image -> float32 array in [0, 1], (C, Y, X) or (C, Z, Y, X), in HDF5."""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from workflow_lib.dataset import IMAGE_KEY
from workflow_lib.errors import InputError
from workflow_lib.io import (
    create_h5, open_h5, read_h5_header, read_png, read_tiff, read_tiff_pixel_size, set_attrs,
    write_block,
)
from workflow_lib.io.bioimage import bioimage_pixel_size, read_bioimage
from workflow_lib.io.formats import (
    BIOIO_SUFFIXES, H5_SUFFIXES, IMAGE_SUFFIXES, OME_TIFF_SUFFIXES, TIFF_SUFFIXES, format_name,
    image_suffix,
)
from workflow_lib.io.tiff import _one_line, spatial_spacing
from workflow_lib.prepare.axes import (
    axes_examples, element_sizes, guess_axes, normalize_axes, to_channel_first,
)

# The workflow runner echoes this logger's warnings to the console.
log = logging.getLogger("cellsynth")

# Pixels per piece in the percentile passes: bounds their temporary memory (under 64 MiB).
_CHUNK = 1 << 20
# Bytes of a lazily read image (HDF5, OME-Zarr, ...) read at a time: what bounds the memory of
# converting a volume larger than memory (plus the float32 slab written from it).
_SLAB_BYTES = 64 << 20
# Bits of the key resolved per pass of the percentile selection: 65536-bin histograms.
_DIGIT = 16


@contextlib.contextmanager
def open_image(
    path: str | Path, h5_dataset: str = "data/image", scene: int | str | None = None
) -> Iterator[tuple[Any, str]]:
    """``(array, axes)`` of an image file, axes '' when unknown.

    TIFF and PNG are read into a numpy array; HDF5 and the microscope formats (``scene`` of
    them: :func:`workflow_lib.io.bioimage.read_bioimage`) give a lazy dask array, open while
    the ``with`` block runs, that the conversion reads slab by slab.
    """
    path = Path(path)
    suffix = image_suffix(path)
    if suffix in BIOIO_SUFFIXES:
        data = read_bioimage(path, scene)
        yield data.array, data.axes
    elif suffix in TIFF_SUFFIXES:
        yield read_tiff(path)
    elif suffix in H5_SUFFIXES:
        import dask.array as da

        with open_h5(path, h5_dataset) as ds:
            axes = ds.attrs.get("axes", "")
            ok = isinstance(axes, str) and len(axes) == ds.ndim
            yield da.from_array(ds, chunks="auto"), axes if ok else ""
    elif suffix == ".png":
        array = read_png(path)
        yield array, "YXC" if array.ndim == 3 else "YX"
    else:
        raise InputError(path, f"unsupported file type '{suffix}' (use "
                               f"{', '.join(IMAGE_SUFFIXES)})")


def metadata_pixel_size(
    path: str | Path, ndim: int, axes: str | None = None, h5_dataset: str = "data/image",
    scene: int | str | None = None,
) -> tuple[dict[str, float], str]:
    """The pixel size an image file's metadata states, reading only its header.

    Returns ``(sizes, source)``: axis letter (``Z``, ``Y``, ``X``) -> microns, and where they
    come from; ``({}, "")`` when the file states none. TIFF: ImageJ or OME-XML metadata
    (:func:`workflow_lib.io.read_tiff_pixel_size`). HDF5: the attribute ``element_size_um`` of
    ``h5_dataset``, one size per array axis or per spatial axis, mapped by ``axes`` (else the
    file's ``axes`` attribute, else guessed from the shape for ``ndim``). OME-Zarr, CZI, ND2,
    LIF: their metadata through bioio (scene ``scene``). PNG: none.
    """
    path = Path(path)
    suffix = image_suffix(path)
    if suffix in TIFF_SUFFIXES + OME_TIFF_SUFFIXES:
        return read_tiff_pixel_size(path)
    if suffix in BIOIO_SUFFIXES:
        sizes = bioimage_pixel_size(path, scene)
        return sizes, f"{format_name(path)} metadata" if sizes else ""
    if suffix in H5_SUFFIXES:
        shape, attrs = read_h5_header(path, h5_dataset)
        values = attrs.get("element_size_um")
        if values is None:
            return {}, ""
        file_axes = attrs.get("axes")
        if not axes:
            ok = isinstance(file_axes, str) and len(file_axes) == len(shape)
            axes = file_axes if ok else guess_axes(shape, ndim, path)
        sizes = element_sizes(values, axes)
        if not sizes:
            log.warning("%s: element_size_um %s does not fit its axes %s; no pixel size read",
                        path, list(np.ravel(values)), axes)
        return sizes, "HDF5 element_size_um" if sizes else ""
    return {}, ""


def pixel_size(
    metadata: Mapping[str, float],
    ndim: int,
    override: float | Sequence[float] | None = None,
    rescale: float | Sequence[float] | None = None,
) -> list[float] | None:
    """Microns per spatial axis (``[Z,] Y, X``) of a converted image, or None when unknown.

    ``metadata``: axis letter -> microns of the input file (:func:`metadata_pixel_size`);
    ``override`` (the config's ``pixel_size``) wins over it: one number for Y and X, or one per
    spatial axis ``[Z,] Y, X``. ``rescale`` zooms the image, so each size is divided by its
    axis' factor. None unless every one of the ``ndim`` spatial axes has a size: a partial size
    (say Y/X of a 3D stack whose Z step is unknown) is not used, and 1 micron is never assumed.
    """
    sizes = dict(metadata)
    if override is not None:
        if np.isscalar(override):
            sizes.update(Y=float(override), X=float(override))
        else:
            sizes.update(zip("ZYX"[-len(override):], (float(v) for v in override)))
    spacing = spatial_spacing(sizes, ndim)
    if spacing is None:
        return None
    zoom = [1.0] * ndim if rescale is None else (
        [float(rescale)] * ndim if np.isscalar(rescale) else [float(f) for f in rescale])
    return [v / z for v, z in zip(spacing, zoom)]


def _overrides_all(override: float | Sequence[float] | None, ndim: int) -> bool:
    return override is not None and (not np.isscalar(override) or ndim == 2)


def dataset_pixel_size(
    path: str | Path | None,
    ndim: int,
    axes: str | None = None,
    h5_dataset: str = "data/image",
    override: float | Sequence[float] | None = None,
    rescale: float | Sequence[float] | None = None,
    scene: int | str | None = None,
) -> list[float] | None:
    """A data set's pixel size (:func:`pixel_size`) from its image ``path`` (the first one):
    the config's ``override`` alone when it gives every axis, else with the file's metadata.

    Reads only the header, never fails: a missing (not yet made) or unreadable file counts as
    stating no size (the conversion job reports a bad file).
    """
    if _overrides_all(override, ndim):
        return pixel_size({}, ndim, override, rescale)
    sizes: dict[str, float] = {}
    if path is not None and Path(path).exists():
        try:
            sizes, _ = metadata_pixel_size(path, ndim, axes, h5_dataset, scene)
        except Exception:  # noqa: BLE001  (anything a damaged file raises: no size)
            sizes = {}
    return pixel_size(sizes, ndim, override, rescale)


def percentiles(channel: np.ndarray, lower: float, upper: float) -> tuple[float, float]:
    """Percentiles ``lower`` and ``upper`` (in %) of the finite values of ``channel``.

    Exact, with the linear interpolation of ``np.percentile``, for every integer and float
    dtype, in memory bounded by a chunk of :data:`_CHUNK` pixels whatever the size or the
    values of ``channel``: a radix selection reads the order statistics off histograms of
    16-bit digits (one pass over the image for 8/16-bit images, up to four for 64-bit).
    Raises ``ValueError`` when there is no finite value. ``channel`` may be a lazy (dask)
    array: it is then read slab by slab, once per pass.
    """
    lo, hi, _ = _percentiles(channel, lower, upper)
    return lo, hi


def _percentiles(channel: Any, lower: float, upper: float) -> tuple[float, float, int]:
    """:func:`percentiles` and the number of finite values."""
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
    return lo, hi, count


def _finite_blocks(array: Any) -> Iterator[np.ndarray]:
    """The finite values of ``array`` in 1D pieces of at most :data:`_CHUNK` values."""
    for _, slab in blocks(array, (1,) * array.ndim, split=1):
        pieces = np.nditer(slab, flags=["external_loop", "buffered", "zerosize_ok"],
                           buffersize=_CHUNK, order="K")
        for block in pieces:
            yield block[np.isfinite(block)] if array.dtype.kind == "f" else block


def blocks(
    array: Any, chunks: Sequence[int], path: object = None, split: int = 2
) -> Iterator[tuple[tuple[int, ...], np.ndarray]]:
    """``(offset, block)`` tiling a numpy or lazy array, as numpy arrays: the whole array for
    numpy, else blocks of about :data:`_SLAB_BYTES` cut along the first ``split`` axes at
    multiples of ``chunks`` (so each block can be written whole into a dataset with those
    chunks). A lazy read that fails is an :class:`InputError` on ``path``.
    """
    if isinstance(array, np.ndarray):
        yield (0,) * array.ndim, array
        return
    shape = array.shape
    steps = [min(n, c) for n, c in zip(shape[:split], chunks)]
    inner = array.dtype.itemsize * int(np.prod(shape[split:], dtype=np.int64))
    for axis in reversed(range(split)):
        # one chunk along the axes before this one, the axes after it as cut: as many chunks
        # along this axis as the budget takes; the axes before grow only once this one is whole
        others = inner * int(np.prod([steps[a] for a in range(split) if a != axis]))
        fit = max(1, _SLAB_BYTES // max(1, others * chunks[axis]))
        steps[axis] = min(shape[axis], chunks[axis] * fit)
        if steps[axis] < shape[axis]:
            break
    for offset in itertools.product(*(range(0, n, k) for n, k in zip(shape, steps))):
        index = tuple(slice(o, o + k) for o, k in zip(offset, steps))
        try:
            block = np.asarray(array[index])
        except Exception as exc:  # noqa: BLE001  (codecs and readers raise their own types)
            raise InputError(path, f"pixel data cannot be read ({_one_line(exc)})") from exc
        yield offset + (0,) * (array.ndim - split), block


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


def channel_range(
    channel: Any, lower: float, upper: float, path: object = None, index: int = 0
) -> tuple[float, float, int]:
    """``(low, high, non-finite pixels)`` that :func:`normalize_block` maps channel ``index``
    (a numpy or lazy array) with: its percentiles ``lower`` and ``upper`` (in %) of the finite
    values, or its min and max where those are equal (with a warning). Non-finite pixels are
    left out, with a warning naming ``path`` and their count. Raises :class:`InputError` for a
    channel without finite values or without contrast.
    """
    try:
        lo, hi, count = _percentiles(channel, lower, upper)
    except ValueError:
        raise InputError(path, f"channel {index} has no finite values (all NaN/inf)") from None
    n_bad = int(np.prod(channel.shape, dtype=np.int64)) - count
    if n_bad:
        log.warning("%s: channel %d has %d non-finite pixels (NaN or inf); they are left "
                    "out of the normalisation and set to 0", path, index, n_bad)
    if not hi > lo:
        lo, hi = percentiles(channel, 0, 100)
        if not hi > lo:
            raise InputError(path, f"channel {index} is constant ({lo:g}); nothing to learn")
        log.warning("%s: channel %d has no contrast between the %g and %g percentiles; "
                    "using min-max", path, index, lower, upper)
    return float(lo), float(hi), n_bad


def normalize_block(block: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``block`` mapped so ``lo`` and ``hi`` become 0 and 1, clipped, float32; non-finite
    pixels become 0."""
    out = np.empty(block.shape, dtype=np.float32)
    # float64 arithmetic, cast into float32 by numpy's buffered loop: keeps the precision
    # of large offsets (uint32, float64) without a float64 copy of the block.
    # Differences beyond float32's range (3e38) saturate to inf and clip to 1.
    with np.errstate(over="ignore", invalid="ignore"):
        np.subtract(block, np.float64(lo), out=out, casting="unsafe")
        np.multiply(out, np.float64(1.0 / (hi - lo)), out=out, casting="unsafe")
    np.clip(out, 0.0, 1.0, out=out)
    if block.dtype.kind == "f":
        out[~np.isfinite(block)] = 0.0
    return out


def convert_image(
    source: str | Path,
    target: str | Path,
    ndim: int,
    channels: Sequence[int],
    axes: str | None = None,
    h5_dataset: str = "data/image",
    normalize_percentiles: tuple[float, float] = (1.0, 99.8),
    rescale: float | Sequence[float] | None = None,
    pixel_size_um: float | Sequence[float] | None = None,
    scene: int | str | None = None,
) -> dict[str, Any]:
    """Convert one image file to ``target`` (.h5, dataset ``data/image``); return its attributes.

    ``axes`` overrides the file's metadata (a warning says which axes were assumed when
    neither gives them); ``channels`` picks channels (in that order); ``scene`` picks the
    scene of a multi-scene microscope file; ``rescale`` zooms spatial axes (one factor or one
    per axis, ``[Z,] Y, X``) before normalisation. The output is float32 in [0, 1],
    ``(C, Y, X)`` or ``(C, Z, Y, X)``. HDF5 and microscope formats are read and written slab
    by slab, so a volume larger than memory converts (with ``rescale``, one channel of it is
    held in memory). Its pixel size (:func:`pixel_size`: ``pixel_size_um``, the config's,
    over the file's metadata, divided by ``rescale``) is the attribute ``element_size_um``
    (microns, ``[Z,] Y, X``), with ``pixel_size_source``; both are absent when it is unknown.
    """
    source = Path(source)
    lower, upper = normalize_percentiles
    with open_image(source, h5_dataset, scene) as (array, file_axes):
        if array.dtype.kind not in "uifb":
            raise InputError(source, f"has unsupported pixel type {array.dtype}")
        if 0 in array.shape:
            raise InputError(source, "image has no pixels")
        if array.ndim < ndim:
            raise InputError(
                source, f"is {array.ndim}D (shape {array.shape}) but the data set has ndim: {ndim}"
            )
        in_axes = normalize_axes(axes) if axes else file_axes
        if not in_axes:
            in_axes = guess_axes(array.shape, ndim, source)
            _warn_guessed_axes(source, array.shape, in_axes, channels)
        image, out_axes = _channel_first(array, in_axes, ndim, source, guessed=not (axes or file_axes))
        missing = [c for c in channels if c >= image.shape[0]]
        if missing:
            raise InputError(
                source,
                f"channel {missing[0]} does not exist (the image has {image.shape[0]} "
                f"channel{'s' if image.shape[0] != 1 else ''}, axes {in_axes})",
            )
        shape = _zoomed_shape(image.shape[1:], rescale, ndim)
        used, nonfinite = [], []
        with create_h5(target, IMAGE_KEY, (len(channels), *shape), np.float32) as ds:
            for out_c, c in enumerate(channels):
                channel = image[c]
                if rescale is not None:
                    channel = ndimage.zoom(np.asarray(channel).astype(np.float32),
                                           _factors(rescale, ndim), order=1)
                lo, hi, n_bad = channel_range(channel, lower, upper, source, c)
                for offset, block in blocks(channel, ds.chunks[1:], source):
                    write_block(ds, normalize_block(block, lo, hi)[np.newaxis], (out_c, *offset))
                used.append((lo, hi))
                nonfinite.append(n_bad)
            size, size_source = _converted_pixel_size(source, ndim, in_axes, h5_dataset,
                                                      pixel_size_um, rescale, scene)
            attrs = {
                "source": str(source),
                "source_scene": None if scene is None else str(scene),
                "source_axes": in_axes,
                "source_dtype": str(array.dtype),
                "source_shape": list(array.shape),
                "axes": out_axes,
                "channels": list(channels),
                "percentiles": list(normalize_percentiles),
                "percentile_values": np.asarray(used, dtype=np.float64),
                "rescale": "none" if rescale is None else str(rescale),
                "nonfinite_pixels": np.asarray(nonfinite, dtype=np.int64),
                "element_size_um": None if size is None else np.asarray(size, dtype=np.float64),
                "pixel_size_source": size_source or None,
            }
            set_attrs(ds, attrs)
    log.info("%s -> %s: %s %s, axes %s -> %s %s", source, target, array.dtype, array.shape,
             in_axes, out_axes, (len(channels), *shape))
    return {k: v for k, v in attrs.items() if v is not None}


def _channel_first(array: Any, axes: str, ndim: int, source: Path, guessed: bool) -> tuple[Any, str]:
    """:func:`to_channel_first`; for guessed axes, its error says so and how to set them."""
    try:
        return to_channel_first(array, axes, ndim, source)
    except InputError as exc:
        if not guessed:
            raise
        raise InputError(
            source,
            f"{exc.problem}; its axes are unknown (the file has no axes metadata) and were "
            f"guessed as {axes} from its shape {array.shape}: if that is wrong, set `axes:` "
            f"for this data set in the config (e.g. {axes_examples(array.ndim)})",
        ) from exc


def _warn_guessed_axes(source: Path, shape: tuple[int, ...], axes: str,
                       channels: Sequence[int]) -> None:
    """Say which axes were assumed for a file without axes metadata, and what was dropped."""
    extra = ""
    if "C" in axes and shape[axes.index("C")] > len(channels):
        extra = (f": {shape[axes.index('C')]} channels, of which the data set uses "
                 f"{list(channels)} (`channels:`), so the others are not used")
    log.warning("%s has no axes metadata; its shape %s was taken as axes %s%s. If that is "
                "wrong (z-planes or time frames taken for channels, say), set `axes:` for this "
                "data set in the config (%s)", source, tuple(shape), axes, extra,
                axes_examples(len(shape)))


def _factors(rescale: float | Sequence[float], ndim: int) -> list[float]:
    return [float(rescale)] * ndim if np.isscalar(rescale) else [float(f) for f in rescale]


def _zoomed_shape(shape: Sequence[int], rescale: float | Sequence[float] | None,
                  ndim: int) -> tuple[int, ...]:
    """The spatial shape ``scipy.ndimage.zoom`` gives ``shape`` for ``rescale`` (same rule)."""
    if rescale is None:
        return tuple(int(s) for s in shape)
    return tuple(int(round(s * f)) for s, f in zip(shape, _factors(rescale, ndim)))


def _converted_pixel_size(
    source: Path, ndim: int, axes: str, h5_dataset: str,
    override: float | Sequence[float] | None, rescale: float | Sequence[float] | None,
    scene: int | str | None,
) -> tuple[list[float] | None, str]:
    """(:func:`pixel_size` of the converted image, where it comes from), logged."""
    sizes, found = ({}, "") if _overrides_all(override, ndim) else \
        metadata_pixel_size(source, ndim, axes, h5_dataset, scene)
    size = pixel_size(sizes, ndim, override, rescale)
    origin = " + ".join(s for s in ("config pixel_size" if override is not None else "", found) if s)
    if size is None:
        known = "".join(a for a in "ZYX" if a in sizes or (override is not None and a in "YX"))
        why = (f"only {known} known, {ndim}D needs {'ZYX'[-ndim:]}" if known
               else "no ImageJ, OME or element_size_um metadata")
        log.info("%s: no pixel size (%s): no physical size is written; set `pixel_size` for "
                 "its data set in the config to give one", source, why)
        return None, ""
    log.info("%s: pixel size %s um ([Z,] Y, X, after rescale) from %s", source,
             [round(v, 6) for v in size], origin)
    return size, origin
