"""The image file formats the workflow reads, told apart by suffix, and image names.

Plain TIFF through tifffile, PNG, HDF5; the microscope formats (OME-Zarr folders, OME-TIFF,
CZI, ND2, LIF) through bioio and its reader plugins (:mod:`workflow_lib.io.bioimage`).
"""

from __future__ import annotations

from pathlib import Path

TIFF_SUFFIXES = (".tif", ".tiff")
H5_SUFFIXES = (".h5", ".hdf5")
OME_TIFF_SUFFIXES = (".ome.tif", ".ome.tiff")
#: Suffix (lower case) -> (bioio plugin package, its module). Longest suffixes first.
PLUGINS: dict[str, tuple[str, str]] = {
    ".ome.zarr": ("bioio-ome-zarr", "bioio_ome_zarr"),
    ".ome.tiff": ("bioio-ome-tiff", "bioio_ome_tiff"),
    ".ome.tif": ("bioio-ome-tiff", "bioio_ome_tiff"),
    ".zarr": ("bioio-ome-zarr", "bioio_ome_zarr"),
    ".czi": ("bioio-czi", "bioio_czi"),
    ".nd2": ("bioio-nd2", "bioio_nd2"),
    ".lif": ("bioio-lif", "bioio_lif"),
}
BIOIO_SUFFIXES = tuple(PLUGINS)
#: Every suffix the conversion reads.
IMAGE_SUFFIXES = TIFF_SUFFIXES + (".png",) + H5_SUFFIXES + BIOIO_SUFFIXES


def image_suffix(path: str | Path) -> str:
    """The format suffix of ``path``, lower case: ``.ome.tif`` and ``.ome.zarr`` count whole."""
    name = Path(path).name.lower()
    return next((s for s in PLUGINS if name.endswith(s)), Path(name).suffix)


def image_stem(path: str | Path) -> str:
    """``path``'s name without its format suffix (``a.ome.zarr`` -> ``a``, ``b.tif`` -> ``b``)."""
    name = Path(path).name
    return name[: len(name) - len(image_suffix(path))]


def format_name(path: str | Path) -> str:
    """The format of a microscope file as people call it: OME-Zarr, OME-TIFF, CZI, ND2, LIF."""
    suffix = image_suffix(path)
    return "OME-Zarr" if suffix.endswith(".zarr") else \
        "OME-TIFF" if suffix in OME_TIFF_SUFFIXES else suffix[1:].upper()
