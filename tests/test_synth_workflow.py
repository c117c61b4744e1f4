"""train + synthesize end to end with Snakemake on a tiny config (own h5, index and sketches)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import (
    load_config, run_snakemake, stand_in_chunk, toy_labels, toy_sketch, write_h5_images, write_raw_images,
    write_split_index,
)
from workflow_lib.io import read_tiff, write_tiff

RULES = ["--allowed-rules", "train_model", "synthesize_chunk", "train", "synthesize",
         "--set-threads", "train_model=1", "synthesize_chunk=1"]


def _inputs(root):
    """What prepare and sketch would have made, so only the two diffusion rules run."""
    write_raw_images(root / "raw", n=4, shape=(24, 24))
    (root / "results/tiny/h5").mkdir(parents=True)
    h5 = write_h5_images(root / "results/tiny/h5", n=4, shape=(1, 24, 24))
    write_split_index(root / "results/tiny/index", {"train": h5[:2], "val": h5[2:3], "test": h5[3:]})
    sim = root / "results/tiny/sim"
    for i in range(2):  # the labels first: a sketch older than its labels would be redone
        write_tiff(sim / f"labels/{i}.tif", toy_labels(i, (40, 56))[None], "CYX")
    write_tiff(sim / "sketches/0.tif", toy_sketch((40, 56), seed=0), "CYX")
    two_channels = np.concatenate([toy_sketch((40, 56), seed=1), toy_sketch((40, 56), seed=2)])
    write_tiff(sim / "sketches/1.tif", two_channels, "CYX")
    stand_in_chunk(sim, 2, "simulate", "sketch")   # labels before sketches, as the stages run


@pytest.mark.e2e
def test_train_and_synthesize_end_to_end(tmp_path):
    _inputs(tmp_path)
    run_snakemake(tmp_path, load_config("train_synthesize"), "train", "synthesize", *RULES)
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
