"""Integrity of a run under faults and bad input, end to end: an image never outlives the labels
it was made from, outputs are readable by the group, deleted files come back, bad settings and
leaking masks stop a dry-run with the key's name."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tifffile

from helpers import kill_snakemake_when, load_config, run_snakemake, write_raw_images
from workflow_lib.dataset import split_names

pytestmark = pytest.mark.e2e

LABELS, SKETCH, IMAGE = (f"results/a/sim/{stage}/0.tif" for stage in ("labels", "sketches", "images"))


def _spatial(path) -> tuple[int, ...]:
    return tifffile.imread(path).shape[-2:]


def test_new_labels_after_a_killed_sketch_job_get_their_own_image(pipeline_copy):
    """The issue's scenario: change a simulation, kill -9 its sketch job, rerun."""
    root, config = pipeline_copy
    sim = config["datasets"]["a"]["simulations"]["sim"]
    sim["shape"] = [1536, 1536]
    sim["params"] = {"cells": [300, 320], "radius": [5, 7]}
    log = root / "logs/a/sim/sketch/0-0.log"
    started = log.stat().st_mtime if log.exists() else 0.0
    kill_snakemake_when(root, config, "synthesize",
                        ready=lambda: log.exists() and log.stat().st_mtime > started,
                        what="the sketch job started")
    run_snakemake(root, config, "--unlock", lock=True)
    rerun = run_snakemake(root, config, "synthesize", "--rerun-incomplete", lock=True)
    assert "Nothing to be done" not in rerun.stdout
    assert _spatial(root / LABELS) == _spatial(root / SKETCH) == _spatial(root / IMAGE) == (1536, 1536)


def test_new_labels_take_the_old_sketch_and_image_away_until_both_are_redrawn(pipeline_copy):
    """Deterministic form of the scenario: the simulate stage alone makes new labels; the old
    sketch and image are gone with the old labels, never left beside the new ones."""
    root, config = pipeline_copy
    config["datasets"]["a"]["simulations"]["sim"]["shape"] = [64, 64]
    assert _spatial(root / IMAGE) == (48, 48)
    run_snakemake(root, config, "simulate")
    assert _spatial(root / LABELS) == (64, 64)
    assert not (root / SKETCH).exists() and not (root / IMAGE).exists()
    run_snakemake(root, config, "synthesize")
    assert _spatial(root / IMAGE) == _spatial(root / SKETCH) == (64, 64)


def test_a_sample_file_deleted_by_hand_is_named_in_one_line(pipeline_copy):
    """Snakemake tracks a chunk by its manifest: a sketch deleted by hand after its chunk was
    made fails the synthesis job with the file and the command that redraws it."""
    root, config = pipeline_copy
    config["datasets"]["a"]["synthesis"]["t_start"] += 1      # synthesis reruns, the sketch not
    (root / SKETCH).unlink()
    proc = run_snakemake(root, config, "synthesize", check=False)
    assert proc.returncode != 0
    assert f"{SKETCH}: file not found" in proc.stdout and "--forcerun sketch_chunk" in proc.stdout


def test_outputs_are_readable_by_the_group(pipeline_copy):
    root, config = pipeline_copy
    old = os.umask(0o022)
    try:
        run_snakemake(root, config, "synthesize", "--forcerun", "simulate_chunk", "convert_image")
    finally:
        os.umask(old)
    files = [p for p in (root / "results/a").rglob("*") if p.is_file()
             and p.stat().st_mtime > (root / "config.yaml").stat().st_mtime]
    assert files and {oct(p.stat().st_mode & 0o777) for p in files} == {"0o644"}


def test_prepare_rebuilds_a_deleted_converted_image(pipeline_copy):
    root, config = pipeline_copy
    (root / "results/a/h5/img0.h5").unlink()
    run_snakemake(root, config, "prepare")
    assert (root / "results/a/h5/img0.h5").is_file()


def _tiny(tmp_path) -> dict:
    write_raw_images(tmp_path / "raw", n=2, shape=(48, 48))
    return load_config("tiny")


def test_bad_simulation_params_stop_a_dry_run(tmp_path):
    config = _tiny(tmp_path)
    config["datasets"]["tiny"]["simulations"]["sim"]["params"]["radius"] = -2
    proc = run_snakemake(tmp_path, config, "-n", check=False)
    assert proc.returncode != 0
    assert "config key 'datasets.tiny.simulations.sim.params.radius': must be >= 1" in proc.stdout


def test_a_mask_of_a_test_image_is_refused(tmp_path):
    config = _tiny(tmp_path)
    (tmp_path / "masks").mkdir()
    for k in range(2):   # one mask per real image, named like it: one of them is a test image
        tifffile.imwrite(tmp_path / f"masks/img{k}.tif", np.eye(48, dtype=np.uint16))
    config["datasets"]["tiny"]["simulations"]["annotated"] = {
        "kind": "masks", "count": 1, "shape": [48, 48], "params": {"masks": "masks/*.tif"}}
    proc = run_snakemake(tmp_path, config, "-n", check=False)
    assert proc.returncode != 0
    assert "simulations.annotated.params.masks" in proc.stdout and "leaks the answer" in proc.stdout


@pytest.mark.parametrize("test_splits", [["test"], ["val", "test"]])
def test_a_mask_of_a_val_image_is_refused_when_the_evaluation_tests_on_it(tmp_path, test_splits):
    write_raw_images(tmp_path / "raw", n=4, shape=(48, 48))
    config = load_config("tiny")
    ds = config["datasets"]["tiny"]
    ds["split"] = {"val": 0.25, "test": 0.25, "seed": 0}
    ds["evaluation"] = {**ds.get("evaluation", {}), "test_splits": test_splits}
    val = split_names([f"img{k}" for k in range(4)], 0.25, 0.25, 0)["val"]
    (tmp_path / "masks").mkdir()
    for name in val:
        tifffile.imwrite(tmp_path / f"masks/{name}.tif", np.eye(48, dtype=np.uint16))
    ds["simulations"]["annotated"] = {
        "kind": "masks", "count": 1, "shape": [48, 48], "params": {"masks": "masks/*.tif"}}
    proc = run_snakemake(tmp_path, config, "-n", check=False)
    if "val" in test_splits:
        assert proc.returncode != 0
        assert f"mask of val image '{val[0]}'" in proc.stdout and "leaks the answer" in proc.stdout
    else:
        assert proc.returncode == 0, proc.stdout
