"""The whole pipeline on a tiny 3D data set: real 3D nuclei -> model -> 3D synthetic images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from helpers import load_config, run_snakemake
from workflow_lib.io import read_tiff


@pytest.mark.e2e
def test_3d_pipeline_end_to_end(tmp_path):
    from stardist.data import test_image_nuclei_3d

    volume = test_image_nuclei_3d()  # (Z, Y, X) uint16, StarDist's bundled 3D example
    (tmp_path / "raw").mkdir()
    for i, vol in enumerate([volume, volume[:, ::-1], volume[:, :, ::-1], volume[::-1]]):
        tifffile.imwrite(tmp_path / f"raw/v{i}.tif", np.ascontiguousarray(vol), imagej=True,
                         metadata={"axes": "ZYX"})
    run_snakemake(tmp_path, load_config("pipeline_3d"), "all", "--set-threads", "train_model=1",
                  "synthesize_chunk=1")
    for sim in ("nuclei", "tissue"):
        labels, _ = read_tiff(tmp_path / f"results/vol/{sim}/labels/0.tif", axes="CZYX")
        image, _ = read_tiff(tmp_path / f"results/vol/{sim}/images/0.tif", axes="CZYX")
        assert labels.shape == image.shape == (1, 16, 48, 48)
        assert labels.max() >= 1 and image.dtype == np.float32
        assert 0 <= image.min() and image.max() <= 1
        metrics = json.loads((tmp_path / f"results/vol/{sim}/evaluation/metrics.json").read_text())
        assert metrics["fidelity"]
