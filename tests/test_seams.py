"""The seam measure: a step where tiles meet is found, texture alone is not a seam, objects
are not background."""

from __future__ import annotations

import numpy as np

from helpers import discs
from workflow_lib.diffusion.tiling import tile_layout
from workflow_lib.evaluate.seams import seam_steps

TILE, OVERLAP = [64, 64], 16


def _background(seed=0, shape=(160, 160)):
    rng = np.random.default_rng(seed)
    return 0.1 + 0.02 * rng.standard_normal(shape)


def _measure(image, labels):
    return seam_steps(image, labels, tile_layout(image.shape, TILE, OVERLAP), TILE)


def test_noise_alone_has_no_seam():
    ratios = [_measure(_background(s), np.zeros((160, 160), int))["ratio"] for s in range(5)]
    assert np.mean(ratios) < 2


def test_a_tile_that_draws_another_background_is_a_seam():
    image = _background()
    starts = tile_layout(image.shape, TILE, OVERLAP)[0]
    image[starts[1] + TILE[0] - OVERLAP:] += 0.05   # the last tile's own level, blended in
    result = _measure(image, np.zeros(image.shape, int))
    assert result["seams"] == 4 and result["ratio"] > 10
    assert abs(result["max_seam_step"] - 0.05) < 0.01


def test_objects_are_not_background():
    """Bright objects straddling an overlap are left out: they are in the mask."""
    image = _background()
    labels = discs([(60, 40), (60, 120), (100, 80)], 12, image.shape)
    image[labels > 0] = 0.9
    masked = _measure(image, labels)["ratio"]
    unmasked = _measure(image, np.zeros(image.shape, int))["ratio"]  # objects as background
    assert masked < 2 and unmasked > 2 * masked
