"""`snakemake export` on a tiny 2D config with a nuclei and a time series simulation: every
layout, read back by the consumers' conventions."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from ome_zarr.io import parse_url
from ome_zarr.reader import Label, Reader

from helpers import load_config, run_snakemake, write_raw_images


@pytest.mark.e2e
def test_export_writes_every_layout(tmp_path):
    write_raw_images(tmp_path / "raw", n=2, shape=(64, 64))
    config = load_config("tiny")
    ds = config["datasets"]["tiny"]
    ds["simulations"]["movie"] = {"kind": "timeseries", "count": 1, "shape": [48, 48], "seed": 1,
                                  "params": {"cells": [3, 4], "radius": [5, 6], "frames": 3}}
    ds["export"] = {"formats": ["cellpose", "stardist", "nnunet", "ctc", "ome-zarr"]}
    ds["pixel_size"] = 0.65  # the TIFFs state none: microns per pixel
    run_snakemake(tmp_path, config, "export")
    out = tmp_path / "results/tiny/export"

    # cellpose: X.tif beside X_masks.tif; the time series as frames
    names = sorted(p.name for p in (out / "cellpose").glob("*.tif"))
    assert "sim_0.tif" in names and "sim_0_masks.tif" in names
    assert {"movie_0_t000.tif", "movie_0_t002_masks.tif"} <= set(names)
    masks = tifffile.imread(out / "cellpose/sim_0_masks.tif")
    assert masks.shape == (48, 48) and masks.max() >= 1

    # stardist: images/ and masks/ with the same names
    images = sorted(p.name for p in (out / "stardist/images").glob("*.tif"))
    assert images == sorted(p.name for p in (out / "stardist/masks").glob("*.tif"))
    assert "sim_0.tif" in images

    # nnU-Net v2: dataset.json, channel files, semantic labels 0/1/2, spacing sidecars
    meta = json.loads((out / "nnunet/dataset.json").read_text())
    assert meta["file_ending"] == ".tif" and meta["numTraining"] == len(
        list((out / "nnunet/labelsTr").glob("*.tif")))
    assert set(meta["labels"].values()) == {0, 1, 2}
    case = out / "nnunet/labelsTr/sim_0.tif"
    assert set(np.unique(tifffile.imread(case))) <= {0, 1, 2}
    assert (out / "nnunet/imagesTr/sim_0_0000.tif").is_file()
    assert json.loads((out / "nnunet/labelsTr/sim_0.json").read_text())["spacing"][0] == 999

    # CTC: one sequence for the time series, tracks consistent with the TRA masks
    rows = [list(map(int, line.split())) for line in
            (out / "ctc/01_GT/TRA/man_track.txt").read_text().splitlines()]
    assert rows
    for label, begin, end, _parent in rows:
        present = [label in tifffile.imread(out / f"ctc/01_GT/TRA/man_track{t:03d}.tif")
                   for t in range(3)]
        assert present == [begin <= t <= end for t in range(3)]
    assert tifffile.imread(out / "ctc/01/t000.tif").dtype == np.uint16
    summary = json.loads((out / "ctc/cellsynth_export.json").read_text())
    assert [s["name"] for s in summary["skipped"]] == ["sim_0"]   # not a time series

    # OME-Zarr: every sample an NGFF image with a label image at 0.65 um, as napari-ome-zarr
    # reads it
    names = sorted(p.stem for p in (out / "ome-zarr").glob("*.zarr"))
    assert names == ["movie_0", "sim_0"]
    for name in names:
        nodes = list(Reader(parse_url(str(out / f"ome-zarr/{name}.zarr")))())
        assert [n.data[0].shape[-2:] for n in nodes if n.load(Label)] == [(48, 48)]
        for node in (n for n in nodes if n.data):  # the image and its label images
            level0 = node.metadata["coordinateTransformations"][0][0]["scale"]
            assert level0[-2:] == [0.65, 0.65], (name, level0)
    assert (out / "ome-zarr/movie_0_tracks.csv").read_text().startswith("L,B,E,P\n")

    traccuracy = pytest.importorskip("traccuracy.loaders")
    graph = traccuracy.load_ctc_data(str(out / "ctc/01_GT/TRA"), str(out / "ctc/01_GT/TRA/man_track.txt"))
    assert graph.graph.number_of_nodes() >= len(rows)
