"""TIFF reading and writing with ImageJ axes metadata, so Fiji and napari open arrays correctly.

Array conventions of the workflow (see the README): 2D images are ``(C, Y, X)``, 3D images
``(C, Z, Y, X)``, time series add a leading ``T``: ``(T, C, Y, X)`` or ``(T, C, Z, Y, X)``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import tifffile

from workflow_lib.errors import InputError
from workflow_lib.io.atomic import atomic_path
from workflow_lib.io.memory import check_fits_memory, format_bytes

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


def read_tiff(path: str | Path, axes: str | None = None) -> tuple[np.ndarray, str]:
    """Read a TIFF and return ``(array, axes)``; ``axes`` from its metadata, '' if unknown.

    With ``axes`` given (e.g. ``"CYX"``), the array is brought into exactly that layout:
    ImageJ files drop singleton axes (a ``(1, Y, X)`` array reads back as ``(Y, X)``), so
    missing axes are re-inserted with size 1 and surplus singleton axes are removed.
    Raises :class:`InputError` naming the file when it is missing, empty, truncated, not a
    TIFF at all, its header declares more pixels than the file holds or memory can take, its
    pixel data cannot be decoded, or it cannot be brought into ``axes``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    if path.stat().st_size == 0:
        raise InputError(path, "file is empty (0 bytes)")
    try:
        tif = tifffile.TiffFile(path)
    except Exception as exc:  # tifffile raises many types (struct.error, KeyError...) on damage
        raise InputError(path, f"not a readable TIFF ({_one_line(exc)})") from exc
    with tif:
        try:
            series = tif.series[0]
        except Exception as exc:  # and so do its metadata parsers
            raise InputError(path, f"not a readable TIFF ({_one_line(exc)})") from exc
        _check_declared_size(path, series)
        file_axes = _known_axes(series.axes)
        try:
            array = series.asarray()
        except MemoryError as exc:
            raise InputError(
                path, f"not enough memory to read its {series.shape} {series.dtype} pixels"
            ) from exc
        except Exception as exc:  # codecs raise their own types (zlib.error, imagecodecs.*Error)
            raise InputError(
                path, f"TIFF pixel data cannot be decoded ({_one_line(exc)}): the file is "
                "truncated or corrupt, or its compression needs a codec that is not installed",
            ) from exc
    if array.size == 0:
        raise InputError(path, "image has no pixels")
    if len(file_axes) != array.ndim:
        file_axes = ""
    if axes is None:
        return array, file_axes
    return _to_axes(array, file_axes, axes, path), axes


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _known_axes(axes: str) -> str:
    """The workflow's letters for tifffile ``axes``; '' when tifffile could not tell them.

    tifffile names axes it cannot interpret ``I`` (a page sequence), ``Q`` and so on; the
    sample axis ``S`` is a channel axis.
    """
    axes = axes.replace("S", "C")
    return axes if set(axes) <= set("TZCYX") and len(set(axes)) == len(axes) else ""


def _check_declared_size(path: Path, series: tifffile.TiffPageSeries) -> None:
    """Refuse a header that declares more pixels than the file holds or memory can take.

    Uncompressed pixels must all be in the file, so a larger declared size is a damaged
    header; compressed data can shrink without bound, so only the memory check applies.
    """
    page = series.keyframe
    if page.compression == 1 and not series.is_multifile:
        # bitspersample is a tuple when the samples differ; the smallest gives a lower bound
        needed = math.prod(int(n) for n in series.shape) * int(np.min(page.bitspersample)) // 8
        size = path.stat().st_size
        if needed > size:
            raise InputError(
                path,
                f"truncated or damaged TIFF: its header declares an uncompressed image of shape "
                f"{series.shape} {series.dtype} ({format_bytes(needed)}) but the file has only "
                f"{format_bytes(size)}",
            )
    check_fits_memory(path, series.shape, series.dtype)


def _to_axes(array: np.ndarray, have: str, want: str, path: Path) -> np.ndarray:
    """Squeeze, expand and transpose ``array`` from axes ``have`` to axes ``want``."""
    if not have:
        if array.ndim == len(want):
            return array
        raise InputError(path, f"has shape {array.shape} without axes metadata; expected {want}")
    for a in have:
        if a not in want:
            if array.shape[have.index(a)] != 1:
                raise InputError(path, f"has axes {have} (shape {array.shape}); expected {want}")
            array = np.take(array, 0, axis=have.index(a))
            have = have.replace(a, "")
    for a in want:
        if a not in have:
            array, have = array[np.newaxis], a + have
    return np.transpose(array, [have.index(a) for a in want])
