"""Benchmark the structure simulation (and its sketch): times, label counts, peak memory.

Targets (issue 3): 2D 1024x1024 with ~100 nuclei < 1 s; 3D 128x512x512 with ~500 nuclei
< 30 s; 3D membranes 128x256x256 with ~1000 cells < 30 s; memory < 4 GB.

    python bench/bench_simulate.py            # all cases
    python bench/bench_simulate.py --quick    # small sizes (smoke test)

Each case runs in a fresh process so its peak memory (ru_maxrss) is its own.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import sys
import time

import numpy as np

CASES = [
    # name, kind, shape, params, target seconds
    ("nuclei 2D ~100", "nuclei", (1024, 1024), {"cells": 100, "radius": [15, 25]}, 1.0),
    ("nuclei 3D ~500", "nuclei", (128, 512, 512),
     {"cells": 500, "radius": [8, 14], "z_scale": 2.0, "placement": "embryo", "mitotic": 0.1}, 30.0),
    ("membranes 3D ~1000", "membranes", (128, 256, 256), {"cells": 1000}, 30.0),
    ("multichannel 2D", "multichannel", (1024, 1024), {"cells": 300}, None),
    ("overlapping 2D", "overlapping", (1024, 1024), {"cells": 150}, None),
    ("timeseries 2D x10", "timeseries", (512, 512), {"cells": 40, "frames": 10}, None),
    ("HeLa-like 2D", "nuclei", (700, 1100),
     {"cells": [400, 450], "radius": [10, 20], "placement": "clustered", "clusters": [15, 30],
      "min_distance": 16}, None),
    ("Tribolium-like 3D", "nuclei", (128, 512, 512),
     {"cells": [2500, 3000], "radius": [3, 5], "placement": "shell", "z_scale": 2.0,
      "extent": [0.9, 0.9, 0.9]}, None),
    ("meristem 3D layers", "membranes", (128, 256, 256),
     {"tissue": "dome", "layers": 4, "layer_spacing": 16, "z_scale": 2.0}, None),
]
QUICK = {"nuclei 2D ~100": (256, 256), "nuclei 3D ~500": (32, 128, 128),
         "membranes 3D ~1000": (32, 64, 64)}


def run_case(args) -> dict:
    name, kind, shape, params, with_sketch = args
    from workflow_lib.simulate import get_kind, read_params, sample_rng, simulate
    from workflow_lib.sketch import SketchParams, make_sketch

    t0 = time.perf_counter()
    try:
        sim = simulate(kind, shape, read_params(kind, params, len(shape)), sample_rng(0, 0))
    except Exception as exc:  # noqa: BLE001  (reported, and kept picklable for the pool)
        return {"case": name, "error": str(exc)}
    t_sim = time.perf_counter() - t0
    t_sketch = None
    if with_sketch:
        t0 = time.perf_counter()
        make_sketch(sim.labels, get_kind(kind), SketchParams(), sample_rng(0, 0, 1))
        t_sketch = time.perf_counter() - t0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # KiB -> GiB
    return {"case": name, "shape": list(shape), "instances": sim.count, "simulate_s": round(t_sim, 3),
            "sketch_s": None if t_sketch is None else round(t_sketch, 3), "peak_gib": round(rss, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small shapes, for a smoke test")
    ap.add_argument("--sketch", action="store_true", help="also time the sketch of each sample")
    args = ap.parse_args()
    ctx = mp.get_context("spawn")
    print(f"{'case':22s} {'shape':>16s} {'ids':>6s} {'sim s':>8s} {'target':>7s} {'sketch s':>9s} {'peak GiB':>9s}")
    for name, kind, shape, params, target in CASES:
        if args.quick:
            full, shape = shape, QUICK.get(name, tuple(s // 4 for s in shape))
            ratio = float(np.prod(shape)) / float(np.prod(full))
            if "cells" in params:
                cells = [max(1, int(c * ratio)) for c in np.atleast_1d(params["cells"])]
                params = dict(params, cells=cells if len(cells) == 2 else cells[0])
        with ctx.Pool(1) as pool:
            r = pool.apply(run_case, ((name, kind, shape, params, args.sketch),))
        if "error" in r:
            print(f"{name:22s} failed: {r['error']}", flush=True)
            continue
        ok = "" if target is None else (f"<{target:g}" + (" ok" if r["simulate_s"] < target else " SLOW"))
        sk = "-" if r["sketch_s"] is None else f"{r['sketch_s']:.2f}"
        print(f"{name:22s} {'x'.join(map(str, shape)):>16s} {r['instances']:6d} {r['simulate_s']:8.2f} "
              f"{ok:>7s} {sk:>9s} {r['peak_gib']:9.2f}", flush=True)
        print(json.dumps(r), file=sys.stderr)


if __name__ == "__main__":
    main()
