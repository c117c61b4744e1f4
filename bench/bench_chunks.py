"""Chunked jobs: planned jobs and seconds per image of simulate + sketch + synthesize.

Issue "Synthesis at scale", item 4: on 2 cores, 48 images of 128x128 (tiny model, 4 network
calls) in <= 0.35 s per image for the three stages, in <= 12 planned jobs. Side by side in one
run: one sample per job (what every image cost before chunking: three processes) against
`images_per_job: auto`. The model is trained once, before the clock starts; each setting then
simulates, sketches and synthesises all 48 images in a fresh results folder.

    python bench/bench_chunks.py                  # 48 images, both settings
    python bench/bench_chunks.py --count 12       # quicker
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]


def config(count: int, per_job: int | str) -> dict:
    return {"datasets": {"bench": {
        "images": "raw/*.tif",
        "ndim": 2,
        "split": {"val": 0.0, "test": 0.5, "seed": 0},
        "model": {"patch_size": [32, 32], "features": 4, "timesteps": 1000,
                  "train": {"steps": 4, "batch_size": 1, "seed": 0}},
        "simulations": {"spread": {"kind": "nuclei", "count": count, "shape": [128, 128],
                                   "params": {"cells": [8, 12], "radius": [6, 9]}}},
        # the default sampler and calls (DPM-Solver++, 4 calls); no calibration, so no guard;
        # every image checked, none redrawn (the untrained model's images would be, 4 draws)
        "synthesis": {"tile": [64, 64], "guard": {"enabled": False}, "texture": False,
                      "annotation_check": {"redraws": 0}, "images_per_job": per_job},
    }}}


def write_images(root: Path) -> None:
    import tifffile

    rng = np.random.default_rng(0)
    (root / "raw").mkdir(parents=True)
    for i in range(2):
        tifffile.imwrite(root / "raw" / f"img{i}.tif", rng.random((96, 96), np.float32))


def snakemake(root: Path, conf: dict, *args: str) -> str:
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(conf))
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", *args, "-s", str(REPO / "Snakefile"),
         "--directory", str(root), "--cores", "2", "--nolock", "--configfile", str(path)],
        capture_output=True, text=True)
    if out.returncode:
        sys.exit(out.stdout[-3000:] + out.stderr[-3000:])
    return out.stdout


def planned(root: Path, conf: dict) -> int:
    """Jobs a fresh run of the whole workflow plans (target rules excluded)."""
    stats = snakemake(root, conf, "-n", "--forceall", "synthesize")
    table = stats[stats.index("Job stats"):].split("\n\n")[0]   # the first table only
    targets = {"synthesize", "all"}
    return sum(int(n) for rule, n in re.findall(r"^(\w+)\s+(\d+)$", table, re.M)
               if rule not in targets and rule != "total")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=48)
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_images(root)
        snakemake(root, config(args.count, 1), "train")   # the model, once, off the clock
        for per_job in (1, "auto"):
            conf = config(args.count, per_job)
            shutil.rmtree(root / "results" / "bench" / "spread", ignore_errors=True)
            jobs = planned(root, conf)
            shutil.rmtree(root / "benchmarks" / "bench" / "spread", ignore_errors=True)
            start = time.perf_counter()
            snakemake(root, conf, "synthesize")
            seconds = time.perf_counter() - start
            # Snakemake's own start-up (a run with nothing to do), paid once per run
            start = time.perf_counter()
            snakemake(root, conf, "synthesize")
            idle = time.perf_counter() - start
            tsvs = list((root / "benchmarks/bench/spread").rglob("*.tsv"))
            job_s = sum(float(p.read_text().splitlines()[1].split("\t")[0]) for p in tsvs)
            rows.append((per_job, len(tsvs) // 3, jobs, seconds, idle, job_s))
    n = args.count
    print(f"{n} images of 128x128, tiny model (F=4), DPM-Solver++ 4 calls, 2 cores")
    print(f"{'images_per_job':>15} {'chunks':>7} {'planned jobs':>13} {'wall s':>7} "
          f"{'start-up s':>10} {'s/image':>8} {'jobs s/image':>13}")
    for per_job, chunks, jobs, seconds, idle, job_s in rows:
        print(f"{per_job!s:>15} {chunks:>7} {jobs:>13} {seconds:>7.1f} {idle:>10.1f} "
              f"{(seconds - idle) / n:>8.3f} {job_s / n:>13.3f}")
    print("planned jobs: every job of a fresh run (conversion, index, training, simulate, sketch, "
          "synthesize). wall: `snakemake synthesize` with the model trained; start-up: the same "
          "command with nothing to do (Snakemake and its plugins); s/image: (wall - start-up) / "
          "images; jobs s/image: the simulate, sketch and synthesize jobs' own wall time "
          "(benchmarks/*.tsv), summed, per image")


if __name__ == "__main__":
    main()
