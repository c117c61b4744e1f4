"""I/O helpers: atomic writes, HDF5 with hand-filtered chunks, ImageJ TIFF axes."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import tifffile

from workflow_lib.errors import InputError
from workflow_lib.io import OutputError, atomic_path, read_h5, read_tiff, write_h5, write_tiff


@pytest.mark.parametrize(
    "shape,dtype",
    [((3, 70, 300), np.float32), ((2, 40, 130, 260), np.float32), ((1, 33, 513, 257), np.uint16),
     ((9,), np.int64)],
)
def test_h5_roundtrip_with_partial_chunks(tmp_path, shape, dtype):
    arr = (np.random.default_rng(0).random(shape) * 1000).astype(dtype)
    write_h5(tmp_path / "a.h5", {"data/image": arr, "data/other": arr[:1]}, {"axes": "CYX"})
    back, attrs = read_h5(tmp_path / "a.h5")
    np.testing.assert_array_equal(back, arr)
    assert attrs["axes"] == "CYX"
    with h5py.File(tmp_path / "a.h5") as f:  # readable by any HDF5 reader: real filters
        if arr.ndim >= 2:
            assert f["data/image"].compression == "gzip" and f["data/image"].shuffle
        np.testing.assert_array_equal(f["data/other"][()], arr[:1])


def test_read_h5_errors(tmp_path):
    with pytest.raises(InputError, match="file not found"):
        read_h5(tmp_path / "none.h5")
    write_h5(tmp_path / "a.h5", {"data/image": np.zeros((2, 2), np.float32)})
    with pytest.raises(InputError, match="has no dataset 'data/label'"):
        read_h5(tmp_path / "a.h5", "data/label")
    (tmp_path / "b.h5").write_text("text")
    with pytest.raises(InputError, match="not a readable HDF5"):
        read_h5(tmp_path / "b.h5")


@pytest.mark.parametrize("error,expected", [(RuntimeError("killed"), OutputError),
                                            (ValueError("a bug"), ValueError)])
def test_atomic_path_leaves_nothing_on_failure(tmp_path, error, expected):
    target = tmp_path / "sub" / "out.tif"
    with pytest.raises(expected):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise error
    assert not target.exists() and list(target.parent.iterdir()) == []


@pytest.mark.parametrize("axes,shape", [("CYX", (2, 8, 9)), ("CZYX", (1, 4, 8, 9)),
                                        ("TCYX", (3, 1, 8, 9)), ("YX", (8, 9))])
def test_tiff_axes_for_imagej(tmp_path, axes, shape):
    arr = np.arange(np.prod(shape), dtype=np.float32).reshape(shape)
    write_tiff(tmp_path / "a.tif", arr, axes)
    back, back_axes = read_tiff(tmp_path / "a.tif", axes=axes)
    assert back_axes == axes
    np.testing.assert_array_equal(back, arr)  # singleton axes come back too
    with tifffile.TiffFile(tmp_path / "a.tif") as tif:
        assert tif.is_imagej


def test_tiff_wrong_layout_is_an_input_error(tmp_path):
    write_tiff(tmp_path / "a.tif", np.zeros((2, 3, 8, 9), np.uint16), "TCYX")
    with pytest.raises(InputError, match="expected CYX"):
        read_tiff(tmp_path / "a.tif", axes="CYX")


def test_tiff_rejects_bad_dtype_and_axes(tmp_path):
    with pytest.raises(TypeError):
        write_tiff(tmp_path / "a.tif", np.zeros((2, 2), np.float64), "YX")
    with pytest.raises(ValueError):
        write_tiff(tmp_path / "a.tif", np.zeros((2, 2), np.uint8), "CYX")
