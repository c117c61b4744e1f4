"""The edge trial: solving for the sketch edge shift, and rule calibrate_edges in the DAG."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from helpers import load_config, run_snakemake, write_raw_images
from workflow_lib.calibrate import edges


def test_edges_within_the_tolerance_are_left_alone():
    assert edges.target_offset(0.2, 0.25) is None and edges.target_offset(-0.25, 0.25) is None
    assert edges.target_offset(0.6, 0.25) == 0.25 and edges.target_offset(-0.3, 0.25) == -0.25


@pytest.mark.parametrize("offset0, slope", [(0.6, 0.7), (-0.3, 0.4), (1.5, 1.0)])
def test_a_linear_edge_response_reaches_the_target_in_one_step(offset0, slope):
    target = edges.target_offset(offset0, 0.25)
    s1 = edges.second_shift(offset0)
    assert s1 * offset0 < 0                      # the second trial steps toward the masks
    shift, measured, reason = edges.next_shift([(0.0, offset0), (s1, offset0 + slope * s1)], target)
    assert reason is None and measured == pytest.approx(slope)
    assert offset0 + slope * shift == pytest.approx(target, abs=1e-9)


def test_false_position_converges_on_a_curved_response():
    """The edge follows the shift less than linearly for small objects (the second check)."""
    def offset(shift):
        return 0.43 + 0.9 * shift + 0.25 * shift**2  # +0.43 unshifted, -0.22 at -1 px
    trials = [(0.0, offset(0.0)), (-1.0, offset(-1.0))]
    for _ in range(edges.REFINEMENTS):
        shift, _, reason = edges.next_shift(trials, 0.25)
        assert reason is None
        trials.append((shift, offset(shift)))
    best = edges.best_trial(trials, 0.25)
    assert abs(best[1] - 0.25) < edges.CLOSE_PX and best in trials[2:]


def test_an_edge_that_does_not_follow_the_sketch_is_left_alone():
    shift, slope, reason = edges.next_shift([(0.0, 0.5), (-1.0, 0.48)], 0.25)
    assert shift is None and slope == pytest.approx(0.02) and "left unshifted" in reason
    shift, slope, reason = edges.next_shift([(0.0, -0.5), (1.0, None)], -0.25)
    assert shift is None and math.isnan(slope) and "could be measured" in reason
    assert edges.best_trial([(0.0, -0.5), (1.0, None)], -0.25) == (0.0, -0.5)


def test_the_shift_is_clipped():
    shift, _, reason = edges.next_shift([(0.0, 3.0), (-1.0, 2.8)], 0.25)   # 0.2 px per pixel
    assert shift == -edges.MAX_SHIFT_PX and reason is None


def _calibrated_tiny(tmp_path, **sketch):
    write_raw_images(tmp_path / "raw", n=2, shape=(64, 64))
    config = load_config("tiny")
    sim = config["datasets"]["tiny"]["simulations"]["sim"]
    sim["calibrate"], sim["params"], sim["shape"] = True, {}, [64, 64]
    if sketch:
        sim["sketch"] = sketch
    return config


@pytest.mark.e2e
def test_calibrated_sketches_wait_for_the_edge_trial(tmp_path):
    """Even the tiny 4-step model follows its sketch's edges (t_start 8 of 20 steps)."""
    config = _calibrated_tiny(tmp_path)
    config["datasets"]["tiny"]["synthesis"]["annotation_check"]["max_boundary_offset_px"] = 0.0
    run_snakemake(tmp_path, config, "sketch")
    out = json.loads((tmp_path / "results/tiny/calibration/edges.json").read_text())
    # tolerance 0: a step toward the masks, refinements, and the trial nearest the masks wins
    trials = [(t["shift_px"], t["boundary_offset_px"]) for t in out["trials"]]
    (s0, o0), (s1, _) = trials[:2]
    assert s0 == 0.0 and s1 == -np.sign(o0) and out["reason"] is None
    assert 2 <= len(trials) <= 2 + edges.REFINEMENTS and out["slope"] > edges.MIN_SLOPE
    assert out["shift_px"] == pytest.approx(edges.best_trial(trials, 0.0)[0], abs=1e-3)
    assert abs(dict(trials)[out["shift_px"]]) < abs(o0)
    assert abs(out["shift_px"]) <= edges.MAX_SHIFT_PX and out["shape"] == [256, 256]
    assert (tmp_path / "results/tiny/calibration/edges.png").stat().st_size > 1000
    assert (tmp_path / "logs/tiny/calibrate_edges.log").read_text().count("edge trial") >= 1


@pytest.mark.e2e
def test_an_explicit_edge_shift_needs_no_trial(tmp_path):
    config = _calibrated_tiny(tmp_path, edge_shift=0.0)
    proc = run_snakemake(tmp_path, config, "-n", "sketch")
    assert "sketch_chunk" in proc.stdout and "calibrate_edges" not in proc.stdout
    assert "train_model" not in proc.stdout
