"""Benchmark convert: a 3D 4-channel 512x512x180 uint16 volume (target < 30 s, < 2 GB RSS, 2 cores).

Usage: python bench/bench_convert.py [--channels 0 1 2 3] [--keep DIR]
Writes a synthetic volume (blurred blobs + noise) as an ImageJ TIFF, converts it in a fresh
process (so peak RSS is the conversion's own) and prints time, peak RSS and output size.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

SHAPE_ZCYX = (180, 4, 512, 512)

CHILD = """
import sys, time
from workflow_lib.prepare.convert import convert_image
t = time.perf_counter()
convert_image(sys.argv[1], sys.argv[2], ndim=3, channels=[int(c) for c in sys.argv[3:]])
print(time.perf_counter() - t)
"""


def make_volume(path: Path) -> None:
    rng = np.random.default_rng(0)
    z, c, y, x = SHAPE_ZCYX
    base = rng.integers(100, 400, size=(c, y, x), dtype=np.uint16)
    volume = np.empty(SHAPE_ZCYX, dtype=np.uint16)
    for k in range(z):
        volume[k] = np.roll(base, k, axis=-1) + rng.integers(0, 50, size=(c, y, x), dtype=np.uint16)
    tifffile.imwrite(path, volume, imagej=True, metadata={"axes": "ZCYX"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--channels", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--keep", type=Path, default=None, help="folder for the files")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_convert_"))
    folder.mkdir(parents=True, exist_ok=True)
    source, target = folder / "volume.tif", folder / "volume.h5"
    if not source.exists():
        t = time.perf_counter()
        make_volume(source)
        print(f"wrote {source} ({source.stat().st_size / 2**20:.0f} MiB) in "
              f"{time.perf_counter() - t:.1f} s")
    repo = Path(__file__).resolve().parents[1]
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(source), str(target), *map(str, args.channels)],
        check=True, capture_output=True, text=True, cwd=repo,
    )
    wall = time.perf_counter() - t
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"{'volume (Z,C,Y,X)':<22}{'channels':>10}{'convert s':>12}{'process s':>12}"
          f"{'peak RSS MiB':>14}{'h5 MiB':>9}")
    print(f"{'x'.join(map(str, SHAPE_ZCYX)):<22}{len(args.channels):>10}"
          f"{float(out.stdout.strip()):>12.1f}{wall:>12.1f}{peak_mib:>14.0f}"
          f"{target.stat().st_size / 2**20:>9.0f}")
    print("targets: < 30 s, < 2048 MiB")


if __name__ == "__main__":
    main()
