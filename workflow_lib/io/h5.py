"""HDF5 reading and writing: named float/int datasets, chunked and gzip-compressed."""

from __future__ import annotations

import contextlib
import itertools
import os
import zlib
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from workflow_lib.errors import InputError
from workflow_lib.io.atomic import atomic_path
from workflow_lib.io.memory import check_fits_memory


# Level 1: with the shuffle filter nearly the ratio of level 9 at a fraction of the time.
_GZIP_LEVEL = 1


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

    Arrays of 2+ dims are chunked (see :func:`_chunks`), shuffled and gzip-compressed (level 1),
    with the chunks compressed on all cores. ``attrs`` are stored on the first dataset; values
    that are None are skipped.
    """
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            for i, (name, arr) in enumerate(datasets.items()):
                arr = np.asarray(arr)
                if arr.ndim >= 2 and arr.size:
                    ds = _create_chunked(f, name, arr.shape, arr.dtype)
                    write_block(ds, arr)
                else:
                    ds = f.create_dataset(name, data=arr)
                if i == 0 and attrs:
                    set_attrs(ds, attrs)


@contextlib.contextmanager
def create_h5(
    path: str | Path, name: str, shape: tuple[int, ...], dtype: np.dtype
) -> Iterator[h5py.Dataset]:
    """A new file ``path`` with one empty chunked, compressed dataset ``name`` (2+ dims), to
    fill block by block with :func:`write_block` and :func:`set_attrs`: for arrays that are
    made piece by piece and need not fit in memory. The file appears, complete, only when the
    ``with`` block ends without an error."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            yield _create_chunked(f, name, tuple(shape), np.dtype(dtype))


def set_attrs(ds: h5py.Dataset, attrs: Mapping[str, Any]) -> None:
    """Store ``attrs`` on ``ds``, skipping values that are None."""
    for key, value in attrs.items():
        if value is not None:
            ds.attrs[key] = value


def _create_chunked(f: h5py.File, name: str, shape: tuple[int, ...], dtype: np.dtype) -> h5py.Dataset:
    return f.create_dataset(
        name, shape=shape, dtype=dtype, chunks=_chunks(shape),
        compression="gzip", compression_opts=_GZIP_LEVEL, shuffle=True,
    )


def _compress_chunk(block: np.ndarray, chunk_shape: tuple[int, ...]) -> bytes:
    """Pad ``block`` to a full chunk, then apply HDF5's shuffle and deflate filters by hand."""
    if block.shape != chunk_shape:
        full = np.zeros(chunk_shape, dtype=block.dtype)
        full[tuple(slice(0, s) for s in block.shape)] = block
        block = full
    raw = np.ascontiguousarray(block).view(np.uint8).reshape(-1, block.dtype.itemsize)
    return zlib.compress(np.ascontiguousarray(raw.T).tobytes(), _GZIP_LEVEL)


def write_block(ds: h5py.Dataset, block: np.ndarray, offset: tuple[int, ...] | None = None) -> None:
    """Write ``block`` into a dataset of :func:`create_h5` at ``offset`` (default: the origin),
    compressing its chunks on all cores.

    ``offset`` must lie on the chunk grid (``ds.chunks``) and the block must end on it or at the
    dataset's edge: every chunk is written whole, once. h5py compresses on one thread, which
    made gzip the bottleneck of converting large volumes; zlib releases the GIL, so threads
    scale. Batches bound the compressed data held in memory.
    """
    chunk = ds.chunks
    offset = offset or (0,) * block.ndim
    ends = [o + s for o, s in zip(offset, block.shape)]
    if any(o % c for o, c in zip(offset, chunk)) or \
            any(e % c and e != n for e, c, n in zip(ends, chunk, ds.shape)):
        raise ValueError(f"block {block.shape} at {offset} is not aligned to chunks {chunk}")
    grid = [range(0, s, c) for s, c in zip(block.shape, chunk)]
    starts = list(itertools.product(*grid))
    workers = max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1)

    def job(start: tuple[int, ...]) -> bytes:
        index = tuple(slice(o, o + c) for o, c in zip(start, chunk))
        return _compress_chunk(block[index], chunk)

    with ThreadPoolExecutor(max_workers=workers) as pool:
        batch = 8 * workers
        for first in range(0, len(starts), batch):
            part = starts[first : first + batch]
            for start, data in zip(part, pool.map(job, part)):
                ds.id.write_direct_chunk(tuple(o + s for o, s in zip(offset, start)), data)


@contextlib.contextmanager
def open_h5(path: str | Path, name: str) -> Iterator[h5py.Dataset]:
    """Dataset ``name`` of the HDF5 file ``path``, open (its data are read when sliced); every
    failure to open it an :class:`InputError`."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise _unreadable(path, exc) from exc
    with f:
        if name not in f:
            raise InputError(path, f"has no dataset '{name}' (found: {list_datasets(f)})")
        ds = f[name]
        if not isinstance(ds, h5py.Dataset):
            raise InputError(path, f"'{name}' is a group, not a dataset")
        yield ds


def _unreadable(path: Path, exc: OSError) -> InputError:
    return InputError(path, f"not a readable HDF5 file ({' '.join(str(exc).split())})")


def read_h5(path: str | Path, name: str = "data/image") -> tuple[np.ndarray, dict[str, Any]]:
    """Read dataset ``name`` from ``path``; return ``(array, attrs)``.

    Raises :class:`InputError` naming the file when it is missing, unreadable, lacks ``name``,
    declares more data than memory can take, or its data cannot be decoded.
    """
    with open_h5(path, name) as ds:
        check_fits_memory(path, ds.shape or (), ds.dtype)
        try:
            return ds[()], dict(ds.attrs)
        except OSError as exc:  # a damaged chunk
            raise _unreadable(Path(path), exc) from exc


def read_h5_header(
    path: str | Path, name: str = "data/image"
) -> tuple[tuple[int, ...], dict[str, Any]]:
    """Shape and attributes of dataset ``name`` in ``path``, without reading its data.

    Raises :class:`InputError` like :func:`read_h5` for a missing or unreadable file or dataset.
    """
    with open_h5(path, name) as ds:
        return tuple(ds.shape or ()), dict(ds.attrs)


def list_datasets(f: h5py.File) -> list[str]:
    """Names of all datasets in an open HDF5 file."""
    names: list[str] = []
    f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    return names
