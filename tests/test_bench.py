"""Bench scripts stay runnable. The second check (bench/second_check.py): its data and config
plan every simulation, and its `masks` simulation uses train slices only (the leak check would
refuse a val/test slice's mask at start-up). bench/bench_batching.py prints its table."""

from __future__ import annotations

import copy
import importlib.util
import re

from helpers import REPO, run_snakemake


def _second_check(monkeypatch):
    # As `python bench/second_check.py` runs it: its folder on the path (labelled_sets).
    monkeypatch.syspath_prepend(str(REPO / "bench"))
    spec = importlib.util.spec_from_file_location("second_check", REPO / "bench/second_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_second_check_plans_every_nuclei_like_kind(tmp_path, monkeypatch):
    check = _second_check(monkeypatch)
    check.write_data(tmp_path)
    config = check.config(steps=10)
    sims = config["datasets"]["stardist_slices"]["simulations"]
    assert {s["kind"] for s in sims.values()} == {
        "nuclei", "timeseries", "multichannel", "overlapping", "masks"}
    train = sorted(p.stem for p in (tmp_path / "train_masks").glob("*.tif"))
    assert 0 < len(train) < len(list((tmp_path / "masks").glob("*.tif")))
    out = run_snakemake(tmp_path, config, "evaluate", "-n", "--quiet", "rules").stdout
    assert re.search(rf"evaluate_simulation\s+{len(sims)}\n", out)
    leaky = copy.deepcopy(config)
    leaky["datasets"]["stardist_slices"]["simulations"]["annotated"]["params"]["masks"] = "masks/*.tif"
    refused = run_snakemake(tmp_path, leaky, "evaluate", "-n", check=False)
    assert refused.returncode != 0 and re.search(r"mask of (val|test) image", refused.stdout)


def test_second_check_in_3d_plans_a_mask_calibrated_volume_run(tmp_path, monkeypatch):
    """StarDist's 3D volume as 4 quadrants: 2 train (their masks calibrate), tested on val
    and test, every stage planned in 3D."""
    check = _second_check(monkeypatch)
    check.write_data(tmp_path, "stardist3d")
    config = check.config(steps=10, data="stardist3d")
    ds = config["datasets"]["stardist3d"]
    assert ds["ndim"] == 3 and ds["calibration"]["masks"] == "train_masks/*.tif"
    assert len(list((tmp_path / "train_masks").glob("*.tif"))) == 2
    out = run_snakemake(tmp_path, config, "evaluate", "-n", "--quiet", "rules").stdout
    assert re.search(r"evaluate_simulation\s+1\n", out) and re.search(r"calibrate_edges\s+1\n", out)


def test_batching_bench_prints_its_table():
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, str(REPO / "bench/bench_batching.py"), "--device", "cpu", "--sizes", "32",
         "--count", "3", "--batch", "3", "--features", "4", "--steps", "1"],
        capture_output=True, text=True, check=True, cwd=REPO).stdout
    row = next(line for line in out.splitlines() if line.startswith("| 32x32"))
    assert float(row.split("|")[-2]) < 1e-4             # together as alone, to float rounding


def test_calibration_check_prints_the_demo_row():
    """The demo's row, offline (the wheel-borne sets download): its unsupervised
    measurement holds against the human labels."""
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, str(REPO / "bench/calibration_check.py"), "--sets", "demo"],
        capture_output=True, text=True, check=True, cwd=REPO).stdout
    row = next(line for line in out.splitlines() if line.startswith("| demo (4)"))
    assert row.split("|")[7].strip() == "yes"
