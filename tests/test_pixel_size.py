"""Physical pixel sizes through the workflow: the data set's size (config `pixel_size` over the
first image's metadata, divided by `rescale`), the simulated samples' (Z from `z_scale`), and
every TIFF written for the data set (labels, sketches, synthetic images, exports)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import tifffile
from snakemake.utils import validate

from helpers import SCHEMA, chunk_files, load_config, run_snakemake, write_raw_images
from workflow_lib.errors import ConfigError
from workflow_lib.io import read_tiff_spacing
from workflow_lib.workflow import config as cfg
from workflow_lib.workflow import pixel_sizes
from workflow_lib.workflow.runner import Files, Job
from workflow_lib.workflow.stages.simulation import simulate_chunk, sketch_chunk


def _imagej_images(folder, xy: float, n: int = 2) -> None:
    """``n`` toy input images with an ImageJ calibration of ``xy`` microns per pixel."""
    for path in write_raw_images(folder, n=n):
        tifffile.imwrite(path, tifffile.imread(path), imagej=True, resolution=(1 / xy, 1 / xy),
                         metadata={"axes": "YX", "unit": "um"})


def _dataset(**keys) -> dict:
    config = {"datasets": {"d": {"images": "x/*.tif", **keys}}}
    validate(config, SCHEMA)
    return config


def _resolution(path) -> tuple[float, float] | None:
    """(Y, X) microns per pixel as Fiji reads them, None for an uncalibrated file."""
    with tifffile.TiffFile(path) as tif:
        if tif.imagej_metadata.get("unit") != "um":
            return None
        x_res, y_res = tif.pages[0].resolution
        return 1 / y_res, 1 / x_res


# --- the data set's pixel size: rule simulate_chunk's param ----------------------------------

def test_dataset_pixel_size_is_the_first_images_metadata_under_the_config(tmp_path):
    _imagej_images(tmp_path / "x", 0.5, n=1)
    tifffile.imwrite(tmp_path / "x/img1.tif", np.zeros((8, 8), np.uint16), imagej=True,
                     resolution=(1, 1), metadata={"unit": "um"})  # not the first by name
    images = {"img1": str(tmp_path / "x/img1.tif"), "img0": str(tmp_path / "x/img0.tif")}
    ds = _dataset()["datasets"]["d"]
    assert ds["pixel_size"] is None
    assert pixel_sizes.pixel_size_um(ds, images) == [0.5, 0.5]
    assert pixel_sizes.pixel_size_um({**ds, "rescale": 2}, images) == [0.25, 0.25]
    assert pixel_sizes.pixel_size_um({**ds, "pixel_size": 0.2}, images) == [0.2, 0.2]  # config wins
    # a full size from the config needs no file; unknown when nothing states one
    ds3 = _dataset(ndim=3, pixel_size=[2, 0.5, 0.5], rescale=[2, 1, 1])["datasets"]["d"]
    assert pixel_sizes.pixel_size_um(ds3, {"a": str(tmp_path / "none.tif")}) == [1.0, 0.5, 0.5]
    assert pixel_sizes.pixel_size_um(ds, {"a": str(tmp_path / "none.tif")}) is None  # not made yet
    assert pixel_sizes.pixel_size_um(ds, {}) is None
    write_raw_images(tmp_path / "plain", n=1)
    assert pixel_sizes.pixel_size_um(ds, {"img0": str(tmp_path / "plain/img0.tif")}) is None


def test_pixel_size_needs_one_size_per_axis():
    config = _dataset(ndim=2, pixel_size=[1, 0.5, 0.5])
    with pytest.raises(ConfigError, match="datasets.d.pixel_size.*3 sizes but ndim is 2"):
        cfg.check(config)
    cfg.check(_dataset(ndim=2, pixel_size=0.5))


# --- stages: labels, sketches (and their annotation HDF5) -------------------------------------

def _simulate_and_sketch(tmp_path, shape, params, pixel_size):
    sim = _dataset(simulations={"s": {"kind": "nuclei", "shape": shape, "params": params}})
    sim = sim["datasets"]["d"]["simulations"]["s"]
    wildcards = SimpleNamespace(dataset="d", sim="s", chunk="0-0")
    files = chunk_files(tmp_path, [0])
    labels, meta = Path(files["labels"][0]), Path(files["meta"][0])
    simulate_chunk(Job(Files(), Files(tmp_path / "simulated.json"), SimpleNamespace(
        kind="nuclei", shape=shape, params=params, seed=0, calibrate=False,
        pixel_size=pixel_size, files=files), wildcards))
    sketch_chunk(Job(
        Files(labels=tmp_path / "simulated.json"), Files(tmp_path / "sketched.json"),
        SimpleNamespace(sketch=sim["sketch"], seed=0, calibrate=False, sketch_explicit=[],
                        files=files),
        wildcards))
    with h5py.File(files["annotations"][0]) as f:
        h5_size = f["data/sketch"].attrs.get("element_size_um")
    return (json.loads(meta.read_text())["spacing_um"], read_tiff_spacing(labels, len(shape)),
            read_tiff_spacing(files["sketch"][0], len(shape)),
            None if h5_size is None else tuple(h5_size.tolist()))


def test_2d_samples_carry_the_data_sets_pixel_size(tmp_path):
    meta, labels, sketch, h5 = _simulate_and_sketch(
        tmp_path, [32, 32], {"cells": [2, 3], "radius": [3, 4]}, [0.5, 0.5])
    assert meta == [0.5, 0.5] and labels == sketch == h5 == (0.5, 0.5)
    assert _resolution(tmp_path / "labels/0.tif") == _resolution(tmp_path / "sketches/0.tif") \
        == pytest.approx((0.5, 0.5))


@pytest.mark.parametrize("params,z", [
    ({"z_scale": 2.0}, 1.0),  # drawn with Z steps 2 Y/X pixels apart: 2 x 0.5 um
    ({}, 3.0),  # no z_scale: the data set's own Z step
])
def test_3d_samples_z_step(tmp_path, params, z):
    params = {"cells": [2, 3], "radius": [3, 4], **params}
    meta, labels, sketch, h5 = _simulate_and_sketch(tmp_path, [8, 32, 32], params, [3.0, 0.5, 0.5])
    assert meta == [z, 0.5, 0.5] and labels == sketch == h5 == (z, 0.5, 0.5)
    with tifffile.TiffFile(tmp_path / "labels/0.tif") as tif:
        assert tif.imagej_metadata["spacing"] == z


def test_unknown_pixel_size_writes_none(tmp_path):
    meta, labels, sketch, h5 = _simulate_and_sketch(
        tmp_path, [32, 32], {"cells": [2, 3], "radius": [3, 4]}, None)
    assert meta is labels is sketch is h5 is None
    assert _resolution(tmp_path / "labels/0.tif") is _resolution(tmp_path / "sketches/0.tif") is None


# --- end to end: an ImageJ-calibrated input through synthesis and export ----------------------

@pytest.mark.e2e
def test_workflow_carries_the_inputs_pixel_size(tmp_path):
    _imagej_images(tmp_path / "raw", 0.5)
    config = load_config("tiny")
    ds = config["datasets"]["tiny"]
    ds["export"] = {"formats": ["stardist"]}
    out = run_snakemake(tmp_path, config, "synthesize", "export").stdout
    root = tmp_path / "results/tiny"
    for h5 in (root / "h5").glob("*.h5"):
        with h5py.File(h5) as f:
            assert f["data/image"].attrs["element_size_um"].tolist() == [0.5, 0.5], h5
    for path in ("sim/labels/0.tif", "sim/sketches/0.tif", "sim/images/0.tif",
                 "export/stardist/images/sim_0.tif", "export/stardist/masks/sim_0.tif"):
        assert _resolution(root / path) == pytest.approx((0.5, 0.5)), (path, out[-2000:])
    assert "pixel size [0.5, 0.5]" in (tmp_path / "logs/tiny/index.log").read_text()
    # the config's pixel_size overrides the metadata: conversion and simulation redo
    ds["pixel_size"] = 0.25
    plan = run_snakemake(tmp_path, config, "-n", "synthesize").stdout
    for rule in ("convert_image", "simulate_chunk", "sketch_chunk", "synthesize_chunk"):
        assert f"rule {rule}:" in plan, (rule, plan[-3000:])
