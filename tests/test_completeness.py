"""Annotation completeness on hand-made cases: extra objects, missed ones, halos and shrunk objects."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from helpers import discs
from workflow_lib.evaluate.completeness import boundary_offsets, completeness, detect_objects


def render(labels, seed=0, blur=1.0, noise=0.02) -> np.ndarray:
    """Objects at 0.8 on 0.1, blurred like a microscope, with noise."""
    img = ndimage.gaussian_filter(np.where(labels > 0, 0.8, 0.1), blur)
    return img + np.random.default_rng(seed).normal(0, noise, labels.shape)


SHAPE = (96, 96)
CENTRES = [(20, 20), (20, 70), (70, 30), (70, 75)]


def test_faithful_image_scores_clean():
    labels = discs(CENTRES, 8, SHAPE)
    scores = completeness([render(labels)], [labels])
    assert scores["annotated"] == 4 and scores["detected"] == 4
    assert scores["unannotated_pct"] == 0 and scores["missed_pct"] == 0
    assert abs(scores["boundary_offset_px"]) < 0.5


def test_extra_blob_is_unannotated_and_missing_blob_is_missed():
    labels = discs(CENTRES, 8, SHAPE)
    image = render(discs(CENTRES + [(45, 48)], 8, SHAPE))  # the image shows a fifth nucleus
    scores = completeness([image], [labels])
    assert scores["unannotated"] == 1 and scores["unannotated_pct"] == pytest.approx(25.0)
    image = render(discs(CENTRES[:3], 8, SHAPE))           # and here one is not shown
    scores = completeness([image], [labels])
    assert scores["missed"] == 1 and scores["missed_pct"] == pytest.approx(25.0)


@pytest.mark.parametrize("grow", [-2, 2, 3])
def test_boundary_offset_measures_halos_and_shrunk_objects(grow):
    labels = discs(CENTRES, 9, SHAPE)
    image = render(discs(CENTRES, 9 + grow, SHAPE), blur=1.2)
    offset = completeness([image], [labels])["boundary_offset_px"]
    assert offset == pytest.approx(grow, abs=0.5)


@pytest.mark.parametrize("gap", [1, 2, 12])
def test_close_neighbours_do_not_bias_the_boundary_offset(gap):
    # Each instance is profiled over the pixels nearest to it, so a neighbour's blur in a
    # narrow gap must not move its edge: what a flagged dense group shows is the image's.
    radius = 6
    half = radius + gap / 2 + 0.5
    labels = discs([(48, 48 - half), (48, 48 + half)], radius, SHAPE)
    single = discs([(48, 30)], radius, SHAPE)
    alone = boundary_offsets(render(single, blur=1.6, noise=0.0), single)[0]
    assert boundary_offsets(render(labels, blur=1.6, noise=0.0), labels) == pytest.approx(
        [alone, alone], abs=0.1)


def test_shifted_mask_misses_and_adds():
    labels = discs(CENTRES, 5, SHAPE)
    shifted = np.roll(labels, 30, axis=1)            # masks moved off their objects
    scores = completeness([render(labels)], [shifted])
    assert scores["missed"] == 4 and scores["unannotated"] == 4


def test_detection_ignores_noise_and_tiny_specks():
    labels = discs(CENTRES, 8, SHAPE)
    image = render(labels, noise=0.05)
    image[5, 90] += 3.0                              # a hot pixel
    assert detect_objects(image, labels).max() == 4
    assert np.isnan(boundary_offsets(np.zeros((32, 32)), discs([(16, 16)], 5, (32, 32)))).all()


def test_empty_labels_give_no_percentages():
    scores = completeness([np.zeros((32, 32))], [np.zeros((32, 32), int)])
    assert scores["unannotated_pct"] is None and scores["boundary_offset_px"] is None


def test_a_speck_counts_in_2d_but_not_as_a_nucleus_in_a_volume():
    """The smallest object scales with the dimensions: 25 bright pixels are an object in 2D
    (a disc of radius 2.5 is 20), a 3x3x3 speck (27 voxels) is not one in 3D (a ball of that
    radius is 65 voxels), a 5x5x5 one (125) is."""
    rng = np.random.default_rng(0)
    flat = rng.normal(0.1, 0.01, (32, 32)).astype(np.float32)
    flat[10:15, 10:15] = 1
    assert detect_objects(flat, np.zeros((32, 32), np.uint16), sigma=0.01).max() == 1
    volume = rng.normal(0.1, 0.01, (16, 32, 32)).astype(np.float32)
    volume[2:5, 2:5, 2:5] = 1
    assert detect_objects(volume, np.zeros(volume.shape, np.uint16), sigma=0.01).max() == 0
    volume[8:13, 20:25, 20:25] = 1
    assert detect_objects(volume, np.zeros(volume.shape, np.uint16), sigma=0.01).max() == 1
