"""Calibration: measurements recover known parameters of rendered simulations; the derived
simulation and sketch parameters follow the measurements and never override the user."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from helpers import simulated, write_split_index
from workflow_lib.calibrate.texture import _fine_gain_of_white_noise as _fine_share
from workflow_lib.calibrate import MeasureSettings, find_nuclei, measure_nuclei, simulation_params, sketch_params
from workflow_lib.errors import ParamError
from workflow_lib.simulate import get_kind

BLUR = 1.5
NOISE = 0.02


def rendered(shape=(256, 256), params=None, seeds=range(3), blur=BLUR, z_blur=None):
    """(images in [0, 1], labels): simulated nuclei of random brightness, blurred, noisy."""
    params = params or {"cells": [40, 40], "radius": [8, 10], "elongation": [1.5, 1.5],
                        "min_distance": 22}
    images, labels = [], []
    for seed in seeds:
        lab = simulated("nuclei", shape, params, seed=seed).labels[0]
        rng = np.random.default_rng(seed)
        bright = rng.uniform(0.3, 1.0, int(lab.max()) + 1)
        bright[0] = 0
        sigma = blur if z_blur is None else (z_blur, blur, blur)
        img = ndimage.gaussian_filter(0.1 + 0.6 * bright[lab], sigma)
        images.append(img + rng.normal(0, NOISE, img.shape))
        labels.append(lab)
    return images, labels


@pytest.fixture(scope="module")
def measured_2d():
    images, labels = rendered()
    return measure_nuclei(images, [None] * len(images)), labels


def test_unsupervised_measurement_recovers_the_simulation(measured_2d):
    m, labels = measured_2d
    props = {k: v["summary"]["median"] for k, v in m["properties"].items()}
    assert props["radius"] == pytest.approx(9.0, rel=0.1)
    assert props["elongation"] == pytest.approx(1.5, abs=0.15)
    true_density = np.mean([lab.max() for lab in labels]) / 256**2 * 1e4
    assert m["density"]["median"] == pytest.approx(true_density, rel=0.15)
    assert m["background"]["level"] == pytest.approx(0.1, abs=0.01)
    assert m["background"]["noise"] == pytest.approx(NOISE, rel=0.2)
    assert m["edge_sigma_px"] == pytest.approx(BLUR, abs=0.5)
    bright = m["properties"]["brightness"]["summary"]
    assert 0.2 < bright["p10"] < bright["p90"] <= 1.2   # a spread of brightness, as rendered
    assert m["segmentation"] == ["unsupervised"] and len(m["properties"]["radius"]["samples"]) > 50
    # white noise of SD NOISE keeps this share of itself in the fine band (texture module doc)
    fine = NOISE * _fine_share(2)
    assert m["texture"]["fine"]["background"] == pytest.approx(fine, rel=0.15)
    assert m["texture"]["fine"]["objects"] == pytest.approx(fine, rel=0.25)


def test_masks_replace_the_segmentation():
    images, labels = rendered(seeds=[0])
    m = measure_nuclei(images, labels)
    assert m["segmentation"] == ["mask"]
    assert m["density"]["per_image"][0] == pytest.approx(labels[0].max() / 256**2 * 1e4)
    assert m["properties"]["radius"]["summary"]["n"] <= labels[0].max()  # whole nuclei only


def test_unsupervised_measurement_is_reported_beside_the_masks():
    """With masks, calibration.json says how far the unsupervised measurement is from them on
    the same images: here (clean rendered nuclei) within the targets; merged masks (two nuclei
    as one label) are not, and the numbers say by how much."""
    from workflow_lib.calibrate.check import unsupervised_vs_masks

    images, labels = rendered(seeds=[0, 1])
    check = unsupervised_vs_masks(measure_nuclei, images, [labels[0], None], MeasureSettings(),
                                  ["a", "b"])
    assert check["images"] == ["a"] and check["objects"]["masks"] > 20
    assert check["holds"] == {"density": True, "radius": True}, check
    assert check["density"]["ratio"] == pytest.approx(1, abs=0.1)
    assert set(check["ks"]) >= {"radius", "elongation", "brightness"}
    assert unsupervised_vs_masks(measure_nuclei, images, [None, None], MeasureSettings(),
                                 ["a", "b"]) is None
    halved = (labels[0] + 1) // 2   # labels 1 and 2 become one mask "nucleus", 3 and 4 ...
    merged = unsupervised_vs_masks(measure_nuclei, images[:1], [halved], MeasureSettings(), ["a"])
    assert merged["density"]["ratio"] > 1.5 and not merged["holds"]["density"]


def test_3d_z_anisotropy():
    params = {"cells": [12, 12], "radius": [6, 7], "elongation": [1, 1], "z_scale": 2.0,
              "min_distance": 14}
    images, _ = rendered((24, 96, 96), params, seeds=[0, 1], blur=1.0, z_blur=0.5)
    m = measure_nuclei(images, [None, None], MeasureSettings(z_scale=2.0))
    assert m["properties"]["z_extent_ratio"]["summary"]["median"] == pytest.approx(2.0, rel=0.25)
    assert m["properties"]["radius"]["summary"]["median"] == pytest.approx(6.5, rel=0.2)


def test_3d_flat_nuclei_are_flat_not_elongated():
    """Round nuclei flattened 1.6x in Z, measured without being told: the flatness is
    z_extent_ratio (the simulation's z_scale), not elongation, and the radius is the one the
    simulation draws before flattening (measuring both in voxels counted the flatness twice:
    elongation 1.65 and a 16 % smaller radius here; the same nuclei unflattened measure 1.31
    and 4 % small: irregular shapes, few objects)."""
    params = {"cells": [12, 12], "radius": [8, 8], "elongation": [1, 1], "z_scale": 1.6,
              "min_distance": 18}
    images, _ = rendered((32, 96, 96), params, seeds=[0, 1], blur=1.0, z_blur=0.5)
    m = measure_nuclei(images, [None, None], MeasureSettings())
    props = {k: v["summary"]["median"] for k, v in m["properties"].items()}
    assert props["z_extent_ratio"] == pytest.approx(1.6, rel=0.15)
    assert props["elongation"] < 1.4
    assert props["radius"] == pytest.approx(8, rel=0.1)


def test_find_nuclei_splits_touching_nuclei():
    yy, xx = np.mgrid[:64, :96]
    lab = ((yy - 32) ** 2 + (xx - 36) ** 2 <= 100) * 1 + ((yy - 32) ** 2 + (xx - 55) ** 2 <= 100) * 2
    lab = np.where(lab > 2, 2, lab)
    img = ndimage.gaussian_filter((lab > 0) * 0.8 + 0.1, 1.0)
    assert find_nuclei(img).max() == 2



def _glowing_nuclei(centres, shape=(96, 160), radius=9, seed=0):
    """Textured nuclei with out-of-focus glow around them, quantised to 8 bits with the
    background clipped to 0 (a third of the pixels), as many widefield cameras record them;
    and their true labels."""
    from helpers.data import discs

    rng = np.random.default_rng(seed)
    truth = discs(centres, radius, shape)
    body = (truth > 0) * (0.25 + 0.9 * ndimage.gaussian_filter(rng.random(shape), 1.5))
    glow = 0.48 * ndimage.gaussian_filter((truth > 0) * 1.0, 6)
    image = ndimage.gaussian_filter(body, 1.2) + glow + rng.normal(0, 0.004, shape)
    return np.round(np.clip(image, 0, 1) * 255) / 255, truth


def _one_nucleus_each(found: np.ndarray, truth: np.ndarray) -> bool:
    """Every found object lies mostly on one true nucleus, and every true nucleus holds one."""
    ids = np.arange(1, found.max() + 1)
    owner = [np.bincount(truth[found == i], minlength=truth.max() + 1)[1:].argmax() + 1 for i in ids]
    return sorted(owner) == list(range(1, truth.max() + 1))


def test_find_nuclei_on_a_clipped_background_keeps_glowing_nuclei_apart():
    """A background clipped to one grey level has no measurable noise: a threshold a hair
    above it took the glow as foreground and merged six nuclei into two (one grey level is
    now the smallest noise)."""
    image, truth = _glowing_nuclei([(30, 30), (30, 60), (30, 90), (66, 45), (66, 80), (66, 120)])
    assert np.mean(image == 0) > 0.3
    found = find_nuclei(image)
    assert found.max() == 6 and _one_nucleus_each(found, truth)


def test_find_nuclei_splits_nuclei_joined_by_glow_and_does_not_count_the_glow():
    """Two touching nuclei and one apart: the glow around them once came back as rim
    objects from the search for dim nuclei (four objects here), and on real nuclei split
    textured ones in two."""
    image, truth = _glowing_nuclei([(48, 40), (48, 58), (48, 110)])
    found = find_nuclei(image)
    assert found.max() == 3 and _one_nucleus_each(found, truth)

def test_simulation_params_follow_the_measurement_and_the_user_wins(measured_2d):
    m, _ = measured_2d
    nuclei = get_kind("nuclei")
    params = simulation_params(m, nuclei, (512, 512), {})
    expected = m["density"]["median"] * 512 * 512 / 1e4
    assert params["cells"][0] <= expected * 1.1 and params["cells"][1] >= expected * 0.9
    assert params["radius_samples"] == m["properties"]["radius"]["samples"]
    assert "z_scale" not in params
    props = {k: v["summary"]["median"] for k, v in m["properties"].items()}
    assert params["min_distance"] == pytest.approx(2 * props["radius"] / np.sqrt(props["elongation"]), abs=1e-3)
    assert "min_distance" not in simulation_params(m, get_kind("overlapping"), (512, 512), {})
    mine = simulation_params(m, nuclei, (512, 512), {"radius": [3, 4], "cells": 7})
    assert mine["radius"] == [3, 4] and mine["cells"] == 7 and "radius_samples" not in mine
    # timeseries takes the shape keys but has its own frames; masks only the sketch
    assert "frames" not in simulation_params(m, get_kind("timeseries"), (64, 64), {})
    assert simulation_params(m, get_kind("masks"), (64, 64), {"masks": "x"}) == {"masks": "x"}
    with pytest.raises(ParamError, match="shows membranes, but the calibration measures nuclei"):
        simulation_params(m, get_kind("membranes"), (64, 64), {})


def test_multichannel_nuclei_follow_a_nuclei_calibration(measured_2d):
    m, _ = measured_2d
    kind = get_kind("multichannel")
    shape = (256, 256)
    params = simulation_params(m, kind, shape, {"tissue": "ellipsoid", "extent": [0.8, 0.8]})
    # the density is scaled to the tissue (an ellipse of 0.8 x 0.8 of the half-image)
    tissue = np.pi * 0.8 * 0.8 * 127.5 ** 2
    expected = m["density"]["median"] * tissue / 1e4
    assert params["cells"][0] <= expected * 1.15 and params["cells"][1] >= expected * 0.85
    assert params["radius_samples"] == m["properties"]["radius"]["samples"]
    assert "min_distance" not in params   # that key spaces the cells' seeds here
    labels = [simulated("multichannel", shape, params, seed=s).labels for s in range(3)]
    nuclei = [lab[1] for lab in labels]
    again = measure_nuclei([0.1 + 0.6 * (n > 0) for n in nuclei], nuclei)
    real = m["properties"]["radius"]["summary"]["median"]
    assert again["properties"]["radius"]["summary"]["median"] == pytest.approx(real, rel=0.15)
    assert all(np.all(lab[0][lab[1] > 0] == lab[1][lab[1] > 0]) for lab in labels)  # inside its cell
    # a user nucleus size (relative to the cell) replaces the measured radii
    own = simulation_params(m, kind, shape, {"nucleus_size": [0.3, 0.4]})
    assert "radius_samples" not in own and own["nucleus_size"] == [0.3, 0.4]
    layered = simulation_params(m, kind, shape, {"tissue": "dome", "layers": 3})
    assert "cells" not in layered and "layer_spacing" not in layered


def test_calibrated_simulation_reproduces_the_measured_sizes(measured_2d):
    m, _ = measured_2d
    params = simulation_params(m, get_kind("nuclei"), (256, 256), {})
    labels = [simulated("nuclei", (256, 256), params, seed=s).labels[0] for s in range(3)]
    images = [0.1 + 0.6 * (lab > 0) for lab in labels]
    again = measure_nuclei(images, labels)
    real = m["properties"]["radius"]["summary"]["median"]
    assert again["properties"]["radius"]["summary"]["median"] == pytest.approx(real, rel=0.15)


def test_sketch_params_keep_explicit_keys(measured_2d):
    m, _ = measured_2d
    raw = {"mode": "auto", "blur": 1.0, "brightness": [0.5, 1.0], "falloff": None, "gamma": None}
    out = sketch_params(m, raw, explicit=[])
    assert out["mode"] == "centre" and out["blur"] == pytest.approx(m["edge_sigma_px"], abs=1e-3)
    assert min(out["brightness_samples"]) >= 0.05 and max(out["brightness_samples"]) <= 1
    kept = sketch_params(m, raw, explicit=["blur", "brightness", "mode"])
    assert kept["blur"] == 1.0 and "brightness_samples" not in kept and kept["mode"] == "auto"


def test_structure_distances_compare_properties_density_and_texture(measured_2d):
    from workflow_lib.calibrate.figures import structure_distances

    m, _ = measured_2d
    same = structure_distances(m, m)
    assert same["radius"]["ks"] == 0.0 and same["density_ratio"] == 1.0
    assert same["texture"]["fine_background"]["ratio"] == 1.0
    images, _ = rendered(seeds=[5, 6])
    noisier = measure_nuclei([img + np.random.default_rng(0).normal(0, 2 * NOISE, img.shape)
                              for img in images], [None, None])
    d = structure_distances(m, noisier)
    assert d["texture"]["fine_background"]["ratio"] > 1.8   # sqrt(1 + 4) x the rendered noise
    assert 0 < d["radius"]["ks"] < 0.5


def _calibrate_job(folder, images):
    """Rule calibrate_dataset's job on ``images`` (2D arrays in [0, 1]) as the train split."""
    from types import SimpleNamespace

    from workflow_lib.dataset import IMAGE_KEY
    from workflow_lib.io import write_h5
    from workflow_lib.workflow.runner import Files, Job

    (folder / "h5").mkdir(parents=True)
    h5 = [folder / f"h5/im{k}.h5" for k in range(len(images))]
    for path, image in zip(h5, images):
        write_h5(path, {IMAGE_KEY: np.asarray(image, np.float32)[None]})
    index = write_split_index(folder / "index", {"train": h5})
    settings = {"stain": "nuclei", "channel": 0, "sigma": 1.0, "h": 1.0, "min_size": 20,
                "z_scale": 1.0, "masks": None}
    out = folder / "calibration"
    return Job(Files(train=index["train"], masks=[]),
               Files(json=out / "calibration.json", figure=out / "calibration.png"),
               SimpleNamespace(calibration=settings), SimpleNamespace(dataset="d"))


def _blurred(labels):
    image = ndimage.gaussian_filter((labels > 0) * 0.7 + 0.1, 1.0)
    return image + np.random.default_rng(0).normal(0, NOISE, image.shape)


def test_calibration_without_a_whole_nucleus_names_the_images_and_the_remedy(tmp_path):
    """Nuclei cut by the image border cannot be measured: the calibration job fails with one
    line naming the key and the images, and writes nothing a simulation could use."""
    from helpers.data import discs
    from workflow_lib.errors import ConfigError
    from workflow_lib.workflow.stages.simulation import calibrate_dataset

    cut = discs([(0, 20), (32, 63), (63, 40), (30, 0)], 8)   # every nucleus on the border
    job = _calibrate_job(tmp_path, [_blurred(cut)])
    with pytest.raises(ConfigError) as err:
        calibrate_dataset(job)
    assert err.value.key == "datasets.d.calibration"
    assert "im0" in err.value.problem and "touches the image border" in err.value.problem
    assert not (tmp_path / "calibration/calibration.json").exists()


def test_calibration_on_few_whole_nuclei_warns(tmp_path, caplog):
    from helpers.data import discs
    from workflow_lib.workflow.stages.simulation import calibrate_dataset

    few = discs([(20, 20), (44, 44), (20, 46)], 7)
    job = _calibrate_job(tmp_path, [_blurred(few)])
    with caplog.at_level("WARNING", logger="cellsynth"):
        calibrate_dataset(job)
    assert "rests on 3 whole nucleus(s)" in caplog.text
    assert (tmp_path / "calibration/calibration.json").exists()


def test_find_nuclei_finds_a_dim_ball_beside_a_bright_one_in_3d():
    """The distance watershed merges a small dim ball into its bright neighbour, whose half
    maximum then cuts it away; the second search keeps bodies half a typical radius deep. In
    3D that radius is a ball's (from the voxel count), not a disc's, or the dim ball is lost."""
    from helpers.data import discs

    bright = discs([(12, 20, 20)], 7, (24, 40, 56))
    dim = discs([(12, 20, 31)], 5, (24, 40, 56))
    image = np.where(dim > 0, 0.25, np.where(bright > 0, 0.9, 0.05))
    image = ndimage.gaussian_filter(image, 1.0) + np.random.default_rng(0).normal(0, 0.02, image.shape)
    assert find_nuclei(image).max() == 2


def test_nuclei_with_bright_chromatin_foci_are_found_whole():
    """Large nuclei whose bright foci hold their 95th percentile: each nucleus is found whole
    (the foci do not set its half maximum), at its rendered size and roundness."""
    params = {"cells": [6, 6], "radius": [24, 28], "elongation": [1.2, 1.2], "min_distance": 60}
    images, labels = [], []
    for seed in range(3):
        lab = simulated("nuclei", (256, 256), params, seed=seed).labels[0]
        rng = np.random.default_rng(seed)
        spots = np.zeros(lab.shape)
        yy, xx = np.nonzero(lab)
        pick = rng.choice(len(yy), 25 * int(lab.max()), replace=False)
        spots[yy[pick], xx[pick]] = 1.0   # ~25 foci per nucleus, a tenth of its area
        foci = ndimage.grey_dilation(spots, size=3) * (lab > 0)
        img = ndimage.gaussian_filter(0.1 + 0.15 * (lab > 0) + 0.5 * foci, BLUR)
        images.append(img + rng.normal(0, NOISE, img.shape))
        labels.append(lab)
    m = measure_nuclei(images, [None] * len(images))
    radius = m["properties"]["radius"]["summary"]
    true = np.median([np.sqrt(np.bincount(lab.ravel())[1:] / np.pi) for lab in labels])
    assert radius["median"] == pytest.approx(true, rel=0.1)
    assert radius["p10"] > 0.7 * true                 # no fragments among the nuclei
    assert m["properties"]["elongation"]["summary"]["median"] < 1.4


def test_typical_radius_is_that_of_a_typical_nucleus_pixel():
    """Twenty fragments of 25 pixels beside three nuclei of radius 20: the typical radius (the
    second search's depth rule and the foci opening use it) is the nuclei's, not a fragment's."""
    from workflow_lib.calibrate.measure import _typical_radius

    labels = np.zeros((200, 200), np.int32)
    yy, xx = np.mgrid[:200, :200]
    for k, (cy, cx) in enumerate([(40, 40), (40, 140), (140, 60)], start=1):
        labels[(yy - cy) ** 2 + (xx - cx) ** 2 <= 20**2] = k
    for k in range(20):
        labels[180:185, 5 + 9 * k : 10 + 9 * k] = 4 + k
    assert _typical_radius(labels) == pytest.approx(20, rel=0.05)
    assert _typical_radius(np.zeros((5, 5), np.int32)) == 0.0


def test_a_mask_over_nothing_leaves_the_radial_profile_alone():
    """A mask drawn where the image shows no nucleus (contrast ~0) must not divide its noise
    by that contrast into the profile (it read -24 in the centre bin of a dense 3D volume)."""
    from helpers import discs

    rng = np.random.default_rng(0)
    nuclei = discs([(16, 16), (16, 48), (48, 16)], 9)
    image = 0.1 + 0.6 * (nuclei > 0) + rng.normal(0, 0.02, nuclei.shape)
    masks = np.where(discs([(48, 48)], 9) > 0, 4, nuclei)   # a fourth "nucleus" on background
    profile = measure_nuclei([image], [masks])["radial_profile"]
    alone = measure_nuclei([image], [nuclei])["radial_profile"]
    assert np.allclose(profile, alone, atol=1e-3) and 0.5 < min(profile) <= max(profile) < 1.2
