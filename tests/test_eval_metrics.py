"""Metric code of the evaluate stage, on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.segmentation import find_boundaries

from helpers import discs
from workflow_lib.evaluate.matching import IOU_THRESHOLDS, instance_scores
from workflow_lib.evaluate.realism import (
    RandomTextureFeatures,
    histogram_distance,
    intensity_histogram,
    kid_fid,
    patches,
    radial_power_spectrum,
    realism_scores,
    spectrum_distance,
)
from workflow_lib.evaluate.segment import segment_blobs, segment_cells


def squares(shift: int = 0) -> np.ndarray:
    """Two 10x10 squares on a 40x40 canvas, the second shifted right by ``shift``."""
    lab = np.zeros((40, 40), np.uint16)
    lab[5:15, 5:15] = 1
    lab[20:30, 20 + shift : 30 + shift] = 2
    return lab


def test_perfect_match_is_one():
    s = instance_scores([squares()], [squares()])
    for key in ("precision", "recall", "f1", "ap", "mean_iou", "f1_50_95", "ap_50_95"):
        assert s[key] == pytest.approx(1.0)
    assert (s["n_true"], s["n_pred"], s["tp"]) == (2, 2, 2)


def test_ids_do_not_matter():
    relabeled = squares() * 7  # ids 7 and 14
    assert instance_scores([squares()], [relabeled])["f1"] == pytest.approx(1.0)


def test_shifted_square_by_hand():
    # Second square shifted by 3 px: overlap 10x7 = 70, union 130 -> IoU 7/13 ~ 0.538.
    s = instance_scores([squares()], [squares(shift=3)])
    assert s["tp"] == 2 and s["f1"] == pytest.approx(1.0)
    assert s["mean_iou"] == pytest.approx((1 + 70 / 130) / 2)
    # At thresholds > 0.538 only the unshifted square matches: F1 = 2*1/(2*1+1+1) = 0.5.
    expected_f1 = np.mean([1.0 if t <= 70 / 130 else 0.5 for t in IOU_THRESHOLDS])
    assert s["f1_50_95"] == pytest.approx(expected_f1)
    # AP = TP/(TP+FP+FN): 1 when both match, 1/3 when one does.
    expected_ap = np.mean([1.0 if t <= 70 / 130 else 1 / 3 for t in IOU_THRESHOLDS])
    assert s["ap_50_95"] == pytest.approx(expected_ap)


def test_far_shift_misses():
    # Shifted by 6: IoU 4/16 = 0.25 < 0.5 -> one TP, one FP, one FN.
    s = instance_scores([squares()], [squares(shift=6)])
    assert (s["tp"], s["precision"], s["recall"]) == (1, 0.5, 0.5)
    assert s["ap"] == pytest.approx(1 / 3)


def test_empty_prediction_scores_zero():
    s = instance_scores([squares()], [np.zeros((40, 40), np.int32)])
    assert s["n_pred"] == 0 and s["f1"] == 0 and s["recall"] == 0 and s["ap_50_95"] == 0


def test_pooled_over_images():
    s = instance_scores([squares(), squares()], [squares(), np.zeros((40, 40), np.int32)])
    assert (s["tp"], s["n_true"]) == (2, 4)
    assert s["precision"] == 1 and s["recall"] == 0.5


def test_matching_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        instance_scores([squares()], [np.zeros((10, 10), np.int32)])
    with pytest.raises(TypeError, match="integer"):
        instance_scores([squares()], [squares().astype(float)])
    with pytest.raises(ValueError, match="ground-truth"):
        instance_scores([squares()], [])


def test_blob_segmentation_recovers_touching_disks():
    lab = discs([(20, 20), (20, 35), (45, 40)], 7)  # first two touch
    image = (lab > 0).astype(np.float32)
    s = instance_scores([lab], [segment_blobs(image, count=3)])
    assert s["f1"] == pytest.approx(1.0) and s["mean_iou"] > 0.8


def test_blob_segmentation_of_flat_image_is_empty():
    assert segment_blobs(np.ones((16, 16)), count=3).max() == 0
    assert segment_blobs(np.random.rand(16, 16), count=0).max() == 0


def test_cell_segmentation_from_bright_boundaries():
    # A 3x3 grid of 12 px cells (grey interiors, bright 2 px membranes) on a dark background.
    lab = np.zeros((60, 60), np.int32)
    image = np.zeros((60, 60), np.float32)
    for k, (y, x) in enumerate(((y, x) for y in range(3) for x in range(3)), 1):
        lab[12 + 12 * y : 24 + 12 * y, 12 + 12 * x : 24 + 12 * x] = k
    image[lab > 0] = 0.4
    image[find_boundaries(lab, mode="inner") & (lab > 0)] = 1.0
    s = instance_scores([lab], [segment_cells(image, sigma=1.0)])
    assert s["f1"] == pytest.approx(1.0) and s["mean_iou"] > 0.7


def test_cell_segmentation_of_flat_image_is_empty():
    assert segment_cells(np.ones((16, 16))).max() == 0


def test_blob_segmentation_3d():
    lab = discs([(12, 10, 10), (12, 22, 22)], 6, (24, 32, 32))
    pred = segment_blobs(lab > 0, count=2)
    assert instance_scores([lab], [pred])["f1"] == pytest.approx(1.0)


def test_histogram_distance_by_hand():
    a = intensity_histogram([np.full((8, 8), 0.1)], bins=10)
    b = intensity_histogram([np.full((8, 8), 0.5)], bins=10)
    assert histogram_distance(a, a) == 0
    # All mass moves 4 bins of width 0.1.
    assert histogram_distance(a, b) == pytest.approx(0.4)
    zeros = intensity_histogram([np.zeros((4, 4))], bins=4)
    ones = intensity_histogram([np.ones((4, 4))], bins=4)
    assert histogram_distance(zeros, ones) == pytest.approx(0.75)  # bin centres 1/8 .. 7/8


def test_power_spectrum_of_a_cosine():
    # cos with 8 px period: all power at 0.125 cycles/px, ring 0.125 / (0.5/32) = 8 -> index 7.
    x = np.arange(64)
    img = np.cos(2 * np.pi * x / 8)[None, :].repeat(64, axis=0)
    spec = radial_power_spectrum([img], bins=32)
    assert spec.argmax() == 7
    assert spec[7] > 1e3 * np.delete(spec, 7).max()
    assert spectrum_distance(spec, spec) == 0
    noise = radial_power_spectrum([np.random.default_rng(0).random((64, 64))])
    assert spectrum_distance(noise, noise * 10) == pytest.approx(1.0)  # one decade


def test_power_spectrum_ignores_brightness():
    rng = np.random.default_rng(0)
    img = rng.random((32, 32))
    a, b = radial_power_spectrum([img]), radial_power_spectrum([img + 0.3])
    assert spectrum_distance(a, b) == pytest.approx(0, abs=1e-9)


def test_patches_tile_without_overlap():
    img = np.arange(100, dtype=np.float32).reshape(10, 10)
    tiles = patches([img, np.zeros((3, 3))], 4)
    assert tiles.shape == (4, 4, 4)
    np.testing.assert_array_equal(tiles[1], img[0:4, 4:8])


def test_feature_network_is_fixed_by_seed():
    x = torch.rand(3, 1, 32, 32)
    a, b = RandomTextureFeatures(seed=1), RandomTextureFeatures(seed=1)
    assert a.num_features == 14 * 8
    torch.testing.assert_close(a(x), b(x))
    assert not torch.allclose(a(x), RandomTextureFeatures(seed=2)(x))


def test_kid_of_a_set_with_itself_is_about_zero():
    rng = np.random.default_rng(0)
    real = rng.random((40, 16, 16)).astype(np.float32)
    blurred = np.repeat(np.repeat(real[:, ::4, ::4], 4, 1), 4, 2)
    net = RandomTextureFeatures()
    same = kid_fid(real, real, net, subsets=10)
    other = kid_fid(real, blurred, net, subsets=10)
    # The unbiased estimator of a set against itself is slightly negative (O(1/N)).
    assert abs(same["kid"]) < 0.1 * other["kid"] and abs(same["fid"]) < 1e-3
    assert other["fid"] > 1


def test_kid_needs_two_patches():
    one = np.zeros((1, 8, 8), np.float32)
    out = kid_fid(one, one, RandomTextureFeatures())
    assert out["kid"] is None and out["fid"] is None


def test_realism_scores_identical_sets():
    rng = np.random.default_rng(1)
    imgs = [rng.random((64, 64)).astype(np.float32) for _ in range(2)]
    s = realism_scores(imgs, imgs, patch=16, subsets=5)
    assert s["patch"] == 16 and s["n_real"] == 32
    assert s["histogram_w1"] == 0 and s["spectrum_rmse"] == 0
    assert abs(s["kid"]) < 0.01  # unbiased estimator: slightly negative for a set with itself


def test_orthogonal_views_show_every_plane_through_the_middle():
    """Figures show 3D as Fiji's orthogonal views: XY, YZ to the right, XZ below."""
    from workflow_lib.plotting import orthogonal_views

    volume = np.zeros((5, 20, 30))
    volume[2, 10, 15] = 1.0          # the voxel all three middle planes go through
    panel = orthogonal_views(volume)
    assert panel.shape == (20 + 1 + 5, 30 + 1 + 5)
    assert panel[10, 15] == 1 and panel[10, 31 + 2] == 1 and panel[21 + 2, 15] == 1
    assert (panel[20, :31] == 1).all() and (panel[:21, 30] == 1).all()  # bright dividing lines
    assert panel[21:, 31:].sum() == 0 and panel.sum() == 3 + 31 + 20
    labels = orthogonal_views(volume.astype(np.uint16))
    assert labels.sum() == 3   # label panels: the lines hold no object
    cropped = orthogonal_views(volume, view=16)   # top-left 16 x 16; side views through its middle
    assert cropped.shape == (16 + 1 + 5, 16 + 1 + 5)
    image = np.arange(40 * 50).reshape(40, 50)
    np.testing.assert_array_equal(orthogonal_views(image, view=32), image[:32, :32])
