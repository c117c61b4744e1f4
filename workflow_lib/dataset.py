"""The converted-data format every stage shares: one HDF5 file per image plus split index CSVs.

- ``results/{dataset}/h5/{image}.h5``: dataset :data:`IMAGE_KEY`, float32 ``(C, Y, X)`` or
  ``(C, Z, Y, X)`` in [0, 1], attributes ``axes`` and ``source`` (written by ``prepare``).
- ``results/{dataset}/index/{split}.csv`` for each of :data:`SPLITS`: a header
  (:data:`INDEX_COLUMNS`) and one row per image; ``path`` is relative to the CSV's folder so a
  moved results folder keeps working.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from workflow_lib.errors import InputError
from workflow_lib.io import atomic_write_text, read_h5

SPLITS = ("train", "val", "test")
IMAGE_KEY = "data/image"
INDEX_COLUMNS = ("path", "name", "shape", "axes", "source")


@dataclass(frozen=True)
class RealImage:
    """One real image of a split: ``image`` one channel, spatial ``(Y, X)``/``(Z, Y, X)`` in
    [0, 1]; ``mask`` integer instances of the same shape, None when not annotated."""

    name: str
    image: np.ndarray
    mask: np.ndarray | None


def split_names(
    names: Sequence[str], val: float, test: float, seed: int
) -> dict[str, list[str]]:
    """Assign each image name to train, val or test.

    Names are ordered by a seeded hash of the name, so the split depends only on the names and
    the seed (not on file order), and adding an image moves few others. ``round(test * n)``
    names go to test and ``round(val * n)`` to val, but at least one always stays in train.
    """
    n = len(names)
    if n == 0:
        raise ValueError("no images to split")
    n_test = round(test * n)
    n_val = round(val * n)
    while n_test + n_val > n - 1:
        if n_test >= n_val and n_test > 0:
            n_test -= 1
        else:
            n_val -= 1
    order = sorted(names, key=lambda s: hashlib.sha256(f"{seed}:{s}".encode()).hexdigest())
    return {
        "test": sorted(order[:n_test]),
        "val": sorted(order[n_test : n_test + n_val]),
        "train": sorted(order[n_test + n_val :]),
    }


def describe_h5(path: str | Path) -> dict[str, str]:
    """Shape, axes and source of a converted image, as index CSV fields."""
    try:
        with h5py.File(path, "r") as f:
            ds = f[IMAGE_KEY]
            return {
                "shape": "x".join(str(s) for s in ds.shape),
                "axes": str(ds.attrs.get("axes", "")),
                "source": str(ds.attrs.get("source", "")),
            }
    except (OSError, KeyError) as exc:
        raise InputError(path, f"not a converted image (no readable {IMAGE_KEY}: {exc})") from exc


def write_index(
    h5_paths: Sequence[str | Path],
    outputs: Mapping[str, str | Path],
    val: float,
    test: float,
    seed: int,
) -> dict[str, list[str]]:
    """Write one CSV per split (``outputs``: split -> path); return split -> image names."""
    by_name = {Path(p).stem: Path(p) for p in h5_paths}
    if len(by_name) != len(h5_paths):
        raise InputError(None, "two HDF5 files share a name")
    split = split_names(sorted(by_name), val, test, seed)
    for name in SPLITS:
        write_split_csv(outputs[name], [by_name[image] for image in split[name]])
    return split


def write_split_csv(csv_path: str | Path, h5_paths: Sequence[str | Path]) -> None:
    """One split's index CSV: a row per converted image, its path relative to the CSV."""
    csv_path = Path(csv_path)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=INDEX_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for h5 in map(Path, h5_paths):
        rel = os.path.relpath(h5.resolve(), csv_path.parent.resolve())
        writer.writerow({"path": Path(rel).as_posix(), "name": h5.stem, **describe_h5(h5)})
    atomic_write_text(csv_path, buffer.getvalue())


def read_index(csv_path: str | Path) -> list[dict[str, str]]:
    """Rows of an index CSV, with ``path`` resolved against the CSV's folder."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise InputError(csv_path, "index file not found (run the prepare stage first)")
    try:
        with open(csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            if reader.fieldnames is None or "path" not in reader.fieldnames:
                raise InputError(
                    csv_path, f"has no 'path' column (columns: {reader.fieldnames}); not an index file"
                )
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputError(csv_path, f"cannot read index ({exc})") from exc
    for row in rows:
        row["path"] = str(csv_path.parent / row["path"])
    return rows


def index_files(csv_path: str | Path) -> dict[str, Path]:
    """Image name (file stem) -> HDF5 path of one split, in the CSV's order."""
    return {Path(row["path"]).stem: Path(row["path"]) for row in read_index(csv_path)}


def read_image(path: str | Path) -> np.ndarray:
    """The converted image of one HDF5 file: float32 ``(C, [Z,] Y, X)`` in [0, 1]."""
    array, _ = read_h5(path, IMAGE_KEY)
    return np.asarray(array, np.float32)
