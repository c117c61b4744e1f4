"""Structure simulation: exact instance masks for every kind, seeding, parameter errors,
the kind registry."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from skimage.measure import label as components

from helpers import simulated
from workflow_lib.errors import ParamError
from workflow_lib.simulate import (
    BLOBS, CELLS, KINDS, get_kind, read_params, sample_rng, simulate, track_text,
)
from workflow_lib.simulate.labels import clean, largest_components, relabel
from workflow_lib.simulate.params import Params
from workflow_lib.simulate.placement import ellipsoid, thin, uniform_box

SHAPES = {2: (96, 96), 3: (20, 48, 48)}
PARAMS = {
    "nuclei": {"cells": [6, 8], "radius": [4, 6]},
    "membranes": {"cells": [15, 20]},
    "multichannel": {"cells": [10, 12]},
    "overlapping": {"cells": [10, 12], "radius": [5, 8], "min_distance": 0},
    "timeseries": {"cells": [4, 6], "radius": [4, 6], "frames": 4, "division": 0.3},
    "masks": {"masks": "m/*.tif"},
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
    return simulated(kind, SHAPES[ndim], dict(PARAMS[kind], **extra), seed)


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("kind", [k for k, spec in KINDS.items() if not spec.needs_mask])
def test_every_kind_gives_exact_instances(kind, ndim):
    out = run(kind, ndim)
    shape = SHAPES[ndim]
    labels = out.labels
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


def _touching_nuclei(nuclei: np.ndarray) -> int:
    """Face-neighbouring pixel pairs of two different nuclei."""
    pairs = 0
    for ax in range(nuclei.ndim):
        a, b = np.moveaxis(nuclei, ax, 0)[1:], np.moveaxis(nuclei, ax, 0)[:-1]
        pairs += int(np.count_nonzero((a > 0) & (b > 0) & (a != b)))
    return pairs


@pytest.mark.parametrize("ndim", [2, 3])
def test_multichannel_measured_nuclei_may_fill_their_cells(ndim):
    # Radii from measurements (radius_samples) larger than the cells: each nucleus fills its
    # cell up to the membrane, so neighbours touch, and still lies inside its own cell.
    cells, nuclei = run("multichannel", ndim, radius_samples=[40.0]).labels
    inside = nuclei > 0
    assert np.array_equal(cells[inside], nuclei[inside])
    assert _touching_nuclei(nuclei) > 0
    assert inside.sum() > 0.5 * (cells > 0).sum()   # discs of the cells' equivalent radius
    # Radii relative to the cell (nucleus_size) keep every nucleus off its membrane.
    _, apart = run("multichannel", ndim, nucleus_size=[0.9, 1.0]).labels
    assert _touching_nuclei(apart) == 0


@pytest.mark.parametrize("ndim", [2, 3])
def test_overlapping_layers_hold_each_cell_once_and_whole(ndim):
    layers = run("overlapping", ndim, seed=1, cells=[25, 30], layers=3).labels
    present = [set(np.unique(layer)) - {0} for layer in layers]
    for a in range(len(present)):
        for b in range(a + 1, len(present)):
            assert not present[a] & present[b], "an id in two layers"
    # the layers together really overlap somewhere (it is a smear, not a tiling)
    assert ((layers > 0).sum(0) > 1).any()


@pytest.mark.parametrize("ndim", [2, 3])
def test_timeseries_tracks_agree_with_frames(ndim):
    series = run("timeseries", ndim, seed=3)
    frames, tracks = series.labels[:, 0], series.tracks
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
    series = simulated("timeseries", (96, 96), dict(PARAMS["timeseries"], division=0.9, frames=3))
    assert (series.tracks[:, 3] > 0).any()


@pytest.mark.parametrize("kind", [k for k, spec in KINDS.items() if not spec.needs_mask])
def test_same_seed_same_arrays_other_seed_differs(kind):
    a, b, c = run(kind, 2, seed=5), run(kind, 2, seed=5), run(kind, 2, seed=6)
    assert np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.labels, c.labels)


def test_samples_of_one_simulation_differ():
    settings = read_params("nuclei", PARAMS["nuclei"], 2)   # read once, used for every sample
    a = simulate("nuclei", (64, 64), settings, sample_rng(0, 0))
    b = simulate("nuclei", (64, 64), settings, sample_rng(0, 1))
    assert not np.array_equal(a.labels, b.labels)


@pytest.mark.parametrize("placement", ["spread", "clustered", "embryo", "shell"])
@pytest.mark.parametrize("ndim", [2, 3])
def test_placements(placement, ndim):
    shape = (32, 64, 64) if ndim == 3 else (128, 128)
    params = {"cells": [10, 12], "radius": [3, 4], "placement": placement, "mitotic": 0.3}
    if ndim == 3:
        params["z_scale"] = 2.0
    labels = simulated("nuclei", shape, params).labels
    assert assert_instances(labels) >= 8
    if placement in ("embryo", "shell"):
        # nothing in the corners, outside the centred ellipsoid
        corner = tuple(slice(0, s // 8) for s in shape)
        assert not labels[0][corner].any()


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
    labels = simulated("nuclei", size, params, seed).labels
    assert labels.shape == (1, *size)
    assert_instances(labels)
    assert_connected(labels[0])


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
    out = simulated("membranes", shape, params, seed)
    assert out.labels.shape == (1, *shape)
    if out.count:
        assert_instances(out.labels)
        assert_connected(out.labels[0])


def test_membranes_fill_the_tissue():
    assert (simulated("membranes", (64, 64), {"cells": 20}).labels > 0).mean() > 0.95


@pytest.mark.parametrize(
    "kind, params, key",
    [
        ("nuclei", {"radius": -3}, "radius"),
        ("nuclei", {"radius": [9, 4]}, "radius"),
        ("nuclei", {"placement": "grid"}, "placement"),
        ("nuclei", {"radious": 5}, "radious"),
        ("nuclei", {"cells": 2, "z_scale": 2}, "z_scale"),  # a 3D-only key on 2D data
        ("nuclei", {"clusters": 3}, "clusters"),            # only with placement: clustered
        ("nuclei", {"placement": "shell", "extent": [0.5]}, "extent"),
        ("nuclei", {"cells": [0, 4]}, "cells"),
        ("membranes", {"size_jitter": 0.9}, "size_jitter"),
        ("membranes", {"tissue": "cube"}, "tissue"),
        ("membranes", {"min_distance": -1}, "min_distance"),
        ("membranes", {"tissue": "dome", "layers": 2, "cells": 5}, "cells"),  # layers place seeds
        ("membranes", {"layers": 2}, "layers"),             # no layers in a full tissue
        ("multichannel", {"nucleus_size": 1.5}, "nucleus_size"),
        ("multichannel", {"radius": 5}, "radius"),         # set per cell, not a parameter
        ("overlapping", {"layers": 0}, "layers"),
        ("timeseries", {"frames": 0}, "frames"),
        ("timeseries", {"speed": "fast"}, "speed"),
        ("masks", {"masks": "x/*.tif", "fit": "stretch"}, "fit"),
        ("masks", {"fit": "crop"}, "masks"),                # the glob is required
    ],
)
def test_read_params_rejects_bad_values_by_key(kind, params, key):
    with pytest.raises(ParamError) as err:
        read_params(kind, params, 2)
    assert err.value.name == key
    assert f"'{key}'" in str(err.value)


@settings(max_examples=20, deadline=None)
@given(
    kind=st.sampled_from(["nuclei", "overlapping", "timeseries"]),
    radius=st.one_of(
        st.floats(-1e6, 0.999),                                          # below the bound 1
        st.tuples(st.floats(1.0, 1e6), st.floats(1.0, 1e6)).filter(lambda r: r[0] > r[1]),
    ),
    ndim=st.sampled_from([2, 3]),
)
def test_read_params_rejects_any_bad_radius(kind, radius, ndim):
    with pytest.raises(ParamError) as err:
        read_params(kind, {"radius": list(radius) if isinstance(radius, tuple) else radius}, ndim)
    assert err.value.name == "radius"


@pytest.mark.parametrize(
    "kind, shape, params, key",
    [
        ("nuclei", (64, 64), {"cells": 5000, "radius": [5, 6]}, "cells"),
        ("membranes", (64, 64), {"cells": 500, "min_distance": 8}, "cells"),
        ("membranes", (64, 64), {"tissue": "ellipsoid", "extent": 0.001}, "extent"),
        ("membranes", (64, 64), {"tissue": "dome", "layers": 2, "layer_spacing": 500}, "layer_spacing"),
        ("nuclei", (64,), {}, "shape"),
        ("nuclei", (0, 64), {}, "shape"),
    ],
)
def test_errors_found_while_simulating_name_the_key(kind, shape, params, key):
    settings = read_params(kind, params, 2)
    with pytest.raises(ParamError) as err:
        simulate(kind, shape, settings, sample_rng(0, 0))
    assert err.value.name == key


def test_masks_need_a_mask_of_the_shape_ndim():
    settings = read_params("masks", {"masks": "m"}, 2)
    with pytest.raises(ParamError, match="needs a mask image") as err:
        simulate("masks", (32, 32), settings, sample_rng(0, 0))
    assert err.value.name == "masks"
    with pytest.raises(ParamError, match="spatial axes") as err:
        simulate("masks", (32, 32), settings, sample_rng(0, 0), mask=np.ones((4, 8, 8), int))
    assert err.value.name == "masks"


def test_unknown_kind():
    for call in (lambda: read_params("blobs", {}, 2), lambda: get_kind("blobs")):
        with pytest.raises(ValueError, match="unknown kind 'blobs'; one of nuclei") as err:
            call()
        assert not isinstance(err.value, ParamError)   # not a key of params


@pytest.mark.parametrize("name", list(KINDS))
def test_kind_specs_are_consistent(name):
    kind = KINDS[name]
    assert kind.name == name and get_kind(name) is kind
    channels = len(kind.label_channels)
    assert len(kind.sketch_modes) == channels and len(kind.eval_methods) == channels
    assert set(kind.sketch_modes) <= {"centre", "boundary"}
    assert set(kind.eval_methods) <= {BLOBS, CELLS}
    assert 0 <= kind.downstream_channel < channels
    assert not kind.layered or channels == 1
    assert len(set(kind.keys)) == len(kind.keys)
    # settings are frozen values, read without a shape
    settings = read_params(name, PARAMS[name], 2)
    assert dataclasses.is_dataclass(settings)
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(settings, dataclasses.fields(settings)[0].name, None)


def test_kind_specs_match_the_stages():
    """What the sketch and evaluation did per kind before the registry."""
    spec = {k: (v.label_channels, v.sketch_modes, v.eval_methods, v.downstream_channel, v.stains)
            for k, v in KINDS.items()}
    assert spec["membranes"] == (("cells",), ("boundary",), (CELLS,), 0, ("membranes",))
    assert spec["multichannel"] == (("cells", "nuclei"), ("boundary", "centre"), (CELLS, BLOBS), 1, ("membranes", "nuclei"))
    assert spec["overlapping"][1:] == (("centre",), (BLOBS,), 0, ("nuclei",)) and KINDS["overlapping"].layered
    assert spec["nuclei"] == (("nuclei",), ("centre",), (BLOBS,), 0, ("nuclei",))
    assert [k for k, v in KINDS.items() if v.time] == ["timeseries"]
    assert [k for k, v in KINDS.items() if v.needs_mask] == ["masks"]
    assert [k for k, v in KINDS.items() if v.layered] == ["overlapping"]
    noted = {k for k, v in KINDS.items() if v.notes}
    assert noted == {"membranes", "multichannel", "overlapping", "timeseries"}


@pytest.mark.parametrize("name", list(KINDS))
def test_labels_layout_follows_the_kind_spec(name):
    kind = KINDS[name]
    mask = np.arange(1, 7).repeat(10)[None].repeat(40, 0) if kind.needs_mask else None
    params = dict(PARAMS[name], layers=3) if kind.layered else PARAMS[name]
    out = simulated(name, SHAPES[2], params, mask=mask)
    assert out.kind == name and out.time == kind.time
    labels = out.labels[0] if kind.time else out.labels
    assert out.labels.ndim == 3 + kind.time
    assert labels.shape[1:] == SHAPES[2]
    assert labels.shape[0] == (3 if kind.layered else len(kind.label_channels))


def test_masks_kind_from_a_real_3d_mask():
    from stardist.data import test_image_nuclei_3d

    _, mask = test_image_nuclei_3d(return_mask=True)
    mask = mask.astype(np.int64)
    for fit in ("crop", "resize"):
        out = simulated("masks", (24, 40, 40), {"masks": "unused", "fit": fit}, mask=mask)
        assert out.labels.shape == (1, 24, 40, 40)
        assert assert_instances(out.labels) > 10
        assert_connected(out.labels[0])
    padded = simulated("masks", (40, 80, 80), {"masks": "m", "augment": False}, mask=mask)
    assert padded.count == len(np.unique(mask)) - 1


def test_label_helpers():
    a = np.array([[1, 0, 0, 1], [0, 0, 0, 1], [3, 0, 5, 5]])
    kept = largest_components(a)
    assert kept[0, 0] == 0 and kept[0, 3] == 1  # the smaller piece of id 1 is gone
    assert list(np.unique(relabel(kept))) == [0, 1, 2, 3]
    assert clean(a, min_size=2).max() == 2


def test_params_reader():
    p = Params({"a": 2, "b": [1, 3], "c": True, "f": 0.5})
    assert p.number("a", 0, 0) == 2.0
    assert p.range("b", 0, 0, integer=True) == (1, 3)
    assert p.flag("c", False) is True
    assert p.range("d", 4) == (4.0, 4.0)
    assert p.optional_number("f", 0.0) == 0.5 and p.optional_number("g") is None
    p.finish()
    with pytest.raises(ParamError, match="'e': is not used") as err:
        Params({"e": 1}).finish()
    assert err.value.name == "e"
    with pytest.raises(ParamError, match="'e': unknown parameter; this kind takes: a"):
        Params({"e": 1}, allowed=["a"])
    with pytest.raises(ParamError, match="must be a number"):
        Params({"a": True}).number("a", 0)
    with pytest.raises(ParamError, match="must be >= 0"):
        Params({"a": -1}).optional_number("a", 0.0)


@pytest.mark.parametrize("shape", [(128, 128), (24, 64, 64)])
def test_meristem_layers(shape):
    params = {"tissue": "dome", "layers": 3, "layer_spacing": 10}
    labels = simulated("membranes", shape, params).labels
    assert assert_instances(labels) > 10
    assert_connected(labels[0])
    with pytest.raises(ParamError, match="'cells'"):
        read_params("membranes", dict(params, cells=5), len(shape))
