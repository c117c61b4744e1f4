"""Wall completeness of membrane stains on rendered tissue: correct images score clean; merged,
cut and shifted labels, and images without walls, move the score they should."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import ndimage

from helpers import membrane_tissue, sketched_membranes
from workflow_lib.evaluate.walls import crack_distance, wall_completeness, wall_scores
from workflow_lib.sketch.targets import boundary

BLUR = 1.2


def membranes(labels: np.ndarray, seed: int, noise: float = 0.05) -> np.ndarray:
    """A membrane stain: every cell's outermost pixel ring at the cell's own brightness (0.3 to
    0.8) over its own cytoplasm level (0.1 to 0.3), blurred by BLUR, plus Gaussian noise. A wall
    between two cells is their two rings: centred on the boundary, uneven across it."""
    rng = np.random.default_rng([seed, 5])
    n = int(labels.max()) + 1
    cytoplasm = np.r_[0.0, rng.uniform(0.1, 0.3, n - 1)]
    membrane = np.r_[0.0, rng.uniform(0.3, 0.8, n - 1)]
    ring = boundary(labels).astype(bool)
    image = 0.05 + cytoplasm[labels] + np.where(ring, membrane[labels], 0.0)
    return ndimage.gaussian_filter(image, BLUR) + rng.normal(0, noise, labels.shape)


def shared_walls(labels: np.ndarray) -> dict[tuple[int, int], int]:
    """Touching pixel faces per pair of cells ``(a, b)``, ``a > b > 0``."""
    top = int(labels.max()) + 1
    keys = []
    for axis in range(labels.ndim):
        a = np.moveaxis(labels, axis, 0)[:-1].astype(np.int64)
        b = np.moveaxis(labels, axis, 0)[1:].astype(np.int64)
        touch = (a != b) & (a > 0) & (b > 0)
        keys.append(np.maximum(a, b)[touch] * top + np.minimum(a, b)[touch])
    found, faces = np.unique(np.concatenate(keys), return_counts=True)
    return {(int(k // top), int(k % top)): int(n) for k, n in zip(found, faces)}


def merge_longest(labels: np.ndarray, k: int) -> tuple[np.ndarray, list[int]]:
    """The labels with the ``k`` disjoint pairs of cells sharing the longest walls merged (the
    higher id takes the lower's pixels); the merged cells' ids."""
    merged, used, kept = labels.copy(), set(), []
    for (a, b), _ in sorted(shared_walls(labels).items(), key=lambda item: -item[1]):
        if a in used or b in used:
            continue
        merged[merged == b] = a
        used |= {a, b}
        kept.append(a)
        if len(kept) == k:
            break
    return merged, kept


def cut_largest(labels: np.ndarray, k: int, seed: int) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """The labels with the ``k`` largest cells cut in two by a plane through their centroid
    (random direction), the far side taking a new id; the pairs ``(new, old)``."""
    rng = np.random.default_rng(seed)
    cut, pairs = labels.copy(), []
    grid = np.indices(labels.shape)
    for cid in np.argsort(np.bincount(labels.ravel())[1:])[::-1][:k] + 1:
        own = labels == cid
        normal = rng.normal(size=labels.ndim)
        side = sum((g - g[own].mean()) * v for g, v in zip(grid, normal)) > 0
        new = int(cut.max()) + 1
        cut[own & side] = new
        pairs.append((new, int(cid)))
    return cut, pairs


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_correct_membranes_show_every_wall_on_its_boundary(seed):
    labels = membrane_tissue(seed)
    scores = wall_completeness([membranes(labels, seed)], [labels])
    assert scores["cells"] == len(np.unique(labels)) - 1
    assert scores["annotated_walls"] > 2 * scores["cells"]
    assert scores["missed_walls_pct"] <= 2.0 and scores["unannotated_walls_pct"] <= 2.0
    assert scores["wall_offset_px"] <= 0.5
    # the tissue outline is each outer cell's own ring: a pixel inside the labels at most
    assert -1.0 <= scores["outline_offset_px"] <= 0.0
    ring_sd = np.sqrt((2**2 - 1) / 12)   # a wall is two 1-pixel rings: a 2-pixel box
    assert scores["width_px"] == pytest.approx(np.hypot(BLUR, ring_sd), rel=0.25)


@pytest.mark.parametrize("seed", [0, 1])
def test_correct_sketches_show_every_wall(seed):
    """Each cell of a boundary-mode sketch draws its own rim with its own brightness, so a wall's
    crest lies up to about a pixel into the brighter cell: the offset is below a pixel."""
    labels = membrane_tissue(seed)
    scores = wall_completeness([sketched_membranes(labels, seed)], [labels])
    assert scores["missed_walls_pct"] <= 2.0 and scores["unannotated_walls_pct"] <= 2.0
    assert scores["wall_offset_px"] < 1.0


def test_correct_3d_membranes_score_clean():
    labels = membrane_tissue(0, ndim=3)
    scores = wall_completeness([membranes(labels, 0, noise=0.03)], [labels])
    assert scores["annotated_walls"] > 2 * scores["cells"] > 0
    assert scores["missed_walls_pct"] <= 2.0 and scores["unannotated_walls_pct"] <= 2.0
    assert scores["wall_offset_px"] <= 0.5


@pytest.mark.parametrize("ndim, seed, k", [(2, 0, 3), (2, 1, 3), (3, 0, 2)])
def test_merged_cells_keep_their_wall_in_the_image(ndim, seed, k):
    """(a) Merging touching cells in the labels while the image keeps their wall makes each
    merged cell an unannotated split, and nothing is missed for it."""
    labels = membrane_tissue(seed, ndim)
    image = membranes(labels, seed, noise=0.05 if ndim == 2 else 0.03)
    before = wall_scores(image, labels)
    merged, ids = merge_longest(labels, k)
    after = wall_scores(image, merged)
    assert set(ids) <= set(after["split_cells"].tolist())
    assert after["unannotated_walls"] == before["unannotated_walls"] + k
    assert after["missed_walls"] <= before["missed_walls"]


@pytest.mark.parametrize("ndim, render, seed", [
    (2, membranes, 0), (2, membranes, 1), (2, sketched_membranes, 0), (2, sketched_membranes, 1), (3, membranes, 0)])
def test_cuts_the_image_does_not_show_are_missed(ndim, render, seed):
    """(b) Cutting cells in the labels with straight cuts the image does not show misses
    exactly those walls; the cut cells' other walls stay shown."""
    labels = membrane_tissue(seed, ndim)
    image = render(labels, seed)
    cut, pairs = cut_largest(labels, 4 if ndim == 2 else 2, seed)
    scores = wall_scores(image, cut)
    missed = {tuple(pair) for pair in scores["missed_segments"].tolist()}
    assert set(pairs) <= missed
    assert scores["missed_walls"] <= wall_scores(image, labels)["missed_walls"] + len(pairs) + 1
    assert scores["unannotated_walls"] == 0


def test_shifted_labels_move_the_walls_off_their_boundaries():
    """(c) Labels shifted by s pixels along x put each wall |s cos(angle)| off its boundary:
    about 0.7 s in the median over a tissue's wall directions."""
    labels = membrane_tissue(0)
    image = membranes(labels, 0)
    offsets = [wall_completeness([image], [np.roll(labels, s, axis=1)])["wall_offset_px"]
               for s in (0, 2, 3)]
    assert offsets[0] <= 0.5
    assert 0.5 * 2 <= offsets[1] < offsets[2] <= 3
    assert offsets[2] >= 0.5 * 3
    diagonal = wall_completeness([image], [np.roll(labels, (2, 2), axis=(0, 1))])
    assert diagonal["wall_offset_px"] >= 1.0


@pytest.mark.parametrize("ndim", [2, 3])
def test_images_without_walls_miss_them_all(ndim):
    """(d) A flat image and pure noise show no wall."""
    labels = membrane_tissue(0, ndim)
    rng = np.random.default_rng(3)
    for image in (np.full(labels.shape, 0.3), rng.normal(0.3, 0.05, labels.shape)):
        scores = wall_completeness([image], [labels])
        assert scores["missed_walls_pct"] >= 95.0
        assert scores["unannotated_walls"] == 0


def test_steps_between_cells_are_no_walls():
    """Cells as flat regions of their own brightness, no membranes: the Hessian responds on the
    bright side of every step, but no wall stands above both its sides."""
    labels = membrane_tissue(0)
    rng = np.random.default_rng(3)
    levels = np.r_[0.0, rng.uniform(0.2, 0.8, int(labels.max()))]
    image = ndimage.gaussian_filter(levels[labels], BLUR) + rng.normal(0, 0.02, labels.shape)
    scores = wall_completeness([image], [labels])
    assert scores["missed_walls_pct"] >= 85.0
    assert scores["unannotated_walls"] == 0


def test_scores_do_not_depend_on_the_intensity_range():
    labels = membrane_tissue(1)
    image = membranes(labels, 1)
    scores = wall_completeness([image], [labels])
    rescaled = wall_completeness([1000 * image + 250], [labels])
    for key in ("annotated_walls", "missed_walls", "unannotated_walls", "cells"):
        assert rescaled[key] == scores[key]
    assert rescaled["wall_offset_px"] == pytest.approx(scores["wall_offset_px"], abs=1e-3)
    assert rescaled["width_px"] == pytest.approx(scores["width_px"], rel=1e-3)


def test_a_given_width_scores_like_the_measured_one():
    labels = membrane_tissue(2)
    image = membranes(labels, 2)
    measured = wall_completeness([image], [labels])
    given = wall_completeness([image], [labels], width=1.5)
    assert given["width_px"] == 1.5
    for key in ("missed_walls", "unannotated_walls"):
        assert given[key] == measured[key] == 0
    assert given["wall_offset_px"] <= 0.5


def test_pooled_scores_are_json_ready():
    labels = [membrane_tissue(0), membrane_tissue(1)]
    images = [membranes(lab, s) for s, lab in enumerate(labels)]
    pooled = wall_completeness(images, labels)
    single = [wall_completeness([im], [lab]) for im, lab in zip(images, labels)]
    assert pooled["annotated_walls"] == sum(s["annotated_walls"] for s in single)
    assert pooled["cells"] == sum(s["cells"] for s in single)
    assert set(pooled) >= {"cells", "annotated_walls", "missed_walls", "missed_walls_pct",
                           "unannotated_walls", "unannotated_walls_pct", "wall_offset_px",
                           "outline_offset_px", "offset_walls", "width_px"}
    assert json.loads(json.dumps(pooled)) == pooled


def test_nothing_to_count_gives_no_percentages():
    empty = wall_completeness([np.zeros((32, 32))], [np.zeros((32, 32), int)])
    assert empty["cells"] == empty["annotated_walls"] == empty["missed_walls"] == 0
    assert empty["missed_walls_pct"] is None and empty["unannotated_walls_pct"] is None
    assert empty["wall_offset_px"] is None and empty["width_px"] is None
    one = wall_completeness([np.random.default_rng(0).normal(size=(32, 32))],
                            [np.ones((32, 32), int)])   # one cell filling the image: no wall
    assert one["cells"] == 1 and one["annotated_walls"] == 0 and one["missed_walls_pct"] is None
    assert wall_completeness([], [])["cells"] == 0


def test_crack_distance_is_measured_from_the_crack():
    labels = np.zeros((5, 8), int)
    labels[:, 2:6], labels[:, 6:] = 1, 2
    dist, other = crack_distance(labels)
    assert dist[2].tolist() == [1.5, 0.5, 0.5, 1.5, 1.5, 0.5, 0.5, 0.5]
    # a cell pixel nearest to the image border has no label across (-1)
    assert other[2].tolist() == [1, 1, 0, 0, 2, 2, 1, -1]
