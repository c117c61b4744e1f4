"""I/O helpers: atomic writes, HDF5 with hand-filtered chunks, ImageJ TIFF axes."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import tifffile

from workflow_lib.errors import InputError
from workflow_lib.io import (
    OutputError, atomic_path, read_h5, read_h5_header, read_tiff, read_tiff_pixel_size,
    read_tiff_spacing, write_h5, write_tiff,
)


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


@pytest.mark.parametrize("axes,shape,spacing", [
    ("YX", (8, 9), (0.5, 0.25)), ("CYX", (2, 8, 9), (0.5, 0.5)),
    ("CZYX", (2, 4, 8, 9), (2.0, 0.5, 0.5)), ("TCZYX", (3, 1, 4, 8, 9), (1.5, 0.65, 0.65)),
])
def test_tiff_spacing_is_imagej_calibration(tmp_path, axes, shape, spacing):
    write_tiff(tmp_path / "a.tif", np.zeros(shape, np.uint16), axes, spacing=spacing)
    with tifffile.TiffFile(tmp_path / "a.tif") as tif:  # what Fiji reads
        assert tif.imagej_metadata["unit"] == "um"
        x_res, y_res = tif.pages[0].resolution  # pixels per micron
        assert (1 / y_res, 1 / x_res) == pytest.approx(spacing[-2:])
        assert tif.imagej_metadata.get("spacing") == (spacing[0] if "Z" in axes else None)
    assert read_tiff_spacing(tmp_path / "a.tif", len(spacing)) == pytest.approx(spacing)
    assert read_tiff(tmp_path / "a.tif", axes=axes)[0].shape == shape


def test_tiff_without_spacing_states_no_size(tmp_path):
    write_tiff(tmp_path / "a.tif", np.zeros((1, 8, 9), np.float32), "CYX")
    with tifffile.TiffFile(tmp_path / "a.tif") as tif:
        assert "unit" not in tif.imagej_metadata  # resolution 1 without a unit: uncalibrated
    assert read_tiff_pixel_size(tmp_path / "a.tif") == ({}, "")
    assert read_tiff_spacing(tmp_path / "a.tif", 2) is None


def test_tiff_spacing_must_fit_the_spatial_axes(tmp_path):
    with pytest.raises(ValueError, match="does not fit"):
        write_tiff(tmp_path / "a.tif", np.zeros((1, 8, 9), np.float32), "CYX", spacing=(1, 1, 1))
    with pytest.raises(ValueError, match="positive"):
        write_tiff(tmp_path / "a.tif", np.zeros((8, 9), np.float32), "YX", spacing=(0, 1))
    assert not (tmp_path / "a.tif").exists()


# ImageJ escapes non-ASCII units in its description: µm is written \u00B5m
@pytest.mark.parametrize("unit,scale", [("um", 1), ("micron", 1), ("\\u00B5m", 1), ("nm", 1e-3),
                                        ("mm", 1e3)])
def test_imagej_units(tmp_path, unit, scale):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((3, 8, 9), np.uint16), imagej=True,
                     resolution=(2, 4), metadata={"axes": "ZYX", "unit": unit, "spacing": 3})
    sizes, source = read_tiff_pixel_size(tmp_path / "a.tif")
    assert source == "ImageJ metadata"
    assert sizes == pytest.approx({"X": 0.5 * scale, "Y": 0.25 * scale, "Z": 3 * scale})


def test_imagej_stack_without_spacing_has_imagej_default_z_step(tmp_path):
    """ImageJ leaves `spacing` out when the Z step is 1 unit."""
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((3, 8, 9), np.uint16), imagej=True,
                     resolution=(2, 2), metadata={"axes": "ZYX", "unit": "micron"})
    assert read_tiff_pixel_size(tmp_path / "a.tif")[0] == {"X": 0.5, "Y": 0.5, "Z": 1.0}


def test_ome_physical_sizes(tmp_path):
    tifffile.imwrite(tmp_path / "a.ome.tif", np.zeros((3, 8, 9), np.uint16), metadata={
        "axes": "ZYX", "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5,  # unit: OME's default, um
        "PhysicalSizeZ": 2000, "PhysicalSizeZUnit": "nm"})
    sizes, source = read_tiff_pixel_size(tmp_path / "a.ome.tif")
    assert source == "OME-XML" and sizes == pytest.approx({"X": 0.5, "Y": 0.5, "Z": 2.0})


def test_plain_tiff_resolution_is_not_a_pixel_size(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((8, 9), np.uint16), resolution=(72, 72),
                     resolutionunit="INCH")  # a screen's dpi, not a microscope's pixel
    assert read_tiff_pixel_size(tmp_path / "a.tif") == ({}, "")


def test_read_h5_header_reads_no_data(tmp_path):
    write_h5(tmp_path / "a.h5", {"data/image": np.zeros((1, 4, 5), np.float32)},
             {"element_size_um": np.array([0.5, 0.5])})
    shape, attrs = read_h5_header(tmp_path / "a.h5")
    assert shape == (1, 4, 5) and attrs["element_size_um"].tolist() == [0.5, 0.5]
    with pytest.raises(InputError, match="has no dataset"):
        read_h5_header(tmp_path / "a.h5", "data/label")

