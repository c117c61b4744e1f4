"""convert: layouts, dtypes, channels, normalisation and clear errors on bad input."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import tifffile
from hypothesis import given, settings
from hypothesis import strategies as st

from workflow_lib.errors import InputError
from workflow_lib.prepare.axes import guess_axes, to_channel_first
from workflow_lib.prepare.convert import convert_image, percentiles


def _ramp(shape, dtype=np.uint16):
    x = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape) % 1000
    return x.astype(dtype)


def _read(path):
    with h5py.File(path, "r") as f:
        ds = f["data/image"]
        return ds[()], dict(ds.attrs), ds.chunks, ds.compression


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_2d_any_dtype(tmp_path, dtype):
    img = _ramp((40, 50), dtype)
    tifffile.imwrite(tmp_path / "a.tif", img)
    convert_image(tmp_path / "a.tif", tmp_path / "a.h5", ndim=2, channels=[0],
                  normalize_percentiles=(0, 100))
    data, attrs, chunks, compression = _read(tmp_path / "a.h5")
    assert data.shape == (1, 40, 50) and data.dtype == np.float32
    assert data.min() == 0.0 and data.max() == 1.0
    assert attrs["axes"] == "CYX" and attrs["source_dtype"] == np.dtype(dtype).name
    assert compression == "gzip" and chunks is not None
    expected = (img.astype(np.float64) - img.min()) / (img.max() - img.min())
    np.testing.assert_allclose(data[0], expected, atol=1e-6)


def test_percentile_clipping(tmp_path):
    img = np.zeros((100, 100), np.uint16)
    img[:50] = 100
    img[0, 0] = 60000  # a hot pixel must not squash the range
    tifffile.imwrite(tmp_path / "a.tif", img)
    attrs = convert_image(tmp_path / "a.tif", tmp_path / "a.h5", ndim=2, channels=[0],
                          normalize_percentiles=(1, 99))
    data = _read(tmp_path / "a.h5")[0]
    assert attrs["percentile_values"].tolist() == [[0.0, 100.0]]
    assert data[0, 0, 0] == 1.0 and data[0, 10, 10] == 1.0 and data[0, 90, 10] == 0.0


@pytest.mark.parametrize(
    "axes,shape,channels,expected",
    [
        ("ZCYX", (5, 3, 16, 20), [2, 0], (2, 5, 16, 20)),
        ("CZYX", (2, 5, 16, 20), [1], (1, 5, 16, 20)),
        ("ZYX", (6, 16, 20), [0], (1, 6, 16, 20)),
        ("TZCYX", (1, 6, 2, 16, 20), [1], (1, 6, 16, 20)),
    ],
)
def test_3d_layouts_with_metadata(tmp_path, axes, shape, channels, expected):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 4000, size=shape, dtype=np.uint16)
    imagej = "".join(a for a in "TZCYX" if a in axes) == axes
    tifffile.imwrite(tmp_path / "v.tif", img, imagej=imagej, metadata={"axes": axes})
    convert_image(tmp_path / "v.tif", tmp_path / "v.h5", ndim=3, channels=channels,
                  normalize_percentiles=(0, 100))
    data, attrs, *_ = _read(tmp_path / "v.h5")
    assert data.shape == expected and attrs["axes"] == "CZYX"
    full = img[0] if axes.startswith("T") else img
    src_axes = axes.lstrip("T")
    if "C" not in src_axes:
        full, src_axes = full[np.newaxis], "C" + src_axes
    czyx = np.transpose(full, [src_axes.index(a) for a in "CZYX"])[channels].astype(np.float64)
    lo = czyx.min(axis=(1, 2, 3), keepdims=True)
    hi = czyx.max(axis=(1, 2, 3), keepdims=True)
    np.testing.assert_allclose(data, (czyx - lo) / (hi - lo), atol=1e-6)


def test_channel_order_is_kept(tmp_path):
    img = np.stack([np.full((8, 8), v, np.uint16) for v in (1, 2, 3)])
    img[:, 0, 0] = 0
    tifffile.imwrite(tmp_path / "c.tif", img, imagej=True, metadata={"axes": "CYX"})
    attrs = convert_image(tmp_path / "c.tif", tmp_path / "c.h5", ndim=2, channels=[2, 0],
                          normalize_percentiles=(0, 100))
    assert attrs["percentile_values"][:, 1].tolist() == [3.0, 1.0]


def test_rgb_png_and_axes_override(tmp_path):
    import imageio.v3 as iio

    rgb = np.zeros((32, 40, 3), np.uint8)
    rgb[..., 1] = np.arange(40, dtype=np.uint8)
    iio.imwrite(tmp_path / "p.png", rgb)
    convert_image(tmp_path / "p.png", tmp_path / "p.h5", ndim=2, channels=[1])
    assert _read(tmp_path / "p.h5")[0].shape == (1, 32, 40)
    # the same array without metadata, with the layout given in the config
    tifffile.imwrite(tmp_path / "q.tif", np.ascontiguousarray(np.moveaxis(rgb, -1, 0)),
                     photometric="minisblack")
    convert_image(tmp_path / "q.tif", tmp_path / "q.h5", ndim=2, channels=[1], axes="CYX")
    np.testing.assert_array_equal(_read(tmp_path / "q.h5")[0], _read(tmp_path / "p.h5")[0])


def test_h5_input_and_rescale(tmp_path):
    with h5py.File(tmp_path / "in.h5", "w") as f:
        f["raw"] = _ramp((4, 16, 16))
    convert_image(tmp_path / "in.h5", tmp_path / "out.h5", ndim=3, channels=[0],
                  h5_dataset="raw", axes="ZYX", rescale=[2, 1, 0.5])
    assert _read(tmp_path / "out.h5")[0].shape == (1, 8, 16, 8)


def test_nonfinite_pixels_are_zeroed_counted_and_left_out_of_percentiles(tmp_path, caplog):
    img = _ramp((20, 20), np.float32)
    img[3, 4], img[5, 6], img[7, 8] = np.nan, np.inf, -np.inf
    tifffile.imwrite(tmp_path / "n.tif", img)
    with caplog.at_level("WARNING", logger="cellsynth"):
        attrs = convert_image(tmp_path / "n.tif", tmp_path / "n.h5", ndim=2, channels=[0],
                              normalize_percentiles=(0, 100))
    data, stored, *_ = _read(tmp_path / "n.h5")
    assert np.isfinite(data).all()
    assert data[0, 3, 4] == data[0, 5, 6] == data[0, 7, 8] == 0
    finite = img[np.isfinite(img)]
    assert attrs["percentile_values"].tolist() == [[finite.min(), finite.max()]]
    assert stored["nonfinite_pixels"].tolist() == [3]
    [record] = [r for r in caplog.records if r.name == "cellsynth" and r.levelname == "WARNING"]
    assert "n.tif" in record.getMessage() and " 3 non-finite pixels" in record.getMessage()


@pytest.mark.parametrize("values", [[np.nan], [np.inf], [-np.inf], [np.nan, np.inf, -np.inf]])
def test_all_nonfinite_is_an_error(tmp_path, values):
    img = np.resize(np.array(values, np.float32), (8, 8))
    tifffile.imwrite(tmp_path / "n.tif", img)
    with pytest.raises(InputError, match=r"n\.tif: channel 0 has no finite values"):
        convert_image(tmp_path / "n.tif", tmp_path / "n.h5", ndim=2, channels=[0])
    assert not (tmp_path / "n.h5").exists()


def _bad_inputs(tmp_path):
    (tmp_path / "empty.tif").write_bytes(b"")
    (tmp_path / "text.tif").write_text("this is not an image\n")
    good = tmp_path / "good.tif"
    tifffile.imwrite(good, _ramp((64, 64)))
    (tmp_path / "truncated.tif").write_bytes(good.read_bytes()[:300])
    tifffile.imwrite(tmp_path / "nan.tif", np.full((8, 8), np.nan, np.float32))
    tifffile.imwrite(tmp_path / "const.tif", np.full((8, 8), 7, np.uint16))
    return {
        "empty.tif": ("empty", dict(ndim=2, channels=[0])),
        "text.tif": ("not a readable TIFF", dict(ndim=2, channels=[0])),
        "truncated.tif": ("TIFF", dict(ndim=2, channels=[0])),
        "nan.tif": ("no finite values", dict(ndim=2, channels=[0])),
        "const.tif": ("constant", dict(ndim=2, channels=[0])),
        "good.tif": ("ndim: 3", dict(ndim=3, channels=[0])),
        "missing.tif": ("not found", dict(ndim=2, channels=[0])),
    }


def test_bad_inputs_name_file_and_problem(tmp_path):
    for name, (problem, kwargs) in _bad_inputs(tmp_path).items():
        out = tmp_path / f"{name}.h5"
        with pytest.raises(InputError) as err:
            convert_image(tmp_path / name, out, **kwargs)
        assert name in str(err.value) and problem in str(err.value), str(err.value)
        assert not out.exists()
        assert not list(tmp_path.glob(".tmp-*"))


def test_missing_channel(tmp_path):
    tifffile.imwrite(tmp_path / "a.tif", _ramp((2, 8, 8)), imagej=True, metadata={"axes": "CYX"})
    with pytest.raises(InputError, match=r"a\.tif: channel 3 does not exist \(the image has 2"):
        convert_image(tmp_path / "a.tif", tmp_path / "a.h5", ndim=2, channels=[0, 3])


@pytest.mark.parametrize(
    "shape,ndim,expected",
    [((64, 64), 2, "YX"), ((3, 64, 64), 2, "CYX"), ((64, 64, 3), 2, "YXC"),
     ((20, 64, 64), 3, "ZYX"), ((20, 2, 64, 64), 3, "ZCYX"), ((2, 20, 64, 64), 3, "CZYX")],
)
def test_guess_axes(shape, ndim, expected):
    assert guess_axes(shape, ndim) == expected


def test_guess_axes_ambiguous_asks_for_axes():
    with pytest.raises(InputError) as err:
        guess_axes((20, 30, 64, 64), 3, "x.tif")
    message = str(err.value)
    assert message.startswith("x.tif: has shape (20, 30, 64, 64)") and "ambiguous" in message
    assert "set `axes:` for this data set in the config (e.g. axes: ZCYX" in message


def test_time_series_rejected():
    with pytest.raises(InputError, match="time series"):
        to_channel_first(np.zeros((3, 8, 8)), "TYX", 2, "t.tif")


@settings(max_examples=40, deadline=None)
@given(
    data=st.lists(st.integers(0, 65535), min_size=2, max_size=300),
    q=st.tuples(st.floats(0, 100), st.floats(0, 100)),
)
def test_histogram_percentiles_match_numpy(data, q):
    arr = np.array(data, dtype=np.uint16)
    np.testing.assert_allclose(percentiles(arr, *q), np.percentile(arr, q), rtol=1e-9, atol=1e-6)


# --- physical pixel size: metadata, config override, rescale -> element_size_um ---------------

def _imagej(path, array, axes, xy=0.5, z=None):
    meta = {"axes": axes, "unit": "um", **({"spacing": z} if z is not None else {})}
    tifffile.imwrite(path, array, imagej=True, resolution=(1 / xy, 1 / xy), metadata=meta)


def _size(path):
    attrs = _read(path)[1]
    size = attrs.get("element_size_um")
    return (None if size is None else size.tolist()), attrs.get("pixel_size_source")


def test_imagej_pixel_size_reaches_the_h5(tmp_path):
    _imagej(tmp_path / "a.tif", _ramp((40, 50)), "YX", xy=0.5)
    attrs = convert_image(tmp_path / "a.tif", tmp_path / "a.h5", ndim=2, channels=[0])
    assert attrs["element_size_um"].tolist() == [0.5, 0.5]
    assert _size(tmp_path / "a.h5") == ([0.5, 0.5], "ImageJ metadata")
    # rescale zooms the image, so its pixels shrink by the factor
    convert_image(tmp_path / "a.tif", tmp_path / "b.h5", ndim=2, channels=[0], rescale=[1, 2])
    assert _size(tmp_path / "b.h5")[0] == [0.5, 0.25]


def test_3d_imagej_and_ome_sizes(tmp_path):
    _imagej(tmp_path / "v.tif", _ramp((5, 2, 16, 16)), "ZCYX", xy=0.5, z=2.0)
    convert_image(tmp_path / "v.tif", tmp_path / "v.h5", ndim=3, channels=[1],
                  rescale=[4, 1, 1])
    assert _size(tmp_path / "v.h5") == ([0.5, 0.5, 0.5], "ImageJ metadata")
    tifffile.imwrite(tmp_path / "o.ome.tif", _ramp((5, 16, 16)), metadata={
        "axes": "ZYX", "PhysicalSizeX": 0.3, "PhysicalSizeY": 0.3, "PhysicalSizeZ": 1.2})
    convert_image(tmp_path / "o.ome.tif", tmp_path / "o.h5", ndim=3, channels=[0])
    assert _size(tmp_path / "o.h5") == ([1.2, 0.3, 0.3], "OME-XML")


def test_config_pixel_size_wins_over_metadata(tmp_path):
    _imagej(tmp_path / "a.tif", _ramp((40, 50)), "YX", xy=0.5)
    convert_image(tmp_path / "a.tif", tmp_path / "a.h5", ndim=2, channels=[0], pixel_size_um=0.2)
    assert _size(tmp_path / "a.h5") == ([0.2, 0.2], "config pixel_size")
    _imagej(tmp_path / "v.tif", _ramp((5, 16, 16)), "ZYX", xy=0.5, z=2.0)
    convert_image(tmp_path / "v.tif", tmp_path / "v.h5", ndim=3, channels=[0],
                  pixel_size_um=[3, 0.2, 0.1])
    assert _size(tmp_path / "v.h5") == ([3.0, 0.2, 0.1], "config pixel_size")
    # one number is Y/X only: Z still from the metadata
    convert_image(tmp_path / "v.tif", tmp_path / "w.h5", ndim=3, channels=[0], pixel_size_um=0.2)
    assert _size(tmp_path / "w.h5") == ([2.0, 0.2, 0.2], "config pixel_size + ImageJ metadata")


def test_no_metadata_writes_no_size(tmp_path, caplog):
    tifffile.imwrite(tmp_path / "a.tif", _ramp((40, 50)))  # no ImageJ/OME metadata
    tifffile.imwrite(tmp_path / "u.tif", _ramp((40, 50)), imagej=True)  # ImageJ, uncalibrated
    for name in ("a", "u"):
        with caplog.at_level("INFO", logger="cellsynth"):
            attrs = convert_image(tmp_path / f"{name}.tif", tmp_path / f"{name}.h5", ndim=2,
                                  channels=[0])
        assert "element_size_um" not in attrs and _size(tmp_path / f"{name}.h5") == (None, None)
    assert "no pixel size" in caplog.text
    # a 3D stack whose Z step nobody states gets no size at all (never a guessed 1 um)
    tifffile.imwrite(tmp_path / "o.ome.tif", _ramp((5, 16, 16)), metadata={
        "axes": "ZYX", "PhysicalSizeX": 0.3, "PhysicalSizeY": 0.3})
    convert_image(tmp_path / "o.ome.tif", tmp_path / "o.h5", ndim=3, channels=[0])
    assert _size(tmp_path / "o.h5") == (None, None)


@pytest.mark.parametrize("axes,shape,sizes,expected", [
    ("ZYX", (4, 16, 16), [2.0, 0.5, 0.5], [2.0, 0.5, 0.5]),
    ("CZYX", (1, 4, 16, 16), [1.0, 2.0, 0.5, 0.5], [2.0, 0.5, 0.5]),  # one per array axis
    ("CZYX", (1, 4, 16, 16), [2.0, 0.5, 0.5], [2.0, 0.5, 0.5]),  # one per spatial axis
    ("ZYX", (4, 16, 16), [0.5, 0.5], None),  # fits neither: ignored
])
def test_h5_element_size_um(tmp_path, axes, shape, sizes, expected):
    with h5py.File(tmp_path / "in.h5", "w") as f:
        f["raw"] = _ramp(shape)
        f["raw"].attrs["element_size_um"] = sizes
        f["raw"].attrs["axes"] = axes
    convert_image(tmp_path / "in.h5", tmp_path / "out.h5", ndim=3, channels=[0], h5_dataset="raw")
    assert _size(tmp_path / "out.h5")[0] == expected

