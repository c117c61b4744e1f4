"""Structure simulation: exact instance masks for every kind, seeding, parameter errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skimage.measure import label as components

from workflow_lib.errors import ConfigError, InputError
from workflow_lib.simulate import KINDS, sample_rng, simulate, track_text
from workflow_lib.simulate.labels import clean, largest_components, relabel
from workflow_lib.simulate.mask_files import load_mask, mask_files
from workflow_lib.simulate.params import Params
from workflow_lib.simulate.placement import ellipsoid, thin, uniform_box

PREFIX = "datasets.ds.simulations.sim.params"
SHAPES = {2: (96, 96), 3: (20, 48, 48)}
PARAMS = {
    "nuclei": {"cells": [6, 8], "radius": [4, 6]},
    "membranes": {"cells": [15, 20]},
    "multichannel": {"cells": [10, 12]},
    "overlapping": {"cells": [10, 12], "radius": [5, 8], "min_distance": 0},
    "timeseries": {"cells": [4, 6], "radius": [4, 6], "frames": 4, "division": 0.3},
}


def assert_instances(labels: np.ndarray) -> int:
    """ids 1..N without gaps over the array; each id one face-connected component per slice."""
    ids = np.unique(labels)
    n = int(ids.max())
    assert list(ids[ids > 0]) == list(range(1, n + 1)), "ids have gaps"
    assert labels.dtype == np.uint16
    return n


def assert_connected(spatial: np.ndarray) -> None:
    pieces = components(spatial, background=0, connectivity=1)
    per_id = np.unique(np.stack([spatial.ravel(), pieces.ravel()]), axis=1)
    ids, counts = np.unique(per_id[0][per_id[0] > 0], return_counts=True)
    assert np.all(counts == 1), f"ids in several pieces: {ids[counts > 1]}"


def run(kind, ndim, seed=0, **extra):
    params = dict(PARAMS[kind], **extra)
    return simulate(kind, SHAPES[ndim], params, sample_rng(seed, 0), prefix=PREFIX)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("kind", [k for k in KINDS if k != "masks"])
def test_every_kind_gives_exact_instances(kind, ndim):
    sim = run(kind, ndim)
    shape = SHAPES[ndim]
    labels = sim.labels
    if kind == "timeseries":
        assert labels.shape[0] == 4 and labels.shape[1:] == (1, *shape)
    else:
        channels = {"multichannel": 2, "overlapping": 2}.get(kind, 1)
        assert labels.shape == (channels, *shape)
    n = assert_instances(labels)
    assert n >= 3
    for spatial in labels.reshape(-1, *shape):
        assert_connected(spatial)


@pytest.mark.parametrize("ndim", [2, 3])
def test_multichannel_nuclei_inside_their_cells(ndim):
    cells, nuclei = run("multichannel", ndim).labels
    assert set(np.unique(cells)) - {0} == set(np.unique(nuclei)) - {0}
    inside = nuclei > 0
    assert np.array_equal(cells[inside], nuclei[inside])


@pytest.mark.parametrize("ndim", [2, 3])
def test_overlapping_layers_hold_each_cell_once_and_whole(ndim):
    params = dict(PARAMS["overlapping"], cells=[25, 30], layers=3)
    sim = simulate("overlapping", SHAPES[ndim], params, sample_rng(1, 0), prefix=PREFIX)
    layers = sim.labels
    present = [set(np.unique(layer)) - {0} for layer in layers]
    for a in range(len(present)):
        for b in range(a + 1, len(present)):
            assert not present[a] & present[b], "an id in two layers"
    # the layers together really overlap somewhere (it is a smear, not a tiling)
    assert ((layers > 0).sum(0) > 1).any()


@pytest.mark.parametrize("ndim", [2, 3])
def test_timeseries_tracks_agree_with_frames(ndim):
    sim = run("timeseries", ndim, seed=3)
    frames, tracks = sim.labels[:, 0], sim.tracks
    assert tracks.shape[1] == 4
    assert list(tracks[:, 0]) == list(range(1, len(tracks) + 1))
    present = np.stack([np.isin(tracks[:, 0], np.unique(f)) for f in frames])  # (T, N)
    ends = {}
    for k, (L, B, E, P) in enumerate(tracks):
        assert 0 <= B <= E < len(frames)
        expected = np.zeros(len(frames), bool)
        expected[B : E + 1] = True
        assert np.array_equal(present[:, k], expected), f"track {L} not present exactly in {B}..{E}"
        ends[L] = E
    for L, B, E, P in tracks:
        if P:
            assert P in ends and ends[P] == B - 1, f"daughter {L} does not start after parent {P}"
    text = track_text(tracks)
    assert text.splitlines()[0] == " ".join(map(str, tracks[0]))


def test_timeseries_divisions_happen():
    sim = simulate("timeseries", (96, 96), dict(PARAMS["timeseries"], division=0.9, frames=3),
                   sample_rng(0, 0))
    assert (sim.tracks[:, 3] > 0).any()


@pytest.mark.parametrize("kind", [k for k in KINDS if k != "masks"])
def test_same_seed_same_arrays_other_seed_differs(kind):
    a, b, c = run(kind, 2, seed=5), run(kind, 2, seed=5), run(kind, 2, seed=6)
    assert np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.labels, c.labels)


def test_samples_of_one_simulation_differ():
    a = simulate("nuclei", (64, 64), PARAMS["nuclei"], sample_rng(0, 0))
    b = simulate("nuclei", (64, 64), PARAMS["nuclei"], sample_rng(0, 1))
    assert not np.array_equal(a.labels, b.labels)


@pytest.mark.parametrize("placement", ["spread", "clustered", "embryo", "shell"])
@pytest.mark.parametrize("ndim", [2, 3])
def test_placements(placement, ndim):
    shape = (32, 64, 64) if ndim == 3 else (128, 128)
    params = {"cells": [10, 12], "radius": [3, 4], "placement": placement, "mitotic": 0.3}
    if ndim == 3:
        params["z_scale"] = 2.0
    sim = simulate("nuclei", shape, params, sample_rng(0, 0), prefix=PREFIX)
    assert assert_instances(sim.labels) >= 8
    if placement in ("embryo", "shell"):
        # nothing in the corners, outside the centred ellipsoid
        corner = tuple(slice(0, s // 8) for s in shape)
        assert not sim.labels[0][corner].any()


def test_shell_centres_lie_on_the_surface():
    rng = np.random.default_rng(0)
    semi = np.array([20.0, 30.0, 30.0])
    pts = ellipsoid(rng, (64, 80, 80), semi, surface=True)(500)
    r = np.sqrt((((pts - (np.array([64, 80, 80]) - 1) / 2) / semi) ** 2).sum(1))
    assert np.allclose(r, 1.0)


def test_thin_keeps_min_distance():
    rng = np.random.default_rng(0)
    pts = thin(uniform_box(rng, (200, 200)), 80, 15.0, np.ones(2))
    d = np.linalg.norm(pts[:, None] - pts[None], axis=-1) + np.eye(len(pts)) * 1e9
    assert len(pts) == 80 and d.min() >= 15.0


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.tuples(st.integers(24, 80), st.integers(24, 80)),
    radius=st.floats(2.0, 8.0),
    spread=st.floats(0.0, 4.0),
    elongation=st.floats(1.0, 2.5),
    irregularity=st.floats(0.0, 0.4),
    seed=st.integers(0, 2**31),
)
def test_nuclei_valid_for_any_sizes(size, radius, spread, elongation, irregularity, seed):
    params = {"cells": [1, 3], "radius": [radius, radius + spread], "elongation": [1.0, elongation],
              "irregularity": irregularity, "min_distance": 0.0}
    sim = simulate("nuclei", size, params, sample_rng(seed, 0))
    assert sim.labels.shape == (1, *size)
    assert_instances(sim.labels)
    assert_connected(sim.labels[0])


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shape=st.one_of(
        st.tuples(st.integers(16, 64), st.integers(16, 64)),
        st.tuples(st.integers(8, 16), st.integers(16, 32), st.integers(16, 32)),
    ),
    cells=st.integers(1, 20),
    jitter=st.floats(0.0, 0.5),
    tissue=st.sampled_from(["full", "ellipsoid", "dome"]),
    seed=st.integers(0, 2**31),
)
def test_membranes_valid_for_any_sizes(shape, cells, jitter, tissue, seed):
    params = {"cells": cells, "size_jitter": jitter, "tissue": tissue, "min_distance": 0.0}
    sim = simulate("membranes", shape, params, sample_rng(seed, 0))
    assert sim.labels.shape == (1, *shape)
    if sim.count:
        assert_instances(sim.labels)
        assert_connected(sim.labels[0])


def test_membranes_fill_the_tissue():
    sim = simulate("membranes", (64, 64), {"cells": 20}, sample_rng(0, 0))
    assert (sim.labels > 0).mean() > 0.95


@pytest.mark.parametrize(
    "kind, params, key",
    [
        ("nuclei", {"radius": -3}, "radius"),
        ("nuclei", {"radius": [9, 4]}, "radius"),
        ("nuclei", {"cells": 5000, "radius": [5, 6]}, "cells"),
        ("nuclei", {"placement": "grid"}, "placement"),
        ("nuclei", {"radious": 5}, "radious"),
        ("nuclei", {"cells": 2, "z_scale": 2}, "z_scale"),  # a 3D-only key on 2D data
        ("membranes", {"size_jitter": 0.9}, "size_jitter"),
        ("membranes", {"tissue": "cube"}, "tissue"),
        ("multichannel", {"nucleus_size": 1.5}, "nucleus_size"),
        ("multichannel", {"radius": 5}, "radius"),         # set per cell, not a parameter
        ("overlapping", {"layers": 0}, "layers"),
        ("timeseries", {"frames": 0}, "frames"),
        ("timeseries", {"speed": "fast"}, "speed"),
        ("masks", {"masks": "x/*.tif", "fit": "stretch"}, "fit"),
    ],
)
def test_bad_params_name_the_key(kind, params, key):
    mask = np.ones((8, 8), int) if kind == "masks" else None
    with pytest.raises(ConfigError) as err:
        simulate(kind, (64, 64), params, sample_rng(0, 0), prefix=PREFIX, mask=mask)
    assert err.value.key == f"{PREFIX}.{key}"
    assert f"'{PREFIX}.{key}'" in str(err.value)


def test_bad_shape_and_kind():
    with pytest.raises(ConfigError, match="shape"):
        simulate("nuclei", (64,), {}, sample_rng(0, 0), prefix=PREFIX)
    with pytest.raises(ConfigError, match="kind"):
        simulate("blobs", (64, 64), {}, sample_rng(0, 0), prefix=PREFIX)


def test_masks_kind_from_a_real_3d_mask(tmp_path):
    from stardist.data import test_image_nuclei_3d

    from workflow_lib.io import write_tiff

    _, mask = test_image_nuclei_3d(return_mask=True)
    write_tiff(tmp_path / "m.tif", mask.astype(np.uint16)[None], "CZYX")
    files = mask_files(str(tmp_path / "*.tif"), "key")
    loaded = load_mask(files[0], 3)
    assert np.array_equal(loaded, mask)
    for fit in ("crop", "resize"):
        sim = simulate("masks", (24, 40, 40), {"masks": "unused", "fit": fit}, sample_rng(0, 0),
                       mask=loaded)
        assert sim.labels.shape == (1, 24, 40, 40)
        assert assert_instances(sim.labels) > 10
        assert_connected(sim.labels[0])
    padded = simulate("masks", (40, 80, 80), {"masks": "m", "augment": False}, sample_rng(0, 0), mask=loaded)
    assert padded.count == len(np.unique(mask)) - 1
    with pytest.raises(InputError, match="spatial axes"):
        load_mask(files[0], 2)
    with pytest.raises(ConfigError, match="matches no file"):
        mask_files(str(tmp_path / "none*.tif"), "datasets.x.simulations.y.params.masks")


def test_label_helpers():
    a = np.array([[1, 0, 0, 1], [0, 0, 0, 1], [3, 0, 5, 5]])
    kept = largest_components(a)
    assert kept[0, 0] == 0 and kept[0, 3] == 1  # the smaller piece of id 1 is gone
    assert list(np.unique(relabel(kept))) == [0, 1, 2, 3]
    assert clean(a, min_size=2).max() == 2


def test_params_reader():
    p = Params({"a": 2, "b": [1, 3], "c": True}, "pre")
    assert p.number("a", 0, 0) == 2.0
    assert p.range("b", 0, 0, integer=True) == (1, 3)
    assert p.flag("c", False) is True
    assert p.range("d", 4) == (4.0, 4.0)
    p.finish()
    with pytest.raises(ConfigError, match="pre.e"):
        Params({"e": 1}, "pre").finish()
    with pytest.raises(ConfigError, match="must be a number"):
        Params({"a": True}).number("a", 0)


def test_targets_list_every_file():
    from workflow_lib.simulate import targets

    config = {"datasets": {"a": {"simulations": {
        "n": {"kind": "nuclei", "count": 2},
        "t": {"kind": "timeseries", "count": 1},
        "m": {"kind": "masks", "count": 3, "params": {"masks": "resources/demo/masks/*.tif"}},
    }}}}
    sim = targets.simulate_outputs(config)
    assert "results/a/n/labels/1.tif" in sim and "results/a/t/tracks/0/res_track.txt" in sim
    assert len(sim) == 2 + 2 + 3
    assert len(targets.sketch_outputs(config)) == 3 * 6
    known = [f"resources/demo/masks/q{k}.tif" for k in range(2)]
    assert targets.sim_masks(config, "a", "m", 2, known) == {"mask": known[0]}
    assert targets.sim_masks(config, "a", "n", 0, known) == {}
    config["datasets"]["a"]["simulations"]["m"]["params"] = {}
    with pytest.raises(ConfigError, match="datasets.a.simulations.m.params.masks"):
        targets.sim_masks(config, "a", "m", 0, known)


@pytest.mark.parametrize("shape", [(128, 128), (24, 64, 64)])
def test_meristem_layers(shape):
    params = {"tissue": "dome", "layers": 3, "layer_spacing": 10}
    sim = simulate("membranes", shape, params, sample_rng(0, 0), prefix=PREFIX)
    assert assert_instances(sim.labels) > 10
    assert_connected(sim.labels[0])
    with pytest.raises(ConfigError, match=r"params\.cells"):
        simulate("membranes", shape, dict(params, cells=5), sample_rng(0, 0), prefix=PREFIX)
