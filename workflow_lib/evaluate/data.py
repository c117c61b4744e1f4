"""Loading the evaluation's inputs: stage outputs of one simulation and the real data set."""

from __future__ import annotations

import csv
import fnmatch
import glob
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from workflow_lib.errors import ConfigError, InputError
from workflow_lib.io import axes_for, read_h5, read_tiff


@dataclass(frozen=True)
class RealImage:
    """One real image of a split: ``image`` spatial ``(Y, X)``/``(Z, Y, X)`` in [0, 1]."""

    name: str
    image: np.ndarray
    mask: np.ndarray | None  # integer instances of the same shape, None when not annotated


def match_masks(
    pattern: str | None, image_names: Iterable[str], key: str, known_files: Iterable[str] = ()
) -> dict[str, str]:
    """Image name -> real mask path, matching the glob ``pattern`` by file stem.

    ``known_files`` count before they exist (workflow-made demo data). Returns {} for a null
    pattern; raises :class:`ConfigError` on ``key`` when the glob matches no file or no
    file matches an image name.
    """
    if pattern is None:
        return {}
    paths = set(glob.glob(pattern, recursive=True))
    paths |= {f for f in known_files if fnmatch.fnmatch(f, pattern)}
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


def split_files(index_csv: str | Path) -> dict[str, Path]:
    """Image name -> HDF5 path of one split's index CSV (``path`` relative to its folder)."""
    index_csv = Path(index_csv)
    try:
        with open(index_csv, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
    except OSError as exc:
        raise InputError(index_csv, f"cannot read index ({exc})") from exc
    if rows and "path" not in rows[0]:
        raise InputError(index_csv, "has no 'path' column")
    files = {}
    for row in rows:
        path = index_csv.parent / row["path"]
        files[path.stem] = path
    return files


def load_mask(path: str | Path, shape: tuple[int, ...]) -> np.ndarray:
    """Read a real instance mask and fit it to the spatial ``shape`` (singleton axes dropped)."""
    mask, _ = read_tiff(path)
    squeezed = mask.reshape([d for d in mask.shape if d != 1] or [1])
    if squeezed.shape != tuple(shape):
        raise InputError(path, f"mask shape {mask.shape} does not fit its image {tuple(shape)}")
    if not np.issubdtype(mask.dtype, np.integer):
        raise InputError(path, f"mask must hold integer instance ids, got {mask.dtype}")
    return squeezed.astype(np.int64)


def load_real(
    index_csv: str | Path, masks: dict[str, str], channel: int, key: str
) -> list[RealImage]:
    """Real images of one split, channel ``channel`` of ``data/image``, with their masks."""
    out = []
    for name, path in sorted(split_files(index_csv).items()):
        array, _ = read_h5(path, "data/image")
        if not 0 <= channel < array.shape[0]:
            raise ConfigError(key, f"channel {channel} does not exist in {path} ({array.shape[0]} channels)")
        image = array[channel].astype(np.float32)
        mask = load_mask(masks[name], image.shape) if name in masks else None
        out.append(RealImage(name, image, mask))
    return out


def load_stack(paths: Sequence[str | Path], ndim: int, time: bool = False) -> list[np.ndarray]:
    """Read workflow TIFFs as ``([T,] C, [Z,] Y, X)`` (singleton axes ImageJ drops restored)."""
    axes = axes_for(ndim, time=time)
    return [read_tiff(path, axes=axes)[0] for path in paths]
