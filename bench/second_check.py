"""A check on real data the defaults were not tuned on: StarDist's 3D test volume, as 2D slices.

The demo image (2018 Data Science Bowl) is what the project was developed on; this check runs
the whole workflow on other real nuclei (another microscope, 3D, much smaller nuclei): every
third YX slice of StarDist's 3D test volume (61 x 57 pixels) is an image, the volume's
annotation sliced the same way its mask (for evaluation, and the train slices' for the `masks`
simulation). One simulation of every nuclei-like kind; they say only `kind`, `count`, `shape`
and `calibrate: true` (and `annotated` its mask glob). Prints completeness and downstream scores per
simulation beside the real-data floor and baseline:

    python bench/second_check.py --workdir /tmp/second_check [--steps 500] [--cores 2]

Neighbouring slices of one volume are correlated, so train and test images are not
independent: read the scores as a check of the pipeline, not as a benchmark of the data set.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import tifffile
import yaml

from workflow_lib.dataset import split_names
from workflow_lib.workflow import layout

REPO = Path(__file__).resolve().parents[1]

SLICE_STEP = 3
SPLIT = {"val": 0.1, "test": 0.3, "seed": 0}


def write_data(root: Path) -> None:
    """Images and masks, and the train split's masks apart (what `annotated` may use)."""
    from stardist.data import test_image_nuclei_3d

    image, mask = test_image_nuclei_3d(return_mask=True)
    for folder in ("images", "masks", "train_masks"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    names = [f"z{z:02d}" for z in range(0, image.shape[0], SLICE_STEP)]
    train = split_names(names, **SPLIT)["train"]
    for name in names:
        z = int(name[1:])
        tifffile.imwrite(root / "images" / f"{name}.tif", image[z].astype(np.uint16))
        folders = ["masks", "train_masks"] if name in train else ["masks"]
        for folder in folders:
            tifffile.imwrite(root / folder / f"{name}.tif", mask[z].astype(np.uint16))


def config(steps: int) -> dict:
    sims = {
        "spread": {"kind": "nuclei", "count": 16, "shape": [128, 128], "calibrate": True},
        "clustered": {"kind": "nuclei", "count": 8, "shape": [128, 128], "calibrate": True,
                      "params": {"placement": "clustered", "clusters": [2, 3]}},
        "movie": {"kind": "timeseries", "count": 4, "shape": [128, 128], "calibrate": True,
                  "params": {"frames": 4}},
        # cells around calibrated nuclei: the downstream segmenter learns the nucleus channel
        "cells": {"kind": "multichannel", "count": 8, "shape": [128, 128], "calibrate": True},
        "smear": {"kind": "overlapping", "count": 8, "shape": [128, 128], "calibrate": True},
        # the train slices' own annotation as structures (never a val/test slice's)
        "annotated": {"kind": "masks", "count": 16, "shape": [56, 56], "calibrate": True,
                      "params": {"masks": "train_masks/*.tif"}},
    }
    return {"datasets": {"slices": {
        "images": "images/*.tif",
        "split": SPLIT,
        "model": {"patch_size": [48, 48], "features": 16,
                  "train": {"steps": steps, "batch_size": 4, "checkpoint_every": 100,
                            "val_every": 100, "val_batches": 2}},
        "simulations": sims,
        "synthesis": {"tile": [64, 64], "overlap": 16, "steps": 4},
        "evaluation": {"real_masks": "masks/*.tif", "realism": {"patch": 32},
                       "segmenter": {"patch": 48, "steps": 300, "repeats": 3}},
    }}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=500, help="diffusion training steps")
    ap.add_argument("--cores", default="2")
    args = ap.parse_args()
    root = args.workdir
    write_data(root)
    (root / "config.yaml").write_text(yaml.safe_dump(config(args.steps), sort_keys=False))
    subprocess.run(
        [sys.executable, "-m", "snakemake", "evaluate", "-s", str(REPO / "Snakefile"),
         "--directory", str(root), "--cores", args.cores, "--configfile", str(root / "config.yaml")],
        check=True,
    )
    print("simulation   unannotated %  missed %  edge px   downstream F1 (synthetic / real)")
    for sim in sorted(config(args.steps)["datasets"]["slices"]["simulations"]):
        m = json.loads((root / layout.fill(layout.METRICS, dataset="slices", sim=sim)).read_text())
        c = m["completeness"]["synthetic"]
        floor = m["completeness"]["real_floor"]
        down = m["downstream"]
        print(f"{m['simulation']:12s} {c['unannotated_pct']:6.1f} ({floor['unannotated_pct']:.1f})"
              f"  {c['missed_pct']:6.1f} ({floor['missed_pct']:.1f})"
              f"  {c['boundary_offset_px']:+.2f} ({floor['boundary_offset_px']:+.2f})"
              f"   {down['synthetic']['f1']:.2f} +- {down['synthetic']['f1_std']:.2f}"
              f" / {down['real']['f1']:.2f} +- {down['real']['f1_std']:.2f}")


if __name__ == "__main__":
    main()
