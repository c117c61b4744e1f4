"""Finding and reading the user label images of kind ``masks`` (the only I/O of simulation)."""

from __future__ import annotations

import fnmatch
import glob
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from workflow_lib.errors import ConfigError, InputError
from workflow_lib.io import read_tiff

MASK_SUFFIXES = (".tif", ".tiff", ".png")


def mask_files(pattern: str, key: str, known_files: Iterable[str] = ()) -> list[str]:
    """Sorted paths matching ``pattern`` (plus ``known_files`` a rule will create).

    Raises :class:`ConfigError` naming ``key`` when nothing matches or a file is no mask image.
    """
    paths = {p for p in glob.glob(pattern, recursive=True) if Path(p).is_file()}
    paths |= {f for f in known_files if fnmatch.fnmatch(f, pattern)}
    if not paths:
        raise ConfigError(key, f"the glob '{pattern}' matches no file")
    bad = [p for p in paths if Path(p).suffix.lower() not in MASK_SUFFIXES]
    if bad:
        raise ConfigError(key, f"'{sorted(bad)[0]}' is not a mask image ({', '.join(MASK_SUFFIXES)})")
    return sorted(paths)


def load_mask(path: str | Path, ndim: int) -> np.ndarray:
    """Read a label image as a spatial integer array (Y, X) or (Z, Y, X).

    Singleton axes (a channel or time axis of length 1) are dropped. Raises
    :class:`InputError` when the file is unreadable, not integer, or has the wrong ndim.
    """
    path = Path(path)
    if path.suffix.lower() == ".png":
        import imageio.v3 as iio

        try:
            array = iio.imread(path)
        except (OSError, ValueError) as exc:
            raise InputError(path, f"not a readable PNG ({exc})") from exc
    else:
        array, _ = read_tiff(path)
    if not np.issubdtype(array.dtype, np.integer) and not np.issubdtype(array.dtype, np.bool_):
        if not np.all(np.mod(array, 1) == 0):
            raise InputError(path, f"a mask must hold integer ids, got {array.dtype} values")
    array = np.squeeze(array)
    if array.ndim != ndim:
        raise InputError(
            path, f"mask has shape {array.shape} ({array.ndim} axes after dropping singletons), "
            f"the simulation needs {ndim} spatial axes"
        )
    if array.min() < 0:
        raise InputError(path, "mask ids must be >= 0")
    return array.astype(np.int64)
