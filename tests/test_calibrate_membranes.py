"""Calibration of membrane stains: measurements recover known parameters of rendered
``membranes`` simulations (sketched with bright boundaries, or drawn as blurred thin lines)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from helpers import simulated
from workflow_lib.calibrate.measure import MeasureSettings, _shape_stats
from workflow_lib.calibrate.membranes import find_cells, measure_membranes
from workflow_lib.simulate import get_kind
from workflow_lib.sketch import make_sketch
from workflow_lib.sketch.render import SketchParams
from workflow_lib.sketch.targets import boundary

NOISE = 0.02
TISSUE = {"cells": [40, 40], "tissue": "ellipsoid", "size_jitter": 0.2}


def rendered(shape=(256, 256), params=None, seeds=range(3)):
    """(images in [0, 1] plus noise of SD NOISE, labels): membranes simulations sketched in
    mode ``boundary`` (background 0)."""
    images, labels = [], []
    for seed in seeds:
        lab = simulated("membranes", shape, params or TISSUE, seed=seed).labels
        rng = np.random.default_rng(seed)
        sketch = make_sketch(lab, get_kind("membranes"), SketchParams(mode="boundary"), rng)[0]
        images.append((sketch + 1) / 2 + rng.normal(0, NOISE, sketch.shape))
        labels.append(lab[0])
    return images, labels


def true_density(labels) -> float:
    """Median cells per 1e4 tissue pixels (2D) / 1e6 tissue voxels (3D)."""
    per = 1e4 if labels[0].ndim == 2 else 1e6
    return float(np.median([lab.max() / np.count_nonzero(lab) * per for lab in labels]))


def true_radius(labels) -> float:
    return float(np.median(np.concatenate([_shape_stats(lab, np.ones(lab.ndim))["radius"]
                                           for lab in labels])))


@pytest.fixture(scope="module")
def measured_2d():
    images, labels = rendered()
    return measure_membranes(images, [None] * len(images)), labels


def test_unsupervised_measurement_recovers_the_simulation(measured_2d):
    m, labels = measured_2d
    assert m["stain"] == "membranes" and m["segmentation"] == ["unsupervised"]
    assert m["density"]["unit"] == "cells per 1e4 tissue pixels"
    assert m["density"]["median"] == pytest.approx(true_density(labels), rel=0.15)
    assert m["properties"]["radius"]["summary"]["median"] == pytest.approx(true_radius(labels), rel=0.1)
    true_tissue = np.mean([np.mean(lab > 0) for lab in labels])
    assert m["foreground"]["median"] == pytest.approx(true_tissue, rel=0.05)
    assert m["background"]["level"] == pytest.approx(0.0, abs=0.01)
    assert m["background"]["noise"] == pytest.approx(NOISE, rel=0.2)
    bright = m["properties"]["brightness"]["samples"]
    assert 0 < min(bright) and max(bright) <= 1.2
    assert m["brightness_scale"] > 0.2   # boundaries are well above the background
    profile = m["radial_profile"]
    assert len(profile) == 10 and profile[0] > profile[9]   # bright rim, dim centre
    assert m["edge_sigma_px"] == m["membrane_width_px"] > 0
    assert 0 < m["objects"] <= sum(lab.max() for lab in labels)
    assert set(m["properties"]) == {"radius", "elongation", "solidity", "brightness", "nn_distance"}


def test_membrane_width_of_blurred_thin_membranes():
    """Membranes drawn as the cells' 1-pixel boundary rings (2 pixels between two cells), blurred
    by BLUR: their sigma is the blur widened by the line's own width."""
    blur = 1.5
    lab = simulated("membranes", (256, 256), TISSUE, seed=4).labels[0]
    rng = np.random.default_rng(4)
    image = 0.05 + 0.1 * (lab > 0) + 0.6 * ndimage.gaussian_filter(boundary(lab).astype(float), blur)
    m = measure_membranes([image + rng.normal(0, NOISE, image.shape)], [None])
    line_sd = np.sqrt((2**2 - 1) / 12)   # a 2-pixel box
    assert m["membrane_width_px"] == pytest.approx(np.hypot(blur, line_sd), rel=0.2)
    assert m["density"]["per_image"][0] == pytest.approx(true_density([lab]), rel=0.15)
    assert m["background"]["level"] == pytest.approx(0.05, abs=0.01)


def test_masks_replace_the_segmentation():
    images, labels = rendered(seeds=[0])
    m = measure_membranes(images, labels)
    assert m["segmentation"] == ["mask"]
    assert m["density"]["per_image"][0] == pytest.approx(true_density(labels))
    assert m["properties"]["radius"]["summary"]["median"] == pytest.approx(true_radius(labels), rel=0.05)
    assert m["properties"]["radius"]["summary"]["n"] <= labels[0].max()  # whole cells only


def test_3d_volume():
    params = {"cells": [12, 12], "tissue": "ellipsoid", "size_jitter": 0.2}
    images, labels = rendered((32, 64, 64), params, seeds=[0])
    m = measure_membranes(images, [None], MeasureSettings(z_scale=1.0))
    assert m["ndim"] == 3 and m["density"]["unit"] == "cells per 1e6 tissue voxels"
    assert m["density"]["median"] == pytest.approx(true_density(labels), rel=0.25)
    assert "z_extent_ratio" in m["properties"] and "solidity" not in m["properties"]
    assert m["background"]["level"] == pytest.approx(0.0, abs=0.01)
    # cells under 10 pixels deep have no pixel in the rim bin: it takes its neighbour's value
    assert m["radial_profile"][0] > m["radial_profile"][9] and min(m["radial_profile"]) > 0


def test_no_tissue():
    flat = np.full((64, 64), 0.1)
    assert find_cells(flat).max() == 0
    m = measure_membranes([flat], [None])
    assert m["objects"] == 0 and m["density"]["per_image"] == [0.0]
    assert m["radial_profile"] is None and m["membrane_width_px"] is None


def test_membrane_calibration_parameterises_tissues(measured_2d):
    """cells from the density per tissue area, scaled to the simulation's own tissue; the
    sketch's boundary profile, blur and intensities from the measurement; kinds showing no
    membranes refuse it."""
    from workflow_lib.calibrate import simulation_params, sketch_params
    from workflow_lib.errors import ParamError

    m, labels = measured_2d
    shape, user = (256, 256), {"tissue": "ellipsoid", "size_jitter": 0.2}
    params = simulation_params(m, get_kind("membranes"), shape, user)
    again = [simulated("membranes", shape, params, seed=s).labels[0] for s in range(3)]
    assert true_density(again) == pytest.approx(m["density"]["median"], rel=0.2)
    assert true_radius(again) == pytest.approx(true_radius(labels), rel=0.15)
    cells = simulation_params(m, get_kind("multichannel"), shape, user)
    assert cells["cells"] == params["cells"] and "radius_samples" not in cells
    dome = simulation_params(m, get_kind("membranes"), shape, {"tissue": "dome", "layers": 4})
    assert "cells" not in dome
    assert dome["layer_spacing"] == pytest.approx(2 * m["properties"]["radius"]["summary"]["median"], abs=1e-3)
    with pytest.raises(ParamError, match="shows nuclei, but the calibration measures membranes"):
        simulation_params(m, get_kind("nuclei"), shape, {})
    sketch = sketch_params(m, {"mode": "auto", "blur": 1.0}, explicit=[])
    assert sketch["mode"] == "boundary" and sketch["blur"] == pytest.approx(m["edge_sigma_px"], abs=1e-3)
    assert sketch["background"] == pytest.approx(2 * m["background"]["level"] - 1, abs=1e-3)
    # the rendered membranes' sketch (falloff 0.85, gamma 0.4) is bright at its rim: a strong falloff
    assert sketch["falloff"] > 0.4


@pytest.mark.e2e
def test_membrane_stain_end_to_end(tmp_path):
    """A membrane-stain data set: calibrate_dataset measures cells, a calibrated `membranes`
    simulation and the cell channel of a calibrated `multichannel` follow it."""
    import json

    import tifffile

    from helpers import run_snakemake
    from workflow_lib.io import read_tiff

    images, labels = rendered((128, 128), {"cells": [14, 14], "tissue": "ellipsoid", "size_jitter": 0.2},
                              seeds=range(3))
    (tmp_path / "raw").mkdir()
    for k, image in enumerate(images):
        tifffile.imwrite(tmp_path / f"raw/m{k}.tif", (np.clip(image, 0, 1) * 60000).astype(np.uint16))
    sims = {"tissue": {"kind": "membranes", "params": {"tissue": "ellipsoid"}},
            "multi": {"kind": "multichannel", "params": {"tissue": "ellipsoid"}}}
    config = {"datasets": {"cells": {
        "images": "raw/*.tif", "ndim": 2, "split": {"val": 0.0, "test": 0.0, "seed": 0},
        "model": {"patch_size": [32, 32]}, "synthesis": {"tile": [32, 32]},
        "calibration": {"stain": "membranes"},
        "simulations": {name: {**sim, "count": 1, "shape": [128, 128], "calibrate": True}
                        for name, sim in sims.items()}}}}
    run_snakemake(tmp_path, config, "sketch")
    out = tmp_path / "results/cells"
    calibration = json.loads((out / "calibration/calibration.json").read_text())
    assert calibration["stain"] == "membranes" and calibration["objects"] > 10
    expected = calibration["density"]["median"] * np.pi * 0.81 * 63.5**2 / 1e4   # the ellipse
    for name in sims:
        meta = json.loads((out / name / "labels/0.json").read_text())
        lo, hi = meta["params"]["cells"]
        assert lo <= 1.2 * expected and hi >= 0.8 * expected
    sketch, _ = read_tiff(out / "tissue/sketches/0.tif", axes="CYX")
    assert sketch[0, 0, 0] == pytest.approx(2 * calibration["background"]["level"] - 1, abs=0.02)
    multi, _ = read_tiff(out / "multi/sketches/0.tif", axes="CYX")
    assert multi[0, 0, 0] == pytest.approx(sketch[0, 0, 0], abs=0.02)   # cells: calibrated
    assert multi[1, 0, 0] == pytest.approx(-1.0)                          # nuclei: the defaults


@pytest.fixture(scope="module")
def two_stains():
    """Both stains of rendered tissue measured, each on its channel, as calibrate_dataset
    writes them; and the true labels (2, Y, X) per image."""
    from helpers import two_stain_tissue
    from workflow_lib.calibrate import measure_nuclei, with_other_stains

    pairs = [two_stain_tissue(seed) for seed in range(3)]
    cells = measure_membranes([image[0] for image, _ in pairs], [None] * 3)
    nuclei = measure_nuclei([image[1] for image, _ in pairs], [None] * 3)
    return with_other_stains({"membranes": cells, "nuclei": nuclei}), [lab for _, lab in pairs]


def test_a_calibration_of_both_stains_reads_back_per_stain(two_stains):
    from workflow_lib.calibrate import OTHER_STAINS, calibrated_stain, stain_calibrations

    both, _ = two_stains
    assert calibrated_stain(both) == "membranes" and set(both[OTHER_STAINS]) == {"nuclei"}
    measured = stain_calibrations(both)
    assert list(measured) == ["membranes", "nuclei"]
    assert measured["nuclei"]["stain"] == "nuclei" and OTHER_STAINS not in measured["membranes"]
    assert stain_calibrations(measured["nuclei"]) == {"nuclei": measured["nuclei"]}


def test_multichannel_calibrated_on_both_stains_reproduces_cells_and_nuclei(two_stains):
    """Cells from the membrane channel (density per tissue area, sizes), nuclei from the
    nucleus channel: a calibrated multichannel simulation has the rendered tissue's cells and
    nuclei (docs/simulation.md has the numbers)."""
    from workflow_lib.calibrate import simulation_params, stain_calibrations

    both, truth = two_stains
    measured = stain_calibrations(both)
    kind, shape = get_kind("multichannel"), (256, 256)
    user = {"tissue": "ellipsoid", "size_jitter": 0.2}
    params = simulation_params(both, kind, shape, user)
    assert params["cells"] == simulation_params(measured["membranes"], kind, shape, user)["cells"]
    assert params["radius_samples"] == measured["nuclei"]["properties"]["radius"]["samples"]
    again = [simulated("multichannel", shape, params, seed=10 + s).labels for s in range(3)]
    for channel, name, tolerance in ((0, "cells", 0.1), (1, "nuclei", 0.15)):
        made, real = [lab[channel] for lab in again], [lab[channel] for lab in truth]
        assert true_radius(made) == pytest.approx(true_radius(real), rel=tolerance), name
    assert true_density([lab[0] for lab in again]) == pytest.approx(
        true_density([lab[0] for lab in truth]), rel=0.15)
    # kinds showing one of the stains take that one's measurements
    assert simulation_params(both, get_kind("nuclei"), shape, {})["radius_samples"] == params["radius_samples"]
    assert simulation_params(both, get_kind("membranes"), shape, user)["cells"] == params["cells"]


@pytest.mark.e2e
def test_two_stains_end_to_end(tmp_path):
    """A data set of two channels (membranes, nuclei) calibrated on both: a two-channel model,
    the edge trial on the nucleus channel of a drawn multichannel tissue, and a calibrated
    multichannel simulation whose cells follow the membranes and nuclei the nuclei, each
    channel sketched with its own stain's measurements; evaluated against the nucleus channel."""
    import json

    import tifffile

    from helpers import load_config, run_snakemake, two_stain_tissue
    from workflow_lib.io import read_tiff

    (tmp_path / "raw").mkdir()
    for k in range(4):
        image, _ = two_stain_tissue(k, (128, 128), {"cells": [10, 10], "tissue": "ellipsoid",
                                                    "size_jitter": 0.2})
        tifffile.imwrite(tmp_path / f"raw/t{k}.tif", (np.clip(image, 0, 1) * 60000).astype(np.uint16))
    config = load_config("tiny")
    ds = config["datasets"]["tiny"]
    ds |= {"channels": [0, 1], "axes": "CYX", "split": {"val": 0.0, "test": 0.25, "seed": 0},
           "calibration": {"stain": ["membranes", "nuclei"]}}
    ds["evaluation"]["real_channel"] = 1
    ds["simulations"] = {"multi": {"kind": "multichannel", "count": 1, "shape": [96, 96],
                                   "calibrate": True, "seed": 0, "params": {"tissue": "ellipsoid"}}}
    run_snakemake(tmp_path, config, "evaluate")
    out = tmp_path / "results/tiny"
    calibration = json.loads((out / "calibration/calibration.json").read_text())
    cells, nuclei = calibration, calibration["other_stains"]["nuclei"]
    assert cells["stain"] == "membranes" and nuclei["stain"] == "nuclei"
    assert cells["objects"] >= 10 and nuclei["objects"] >= 10
    trial = json.loads((out / "calibration/edges.json").read_text())
    assert trial["shape"] == [256, 256] and trial["trials"][0]["boundary_offset_px"] is not None
    meta = json.loads((out / "multi/labels/0.json").read_text())
    expected = cells["density"]["median"] * np.pi * 0.81 * 47.5**2 / 1e4   # the ellipse
    lo, hi = meta["params"]["cells"]
    assert lo <= 1.2 * expected and hi >= 0.8 * expected
    assert meta["params"]["radius_samples"] == nuclei["properties"]["radius"]["samples"]
    sketch, _ = read_tiff(out / "multi/sketches/0.tif", axes="CYX")
    for channel, stain in enumerate((cells, nuclei)):
        assert sketch[channel, 0, 0] == pytest.approx(2 * stain["background"]["level"] - 1, abs=0.02)
    image, _ = read_tiff(out / "multi/images/0.tif", axes="CYX")
    assert image.shape == (2, 96, 96)
    metrics = json.loads((out / "multi/evaluation/metrics.json").read_text())
    assert "c2st" in metrics["realism"]["synthetic"]          # nuclei compared with nuclei
    assert "walls" in metrics["completeness"] and "synthetic" in metrics["completeness"]["walls"]
