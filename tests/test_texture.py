"""Texture matching: the measurement recovers known noise and texture; matching reaches the
target, only adds noise and only damps texture, leaves object edges where they are, and is
reproducible."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from workflow_lib.calibrate.texture import match_texture, measure_texture
from workflow_lib.sketch.targets import edge_distance


def blobs(shape=(128, 128), texture=0.0, noise=0.0, seed=0):
    """(image in [0, 1], objects): discs at 0.6 on 0.1, blurred; ``texture``: SD of a
    2-pixel-smooth pattern inside the discs; ``noise``: SD of white noise everywhere."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    objects = np.zeros(shape, bool)
    for cy, cx in ((32, 32), (32, 96), (96, 40), (90, 96)):
        objects |= (yy - cy) ** 2 + (xx - cx) ** 2 <= 16**2
    image = ndimage.gaussian_filter(0.1 + 0.5 * objects, 1.0)
    pattern = ndimage.gaussian_filter(rng.standard_normal(shape), 2.0)
    image += objects * texture * pattern / pattern.std()
    return (image + rng.normal(0, noise, shape)).astype(np.float32), objects


def test_measure_separates_noise_from_texture():
    smooth = measure_texture(*blobs())
    noisy = measure_texture(*blobs(noise=0.03))
    textured = measure_texture(*blobs(texture=0.05))
    # a smooth disc's own blurred rim leaves a little in the mid band, far below texture
    assert smooth["fine"]["background"] < 1e-3 and smooth["mid"]["objects"] < 0.015
    assert noisy["fine"]["background"] > 0.02 and noisy["fine"]["objects"] > 0.02
    assert textured["mid"]["objects"] > 2.5 * smooth["mid"]["objects"]
    assert textured["mid"]["background"] < 1e-3


@pytest.mark.parametrize("have_noise, want_noise", [(0.01, 0.03), (0.03, 0.01)])
def test_noise_is_added_up_to_the_target_and_never_removed(have_noise, want_noise):
    image, objects = blobs(noise=have_noise)
    target = measure_texture(*blobs(noise=want_noise, seed=1))
    out, done = match_texture(image, objects, target, np.random.default_rng(0))
    after = measure_texture(out, objects)
    expected = max(have_noise, want_noise)
    reference = measure_texture(*blobs(noise=expected, seed=2))
    for region in ("objects", "background"):
        assert after["fine"][region] == pytest.approx(reference["fine"][region], rel=0.1)
        assert (done[region]["noise_added"] > 0) == (want_noise > have_noise)


def test_texture_is_damped_to_the_target_and_edges_stay():
    image, objects = blobs(texture=0.06)
    target = measure_texture(*blobs(texture=0.02, seed=1))
    target["fine"] = {"objects": 0.0, "background": 0.0}   # isolate the texture step
    out, done = match_texture(image, objects, target, np.random.default_rng(0))
    after = measure_texture(out, objects)
    assert after["mid"]["objects"] == pytest.approx(target["mid"]["objects"], rel=0.25)
    assert done["objects"]["mid_gain"] < 0.6 and done["background"]["mid_gain"] == 1.0
    signed, _ = edge_distance(objects.astype(np.int32))
    edge = np.abs(signed) <= 1.0
    change = np.abs(out - image)
    assert change[edge].mean() < 0.1 * change[signed > 4].mean()
    # weaker texture than the target is left alone
    calm, _ = blobs(texture=0.01)
    same, done = match_texture(calm, objects, target, np.random.default_rng(0))
    assert done["objects"]["mid_gain"] == 1.0 and np.allclose(same, np.clip(calm, 0, 1), atol=1e-6)


def test_same_seed_same_image_and_3d_works():
    image, objects = blobs(noise=0.005)
    target = measure_texture(*blobs(noise=0.03, texture=0.01, seed=1))
    a, _ = match_texture(image, objects, target, np.random.default_rng(5))
    b, _ = match_texture(image, objects, target, np.random.default_rng(5))
    c, _ = match_texture(image, objects, target, np.random.default_rng(6))
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    volume = np.stack([image] * 12)
    solid = np.stack([objects] * 12)
    out, done = match_texture(volume, solid, target, np.random.default_rng(0))
    assert out.shape == volume.shape and done["background"]["noise_added"] > 0
