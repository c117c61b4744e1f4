"""Axis bookkeeping: bring any microscope layout (YX, ZYX, CYX, ZCYX, YXC, TZCYX...) to (C, [Z,] Y, X)."""

from __future__ import annotations

import numpy as np

from workflow_lib.errors import InputError

# Channel axes can be small; anything larger than this is taken for a spatial axis when guessing.
MAX_GUESSED_CHANNELS = 8


def normalize_axes(axes: str) -> str:
    """Upper-case ``axes`` with tifffile's sample axis ``S`` counted as channel ``C``."""
    return axes.upper().replace("S", "C")


def guess_axes(shape: tuple[int, ...], ndim: int, path: object = None) -> str:
    """Guess the axes of an array from its ``shape`` and the model's spatial ``ndim`` (2 or 3).

    Rules: a trailing axis of 3-4 after two large ones is RGB(A) (``YXC``); a leading or second
    axis of at most :data:`MAX_GUESSED_CHANNELS` is a channel axis; other axes are spatial.
    Raises :class:`InputError` (naming ``path``) when the shape is ambiguous, saying to set
    ``axes:`` in the config.
    """
    n = len(shape)
    small = [s <= MAX_GUESSED_CHANNELS for s in shape]
    if n == 2:
        return "YX"
    if n == 3:
        if shape[-1] in (3, 4) and not small[0] and not small[1]:
            return "YXC"
        if ndim == 2 or small[0]:
            return "CYX" if small[0] else "ZYX"
        return "ZYX"
    if n == 4:
        if small[1] and not small[0]:
            return "ZCYX"
        if small[0]:
            return "CZYX"
    if n == 5 and small[2]:
        return "TZCYX"
    raise InputError(
        path,
        f"has shape {tuple(shape)} and no axes metadata, and its axes are ambiguous from the "
        f"shape: set `axes:` for this data set in the config (e.g. {axes_examples(n)})",
    )


def axes_examples(ndim: int) -> str:
    """Example ``axes:`` settings for an array of ``ndim`` dimensions, for error messages."""
    examples = {
        2: "axes: YX",
        3: "axes: ZYX for a z-stack, axes: CYX for channels, axes: TYX for a time series",
        4: "axes: ZCYX or CZYX for a z-stack with channels, axes: TZYX for a time series "
           "of z-stacks",
    }
    return examples.get(ndim, "axes: TZCYX for a time series of z-stacks with channels")


def to_channel_first(
    array: np.ndarray, axes: str, ndim: int, path: object = None
) -> tuple[np.ndarray, str]:
    """Transpose ``array`` with ``axes`` into ``(C, Y, X)`` (ndim 2) or ``(C, Z, Y, X)`` (ndim 3).

    Singleton T/Z axes are dropped where not needed; missing C and Z axes are added as size 1
    for 3D only when Z is present. Returns ``(array, out_axes)``; the result is a view when
    possible. Raises :class:`InputError` for unknown letters, repeated axes, time series with
    more than one frame, 3D data for a 2D model, or data with fewer spatial dims than ``ndim``.
    """
    axes = normalize_axes(axes)
    if len(axes) != array.ndim:
        raise InputError(
            path, f"axes '{axes}' do not fit an array of shape {array.shape}: give one letter "
            f"per axis (e.g. {axes_examples(array.ndim)})",
        )
    if set(axes) - set("TZCYX") or len(set(axes)) != len(axes):
        raise InputError(
            path, f"axes '{axes}' are not valid: use each of the letters T, Z, C, Y, X at most "
            f"once (e.g. {axes_examples(array.ndim)})",
        )
    if "Y" not in axes or "X" not in axes:
        raise InputError(path, f"axes '{axes}' lack Y or X")
    if "T" in axes:
        frames = array.shape[axes.index("T")]
        if frames > 1:
            raise InputError(path, f"is a time series ({frames} frames); give one file per frame")
        array = np.take(array, 0, axis=axes.index("T"))
        axes = axes.replace("T", "")
    if "C" not in axes:
        array, axes = array[np.newaxis], "C" + axes
    depth = array.shape[axes.index("Z")] if "Z" in axes else 0
    if ndim == 2:
        if depth > 1:
            raise InputError(path, f"is 3D ({depth} z-slices) but the data set has ndim: 2")
        if "Z" in axes:
            array = np.take(array, 0, axis=axes.index("Z"))
            axes = axes.replace("Z", "")
        order = "CYX"
    else:
        if depth <= 1:
            raise InputError(
                path, f"is 2D (axes {axes}, shape {array.shape}) but the data set has ndim: 3"
            )
        order = "CZYX"
    return np.transpose(array, [axes.index(a) for a in order]), order


def element_sizes(values: object, axes: str) -> dict[str, float]:
    """An HDF5 ``element_size_um`` attribute as microns per spatial axis letter.

    ``values`` holds one size per axis of an array with ``axes`` (e.g. ``ZCYX``), or one per
    spatial axis in the array's order (``[Z,] Y, X``, the convention of Fiji's and ilastik's
    HDF5 files). Non-spatial, non-positive and non-finite entries are left out; ``{}`` when the
    values fit neither layout.
    """
    try:
        sizes = [float(v) for v in np.ravel(np.asarray(values, dtype=float))]
    except (TypeError, ValueError):
        return {}
    axes = normalize_axes(axes)
    spatial = [a for a in axes if a in "ZYX"]
    if len(sizes) == len(axes):
        pairs = zip(axes, sizes)
    elif len(sizes) == len(spatial):
        pairs = zip(spatial, sizes)
    else:
        return {}
    return {a: v for a, v in pairs if a in "ZYX" and np.isfinite(v) and v > 0}
