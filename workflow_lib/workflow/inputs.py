"""The user's files: finding them from the config's globs and reading the label images.

Globs may match files a rule of the workflow will create (``known_files``: the demo data), so
a fresh clone plans the whole DAG before they exist.
"""

from __future__ import annotations

import fnmatch
import glob
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from workflow_lib.dataset import RealImage, index_files, read_image
from workflow_lib.errors import ConfigError, InputError
from workflow_lib.io import read_png, read_tiff
from workflow_lib.io.formats import IMAGE_SUFFIXES, TIFF_SUFFIXES, image_stem, image_suffix

MASK_SUFFIXES = TIFF_SUFFIXES + (".png",)


def _matches(pattern: str, known_files: Iterable[str]) -> set[str]:
    """Files matching ``pattern``, and OME-Zarr folders (an image that is a folder); never
    the files inside a Zarr folder, which a recursive glob would also find."""
    paths = {
        p for p in glob.glob(pattern, recursive=True)
        if (Path(p).is_file() or _is_zarr(Path(p))) and not any(map(_is_zarr, Path(p).parents))
    }
    return paths | {f for f in known_files if fnmatch.fnmatch(f, pattern)}


def _is_zarr(path: Path) -> bool:
    return path.suffix.lower() == ".zarr" and path.is_dir()


def dataset_images(pattern: str, key: str, known_files: Iterable[str] = ()) -> dict[str, str]:
    """Image name (file name without its format suffix, :func:`image_stem`) -> path of every
    file matching the glob ``pattern``.

    Raises :class:`ConfigError` on ``key`` when nothing matches, a match has an unsupported
    suffix, or two files share a stem (their HDF5 outputs would collide).
    """
    paths = _matches(pattern, known_files)
    if not paths:
        raise ConfigError(key, f"the glob '{pattern}' matches no file")
    images: dict[str, str] = {}
    for path in sorted(paths):
        p = Path(path)
        if set("{}") & set(p.name):
            raise ConfigError(
                key, f"'{path}': file names with {{ or }} cannot be used (Snakemake reads them as "
                "wildcards); rename the file"
            )
        if image_suffix(p) not in IMAGE_SUFFIXES:
            raise ConfigError(key, f"'{path}' is not a supported image ({', '.join(IMAGE_SUFFIXES)})")
        name = image_stem(p)
        if name in images:
            raise ConfigError(key, f"'{images[name]}' and '{path}' share the name '{name}'")
        images[name] = path
    return images


def mask_files(pattern: str, key: str, known_files: Iterable[str] = ()) -> list[str]:
    """Sorted label images matching ``pattern`` (kind ``masks``). Raises :class:`ConfigError`."""
    paths = _matches(pattern, known_files)
    if not paths:
        raise ConfigError(key, f"the glob '{pattern}' matches no file")
    bad = sorted(p for p in paths if Path(p).suffix.lower() not in MASK_SUFFIXES)
    if bad:
        raise ConfigError(key, f"'{bad[0]}' is not a mask image ({', '.join(MASK_SUFFIXES)})")
    return sorted(paths)


def real_masks(
    pattern: str | None, image_names: Iterable[str], key: str, known_files: Iterable[str] = ()
) -> dict[str, str]:
    """Image name -> real mask path, matching the glob ``pattern`` by file stem ({} for None).

    Raises :class:`ConfigError` on ``key`` when the glob matches no file or no file matches an
    image name.
    """
    if pattern is None:
        return {}
    paths = _matches(pattern, known_files)
    if not paths:
        raise ConfigError(key, f"the glob '{pattern}' matches no file")
    names = set(image_names)
    masks = {Path(p).stem: p for p in sorted(paths) if Path(p).stem in names}
    if not masks:
        stems = sorted(Path(p).stem for p in paths)
        raise ConfigError(
            key,
            f"no mask matches an image by file stem (masks: {', '.join(stems[:5])}; "
            f"images: {', '.join(sorted(names)[:5])})",
        )
    return masks


def read_label_image(path: str | Path) -> np.ndarray:
    """A user label image (TIFF or PNG) as an int64 array with singleton axes dropped.

    Raises :class:`InputError` when it is unreadable, holds non-integer values or negative ids.
    """
    path = Path(path)
    if path.suffix.lower() == ".png":
        array = read_png(path)
    else:
        array, _ = read_tiff(path)
    if not np.issubdtype(array.dtype, np.integer) and not np.issubdtype(array.dtype, np.bool_):
        if not np.all(np.mod(array, 1) == 0):
            raise InputError(path, f"a mask must hold integer ids, got {array.dtype} values")
    array = np.squeeze(array)
    if array.size and array.min() < 0:
        raise InputError(path, "mask ids must be >= 0")
    return array.astype(np.int64)


def read_mask(path: str | Path, ndim: int) -> np.ndarray:
    """A label image of kind ``masks`` with ``ndim`` spatial axes ((Y, X) or (Z, Y, X))."""
    array = read_label_image(path)
    if array.ndim != ndim:
        raise InputError(
            path, f"mask has shape {array.shape} ({array.ndim} axes after dropping singletons), "
            f"the simulation needs {ndim} spatial axes"
        )
    return array


def read_real_mask(path: str | Path, shape: tuple[int, ...]) -> np.ndarray:
    """A real instance mask fitted to its image's spatial ``shape`` (singleton axes dropped)."""
    array, _ = read_tiff(path)
    if not np.issubdtype(array.dtype, np.integer):
        raise InputError(path, f"mask must hold integer instance ids, got {array.dtype}")
    squeezed = array.reshape([d for d in array.shape if d != 1] or [1])
    if squeezed.shape != tuple(shape):
        raise InputError(path, f"mask shape {array.shape} does not fit its image {tuple(shape)}")
    return squeezed.astype(np.int64)


def real_images(
    index_csv: str | Path, masks: dict[str, str], channel: int, key: str
) -> list[RealImage]:
    """Real images of one split (channel ``channel``, spatial, in [0, 1]) with their masks.

    ``masks``: image name -> real mask path (images without one get ``mask=None``); ``key``:
    the config key of ``channel``, named when the channel does not exist.
    """
    out = []
    for name, path in sorted(index_files(index_csv).items()):
        array = read_image(path)
        if not 0 <= channel < array.shape[0]:
            raise ConfigError(key, f"channel {channel} does not exist in {path} ({array.shape[0]} channels)")
        image = array[channel]
        mask = read_real_mask(masks[name], image.shape) if name in masks else None
        out.append(RealImage(name, image, mask))
    return out
