"""OME-Zarr export: every sample read back with ome-zarr-py's reader, the code napari-ome-zarr
runs on a path (a headless napari check): levels, axes, scales, labels, tracks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import zarr
from ome_zarr.io import parse_url
from ome_zarr.reader import Label, Node, Reader

from helpers.export import NUCLEI, SERIES, files
from helpers.export import export_sample as make
from workflow_lib.export import MARKER, ExportSample, export, instances
from workflow_lib.export.omezarr import CHUNK_YX, CHUNK_Z, TRACKS_SUFFIX, label_images
from workflow_lib.simulate import get_kind

SPACE = {"type": "space", "unit": "micrometer"}


def read(path: Path) -> tuple[Node, dict[str, Node]]:
    """The image node and the label nodes by name, as ome_zarr.reader yields them."""
    nodes = list(Reader(parse_url(str(path)))())
    image = [n for n in nodes if n.data and not n.load(Label)]
    assert len(image) == 1
    labels = {n.metadata["name"]: n for n in nodes if n.load(Label)}
    return image[0], labels


def scales(node: Node) -> list[list[float]]:
    return [t[0]["scale"] for t in node.metadata["coordinateTransformations"]]


def test_2d_levels_axes_scales_and_labels(tmp_path):
    sample = make("nuclei", (128, 140), NUCLEI, "nuc_0", spacing=(0.65, 0.65))
    summary = export("ome-zarr", [sample], tmp_path / "oz")
    image, labels = read(tmp_path / "oz/nuc_0.zarr")

    assert [d.shape for d in image.data] == [(1, 128, 140), (1, 64, 70)]  # 32 < 64: 2 levels
    np.testing.assert_array_equal(image.data[0], sample.image)
    assert image.data[0].dtype == np.float32
    np.testing.assert_allclose(image.data[1][0, 5, 7], sample.image[0, 10:12, 14:16].mean(),
                               rtol=1e-6)
    assert image.metadata["axes"] == [{"name": "c", "type": "channel"},
                                      {"name": "y", **SPACE}, {"name": "x", **SPACE}]
    assert scales(image) == [[1.0, 0.65, 0.65], [1.0, 1.3, 1.3]]

    assert list(labels) == ["labels"]
    node = labels["labels"]
    assert node.zarr.root_attrs["image-label"]["version"] == "0.4"
    assert [a["name"] for a in node.metadata["axes"]] == ["y", "x"]
    assert scales(node) == [s[1:] for s in scales(image)]   # the image's, without c
    expected = instances(sample.labels, sample.kind)
    np.testing.assert_array_equal(node.data[0], expected)
    np.testing.assert_array_equal(node.data[1], expected[::2, ::2])  # nearest, never averaged
    assert node.data[0].dtype == np.uint16

    group = zarr.open_group(str(tmp_path / "oz/nuc_0.zarr"), mode="r")
    assert group.attrs["multiscales"][0]["version"] == "0.4"
    assert group["0"].metadata.zarr_format == 2
    assert summary["pairs"] == 1 and summary["ngff_version"] == "0.4"
    assert summary["files"] == len(files(tmp_path / "oz")) - 1   # every chunk, not the marker
    assert json.loads((tmp_path / "oz" / MARKER).read_text()) == summary


def test_anisotropic_stack_keeps_its_planes(tmp_path):
    sample = make("nuclei", (6, 128, 128), NUCLEI, "vol_0", spacing=(2.0, 0.5, 0.5))
    export("ome-zarr", [sample], tmp_path / "oz")
    image, labels = read(tmp_path / "oz/vol_0.zarr")
    assert [d.shape for d in image.data] == [(1, 6, 128, 128), (1, 6, 64, 64)]
    assert scales(image) == [[1.0, 2.0, 0.5, 0.5], [1.0, 2.0, 1.0, 1.0]]
    assert [a["name"] for a in image.metadata["axes"]] == ["c", "z", "y", "x"]
    node = labels["labels"]
    assert [d.shape for d in node.data] == [(6, 128, 128), (6, 64, 64)]
    assert scales(node) == [[2.0, 0.5, 0.5], [2.0, 1.0, 1.0]]
    np.testing.assert_array_equal(node.data[1], sample.labels[0][:, ::2, ::2])


def test_time_series_has_t_and_its_tracks(tmp_path):
    sample = make("timeseries", (48, 48), SERIES, "ts_0", spacing=(0.5, 0.5))
    summary = export("ome-zarr", [sample], tmp_path / "oz")
    image, labels = read(tmp_path / "oz/ts_0.zarr")
    assert [d.shape for d in image.data] == [(3, 1, 48, 48)]   # 24 < 64: level 0 only
    assert image.metadata["axes"][:2] == [{"name": "t", "type": "time"},
                                          {"name": "c", "type": "channel"}]
    np.testing.assert_array_equal(image.data[0], sample.image)
    node = labels["labels"]
    assert [a["name"] for a in node.metadata["axes"]] == ["t", "y", "x"]
    np.testing.assert_array_equal(node.data[0], sample.labels[:, 0])
    rows = (tmp_path / f"oz/ts_0{TRACKS_SUFFIX}").read_text().splitlines()
    assert rows[0] == "L,B,E,P"
    np.testing.assert_array_equal([list(map(int, r.split(","))) for r in rows[1:]],
                                  sample.tracks)
    assert summary["kinds"]["timeseries"]["files"] == len(files(tmp_path / "oz")) - 1


def test_tracks_that_miss_the_labels_are_refused(tmp_path):
    good = make("timeseries", (48, 48), SERIES, "ts_0")
    bad = ExportSample("ts_0", good.kind, good.image, good.labels, good.tracks[1:])
    with pytest.raises(ValueError, match="sample 'ts_0': tracks do not fit its labels"):
        export("ome-zarr", [bad], tmp_path / "oz")
    assert not (tmp_path / "oz").exists()


def test_without_spacing_scale_is_one_and_unitless(tmp_path):
    sample = make("nuclei", (128, 128), NUCLEI, "nuc_0")
    export("ome-zarr", [sample], tmp_path / "oz")
    image, labels = read(tmp_path / "oz/nuc_0.zarr")
    assert scales(image) == [[1.0, 1.0, 1.0], [1.0, 2.0, 2.0]]
    assert all("unit" not in a for a in image.metadata["axes"] + labels["labels"].metadata["axes"])


def test_label_image_per_label_channel(tmp_path):
    sample = make("multichannel", (64, 64), {"cells": [4, 5]}, "mc_0")
    export("ome-zarr", [sample], tmp_path / "oz")
    image, labels = read(tmp_path / "oz/mc_0.zarr")
    assert get_kind("multichannel").label_channels == ("cells", "nuclei")
    assert sorted(labels) == ["cells", "nuclei"]
    np.testing.assert_array_equal(image.data[0], sample.image)
    for c, name in enumerate(("cells", "nuclei")):
        np.testing.assert_array_equal(labels[name].data[0], sample.labels[c])
    group = zarr.open_group(str(tmp_path / "oz/mc_0.zarr/labels"), mode="r")
    assert group.attrs["labels"] == ["cells", "nuclei"]


def test_slabs_give_the_whole_array(tmp_path):
    """More Z planes than one chunk, isotropic, odd sides: every level equals the one made from
    the whole array at once (block means of the image, every second label pixel)."""
    rng = np.random.default_rng(0)
    shape = (2 * CHUNK_Z + 5, 131, 129)
    image = rng.random((1, *shape), dtype=np.float32)
    labels = rng.integers(0, 70000, (1, *shape)).astype(np.uint32)  # ids beyond uint16
    sample = ExportSample("vol_0", get_kind("nuclei"), image, labels, spacing=(0.5, 0.5, 0.5))
    export("ome-zarr", [sample], tmp_path / "oz")
    group = zarr.open_group(str(tmp_path / "oz/vol_0.zarr"), mode="r")
    assert group["0"].chunks == (1, CHUNK_Z, min(131, CHUNK_YX), min(129, CHUNK_YX))
    assert group["labels/labels/0"].chunks == (CHUNK_Z, 131, 129)

    padded = np.pad(image[0], [(0, 1), (0, 1), (0, 1)], mode="edge")   # odd sides repeat
    level1 = padded.reshape(19, 2, 66, 2, 65, 2).mean(axis=(1, 3, 5), dtype=np.float32)
    np.testing.assert_array_equal(group["0"][:], image)
    np.testing.assert_allclose(group["1"][0], level1, rtol=1e-6)
    assert group["labels/labels/0"].dtype == np.uint32
    np.testing.assert_array_equal(group["labels/labels/0"][:], labels[0])
    np.testing.assert_array_equal(group["labels/labels/1"][:], labels[0, ::2, ::2, ::2])


def test_napari_reads_image_and_labels_at_the_pixel_size(tmp_path):
    """napari-ome-zarr's own reader, headless (no viewer): the layers napari would make, each
    at 0.65 um; a time series' labels line up with its channels' image layers."""
    plugin = pytest.importorskip("napari_ome_zarr")
    still = make("nuclei", (128, 140), NUCLEI, "nuc_0", spacing=(0.65, 0.65))
    movie = make("timeseries", (48, 48), SERIES, "ts_0", spacing=(0.65, 0.65))
    export("ome-zarr", [still, movie], tmp_path / "oz")
    for sample, scale in ((still, [0.65, 0.65]), (movie, [1.0, 0.65, 0.65])):
        path = str(tmp_path / f"oz/{sample.name}.zarr")
        layers = plugin.napari_get_reader(path)(path)
        kinds = {kind: (data, kwargs) for data, kwargs, kind in layers}
        assert set(kinds) == {"image", "labels"}
        image, image_kwargs = kinds["image"]
        labels, label_kwargs = kinds["labels"]
        assert list(image_kwargs["scale"]) == scale and list(label_kwargs["scale"]) == scale
        channel_axis = image_kwargs["channel_axis"]
        assert np.delete(image[0].shape, channel_axis).tolist() == list(labels[0].shape)
        np.testing.assert_array_equal(np.asarray(labels[0]), label_images(sample)["labels"])
