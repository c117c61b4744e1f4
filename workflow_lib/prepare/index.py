"""index: the HDF5 files of a data set -> train/val/test CSV lists with a deterministic split."""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import h5py

from workflow_lib.errors import InputError
from workflow_lib.io import atomic_write_text
from workflow_lib.pipeline import SPLITS

COLUMNS = ("path", "name", "shape", "axes", "source")


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
    """Shape, axes and source of an HDF5 file written by convert, as CSV fields."""
    try:
        with h5py.File(path, "r") as f:
            ds = f["data/image"]
            return {
                "shape": "x".join(str(s) for s in ds.shape),
                "axes": str(ds.attrs.get("axes", "")),
                "source": str(ds.attrs.get("source", "")),
            }
    except (OSError, KeyError) as exc:
        raise InputError(path, f"not a converted image (no readable data/image: {exc})") from exc


def write_index(
    h5_paths: Sequence[str | Path],
    outputs: Mapping[str, str | Path],
    val: float,
    test: float,
    seed: int,
) -> dict[str, list[str]]:
    """Write one CSV per split (``outputs``: split -> path); return split -> image names.

    Each CSV has a header and one row per file; ``path`` is relative to the CSV's folder so the
    lists keep working when the results folder is moved.
    """
    by_name = {Path(p).stem: Path(p) for p in h5_paths}
    if len(by_name) != len(h5_paths):
        raise InputError(None, "two HDF5 files share a name")
    split = split_names(sorted(by_name), val, test, seed)
    for name in SPLITS:
        csv_path = Path(outputs[name])
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for image in split[name]:
            h5 = by_name[image]
            rel = os.path.relpath(h5.resolve(), csv_path.parent.resolve())
            writer.writerow({"path": Path(rel).as_posix(), "name": image, **describe_h5(h5)})
        atomic_write_text(csv_path, buffer.getvalue())
    return split


def read_index(csv_path: str | Path) -> list[dict[str, str]]:
    """Rows of an index CSV, with ``path`` resolved against the CSV's folder."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise InputError(csv_path, "index file not found (run the prepare stage first)")
    with open(csv_path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames is None or "path" not in reader.fieldnames:
            raise InputError(
                csv_path, f"has no 'path' column (columns: {reader.fieldnames}); not an index file"
            )
        rows = list(reader)
    for row in rows:
        row["path"] = str(csv_path.parent / row["path"])
    return rows
