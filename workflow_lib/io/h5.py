"""HDF5 reading and writing: named float/int datasets, chunked and gzip-compressed."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from workflow_lib.errors import InputError
from workflow_lib.io.atomic import atomic_path


def _chunks(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Chunk shape for random patch reads: one channel, at most 256x256 (2D) or 32x128x128 (3D)."""
    if len(shape) >= 4:
        caps = [1] * (len(shape) - 3) + [32, 128, 128]
    else:
        caps = [1] * (len(shape) - 2) + [256, 256]
    return tuple(max(1, min(s, c)) for s, c in zip(shape, caps))


def write_h5(
    path: str | Path,
    datasets: Mapping[str, np.ndarray],
    attrs: Mapping[str, Any] | None = None,
) -> None:
    """Write ``datasets`` (name like ``data/image`` -> array) to ``path`` atomically.

    ``attrs`` are stored on the first dataset; values that are None are skipped.
    """
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for i, (name, arr) in enumerate(datasets.items()):
                arr = np.asarray(arr)
                ds = f.create_dataset(
                    name,
                    data=arr,
                    chunks=_chunks(arr.shape) if arr.ndim >= 2 else None,
                    compression="gzip" if arr.ndim >= 2 else None,
                    # level 1: with the shuffle filter nearly the ratio of 9 at a fraction of the time
                    compression_opts=1 if arr.ndim >= 2 else None,
                    shuffle=arr.ndim >= 2,
                )
                if i == 0 and attrs:
                    for key, value in attrs.items():
                        if value is not None:
                            ds.attrs[key] = value


def read_h5(path: str | Path, name: str = "data/image") -> tuple[np.ndarray, dict[str, Any]]:
    """Read dataset ``name`` from ``path``; return ``(array, attrs)``.

    Raises :class:`InputError` naming the file when it is missing, unreadable or lacks ``name``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        with h5py.File(path, "r") as f:
            if name not in f:
                raise InputError(path, f"has no dataset '{name}' (found: {list_datasets(f)})")
            ds = f[name]
            return ds[()], dict(ds.attrs)
    except OSError as exc:
        raise InputError(path, f"not a readable HDF5 file ({exc})") from exc


def list_datasets(f: h5py.File) -> list[str]:
    """Names of all datasets in an open HDF5 file."""
    names: list[str] = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    return names
