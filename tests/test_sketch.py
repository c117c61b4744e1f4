"""Sketches, annotation targets, previews, and the simulate + sketch stages end to end."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import tifffile

from helpers import discs, load_config, run_snakemake, simulated, sketch_settings
from workflow_lib.errors import ConfigError, ParamError
from workflow_lib.io import read_tiff, write_tiff
from workflow_lib.simulate import get_kind, sample_rng
from workflow_lib.sketch import SketchParams, annotations, make_sketch, relative_depth
from workflow_lib.sketch.preview import write_preview
from workflow_lib.sketch.targets import boundary, depth, signed_distance


def disc_labels() -> np.ndarray:
    """Two separate discs of radius 10 in 64 x 64: ids 1 and 2, as (1, Y, X) uint16."""
    return discs([(20, 20), (44, 44)], 10).astype(np.uint16)[None]


def sketch_of(labels, kind="nuclei", **cfg):
    ndim = labels.ndim - 1
    return make_sketch(labels, get_kind(kind), sketch_settings(ndim, **cfg), np.random.default_rng(0))


def test_range_background_and_cells_brighter():
    labels = disc_labels()
    sk = sketch_of(labels)
    assert sk.dtype == np.float32 and sk.shape == labels.shape
    assert sk.min() >= -1 and sk.max() <= 1
    far = np.ones((64, 64), bool)
    far[:40, :40] = far[24:, 24:] = False
    assert np.all(sk[0][far] == -1.0)
    assert sk[0][labels[0] > 0].min() > -1.0
    assert sk[0][labels[0] > 0].mean() > -0.7


@pytest.mark.parametrize("mode", ["centre", "boundary"])
def test_profile_modes(mode):
    sk = sketch_of(disc_labels(), mode=mode, blur=0, brightness=[1, 1])[0]
    centre, rim = sk[20, 20], sk[20, 11]
    assert (centre > rim) if mode == "centre" else (rim > centre)


def test_flat_mode_is_one_value_per_cell():
    sk = sketch_of(disc_labels(), mode="flat", blur=0)[0]
    labels = disc_labels()[0]
    assert len(np.unique(sk[labels == 1])) == 1 and len(np.unique(sk[labels == 2])) == 1
    assert np.all(sk[labels > 0] >= -0.7)


def test_nucleoli_darken_cells():
    labels = disc_labels()
    plain = sketch_of(labels, mode="flat", blur=0)[0]
    holes = sketch_of(labels, mode="flat", blur=0, nucleoli={"count": [2, 2], "radius": [2, 3]})[0]
    inside = labels[0] > 0
    assert (holes[inside] < plain[inside]).any()
    assert np.all(holes[~inside] == -1.0)


def test_anisotropic_blur_and_bad_blur():
    labels = simulated("nuclei", (16, 48, 48), {"cells": 3, "radius": [5, 6], "z_scale": 2}).labels
    sk = sketch_of(labels, blur=[0.5, 1.0, 1.0])
    assert sk.shape == labels.shape
    with pytest.raises(ConfigError, match="blur"):
        sketch_of(labels, blur=[1.0, 1.0])


@pytest.mark.parametrize(
    "kind, params",
    [
        ("multichannel", {"cells": 8}),
        ("overlapping", {"cells": [15, 20], "radius": [5, 8], "min_distance": 0}),
        ("timeseries", {"cells": 4, "radius": [4, 6], "frames": 3}),
    ],
)
def test_layouts(kind, params):
    sim = simulated(kind, (64, 64), params)
    sk = make_sketch(sim.labels, get_kind(kind), SketchParams(), sample_rng(0, 0, 1))
    if kind == "overlapping":
        assert sk.shape == (1, 64, 64)
    else:
        assert sk.shape == sim.labels.shape
    assert sk.min() >= -1 and sk.max() <= 1
    ann = annotations(sim.labels, sk, time=sim.time)
    assert ann["data/instance"].shape == sim.labels.shape
    assert ann["data/boundary"].shape == sim.labels.shape and ann["data/boundary"].dtype == np.uint8
    assert ann["data/distance"].shape == sim.labels.shape


def test_settings_per_label_channel():
    """A calibrated nucleus channel beside the cell channel's own settings (multichannel)."""
    sim = simulated("multichannel", (64, 64), {"cells": [6, 6], "tissue": "ellipsoid"})
    kind = get_kind("multichannel")
    cells, nuclei = SketchParams(), SketchParams(background=-0.5, cell_range=(-0.4, 0.8), blur=0)
    sk = make_sketch(sim.labels, kind, [cells, nuclei], sample_rng(0, 0, 1))
    assert sk[1][sim.labels[1] == 0].max() == pytest.approx(-0.5)   # nuclei channel background
    assert sk[0][0, 0] == pytest.approx(-1.0)                        # cell channel's default
    assert sk[1].max() <= 0.8
    same = make_sketch(sim.labels, kind, [cells, cells], sample_rng(0, 0, 1))
    np.testing.assert_array_equal(same, make_sketch(sim.labels, kind, cells, sample_rng(0, 0, 1)))
    with pytest.raises(ParamError, match="3 settings for 2 label channels"):
        make_sketch(sim.labels, kind, [cells] * 3, sample_rng(0, 0, 1))


def test_timeseries_keeps_brightness_per_track():
    sim = simulated("timeseries", (64, 64), {"cells": 3, "radius": [5, 6], "frames": 3, "division": 0,
                                            "speed": 0})
    sk = make_sketch(sim.labels, get_kind("timeseries"), SketchParams(mode="flat", blur=0),
                     sample_rng(0, 0, 1))
    for cid in range(1, sim.count + 1):
        values = {float(sk[t, 0][sim.labels[t, 0] == cid][0]) for t in range(3)}
        assert len(values) == 1


def test_targets():
    labels = disc_labels()[0]
    d = depth(labels)
    assert d[20, 20] == pytest.approx(11.0, abs=1) and d[20, 10] == 1.0 and d[0, 0] == 0
    r = relative_depth(labels)
    assert r.max() == pytest.approx(1.0) and r[0, 0] == 0
    b = boundary(labels)
    assert b[20, 10] == 1 and b[20, 20] == 0 and b[0, 0] == 0
    s = signed_distance(labels)
    assert s[20, 20] > 0 and s[0, 0] < 0 and np.all(s[labels > 0] >= 1)
    # touching cells: the shared border is a boundary of both
    touching = np.zeros((8, 8), np.uint16)
    touching[:, :4], touching[:, 4:] = 1, 2
    assert boundary(touching)[4, 3] == 1 and boundary(touching)[4, 4] == 1


def test_sketch_params_errors():
    with pytest.raises(ParamError, match="brightness"):
        SketchParams(brightness=(0.9, 0.1))
    with pytest.raises(ParamError, match="mode"):
        SketchParams(mode="ring")
    with pytest.raises(ConfigError, match="'sketch.brightness'"):
        sketch_settings(brightness=[0.9, 0.1])
    with pytest.raises(ConfigError, match="'sketch.blur'"):
        sketch_settings(ndim=3, blur=[1.0, 1.0])


@pytest.mark.parametrize("shape, axes", [((1, 5, 6), "CYX"), ((2, 3, 5, 6), "CZYX"),
                                         ((4, 1, 5, 6), "TCYX"), ((4, 2, 3, 5, 6), "TCZYX")])
def test_label_tiff_round_trip(tmp_path, shape, axes):
    x = np.random.default_rng(0).integers(0, 100, shape).astype(np.uint16)
    write_tiff(tmp_path / "x.tif", x, axes)
    back, _ = read_tiff(tmp_path / "x.tif", axes=axes)
    assert np.array_equal(back, x)


def test_preview_png(tmp_path):
    sim = simulated("timeseries", (48, 48), {"cells": 3, "radius": [4, 5], "frames": 3})
    sk = make_sketch(sim.labels, get_kind("timeseries"), SketchParams(), sample_rng(0, 0, 1))
    write_preview(tmp_path / "p.png", sim.labels, sk, "title", time=True)
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"


# configs/sketch.yaml: the simulations of each data set
E2E_SIMS = {
    2: ("spread", "tissue", "multi", "smear", "movie", "annotated"),
    # every kind runs in 3D in the library tests; here time series and a real 3D mask file
    3: ("movie", "annotated"),
}


@pytest.mark.e2e
def test_sketch_stage_end_to_end(tmp_path):
    """One run, a 2D data set with every kind and a 3D one (masks from a real 3D annotation)."""
    from stardist.data import test_image_nuclei_3d

    _, mask = test_image_nuclei_3d(return_mask=True)
    mask = mask.astype(np.uint16)
    (tmp_path / "masks2").mkdir()
    (tmp_path / "masks3").mkdir()
    tifffile.imwrite(tmp_path / "masks2/m.tif", mask[15])
    tifffile.imwrite(tmp_path / "masks3/m.tif", mask)
    config = load_config("sketch")  # annotated: masks2/*.tif and masks3/*.tif
    for ndim in (2, 3):
        assert tuple(config["datasets"][f"d{ndim}"]["simulations"]) == E2E_SIMS[ndim]
    run_snakemake(tmp_path, config, "sketch")
    for ndim in (2, 3):
        ds = tmp_path / f"results/d{ndim}"
        for sim in E2E_SIMS[ndim]:
            labels, _ = read_tiff(ds / sim / "labels/0.tif")
            sketch, _ = read_tiff(ds / sim / "sketches/0.tif")
            assert labels.dtype == np.uint16 and sketch.dtype == np.float32
            assert sketch.min() >= -1 and sketch.max() <= 1
            assert (ds / sim / "previews/0.png").is_file()
            with h5py.File(ds / sim / "annotations/0.h5") as f:
                assert {"sketch", "instance", "boundary", "distance"} <= set(f["data"])
            meta = json.loads((ds / sim / "labels/0.json").read_text())
            assert meta["instances"] == labels.max() and len(meta["shape"]) == ndim
        tracks = (ds / "movie/tracks/0/res_track.txt").read_text().splitlines()
        assert tracks and all(len(line.split()) == 4 for line in tracks)


@pytest.mark.e2e
def test_bad_param_fails_with_the_key(tmp_path):
    config = load_config("sketch")
    del config["datasets"]["d3"]
    sims = config["datasets"]["d2"]["simulations"]
    config["datasets"]["d2"]["simulations"] = {"spread": sims["spread"]}
    sims["spread"]["params"]["radius"] = -2
    (tmp_path / "masks").mkdir()
    tifffile.imwrite(tmp_path / "masks/m.tif", np.zeros((8, 8), np.uint16))
    proc = run_snakemake(tmp_path, config, "simulate", check=False)
    assert proc.returncode != 0
    assert "datasets.d2.simulations.spread.params.radius" in proc.stdout


@pytest.mark.parametrize("shift", [-1.5, -1.0, -0.3, 0.5, 1.2])
def test_edge_shift_moves_the_blurred_half_maximum_by_the_shift(shift):
    """A straight edge: after the blur, the half-maximum crossing moves by ``shift`` pixels."""
    labels = np.zeros((1, 32, 64), np.uint16)
    labels[0, :, :30] = 1            # the mask edge lies at x = 29.5
    kind = get_kind("nuclei")

    def crossing(edge_shift):
        p = SketchParams(mode="flat", brightness=(1.0, 1.0), blur=2.0, edge_shift=edge_shift)
        row = make_sketch(labels, kind, p, np.random.default_rng(0))[0, 16]
        half = (row[0] + row[-1]) / 2
        k = int(np.argmax(row < half))          # first pixel below half: interpolate before it
        return k - 1 + (row[k - 1] - half) / (row[k - 1] - row[k])

    assert crossing(0.0) == pytest.approx(29.5, abs=0.02)
    assert crossing(shift) - crossing(0.0) == pytest.approx(shift, abs=0.05)


def test_edge_shift_minus_one_erodes_and_zero_changes_nothing():
    disc = discs([(20, 20)], 8, (40, 40))
    kind = get_kind("nuclei")
    p = SketchParams(mode="flat", brightness=(1.0, 1.0), blur=0.0)
    same = make_sketch(disc[None], kind, p, np.random.default_rng(0))
    eroded = make_sketch(disc[None], kind, SketchParams(**{**p.__dict__, "edge_shift": -1.0}),
                         np.random.default_rng(0))
    assert np.array_equal(same[0] > p.background, disc > 0)
    assert np.array_equal(eroded[0] > p.background, depth(disc) > 1)
