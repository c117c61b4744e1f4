"""Evaluate stage through Snakemake: tiny data set, stand-in simulation outputs, --report."""

from __future__ import annotations

import json

import numpy as np
import pytest

from helpers import load_config, run_snakemake, stand_in_chunk, toy_pair
from workflow_lib.io import write_tiff

EVAL_RULES = ["convert_image", "index_dataset", "calibrate_dataset", "evaluate_reference",
              "evaluate_simulation"]


def tiny_config(real_masks):
    """configs/evaluate.yaml with ``real_masks``."""
    config = load_config("evaluate")
    config["datasets"]["toy"]["evaluation"]["real_masks"] = real_masks
    return config


def make_inputs(root) -> list[dict]:
    """4 real images + masks (2 train, 1 val, 1 test); stage outputs of one simulation as the
    other stages write them."""
    for k in range(4):
        image, labels = toy_pair(k)
        write_tiff(root / "raw" / f"img{k}.tif", (image * 1000).astype(np.uint16), "YX")
        write_tiff(root / "masks" / f"img{k}.tif", labels, "YX")
    sim = root / "results" / "toy" / "blobs"
    for i in range(2):
        image, labels = toy_pair(20 + i)
        write_tiff(sim / "labels" / f"{i}.tif", labels[None], "CYX")
        write_tiff(sim / "sketches" / f"{i}.tif", ((labels[None] > 0) * 1.5 - 1.0).astype(np.float32), "CYX")
        write_tiff(sim / "images" / f"{i}.tif", image[None], "CYX")
    # the annotation checks: sample 1 was redrawn once, then passed
    redrawn = [{"seeds": [0, 1], "problems": ["12.5 % of its objects are in no mask (limit 2.0 %)"]}]
    for i, draws in enumerate(([], redrawn)):
        (sim / "images" / f"{i}.json").write_text(json.dumps(
            {"flagged": False, "problems": [], "redrawn": draws}))
    stand_in_chunk(sim, 2, "simulate", "sketch", "synthesize")
    return redrawn


@pytest.mark.e2e
def test_evaluate_stage_and_report(tmp_path):
    redrawn = make_inputs(tmp_path)
    # Only this stage's rules (and prepare) run; the stand-in simulation outputs are inputs.
    run_snakemake(tmp_path, tiny_config("masks/*.tif"), "evaluate",
                  "--allowed-rules", *EVAL_RULES)
    out = tmp_path / "results" / "toy" / "blobs" / "evaluation"
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["kind"] == "nuclei" and metrics["n_samples"] == 2
    for source in ("synthetic", "sketch", "real"):
        assert metrics["downstream"][source]["f1"] is not None
    assert metrics["downstream"]["real"]["n_train"] == 2
    # test_splits [val, test]: every source is tested on both held-out images
    assert all(metrics["downstream"][source]["n_test"] == 2 for source in ("synthetic", "real"))
    assert metrics["downstream"]["tested_on"] == "real images of the val and test splits with a real mask"
    for name in ("summary", "grid", "realism", "distributions", "segmenter_loss"):
        assert (out / f"{name}.png").stat().st_size > 1000
    assert metrics["realism"]["synthetic"]["c2st"]["n_real"] > 0
    assert metrics["realism"]["real_train_vs_test"]["c2st"]["accuracy"] is not None
    # 32-pixel tiles over 64x64 images: where they met is measured; overlaps cover the whole
    # image, so no band pair inside one tile is clear of them to compare with
    seams = metrics["seams"]
    assert seams["tiles_per_image"] == 9 and seams["seams"] > 0 and seams["seam_step"] >= 0
    assert seams["reference_step"] is None and seams["ratio"] is None
    assert metrics["samples"] == {
        "evaluated": 2, "delivered": 2, "flagged": [],
        "redrawn": [{"sample": "1", "flagged_draws": 1, "problems": redrawn[0]["problems"]}]}
    run_snakemake(tmp_path, tiny_config("masks/*.tif"), "evaluate", "--report", "report.html",
                  "--allowed-rules", *EVAL_RULES)
    html = (tmp_path / "report.html").read_text(errors="replace")
    assert "Evaluation" in html


@pytest.mark.e2e
def test_masks_matching_no_image_is_a_clear_error(tmp_path):
    make_inputs(tmp_path)
    proc = run_snakemake(tmp_path, tiny_config("raw/nothing*.tif"), "evaluate", "-n",
                         check=False)
    assert proc.returncode != 0
    assert "datasets.toy.evaluation.real_masks" in proc.stdout
