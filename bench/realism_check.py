"""Realism on a microscope the project was never tuned on: mahotas' `nuclear.png`.

A fluorescence image of cultured cell nuclei with bright chromatin foci (1024 x 1344 pixels,
8 bit; shipped by the `mahotas` package, MIT licence: `pip install mahotas`), cut into 4 x 4
tiles of 256 x 336 pixels that the workflow splits as usual. It has no annotation, so this
check scores realism (C2ST, memorisation, KID) and completeness, not downstream. Two
simulations that say only `kind`, `count`, `shape` and `calibrate: true`:

    python bench/realism_check.py --workdir /tmp/realism_check [--steps 500] [--cores 2]

and prints the realism table (synthetic, sketch, real floor) per simulation.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import tifffile
import yaml

from workflow_lib.evaluate.c2st import c2st_text
from workflow_lib.workflow import layout

REPO = Path(__file__).resolve().parents[1]

GRID = 4


def source_image() -> Path:
    """Path of mahotas' nuclear.png, found without importing mahotas."""
    spec = importlib.util.find_spec("mahotas")
    if spec is None or spec.origin is None:
        sys.exit("bench/realism_check.py needs the mahotas package: pip install mahotas")
    return Path(spec.origin).parent / "demos" / "data" / "nuclear.png"


def write_data(root: Path) -> None:
    image = np.asarray(iio.imread(source_image()))
    image = image[..., 0] if image.ndim == 3 else image  # grey stored as RGB
    (root / "images").mkdir(parents=True, exist_ok=True)
    th, tw = image.shape[0] // GRID, image.shape[1] // GRID
    for r in range(GRID):
        for c in range(GRID):
            tile = image[r * th : (r + 1) * th, c * tw : (c + 1) * tw]
            tifffile.imwrite(root / "images" / f"nuclear_{r}{c}.tif", tile.astype(np.uint8))


def config(steps: int) -> dict:
    sims = {
        "spread": {"kind": "nuclei", "count": 8, "shape": [256, 256], "calibrate": True},
        "clustered": {"kind": "nuclei", "count": 4, "shape": [256, 256], "calibrate": True,
                      "params": {"placement": "clustered", "clusters": [2, 3]}},
    }
    return {"datasets": {"nuclear": {
        "images": "images/*.tif",
        "split": {"val": 0.1, "test": 0.3, "seed": 0},
        "model": {"patch_size": [128, 128], "features": 16,
                  "train": {"steps": steps, "batch_size": 4, "checkpoint_every": 100,
                            "val_every": 100, "val_batches": 2}},
        "simulations": sims,
        "synthesis": {"tile": [256, 256], "overlap": 32, "steps": 4},
        "evaluation": {"test_splits": ["val", "test"]},
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
    ref = json.loads((root / layout.fill(layout.REFERENCE, dataset="nuclear")).read_text())
    print(f"real floor (train vs tested on): C2ST {c2st_text(ref['realism_train_vs_test'])}")
    print("simulation  C2ST synthetic        C2ST sketch           memorisation  unannotated %  "
          "edge px  delivered  redrawn")
    for sim in config(args.steps)["datasets"]["nuclear"]["simulations"]:
        m = json.loads((root / layout.fill(layout.METRICS, dataset="nuclear", sim=sim)).read_text())
        r, c, n = m["realism"], m["completeness"]["synthetic"], m["samples"]
        mem = r["synthetic"]["memorisation"]["ratio"]
        print(f"{sim:11s} {c2st_text(r['synthetic']):21s} {c2st_text(r['sketch']):21s} {mem:12.2f}"
              f"  {c['unannotated_pct']:13.1f}  {c['boundary_offset_px']:+7.2f}"
              f"  {n['delivered']:4d} of {n['evaluated']:<3d} {len(n['redrawn']):6d}")


if __name__ == "__main__":
    main()
