"""Export of synthetic pairs to training layouts: cellpose, StarDist, nnU-Net v2, CTC.

Each layout is checked against its documented spec here, and with the consumer's own reader
where that package is installed (cellpose, nnunetv2, traccuracy: skipped without them).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from helpers.export import NUCLEI, SERIES, files
from helpers.export import export_sample as make
from workflow_lib.evaluate.views import flatten_layers
from workflow_lib.export import FORMATS, MARKER, ExportSample, export
from workflow_lib.export.nnunet import semantic
from workflow_lib.io import OutputError
SHAPE_2D, SHAPE_3D = (48, 48), (8, 32, 32)


@pytest.fixture(scope="module")
def samples() -> dict[str, ExportSample]:
    return {
        "nuclei": make("nuclei", SHAPE_2D, NUCLEI, "nuc_0", spacing=(0.5, 0.5)),
        "nuclei3d": make("nuclei", SHAPE_3D, NUCLEI, "vol_0", spacing=(2.0, 0.5, 0.5)),
        "multichannel": make("multichannel", SHAPE_2D, {"cells": [4, 5]}, "mc_0"),
        "overlapping": make("overlapping", SHAPE_2D,
                            {"cells": [5, 6], "radius": [5, 8], "min_distance": 0}, "ov_0"),
        "timeseries": make("timeseries", SHAPE_2D, SERIES, "ts_0"),
        "timeseries2": make("timeseries", SHAPE_2D, SERIES, "ts_1", seed=1),
    }


def tif(path: Path) -> np.ndarray:
    return tifffile.imread(path)


# --- cellpose ---------------------------------------------------------------------------------

def test_cellpose_pairs_every_frame_and_slice(tmp_path, samples):
    chosen = [samples[k] for k in ("nuclei", "nuclei3d", "multichannel", "overlapping",
                                   "timeseries")]
    out = tmp_path / "cp"
    summary = export("cellpose", chosen, out)
    images = sorted(p for p in out.glob("*.tif") if not p.stem.endswith("_masks"))
    stems = [p.stem for p in images]
    # cellpose pairs X.tif with X_masks.tif (default mask filter '_masks')
    assert files(out) == {f"{s}.tif" for s in stems} | {f"{s}_masks.tif" for s in stems} | {MARKER}
    z = [f"vol_0_z{i:03d}" for i in range(SHAPE_3D[0])]
    t = [f"ts_0_t{i:03d}" for i in range(3)]
    assert set(stems) == {"nuc_0", "mc_0", "ov_0", *z, *t}
    assert summary["pairs"] == len(stems) and summary["files"] == 2 * len(stems)
    pairs = 1 + len(z)
    assert summary["kinds"]["nuclei"] == {"samples": 2, "pairs": pairs, "files": 2 * pairs}
    assert summary["skipped"] == []
    assert json.loads((out / MARKER).read_text()) == summary

    nuc, vol, mc, ov, ts = chosen
    np.testing.assert_array_equal(tif(out / "nuc_0.tif"), nuc.image[0])
    np.testing.assert_array_equal(tif(out / "nuc_0_masks.tif"), nuc.labels[0])
    assert tif(out / "nuc_0_masks.tif").dtype == np.uint16
    # multichannel: (C, Y, X) image, the downstream (nuclei) channel as masks
    np.testing.assert_array_equal(tif(out / "mc_0.tif"), mc.image)
    assert mc.kind.downstream_channel == 1
    np.testing.assert_array_equal(tif(out / "mc_0_masks.tif"), mc.labels[1])
    # overlapping: layers flattened, the last non-zero layer wins
    np.testing.assert_array_equal(tif(out / "ov_0_masks.tif"), flatten_layers(ov.labels))
    np.testing.assert_array_equal(tif(out / "vol_0_z003.tif"), vol.image[0, 3])
    np.testing.assert_array_equal(tif(out / "vol_0_z003_masks.tif"), vol.labels[0, 3])
    np.testing.assert_array_equal(tif(out / "ts_0_t002_masks.tif"), ts.labels[2, 0])


def test_cellpose_reader_finds_the_pairs(tmp_path, samples):
    cp_io = pytest.importorskip("cellpose.io")
    chosen = [samples["nuclei"], samples["multichannel"], samples["timeseries"]]
    export("cellpose", chosen, tmp_path / "cp")
    names = cp_io.get_image_files(str(tmp_path / "cp"), "_masks")
    labels, flows = cp_io.get_label_files(names, "_masks")
    assert len(names) == 5 and flows is None
    for image, mask in zip(names, labels):
        assert Path(mask).name == Path(image).stem + "_masks.tif"
        assert cp_io.imread(mask).shape == SHAPE_2D
        assert cp_io.imread(image).shape in (SHAPE_2D, (2, *SHAPE_2D))


# --- StarDist ---------------------------------------------------------------------------------

def test_stardist_channel_last_and_volumes(tmp_path, samples):
    from csbdeep.utils import normalize
    from stardist import Rays_GoldenSpiral, fill_label_holes, star_dist, star_dist3D

    chosen = [samples[k] for k in ("nuclei", "nuclei3d", "multichannel", "overlapping",
                                   "timeseries")]
    out = tmp_path / "sd"
    summary = export("stardist", chosen, out)
    names = {"nuc_0", "vol_0", "mc_0", "ov_0", "ts_0_t000", "ts_0_t001", "ts_0_t002"}
    assert files(out) == ({f"images/{n}.tif" for n in names} | {f"masks/{n}.tif" for n in names}
                          | {MARKER})
    assert summary["pairs"] == len(names)

    nuc, vol, mc, ov, ts = chosen
    x = tif(out / "images/mc_0.tif")
    assert x.shape == (*SHAPE_2D, 2)  # channel last: n_channel = X[0].shape[-1]
    np.testing.assert_array_equal(x, np.moveaxis(mc.image, 0, -1))
    np.testing.assert_array_equal(tif(out / "masks/mc_0.tif"), mc.labels[1])
    np.testing.assert_array_equal(tif(out / "images/nuc_0.tif"), nuc.image[0])
    np.testing.assert_array_equal(tif(out / "masks/ov_0.tif"), flatten_layers(ov.labels))
    np.testing.assert_array_equal(tif(out / "masks/ts_0_t001.tif"), ts.labels[1, 0])
    assert tif(out / "images/vol_0.tif").shape == SHAPE_3D
    np.testing.assert_array_equal(tif(out / "masks/vol_0.tif"), vol.labels[0])

    # StarDist's own example preparation runs on what it reads back
    for name in ("nuc_0", "mc_0"):
        y = fill_label_holes(tif(out / f"masks/{name}.tif"))
        img = normalize(tif(out / f"images/{name}.tif"), 1, 99.8, axis=(0, 1))
        assert img.shape[:2] == y.shape and star_dist(y, 16).shape == (*y.shape, 16)
    y = tif(out / "masks/vol_0.tif")
    assert star_dist3D(y, Rays_GoldenSpiral(16)).shape == (*y.shape, 16)


def test_pixel_sizes_are_written(tmp_path, samples):
    export("stardist", [samples["nuclei3d"], samples["multichannel"]], tmp_path / "sd")
    with tifffile.TiffFile(tmp_path / "sd/images/vol_0.tif") as f:  # ImageJ, microns
        assert f.imagej_metadata["spacing"] == pytest.approx(2.0)
        assert f.imagej_metadata["unit"] == "um"
        assert f.pages[0].resolution == pytest.approx((2.0, 2.0))  # pixels per micron
    with tifffile.TiffFile(tmp_path / "sd/images/mc_0.tif") as f:  # no spacing given
        assert f.pages[0].resolution == pytest.approx((1.0, 1.0))
    multi = ExportSample("mcs_0", samples["multichannel"].kind, samples["multichannel"].image,
                         samples["multichannel"].labels, spacing=(0.25, 0.5))
    export("stardist", [multi], tmp_path / "sd2")
    with tifffile.TiffFile(tmp_path / "sd2/images/mcs_0.tif") as f:  # shaped, channel last
        assert f.series[0].shape == (*SHAPE_2D, 2)
        assert f.pages[0].resolution == pytest.approx((2e4, 4e4))  # pixels per cm, X then Y
        assert json.loads(f.pages[0].description)["spacing"] == [0.25, 0.5]


# --- nnU-Net ----------------------------------------------------------------------------------

def test_semantic_classes():
    labels = np.zeros((6, 7), np.uint16)
    labels[1:5, 1:4] = 1
    labels[1:5, 4:6] = 2   # touches 1
    labels[0:3, 6] = 3     # on the image border
    expected = np.array([
        [0, 0, 0, 0, 0, 0, 2],
        [0, 2, 2, 2, 2, 2, 2],
        [0, 2, 1, 2, 2, 2, 2],
        [0, 2, 1, 2, 2, 2, 0],
        [0, 2, 2, 2, 2, 2, 0],
        [0, 0, 0, 0, 0, 0, 0],
    ], np.uint8)
    np.testing.assert_array_equal(semantic(labels), expected)


def nnunet_case(folder: Path, case: str, channels: int = 1):
    images = [tif(folder / f"imagesTr/{case}_{c:04d}.tif") for c in range(channels)]
    sidecars = [json.loads((folder / f"{sub}/{case}.json").read_text())
                for sub in ("imagesTr", "labelsTr")]
    assert sidecars[0] == sidecars[1]
    return images, tif(folder / f"labelsTr/{case}.tif"), sidecars[0]["spacing"]


def test_nnunet_2d_cases(tmp_path, samples):
    chosen = [samples["nuclei"], samples["overlapping"], samples["timeseries"]]
    out = tmp_path / "Dataset501_Synth"
    summary = export("nnunet", chosen, out)
    cases = ["nuc_0", "ov_0", "ts_0_t000", "ts_0_t001", "ts_0_t002"]
    dataset = json.loads((out / "dataset.json").read_text())
    assert dataset["channel_names"] == {"0": "fluorescence"}
    assert dataset["labels"] == {"background": 0, "interior": 1, "boundary": 2}
    assert dataset["numTraining"] == len(cases) and dataset["file_ending"] == ".tif"
    assert dataset["overwrite_image_reader_writer"] == "Tiff3DIO"
    assert files(out) == ({f"imagesTr/{c}_0000.tif" for c in cases}
                          | {f"imagesTr/{c}.json" for c in cases}
                          | {f"labelsTr/{c}.tif" for c in cases}
                          | {f"labelsTr/{c}.json" for c in cases} | {"dataset.json", MARKER})
    assert summary["pairs"] == summary["cases"] == len(cases)
    assert summary["files"] == 4 * len(cases) + 1

    (image,), seg, spacing = nnunet_case(out, "nuc_0")
    assert image.shape == seg.shape == (1, *SHAPE_2D)  # 2D as a 3D TIFF for Tiff3DIO
    assert spacing == [999.0, 0.5, 0.5]
    np.testing.assert_array_equal(image[0], chosen[0].image[0])
    assert seg.dtype == np.uint8
    np.testing.assert_array_equal(seg[0], semantic(chosen[0].labels[0]))
    assert set(np.unique(seg)) == {0, 1, 2}
    _, seg, spacing = nnunet_case(out, "ov_0")
    np.testing.assert_array_equal(seg[0], semantic(flatten_layers(chosen[1].labels)))
    assert spacing == [999.0, 1.0, 1.0]
    _, seg, _ = nnunet_case(out, "ts_0_t001")
    np.testing.assert_array_equal(seg[0], semantic(chosen[2].labels[1, 0]))


def test_nnunet_multichannel_and_3d(tmp_path, samples):
    mc = samples["multichannel"]
    out = tmp_path / "Dataset502_Multi"
    export("nnunet", [mc], out)
    dataset = json.loads((out / "dataset.json").read_text())
    assert dataset["channel_names"] == {"0": "cells", "1": "nuclei"}
    images, seg, _ = nnunet_case(out, "mc_0", channels=2)
    for c in range(2):
        np.testing.assert_array_equal(images[c][0], mc.image[c])
    np.testing.assert_array_equal(seg[0], semantic(mc.labels[1]))  # the nuclei channel

    vol = samples["nuclei3d"]
    export("nnunet", [vol], tmp_path / "Dataset503_Vol")
    (image,), seg, spacing = nnunet_case(tmp_path / "Dataset503_Vol", "vol_0")
    assert image.shape == seg.shape == SHAPE_3D and spacing == [2.0, 0.5, 0.5]
    np.testing.assert_array_equal(seg, semantic(vol.labels[0]))


def test_nnunet_refuses_mixed_layouts(tmp_path, samples):
    for mixed in ([samples["nuclei"], samples["nuclei3d"]],
                  [samples["nuclei"], samples["multichannel"]]):
        with pytest.raises(ValueError, match="one layout"):
            export("nnunet", mixed, tmp_path / "mixed")
        assert not (tmp_path / "mixed").exists()


def test_nnunet_reader_verifies_the_data_set(tmp_path, samples):
    pytest.importorskip("nnunetv2")
    from nnunetv2.experiment_planning.verify_dataset_integrity import verify_dataset_integrity
    from nnunetv2.imageio.reader_writer_registry import determine_reader_writer_from_dataset_json

    sets = {"Dataset501_Flat": [samples["nuclei"], samples["timeseries"]],
            "Dataset502_Multi": [samples["multichannel"]],
            "Dataset503_Vol": [samples["nuclei3d"]]}
    for name, chosen in sets.items():
        export("nnunet", chosen, tmp_path / name)
        verify_dataset_integrity(str(tmp_path / name), num_processes=1)
    folder = tmp_path / "Dataset502_Multi"
    dataset = json.loads((folder / "dataset.json").read_text())
    reader = determine_reader_writer_from_dataset_json(
        dataset, str(folder / "imagesTr/mc_0_0000.tif"))()
    images, props = reader.read_images([str(folder / f"imagesTr/mc_0_{c:04d}.tif")
                                        for c in range(2)])
    seg, seg_props = reader.read_seg(str(folder / "labelsTr/mc_0.tif"))
    assert images.shape == (2, 1, *SHAPE_2D) and seg.shape == (1, 1, *SHAPE_2D)
    assert list(props["spacing"]) == list(seg_props["spacing"]) == [999.0, 1.0, 1.0]


# --- CTC --------------------------------------------------------------------------------------

def read_tracks(path: Path) -> np.ndarray:
    return np.loadtxt(path, dtype=np.int64, ndmin=2)


def assert_ctc_sequence(folder: Path, seq: str, sample: ExportSample) -> None:
    frames = len(sample.labels)
    names = sorted(p.name for p in (folder / seq).iterdir())
    assert names == [f"t{t:03d}.tif" for t in range(frames)]
    tracks = read_tracks(folder / f"{seq}_GT/TRA/man_track.txt")
    np.testing.assert_array_equal(tracks, sample.tracks)
    tra = [tif(folder / f"{seq}_GT/TRA/man_track{t:03d}.tif") for t in range(frames)]
    for t in range(frames):
        image = tif(folder / f"{seq}/t{t:03d}.tif")
        assert image.dtype == np.uint16 and tra[t].dtype == np.uint16
        np.testing.assert_array_equal(image, np.round(sample.image[t, 0] * 65535))
        np.testing.assert_array_equal(tra[t], sample.labels[t, 0])
        np.testing.assert_array_equal(tif(folder / f"{seq}_GT/SEG/man_seg{t:03d}.tif"), tra[t])
    # every id L is in exactly the TRA frames B..E; every id of a frame has a track
    for L, B, E, P in tracks:
        assert [bool((m == L).any()) for m in tra] == [B <= t <= E for t in range(frames)]
        assert P == 0 or tracks[tracks[:, 0] == P, 2][0] < B
    assert set(np.unique(np.stack(tra))) - {0} == set(tracks[:, 0])


def test_ctc_one_sequence_per_time_series(tmp_path, samples):
    chosen = [samples["nuclei"], samples["timeseries"], samples["multichannel"],
              samples["timeseries2"]]
    out = tmp_path / "ctc"
    summary = export("ctc", chosen, out)
    assert summary["sequences"] == {"01": "ts_0", "02": "ts_1"}
    assert [s["name"] for s in summary["skipped"]] == ["nuc_0", "mc_0"]
    assert all("time" in s["reason"] for s in summary["skipped"])
    assert summary["exported"] == 2 and summary["pairs"] == 2
    assert summary["files"] == 2 * (3 * 3 + 1)
    assert sorted(p.name for p in out.iterdir()) == ["01", "01_GT", "02", "02_GT", MARKER]
    assert_ctc_sequence(out, "01", samples["timeseries"])
    assert_ctc_sequence(out, "02", samples["timeseries2"])
    assert samples["timeseries"].tracks[:, 3].any() or samples["timeseries2"].tracks[:, 3].any()


def test_ctc_3d_series(tmp_path):
    series = make("timeseries", (6, 32, 32), dict(SERIES, frames=2), "ts3_0",
                  spacing=(2.0, 0.5, 0.5))
    export("ctc", [series], tmp_path / "ctc")
    assert_ctc_sequence(tmp_path / "ctc", "01", series)
    with tifffile.TiffFile(tmp_path / "ctc/01/t000.tif") as f:
        assert f.series[0].shape == (6, 32, 32) and f.imagej_metadata["spacing"] == 2.0


def test_ctc_traccuracy_loads_the_ground_truth(tmp_path, samples):
    loaders = pytest.importorskip("traccuracy.loaders")
    sample = samples["timeseries"]
    export("ctc", [sample], tmp_path / "ctc")
    tra = tmp_path / "ctc/01_GT/TRA"
    graph = loaders.load_ctc_data(str(tra), str(tra / "man_track.txt"), run_checks=True).graph
    tracks = sample.tracks
    lengths = tracks[:, 2] - tracks[:, 1] + 1
    assert graph.number_of_nodes() == int(lengths.sum())
    assert graph.number_of_edges() == int((lengths - 1).sum() + (tracks[:, 3] > 0).sum())


def test_ctc_refuses_tracks_that_do_not_fit(tmp_path, samples):
    good = samples["timeseries"]
    tracks = good.tracks.copy()
    tracks[0, 2] = len(good.labels) - 1 if tracks[0, 2] < len(good.labels) - 1 else 0
    bad = ExportSample("bad_0", good.kind, good.image, good.labels, tracks)
    with pytest.raises(ValueError, match="bad_0"):
        export("ctc", [bad], tmp_path / "ctc")
    assert list(tmp_path.iterdir()) == []


def test_ctc_with_no_time_series_writes_only_the_summary(tmp_path, samples):
    summary = export("ctc", [samples["nuclei"]], tmp_path / "ctc")
    assert summary["exported"] == 0 and summary["sequences"] == {}
    assert files(tmp_path / "ctc") == {MARKER}


# --- the folder -------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", FORMATS)
def test_reexport_leaves_no_stale_file(tmp_path, samples, fmt):
    out = tmp_path / "export"
    first = [samples["timeseries"], samples["timeseries2"]]
    export(fmt, first, out)
    before = files(out)
    export(fmt, first[1:], out)
    after = files(out)
    assert after < before
    stale = "01_GT/TRA/man_track002.tif" if fmt == "ctc" else None
    assert not any("ts_0" in f for f in after)  # the first sample's files are gone
    if stale:  # ts_1 is now sequence 01: its files replaced ts_0's
        np.testing.assert_array_equal(tif(out / stale), samples["timeseries2"].labels[2, 0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]  # no temporary folders


def test_export_replaces_only_its_own_folders(tmp_path, samples):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep")
    with pytest.raises(OutputError, match="not an earlier export"):
        export("cellpose", [samples["nuclei"]], foreign)
    assert files(foreign) == {"notes.txt"}
    empty = tmp_path / "empty"
    empty.mkdir()
    export("cellpose", [samples["nuclei"]], empty)
    export("stardist", [samples["nuclei"]], empty)  # an earlier export of another format
    assert files(empty) == {"images/nuc_0.tif", "masks/nuc_0.tif", MARKER}


def test_failed_export_keeps_the_earlier_one(tmp_path, samples):
    out = tmp_path / "export"
    export("cellpose", [samples["nuclei"]], out)
    before = {f: (out / f).read_bytes() for f in files(out)}
    with pytest.raises(ValueError, match="one layout"):
        export("nnunet", [samples["nuclei"], samples["nuclei3d"]], out)
    assert {f: (out / f).read_bytes() for f in files(out)} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["export"]


def test_large_ids_become_uint32(tmp_path, samples):
    nuc = samples["nuclei"]
    labels = nuc.labels.astype(np.uint32)
    labels[labels > 0] += 70000
    export("cellpose", [ExportSample("big_0", nuc.kind, nuc.image, labels)], tmp_path / "cp")
    mask = tif(tmp_path / "cp/big_0_masks.tif")
    assert mask.dtype == np.uint32
    np.testing.assert_array_equal(mask, labels[0])


# --- arguments --------------------------------------------------------------------------------

def test_bad_arguments(tmp_path, samples):
    nuc, ts = samples["nuclei"], samples["timeseries"]
    with pytest.raises(ValueError, match="unknown export format"):
        export("coco", [nuc], tmp_path / "x")
    with pytest.raises(ValueError, match="no samples"):
        export("cellpose", [], tmp_path / "x")
    with pytest.raises(ValueError, match="unique"):
        export("cellpose", [nuc, nuc], tmp_path / "x")
    frame_clash = ExportSample("ts_0_t001", nuc.kind, nuc.image, nuc.labels)
    with pytest.raises(ValueError, match="ts_0_t001"):
        export("stardist", [ts, frame_clash], tmp_path / "x")
    assert not (tmp_path / "x").exists()


BAD_SAMPLES = {
    "name": lambda nuc, ts: dict(name="../up"),
    "channels": lambda nuc, ts: dict(image=np.concatenate([nuc.image] * 3)),
    "shape": lambda nuc, ts: dict(image=nuc.image[:, :10]),
    "tracks": lambda nuc, ts: dict(kind=ts.kind, image=ts.image, labels=ts.labels),
    "spacing": lambda nuc, ts: dict(spacing=(1.0, 1.0, 1.0)),
    "nan": lambda nuc, ts: dict(image=np.full_like(nuc.image, np.nan)),
}


@pytest.mark.parametrize("what", BAD_SAMPLES)
def test_samples_must_fit_their_kind(samples, what):
    nuc, ts = samples["nuclei"], samples["timeseries"]
    args = dict(name="s_0", kind=nuc.kind, image=nuc.image, labels=nuc.labels)
    with pytest.raises(ValueError, match="sample"):
        ExportSample(**(args | BAD_SAMPLES[what](nuc, ts)))
