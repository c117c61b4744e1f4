"""TIFF reading and writing with ImageJ axes metadata, so Fiji and napari open arrays correctly.

Array conventions of the workflow (see the README): 2D images are ``(C, Y, X)``, 3D images
``(C, Z, Y, X)``, time series add a leading ``T``: ``(T, C, Y, X)`` or ``(T, C, Z, Y, X)``.

Physical pixel sizes are microns per spatial axis, ``[Z,] Y, X`` (``spacing``). Written the way
ImageJ writes them: X/Y resolution in pixels per micron, ``unit=um`` and ``spacing=`` (the Z
step) in the ImageJ description. Read from ImageJ metadata (a length ``unit`` with the X/Y
resolution tags and ``spacing``) or OME-XML (``PhysicalSizeX/Y/Z`` with their units): see
:func:`read_tiff_pixel_size`.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from xml.etree import ElementTree

import numpy as np
import tifffile

from workflow_lib.errors import InputError
from workflow_lib.io.atomic import atomic_path
from workflow_lib.io.memory import check_fits_memory, format_bytes

log = logging.getLogger("cellsynth")

_IMAGEJ_DTYPES = (np.uint8, np.uint16, np.float32)

# Microns per unit of length, by the spellings ImageJ and OME-XML use (lower case).
_MICRONS_PER = {
    **dict.fromkeys(("um", "\u00b5m", "\u03bcm", "micron", "microns", "micrometer", "micrometers",
                     "micrometre", "micrometres"), 1.0),
    **dict.fromkeys(("nm", "nanometer", "nanometers", "nanometre", "nanometres"), 1e-3),
    **dict.fromkeys(("pm", "picometer", "picometre"), 1e-6),
    **dict.fromkeys(("\u00e5", "\u212b", "angstrom", "angstroms"), 1e-4),
    **dict.fromkeys(("mm", "millimeter", "millimeters", "millimetre", "millimetres"), 1e3),
    **dict.fromkeys(("cm", "centimeter", "centimeters", "centimetre", "centimetres"), 1e4),
    **dict.fromkeys(("m", "meter", "meters", "metre", "metres"), 1e6),
    **dict.fromkeys(("in", "inch", "inches"), 25400.0),
}


def axes_for(ndim_spatial: int, time: bool = False) -> str:
    """Axes string of the workflow's convention: ``CYX``, ``CZYX``, ``TCYX`` or ``TCZYX``."""
    if ndim_spatial not in (2, 3):
        raise ValueError(f"ndim_spatial must be 2 or 3, got {ndim_spatial}")
    return ("T" if time else "") + "C" + ("ZYX" if ndim_spatial == 3 else "YX")


def write_tiff(
    path: str | Path,
    array: np.ndarray,
    axes: str,
    compress: bool = True,
    spacing: Sequence[float] | None = None,
) -> None:
    """Write ``array`` with ImageJ ``axes`` (a subset of ``TZCYX`` in any order) atomically.

    ImageJ hyperstacks require the order ``TZCYX``; the array is transposed into it, and
    ``tifffile.imread`` then returns that order. uint8, uint16 and float32 are supported.
    ``spacing``: microns per spatial axis, ``[Z,] Y, X`` (one per Z, Y, X letter of ``axes``),
    written as ImageJ calibration (X/Y resolution in pixels per micron, ``unit=um``,
    ``spacing=`` for Z); None writes no physical size.
    """
    array = np.asarray(array)
    if array.dtype not in _IMAGEJ_DTYPES:
        raise TypeError(f"{path}: ImageJ TIFF needs uint8, uint16 or float32, got {array.dtype}")
    if len(axes) != array.ndim or set(axes) - set("TZCYX") or len(set(axes)) != len(axes):
        raise ValueError(f"{path}: axes '{axes}' do not fit an array of shape {array.shape}")
    order = [a for a in "TZCYX" if a in axes]
    array = np.transpose(array, [axes.index(a) for a in order])
    metadata: dict = {"axes": "".join(order)}
    kwargs: dict = {}
    if spacing is not None:
        sizes = _spacing_by_axis(path, spacing, [a for a in order if a in "ZYX"])
        metadata["unit"] = "um"
        if "Z" in sizes:
            metadata["spacing"] = sizes["Z"]
        kwargs["resolution"] = (1.0 / sizes["X"], 1.0 / sizes["Y"])
    with atomic_path(path) as tmp:
        tifffile.imwrite(
            tmp,
            array,
            imagej=True,
            metadata=metadata,
            compression="zlib" if compress else None,
            **kwargs,
        )


def _spacing_by_axis(path: object, spacing: Sequence[float], spatial: list[str]) -> dict[str, float]:
    """``spacing`` (``[Z,] Y, X``) as axis letter -> microns; ValueError when it does not fit."""
    values = [float(s) for s in spacing]
    if len(values) != len(spatial) or not {"Y", "X"} <= set(spatial):
        raise ValueError(f"{path}: spacing {list(spacing)} does not fit the spatial axes "
                         f"{''.join(spatial)} (one size per axis, [Z,] Y, X)")
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"{path}: spacing {list(spacing)} must be positive sizes in microns")
    return dict(zip(spatial, values))


def microns_per(unit: object) -> float | None:
    """Microns per ``unit`` (``um``, ``\u00b5m``, ``micron``, ``nm``, ``mm``, ..., as ImageJ and
    OME-XML spell them, ImageJ's ``\\u00B5`` escapes included); None for anything that is not
    a length (``pixel``, empty, unknown)."""
    if not isinstance(unit, str):
        return None
    text = re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), unit)
    return _MICRONS_PER.get(text.strip().lower())


def read_tiff_pixel_size(path: str | Path) -> tuple[dict[str, float], str]:
    """The physical pixel size a TIFF's metadata states, reading only its header.

    Returns ``(sizes, source)``: ``sizes`` maps the calibrated axes (``X``, ``Y``, ``Z``) to
    microns, ``source`` is ``"OME-XML"`` or ``"ImageJ metadata"``; ``({}, "")`` when the file
    states none. OME-XML: the first image's ``PhysicalSizeX/Y/Z`` (unit attributes, default
    microns). ImageJ: only with a length ``unit`` in the description (an uncalibrated image has
    resolution 1 and no unit), X/Y from the resolution tags (pixels per unit) and Z from
    ``spacing``, which ImageJ leaves out of a stack when it is 1 unit. Plain TIFF resolution
    (dots per inch of scanners and screens) is not read. Raises :class:`InputError` when the
    file is missing or not a TIFF; unreadable metadata counts as none (with a warning).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        tif = tifffile.TiffFile(path)
    except Exception as exc:
        raise InputError(path, f"not a readable TIFF ({_one_line(exc)})") from exc
    with tif:
        try:
            if tif.is_ome:
                sizes = _ome_sizes(tif.ome_metadata or "")
                if sizes:
                    return sizes, "OME-XML"
            if tif.is_imagej:
                sizes = _imagej_sizes(tif)
                if sizes:
                    return sizes, "ImageJ metadata"
        except Exception as exc:  # malformed XML, odd tag values: no size rather than no image
            log.warning("%s: cannot read its pixel size metadata (%s); taken as unknown",
                        path, _one_line(exc))
    return {}, ""


def read_tiff_spacing(path: str | Path, ndim: int) -> tuple[float, ...] | None:
    """Microns per spatial axis ``[Z,] Y, X`` (``ndim`` of them) of a TIFF, as
    :func:`write_tiff` writes them; None unless its metadata states all of them."""
    sizes, _ = read_tiff_pixel_size(path)
    return spatial_spacing(sizes, ndim)


def spatial_spacing(sizes: Mapping[str, float], ndim: int) -> tuple[float, ...] | None:
    """``sizes`` (axis letter -> microns) as ``([Z,] Y, X)`` for ``ndim`` spatial axes, or None
    when one of them is missing."""
    letters = "ZYX"[-ndim:]
    if any(a not in sizes for a in letters):
        return None
    return tuple(float(sizes[a]) for a in letters)


def _positive(value: object) -> float | None:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _ome_sizes(xml: str) -> dict[str, float]:
    """``PhysicalSizeX/Y/Z`` (microns) of the first ``Pixels`` element of an OME-XML text."""
    if not xml:
        return {}
    root = ElementTree.fromstring(xml)
    pixels = next((el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    sizes: dict[str, float] = {}
    if pixels is None:
        return sizes
    for axis in "XYZ":
        value = _positive(pixels.get(f"PhysicalSize{axis}"))
        unit = microns_per(pixels.get(f"PhysicalSize{axis}Unit", "\u00b5m"))
        if value is not None and unit is not None:
            sizes[axis] = value * unit
    return sizes


def _imagej_sizes(tif: tifffile.TiffFile) -> dict[str, float]:
    """X/Y (resolution tags) and Z (``spacing``) in microns of an ImageJ file with a unit."""
    meta = tif.imagej_metadata or {}
    unit = microns_per(meta.get("unit"))
    if unit is None:
        return {}
    tags = tif.pages[0].tags
    sizes: dict[str, float] = {}
    for axis in "XY":
        tag = tags.get(f"{axis}Resolution")
        value = tag.value if tag is not None else None
        if isinstance(value, tuple) and len(value) == 2:
            value = value[0] / value[1] if value[1] else None
        per_unit = _positive(value)
        if per_unit is None:
            return {}
        sizes[axis] = unit / per_unit
    spacing = _positive(meta.get("spacing"))
    if spacing is not None or "Z" in tif.series[0].axes or int(meta.get("slices", 1) or 1) > 1:
        sizes["Z"] = (spacing if spacing is not None else 1.0) * unit
    return sizes


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
