"""The whole pipeline on a tiny 3D data set: real 3D nuclei -> model -> 3D synthetic images."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile
from conftest import run_snakemake

from workflow_lib.io import read_tiff


def _config() -> dict:
    return {"datasets": {"vol": {
        "images": "raw/*.tif",
        "ndim": 3,
        "split": {"val": 0.25, "test": 0.25, "seed": 0},
        "model": {"patch_size": [16, 32, 32], "features": 4,
                  "train": {"steps": 4, "batch_size": 2, "checkpoint_every": 2, "val_every": 2,
                            "val_batches": 1}},
        "simulations": {
            "nuclei": {"kind": "nuclei", "count": 1, "shape": [16, 48, 48],
                       "params": {"cells": [3, 5], "radius": [4, 6]}},
            "tissue": {"kind": "membranes", "count": 1, "shape": [16, 48, 48],
                       "params": {"cells": [6, 10]}},
        },
        "synthesis": {"t_start": 20, "steps": 2, "tile": [16, 32, 32], "overlap": 8, "batch": 4},
    }}}


@pytest.mark.e2e
def test_3d_pipeline_end_to_end(tmp_path):
    from stardist.data import test_image_nuclei_3d

    volume = test_image_nuclei_3d()  # (Z, Y, X) uint16, StarDist's bundled 3D example
    (tmp_path / "raw").mkdir()
    for i, vol in enumerate([volume, volume[:, ::-1], volume[:, :, ::-1], volume[::-1]]):
        tifffile.imwrite(tmp_path / f"raw/v{i}.tif", np.ascontiguousarray(vol), imagej=True,
                         metadata={"axes": "ZYX"})
    run_snakemake(tmp_path, _config(), "all", "--set-threads", "train_model=1",
                  "synthesize_image=1")
    for sim in ("nuclei", "tissue"):
        labels, _ = read_tiff(tmp_path / f"results/vol/{sim}/labels/0.tif", axes="CZYX")
        image, _ = read_tiff(tmp_path / f"results/vol/{sim}/images/0.tif", axes="CZYX")
        assert labels.shape == image.shape == (1, 16, 48, 48)
        assert labels.max() >= 1 and image.dtype == np.float32
        assert 0 <= image.min() and image.max() <= 1
        metrics = json.loads((tmp_path / f"results/vol/{sim}/evaluation/metrics.json").read_text())
        assert metrics["fidelity"]
