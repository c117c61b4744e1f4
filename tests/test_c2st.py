"""Realism classifier (C2ST) and memorisation: workflow_lib/evaluate/c2st.py."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from workflow_lib.evaluate.c2st import c2st, memorisation, normalise_patches, wilson_interval
from workflow_lib.evaluate.realism import patches
from workflow_lib.evaluate.settings import C2STSettings

pytestmark = pytest.mark.usefixtures("one_torch_thread")

#: The default classifier.
DEFAULT = C2STSettings()


def texture(seed: int, n: int = 4, size: int = 128) -> list[np.ndarray]:
    """Micrograph-like planes: blurred blobs of random brightness on a noisy background."""
    rng = np.random.default_rng(seed)
    planes = []
    for _ in range(n):
        blobs = np.zeros((size, size))
        yy, xx = rng.integers(0, size, (2, 12))
        blobs[yy, xx] = rng.uniform(0.5, 1.0, 12)
        image = 0.1 + ndi.gaussian_filter(ndi.grey_dilation(blobs, size=9), 2.0)
        planes.append((image + rng.normal(0, 0.04, image.shape)).astype(np.float32))
    return planes


def test_two_draws_of_one_texture_cannot_be_told_apart():
    result, _ = c2st(texture(0), texture(1), DEFAULT)
    assert result["n_real"] == result["n_fake"] == 64 and result["patch"] == 32
    assert 0.35 <= result["accuracy"] <= 0.65
    assert result["ci95"][0] <= 0.5 <= result["ci95"][1]


def test_a_blurred_copy_is_told_apart():
    real = texture(0)
    blurred = [ndi.gaussian_filter(p, 1.0) for p in texture(1)]
    result, patches = c2st(real, blurred, DEFAULT)
    assert result["accuracy"] >= 0.9 and result["ci95"][0] > 0.8
    # the held-out probabilities say which patches gave themselves away
    assert patches["p_fake"].mean() > 0.8 > 0.2 > patches["p_real"].mean()


def test_brightness_alone_cannot_decide():
    """Each patch is normalised to its own percentiles: a brighter copy is no tell."""
    real = texture(0)
    brighter = [0.2 + 1.5 * p for p in texture(1)]
    assert 0.35 <= c2st(real, brighter, DEFAULT)[0]["accuracy"] <= 0.65


def test_same_seed_same_number_other_seed_other_draw():
    real, fake = texture(0), [ndi.gaussian_filter(p, 0.5) for p in texture(1)]
    s = C2STSettings(steps=30)
    first, again = c2st(real, fake, s)[0], c2st(real, fake, s)[0]
    assert first == again
    other = c2st(real, fake, C2STSettings(steps=30, seed=1))[0]
    assert other["n_real"] == first["n_real"]


def test_small_images_get_smaller_patches_and_too_few_say_why():
    result, _ = c2st(texture(0, n=4, size=64), texture(1, n=4, size=64), C2STSettings(steps=5))
    assert result["patch"] == 16 and result["n_real"] == 64   # 32 px would give 16 patches
    result, patches = c2st(texture(0, n=1, size=20), texture(1, n=1, size=20))
    assert result["accuracy"] is None and "at least 5" in result["reason"] and patches == {}


def test_patches_are_normalised_each_to_its_own_percentiles():
    plane = np.arange(64 * 96, dtype=np.float32).reshape(64, 96)
    tiles = patches([plane, plane[:20]], 32)   # the tiles KID uses too
    assert tiles.shape == (6, 32, 32) and np.array_equal(tiles[4], plane[32:, 32:64])
    norm = normalise_patches(tiles)
    assert np.allclose(np.percentile(norm[0], [1, 99.8]), [0, 1], atol=1e-5)


def test_wilson_interval_by_hand():
    low, high = wilson_interval(50, 100)
    assert low == pytest.approx(0.4038, abs=1e-3) and high == pytest.approx(0.5962, abs=1e-3)
    assert wilson_interval(100, 100)[1] == 1.0 and wilson_interval(0, 0) == [0.0, 1.0]


def test_memorisation_sees_copies():
    train, held_out, new = texture(0), texture(1), texture(2)
    fresh = memorisation(train, held_out, new)
    assert 0.8 <= fresh["ratio"] <= 1.25
    # copies of training crops, shifted off the window grid by a few pixels
    copies = [np.roll(p, (2, 3), axis=(0, 1))[8:120, 8:120] for p in train]
    copied = memorisation(train, held_out, copies, stride=1)
    assert copied["ratio"] < 0.1
    assert memorisation(train, held_out, [])["ratio"] is None


def test_layout_split_tells_empty_space_from_texture():
    """Candidates with empty space the real images never have: the patches beyond the real
    reach are counted, and the accuracy within reach judges only the others."""
    from workflow_lib.evaluate.c2st import layout_split

    real = np.array([0.0, 2.0, 5.0, 10.0])
    fake = np.array([0.0, 3.0, 40.0, 60.0])
    p_real = np.array([0.2, 0.4, 0.6, 0.3])         # 3 of 4 called real
    p_fake = np.array([0.6, 0.4, 0.9, 0.95])        # within reach: 1 of 2 called a candidate
    out = layout_split(real, fake, p_real, p_fake)
    assert out["real_reach_px"] == 10.0 and out["beyond_pct"] == 50.0
    assert out["accuracy_within_reach"] == pytest.approx((0.75 + 0.5) / 2)
    assert layout_split(real, fake + 100, p_real, p_fake)["accuracy_within_reach"] is None


def test_c2st_with_masks_reports_the_layout():
    """Real planes full of objects, candidates with an object-free half: the classifier's
    verdicts come back split by distance from the objects."""
    real, fake = texture(0, n=4, size=64), texture(1, n=4, size=64)
    real_masks = [np.ones((64, 64), np.int32) for _ in real]
    fake_masks = [np.pad(np.ones((64, 32), np.int32), ((0, 0), (0, 32))) for _ in fake]
    result, _ = c2st(real, fake, C2STSettings(steps=5), masks=(real_masks, fake_masks))
    layout = result["layout"]
    assert layout["real_reach_px"] == 0.0
    assert 0 < layout["beyond_pct"] < 100


def test_a_blurred_copy_is_told_apart_on_a_background_clipped_to_one_grey_level():
    """8-bit planes whose background is clipped to 0: patches of background are one grey level
    with a few brighter pixels, which a plain percentile stretch blew up to thousands (the
    classifier then learnt nothing and every test scored 0.5)."""
    def clipped(planes):
        return [np.round(np.clip(p - 0.2, 0, 1) * 255) / 255 for p in planes]

    real = clipped(texture(0))
    blurred = clipped([ndi.gaussian_filter(p, 1.0) for p in texture(1)])
    assert np.mean(np.concatenate(real) == 0) > 0.5
    assert normalise_patches(patches(real, 32)).max() <= 2
    assert c2st(real, blurred, DEFAULT)[0]["accuracy"] >= 0.85


def test_memorisation_searches_every_training_window():
    """Exact copies among 75 000 training windows: every window is searched (an earlier
    version searched a random 20 000, and most copies went unseen)."""
    train, held_out = texture(0, n=8), texture(1)
    copies = [p[5:101, 7:103] for p in train]
    copied = memorisation(train, held_out, copies, stride=1, block=4096)
    assert copied["n_train"] == 8 * 97 * 97
    assert copied["ratio"] < 0.01
