"""train + synthesize end to end with Snakemake on a tiny config (own h5, index and sketches)."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
import torch
from conftest import run_snakemake

from workflow_lib.io import read_tiff, write_h5, write_tiff

MODEL = {"patch_size": [16, 16], "features": 4,
         "train": {"steps": 4, "batch_size": 2, "checkpoint_every": 2, "val_every": 2, "val_batches": 1}}
SYNTHESIS = {"t_start": 20, "steps": 2, "tile": [32, 32], "overlap": 8}
RULES = ["--allowed-rules", "train_model", "synthesize_image", "train", "synthesize",
         "--set-threads", "train_model=1", "synthesize_image=1"]


def _config() -> dict:
    return {"datasets": {"tiny": {
        "images": "raw/*.tif", "ndim": 2, "split": {"val": 0.25, "test": 0.25, "seed": 0},
        "model": MODEL, "synthesis": SYNTHESIS,
        "simulations": {"sim": {"kind": "nuclei", "count": 2, "shape": [40, 56]}},
    }}}


def _inputs(root):
    """What prepare and sketch would have made, so only the two diffusion rules run."""
    rng = np.random.default_rng(0)
    (root / "raw").mkdir(parents=True)
    index = {"train": [0, 1], "val": [2], "test": [3]}
    for i in range(4):
        tifffile.imwrite(root / f"raw/img{i}.tif", np.zeros((24, 24), np.uint16))
        write_h5(root / f"results/tiny/h5/img{i}.h5", {"data/image": rng.random((1, 24, 24), np.float32)})
    for split, ids in index.items():
        rows = "".join(f"../h5/img{i}.h5,1x24x24\n" for i in ids)
        (root / f"results/tiny/index/{split}.csv").write_text("path,shape\n" + rows)
    write_tiff(root / "results/tiny/sim/sketches/0.tif", rng.uniform(-1, 1, (1, 40, 56)).astype(np.float32), "CYX")
    write_tiff(root / "results/tiny/sim/sketches/1.tif", rng.uniform(-1, 1, (2, 40, 56)).astype(np.float32), "CYX")


@pytest.mark.e2e
def test_train_and_synthesize_end_to_end(tmp_path):
    (tmp_path / "results/tiny/index").mkdir(parents=True)
    _inputs(tmp_path)
    run_snakemake(tmp_path, _config(), "train", "synthesize", *RULES)
    model = torch.load(tmp_path / "results/tiny/model/model.pt", weights_only=True)
    assert model["meta"]["model"]["train"]["steps"] == 4 and model["meta"]["ndim"] == 2
    for name in ("loss.png", "samples.png", "checkpoints/last.pt"):
        assert (tmp_path / "results/tiny/model" / name).stat().st_size > 0
    for i, channels in ((0, 1), (1, 2)):
        image, axes = read_tiff(tmp_path / f"results/tiny/sim/images/{i}.tif")
        assert image.dtype == np.float32 and image.min() >= 0 and image.max() <= 1
        assert image.shape == ((40, 56) if channels == 1 else (2, 40, 56))
    log = (tmp_path / "logs/tiny/train.log").read_text()
    assert "device: cpu" in log and "torch.cuda.is_available()=False" in log
