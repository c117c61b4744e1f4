"""File I/O: atomic writes, TIFF with ImageJ axes, HDF5, PNG, JSON. Independent of Snakemake."""

from workflow_lib.io.atomic import OutputError, atomic_path, atomic_write_text
from workflow_lib.io.digest import file_digest
from workflow_lib.io.h5 import (
    create_h5, open_h5, read_h5, read_h5_header, set_attrs, write_block, write_h5,
)
from workflow_lib.io.json_file import read_json, write_json
from workflow_lib.io.png import read_png
from workflow_lib.io.tiff import (
    axes_for, read_tiff, read_tiff_pixel_size, read_tiff_spacing, write_tiff,
)

__all__ = [
    "OutputError",
    "atomic_path",
    "atomic_write_text",
    "axes_for",
    "create_h5",
    "file_digest",
    "open_h5",
    "read_h5",
    "read_h5_header",
    "read_json",
    "read_png",
    "read_tiff",
    "read_tiff_pixel_size",
    "read_tiff_spacing",
    "set_attrs",
    "write_block",
    "write_h5",
    "write_json",
    "write_tiff",
]
