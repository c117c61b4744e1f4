"""The prepare stage end to end with Snakemake, and config errors users see at start-up."""

from __future__ import annotations

import csv
import re

import h5py
import numpy as np
import pytest
import tifffile

from helpers import load_config, run_snakemake, write_ome_zarr, write_raw_images
from workflow_lib.errors import ConfigError
from workflow_lib.workflow.inputs import dataset_images

SHAPE = (48, 40)


@pytest.mark.e2e
def test_prepare_end_to_end(tmp_path):
    write_raw_images(tmp_path / "raw", n=4, shape=SHAPE)
    run_snakemake(tmp_path, load_config("prepare"), "prepare")
    for i in range(4):
        with h5py.File(tmp_path / f"results/tiny/h5/img{i}.h5", "r") as f:
            assert f["data/image"].shape == (1, *SHAPE)
            assert f["data/image"].dtype == np.float32
    counts = {}
    for split in ("train", "val", "test"):
        with open(tmp_path / f"results/tiny/index/{split}.csv") as f:
            counts[split] = len(list(csv.DictReader(f)))
    assert counts == {"train": 2, "val": 1, "test": 1}
    assert (tmp_path / "logs/tiny/convert/img0.log").is_file()
    # nothing left to do on a second run
    dry = run_snakemake(tmp_path, load_config("prepare"), "prepare", "-n")
    assert "Nothing to be done" in dry.stdout


@pytest.mark.e2e
def test_ome_zarr_and_guessed_axes_end_to_end(tmp_path):
    """OME-Zarr folders convert with their pixel size; a stack without axes metadata converts
    with the axes it was taken as said on the console and in the job's log."""
    rng = np.random.default_rng(0)
    for i in range(3):
        write_ome_zarr(tmp_path / f"raw/z{i}.ome.zarr", rng.integers(0, 4000, SHAPE, np.uint16),
                       "yx", {"y": 0.65, "x": 0.65})
        (tmp_path / "stack").mkdir(exist_ok=True)
        tifffile.imwrite(tmp_path / f"stack/s{i}.tif", rng.integers(0, 4000, (5, *SHAPE), np.uint16),
                         metadata=None)
    config = {"datasets": {"zarr": {"images": "raw/*.zarr"}, "stack": {"images": "stack/*.tif"}}}
    proc = run_snakemake(tmp_path, config, "prepare")
    with h5py.File(tmp_path / "results/zarr/h5/z0.h5", "r") as f:
        np.testing.assert_allclose(f["data/image"].attrs["element_size_um"], [0.65, 0.65])
        assert f["data/image"].shape == (1, *SHAPE)
    said = "stack/s0.tif has no axes metadata; its shape (5, 48, 40) was taken as axes CYX"
    assert said in proc.stdout, proc.stdout[-3000:]
    assert said in (tmp_path / "logs/stack/convert/s0.log").read_text()


@pytest.mark.e2e
def test_bad_image_fails_with_clear_message(tmp_path):
    write_raw_images(tmp_path / "raw", n=2, shape=SHAPE)
    (tmp_path / "raw" / "broken.tif").write_text("not an image")
    proc = run_snakemake(tmp_path, load_config("prepare"), "prepare", "--keep-going", check=False)
    assert proc.returncode != 0
    assert "raw/broken.tif: not a readable TIFF" in proc.stdout
    assert not (tmp_path / "results/tiny/h5/broken.h5").exists()
    assert (tmp_path / "results/tiny/h5/img0.h5").exists()  # --keep-going converted the rest


@pytest.mark.parametrize(
    "config,message",
    [
        ({"datasets": {"tiny": {"images": "x/*.tif", "colour": 1}}}, "colour"),
        ({"datasets": {"tiny": {"images": "x/*.tif", "ndim": 4}}}, "ndim"),
        ({"datasets": {"tiny": {"images": "x/*.tif", "channels": "0"}}}, "channels"),
        ({"datasets": {"tiny": {"images": "x/*.tif", "split": {"val": 2}}}}, "val"),
        ({"datasets": {"tiny": {"images": "x/*.tif", "ndim": 3, "model": {"patch_size": [32, 32]}}}},
         "patch_size"),
    ],
)
def test_config_errors_name_the_key(tmp_path, config, message):
    write_raw_images(tmp_path / "x", n=1, shape=SHAPE)
    proc = run_snakemake(tmp_path, config, "prepare", "-n", check=False)
    assert proc.returncode != 0
    assert message in proc.stdout, proc.stdout[-3000:]


@pytest.mark.e2e
def test_a_bad_glob_fails_its_data_set_only(tmp_path):
    """One line naming the key, exit != 0; with --keep-going the other data set is prepared."""
    write_raw_images(tmp_path / "x", n=2, shape=SHAPE)
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "x{1}.tif").write_bytes(b"")
    config = {"datasets": {"good": {"images": "x/*.tif"}, "none": {"images": "nothing/*.tif"},
                           "braces": {"images": "y/*.tif"}}}
    plan = run_snakemake(tmp_path, config, "prepare", "-n", check=False)
    assert plan.returncode == 0
    assert "'datasets.none.images': the glob 'nothing/*.tif' matches no file" in plan.stdout
    proc = run_snakemake(tmp_path, config, "prepare", "--keep-going", check=False)
    assert proc.returncode != 0
    assert "cellsynth error in rule unusable_images: config key 'datasets.none.images'" in proc.stdout
    assert "'y/x{1}.tif': file names with { or } cannot be used" in proc.stdout
    assert (tmp_path / "results/good/index/train.csv").is_file()


def test_dataset_images_known_files_and_collisions(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    known = ["resources/demo/images/a.tif", "resources/demo/masks/a.tif"]
    assert dataset_images("resources/demo/images/*.tif", "datasets.d.images", known) == {
        "a": "resources/demo/images/a.tif"
    }
    for sub in ("p", "q"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "same.tif").write_bytes(b"x")
    with pytest.raises(ConfigError, match="share the name 'same'"):
        dataset_images("*/same.tif", "datasets.d.images")
    (tmp_path / "p" / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match="not a supported image"):
        dataset_images("p/*", "datasets.d.images")


def test_3d_demo_quadrants_are_real_volumes_with_their_voxel_size(tmp_path):
    """The 3D demo's data: 4 quadrants of real nuclei, each with labels, written with the
    binned cells3d voxel size (µm) that the workflow reads back."""
    from workflow_lib.io import read_tiff, read_tiff_spacing
    from workflow_lib.prepare.demo import write_demo3d

    images = [tmp_path / f"i{q}.tif" for q in range(4)]
    masks = [tmp_path / f"m{q}.tif" for q in range(4)]
    write_demo3d(images, masks)
    for image, mask in zip(images, masks):
        volume, labels = read_tiff(image)[0], read_tiff(mask)[0]
        assert volume.shape == labels.shape == (30, 64, 64) and volume.dtype == np.uint16
        assert labels.max() >= 4 and volume[labels > 0].mean() > 2 * volume[labels == 0].mean()
        assert read_tiff_spacing(image, 3) == pytest.approx([0.58, 0.52, 0.52])


def test_3d_demo_prepares_and_plans_every_stage(tmp_path):
    """config/demo3d.yaml from a fresh folder: rule demo3d_data writes the real volumes, they
    convert to (1, 30, 64, 64) with their voxel size, and every stage is planned in 3D."""
    import yaml

    from helpers import REPO
    from workflow_lib.io import read_h5_header

    config = yaml.safe_load((REPO / "config/demo3d.yaml").read_text())
    run_snakemake(tmp_path, config, "prepare")
    shape, attrs = read_h5_header(tmp_path / "results/nuclei3d/h5/cells3d_0.h5")
    assert shape == (1, 30, 64, 64)
    assert list(attrs["element_size_um"]) == pytest.approx([0.58, 0.52, 0.52])
    planned = run_snakemake(tmp_path, config, "-n", "--quiet", "rules").stdout
    for rule in ("calibrate_dataset", "train_model", "calibrate_edges", "synthesize_chunk",
                 "evaluate_reference", "evaluate_simulation"):
        assert re.search(rf"{rule}\s+1\n", planned), rule
