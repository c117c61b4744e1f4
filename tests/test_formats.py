"""Microscope formats in: OME-Zarr and OME-TIFF through bioio, scenes, slab-wise conversion of
lazily read volumes, and the warning when axes are guessed from the shape."""

from __future__ import annotations

import logging

import h5py
import numpy as np
import pytest
import tifffile

from helpers import write_ome_zarr
from workflow_lib.errors import InputError
from workflow_lib.io import bioimage, formats
from workflow_lib.prepare import convert
from workflow_lib.prepare.convert import convert_image
from workflow_lib.workflow.inputs import dataset_images


def _volume(shape=(2, 12, 40, 48), seed=0):
    return np.random.default_rng(seed).integers(100, 4000, shape).astype(np.uint16)


def _read(path):
    with h5py.File(path, "r") as f:
        return f["data/image"][()], dict(f["data/image"].attrs)


def test_ome_zarr_2d_keeps_its_pixel_size(tmp_path):
    """The issue's case: an OME-Zarr written by ome-zarr-py with 0.65 um pixels."""
    image = _volume((64, 80))
    write_ome_zarr(tmp_path / "a.ome.zarr", image, "yx", {"y": 0.65, "x": 0.65})
    tifffile.imwrite(tmp_path / "a.tif", image)
    attrs = convert_image(tmp_path / "a.ome.zarr", tmp_path / "z.h5", ndim=2, channels=[0])
    np.testing.assert_allclose(attrs["element_size_um"], [0.65, 0.65])
    assert attrs["pixel_size_source"] == "OME-Zarr metadata"
    convert_image(tmp_path / "a.tif", tmp_path / "t.h5", ndim=2, channels=[0])
    (zarr_data, _), (tiff_data, _) = _read(tmp_path / "z.h5"), _read(tmp_path / "t.h5")
    np.testing.assert_array_equal(zarr_data, tiff_data)


def test_ome_zarr_volume_converts_slab_by_slab(tmp_path, monkeypatch):
    """A volume read lazily in many slabs converts to exactly what the in-memory path gives."""
    volume = _volume()
    write_ome_zarr(tmp_path / "v.zarr", volume, "czyx", {"z": 2000, "y": 650, "x": 650},
                   unit="nanometer")
    tifffile.imwrite(tmp_path / "v.tif", volume.transpose(1, 0, 2, 3), imagej=True,
                     metadata={"axes": "ZCYX"})
    plane = volume.shape[2] * volume.shape[3] * volume.itemsize
    monkeypatch.setattr(convert, "_SLAB_BYTES", 3 * plane)  # percentile passes: 4 slabs
    attrs = convert_image(tmp_path / "v.zarr", tmp_path / "z.h5", ndim=3, channels=[1, 0])
    np.testing.assert_allclose(attrs["element_size_um"], [2.0, 0.65, 0.65])  # from nanometres
    convert_image(tmp_path / "v.tif", tmp_path / "t.h5", ndim=3, channels=[1, 0])
    (zarr_data, zattrs), (tiff_data, tattrs) = _read(tmp_path / "z.h5"), _read(tmp_path / "t.h5")
    assert zarr_data.shape == (2, 12, 40, 48) and zattrs["axes"] == "CZYX"
    np.testing.assert_array_equal(zarr_data, tiff_data)
    np.testing.assert_array_equal(zattrs["percentile_values"], tattrs["percentile_values"])


def test_zarr_without_units_states_no_size(tmp_path):
    """A scale without a length unit is no physical size: 1 micron is never assumed."""
    write_ome_zarr(tmp_path / "n.zarr", _volume((64, 64)), "yx")
    attrs = convert_image(tmp_path / "n.zarr", tmp_path / "n.h5", ndim=2, channels=[0])
    assert "element_size_um" not in attrs


def test_lazy_hdf5_volume_converts_slab_by_slab(tmp_path, monkeypatch):
    volume = _volume((1, 40, 32, 32)).astype(np.float32)
    volume[0, 3, 4, 5] = np.nan
    with h5py.File(tmp_path / "in.h5", "w") as f:
        f.create_dataset("raw", data=volume, chunks=(1, 4, 32, 32))
    expected_lo, expected_hi = np.nanpercentile(volume, [1, 99.8])
    monkeypatch.setattr(convert, "_SLAB_BYTES", 1)  # one plane a slab, one chunk a write
    attrs = convert_image(tmp_path / "in.h5", tmp_path / "out.h5", ndim=3, channels=[0],
                          axes="CZYX", h5_dataset="raw")
    data, _ = _read(tmp_path / "out.h5")
    assert attrs["nonfinite_pixels"].tolist() == [1] and data[0, 3, 4, 5] == 0
    np.testing.assert_allclose(attrs["percentile_values"][0], [expected_lo, expected_hi])
    expected = np.clip((volume - expected_lo) / (expected_hi - expected_lo), 0, 1)
    np.testing.assert_allclose(np.nan_to_num(data), np.nan_to_num(expected), atol=1e-6)


def _two_scene_ome_tiff(path):
    with tifffile.TiffWriter(path, ome=True) as tif:
        tif.write(_volume((32, 40), seed=1), metadata={"axes": "YX", "Name": "left",
                                                        "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})
        tif.write(_volume((24, 40), seed=2), metadata={"axes": "YX", "Name": "right",
                                                        "PhysicalSizeX": 0.5, "PhysicalSizeY": 0.5})


def test_ome_tiff_scenes_through_bioio(tmp_path, caplog):
    path = tmp_path / "two.ome.tif"
    _two_scene_ome_tiff(path)
    with caplog.at_level(logging.WARNING, logger="cellsynth"):
        attrs = convert_image(path, tmp_path / "first.h5", ndim=2, channels=[0])
    assert "has 2 scenes" in caplog.text and "set `scene:`" in caplog.text
    assert attrs["source_axes"] == "TCZYX"  # bioio's layout: the file went through bioio
    assert attrs["source_shape"][-2:] == [32, 40]
    np.testing.assert_allclose(attrs["element_size_um"], [0.5, 0.5])
    scenes = bioimage.read_bioimage(path).scenes
    for scene in (1, scenes[1]):
        attrs = convert_image(path, tmp_path / "second.h5", ndim=2, channels=[0], scene=scene)
        assert attrs["source_shape"][-2:] == [24, 40] and attrs["source_scene"] == str(scene)
    with pytest.raises(InputError, match=r"has no scene 5 .*0 '"):
        convert_image(path, tmp_path / "x.h5", ndim=2, channels=[0], scene=5)


def test_missing_plugin_names_the_package(tmp_path, monkeypatch):
    (tmp_path / "a.czi").write_bytes(b"CZI")
    monkeypatch.setitem(formats.PLUGINS, ".czi", ("bioio-czi", "no_such_module_here"))
    with pytest.raises(InputError, match="needs the bioio plugin bioio-czi: pip install bioio-czi"):
        convert_image(tmp_path / "a.czi", tmp_path / "a.h5", ndim=2, channels=[0])


def test_damaged_microscope_file_is_one_clear_error(tmp_path):
    (tmp_path / "bad.nd2").write_bytes(b"not an nd2 file" * 10)
    with pytest.raises(InputError, match="bad.nd2: cannot be read by bioio-nd2"):
        convert_image(tmp_path / "bad.nd2", tmp_path / "bad.h5", ndim=2, channels=[0])


def test_guessed_axes_are_said(tmp_path, caplog):
    """A (5, 64, 64) stack without metadata in a 2D data set: which axes, what is dropped."""
    tifffile.imwrite(tmp_path / "s.tif", _volume((5, 64, 64)), metadata=None)
    with caplog.at_level(logging.WARNING, logger="cellsynth"):
        convert_image(tmp_path / "s.tif", tmp_path / "s.h5", ndim=2, channels=[0])
    text = caplog.text
    assert "s.tif has no axes metadata; its shape (5, 64, 64) was taken as axes CYX" in text
    assert "5 channels, of which the data set uses [0]" in text
    assert "axes: ZYX for a z-stack" in text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="cellsynth"):
        convert_image(tmp_path / "s.tif", tmp_path / "z.h5", ndim=2, channels=[0], axes="CYX")
    assert "axes metadata" not in caplog.text  # the user said: nothing guessed


def test_zarr_folders_are_images_and_their_files_are_not(tmp_path):
    write_ome_zarr(tmp_path / "data/a.ome.zarr", _volume((64, 64)), "yx")
    write_ome_zarr(tmp_path / "data/b.zarr", _volume((64, 64)), "yx")
    tifffile.imwrite(tmp_path / "data/c.ome.tif", _volume((32, 32)), ome=True)
    images = dataset_images(str(tmp_path / "data/*"), "datasets.x.images")
    assert sorted(images) == ["a", "b", "c"]
    assert images["a"].endswith("a.ome.zarr")
    # a recursive glob would also reach the chunk files inside the Zarr folders
    deep = dataset_images(str(tmp_path / "data/**/*.zarr"), "datasets.x.images")
    assert sorted(deep) == ["a", "b"]
